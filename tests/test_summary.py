"""`hpc.summary`: what a run says when it ends (the numbers themselves: test_train_script.py)."""

import hpc
from hpc.summary import duration, lines

APP = hpc.App(
    name="t",
    entry=print,
    prepare=print,
    describe=lambda v: (f"loss {v['training.final_loss']}", [f"steps {v['history.steps']}"]),
)
DONE = {
    "status": "completed",
    "run_id": "r1",
    "meta.wall_time_s": 134.2,
    "training.final_loss": 0.5,
    "history.steps": 9,
}


def test_a_completed_run_says_what_the_application_describes():
    assert lines("/s/r1.h5", DONE, APP) == [
        "Run r1 completed in 2 min 14 s: loss 0.5",
        "  steps 9",
        "  Result: /s/r1.h5",
    ]
    assert lines("/s/r1.h5", DONE) == ["Run r1 completed in 2 min 14 s.", "  Result: /s/r1.h5"]  # no describe


def test_progress_off_keeps_it_to_one_line():
    quiet = {**DONE, "config.progress": "off"}
    assert lines("/s/r1.h5", quiet, APP) == ["Run r1 completed in 2 min 14 s: loss 0.5 (result: /s/r1.h5)"]


def test_a_run_that_did_not_complete_says_why_in_one_line():
    stalled = {"status": "stalled", "run_id": "r2", "meta.wall_time_s": 3.25, "message": "training stalled at step 7"}
    assert lines("/s/r2.h5", stalled, APP) == [
        "Run r2 stalled after 3.2 s: training stalled at step 7 (result: /s/r2.h5)"
    ]
    assert lines("/s/r3.h5", {"status": "timeout"}) == ["Run r3 timeout after ?: no reason recorded (result: /s/r3.h5)"]


def test_durations_read_as_a_person_would_say_them():
    assert [duration(s) for s in (12.34, 60, 3599, 3600 * 5 + 65, None)] == [
        "12.3 s",
        "1 min 00 s",
        "59 min 59 s",
        "5 h 01 min",
        "?",
    ]

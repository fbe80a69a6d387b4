import io

import pytest

from hpc.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_log_lines_when_not_a_terminal():
    out = io.StringIO()
    progress = Progress(4, desc="train x", every_s=0.0, stream=out)
    for step in range(1, 5):
        progress.update(step, loss=0.123456, phase=0)
    progress.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("[train x] step 4/4 ")
    assert "steps/s loss=0.1235 phase=0" in lines[-1]


def test_a_resumed_run_counts_only_its_own_steps(monkeypatch):
    clock = iter([0.0, 10.0, 10.0, 12.0, 14.0])  # construction, then one tick per update
    monkeypatch.setattr("hpc.progress.time.monotonic", lambda: next(clock))
    out = io.StringIO()
    progress = Progress(2000, stream=out, every_s=0.0)
    for step in (1001, 1021, 1041):  # resumed at step 1000, 10 steps/s
        progress.update(step)
    assert out.getvalue().splitlines()[-1].startswith("[train] step 1041/2000 10.00 steps/s")


def test_bar_on_a_terminal():
    out = Terminal()
    progress = Progress(3, desc="train y", stream=out)
    assert progress.mode == "bar"
    progress.update(3, loss=1.5, phase=1)
    progress.close()
    text = out.getvalue()
    assert "train y" in text and "3/3" in text and "loss=1.5" in text


def test_unknown_mode_names_the_field():
    with pytest.raises(ValueError, match="`progress` must be one of auto, bar, log, off"):
        Progress(1, mode="fancy")

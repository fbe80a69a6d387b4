"""The sweep record: what was submitted, read back alone (finding sweeps: test_layout)."""

import json

import pytest

from hpc.sweep import RECORD, Sweep


def test_the_record_round_trips_and_knows_each_runs_latest_submission(tmp_path):
    sweep = Sweep.create(tmp_path, "exp", "train:train", argv="train.py -m seed=0,1,2")
    for rid in ("a", "b", "c"):
        sweep.add_run(rid, [f"seed={rid}"], json.dumps({"seed": rid}))
    sweep.add_submission("slurm", "10", ["a", "b", "c"], {"time_min": 5}, ["10_0", "10_1", "10_2"])
    sweep.add_submission("slurm", "11", ["b"], {"time_min": 9}, ["11"], save=False)
    sweep.save()

    again = Sweep.load(sweep.path)
    assert again.runs == sweep.runs and again.submissions == sweep.submissions and again.argv == sweep.argv
    assert json.loads(again.config_yaml("c")) == {"seed": "c"}
    a, b = again.latest_submission("a"), again.latest_submission("b")
    assert (a.position, a.index, a.submission["job_id"]) == (0, 0, "10")
    assert (b.position, b.index, b.submission["cluster"]) == (1, 0, {"time_min": 9})  # the resubmission
    assert again.latest_submission("nope") is None
    assert again.result_path("a") == tmp_path / "exp" / "a.h5"
    assert sorted(p.name for p in sweep.path.iterdir()) == ["configs", RECORD]  # nothing half-written


@pytest.mark.parametrize("text", ['{"runs": {"a"', '["not", "a", "record"]', '{"unknown_field": 1}'])
def test_a_damaged_record_is_named(tmp_path, text):
    sweep = Sweep.create(tmp_path, "exp", "m:f")
    (sweep.path / RECORD).write_text(text)
    with pytest.raises(ValueError, match=f"the sweep record {sweep.path / RECORD} is damaged"):
        Sweep.load(sweep.path)

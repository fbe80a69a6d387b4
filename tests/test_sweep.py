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
    assert sorted(p.name for p in sweep.path.iterdir()) == ["configs.jsonl", RECORD]  # nothing half-written


@pytest.mark.parametrize("text", ['{"runs": {"a"', '["not", "a", "record"]', '{"unknown_field": 1}'])
def test_a_damaged_record_is_named(tmp_path, text):
    sweep = Sweep.create(tmp_path, "exp", "m:f")
    (sweep.path / RECORD).write_text(text)
    with pytest.raises(ValueError, match=f"the sweep record {sweep.path / RECORD} is damaged"):
        Sweep.load(sweep.path)


def test_a_damaged_record_salvages_its_whole_fields_runs_and_submissions(tmp_path):
    sweep = Sweep.create(tmp_path, "exp", "train:APP", argv="train.py -m seed=1,2,3", workdir="/w")
    for rid in ("r1", "r2", "r3"):
        sweep.add_run(rid, [f"seed={rid[1]}"], "x: 1\n")
    sweep.add_submission("slurm", "41", ["r1", "r2"], {"time_min": 5}, ["41_0", "41_1"])
    sweep.add_submission("slurm", "42", ["r3"], {"time_min": 5}, ["42"])
    text = (sweep.path / "sweep.json").read_text()
    cut = text[: text.index('"job_id": "42"')]  # the second submission is cut off
    (sweep.path / "sweep.json").write_text(cut)
    with pytest.raises(ValueError, match=r"damaged .*rerun the sweep's command \(`train.py -m seed=1,2,3`\)"):
        Sweep.load(sweep.path)
    got = Sweep.load(sweep.path, damaged_ok=True)
    assert got.damaged.startswith(f"the sweep record {sweep.path / 'sweep.json'} is damaged")
    assert (got.sweep_id, got.experiment, got.results_root) == (sweep.sweep_id, "exp", sweep.results_root)
    assert (got.entry, got.argv, got.workdir) == ("train:APP", "train.py -m seed=1,2,3", "/w")
    assert got.runs == sweep.runs and [s["job_id"] for s in got.submissions] == ["41"]
    with pytest.raises(ValueError, match="not overwriting it"):
        got.save()
    assert (sweep.path / "sweep.json").read_text() == cut


def test_every_runs_config_is_one_line_of_one_file_and_reads_back_exactly(tmp_path):
    base = {"seed": 0, "lr": 1e-3, "model": {"width": 64, "layers": [1, 2]}, "cluster": {"time_min": 60}}
    texts = {}
    for i in range(200):  # what the launcher records: `hpc.compose.config_text`, JSON
        config = json.loads(json.dumps(base))
        config["seed"], config["model"]["width"] = i, [32, 64][i % 2]
        texts[f"r{i:03d}"] = json.dumps(config)
    other = {**base, "extra": True}  # another shape (a group chosen otherwise): its whole text
    texts["shape"] = json.dumps(other)
    texts["types"] = json.dumps({**base, "seed": 1.0, "lr": True})  # 1.0 and true are not 1
    texts["yaml"] = "seed: .inf\nlr: 0.001\n"  # not JSON: as it is
    texts["spaced"] = json.dumps(base, indent=1)  # JSON written otherwise: as it is
    sweep = Sweep.create(tmp_path, "exp", "train:APP")
    for run_id, text in texts.items():
        sweep.add_run(run_id, [f"run={run_id}"], text)
    sweep.save()
    again = Sweep.load(sweep.path)
    assert all(again.config_yaml(r) == text for r, text in texts.items())  # exactly, text for text
    assert sorted(p.name for p in sweep.path.iterdir()) == ["configs.jsonl", RECORD]  # a handful of files
    lines = (sweep.path / "configs.jsonl").read_bytes().splitlines()
    assert len(lines) == 1 + len(texts) and json.loads(lines[0])["base"] == texts["r000"]
    seed_only = json.loads(lines[2])  # r001: its seed and width
    assert seed_only == {"run": "r001", "set": [[["seed"], 1], [["model", "width"], 64]]}
    typed = json.loads(lines[-3])["set"]  # the base (r000) has width 32
    assert "text" in json.loads(lines[-1]) and typed == [[["seed"], 1.0], [["lr"], True], [["model", "width"], 64]]


def test_a_record_with_one_config_file_per_run_still_loads(tmp_path):
    sweep = Sweep.create(tmp_path, "exp", "train:APP")
    (sweep.path / "configs").mkdir()
    (sweep.path / "configs" / "a.yaml").write_text("seed: 1\n")  # as records before configs.jsonl
    sweep.runs["a"] = {"overrides": ["seed=1"]}
    sweep.save()
    assert Sweep.load(sweep.path).config_yaml("a") == "seed: 1\n"

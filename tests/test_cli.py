"""The `hpc` commands that only read files: no Slurm needed (status and failed: test_status)."""

import csv
import json
import shutil

import pytest

import hpc
from conftest import hpc_cli
from hpc.store import write_result
from hpc.sweep import Sweep


def _result(path, rid, **config):
    write_result(
        path,
        status="completed",
        run_id=rid,
        config=config,
        config_yaml=json.dumps(config),
        metadata={"host": "h"},
        tree={"metrics": {"test": {"err": float(config["width"])}}},
    )


def test_diff_names_only_what_differs(tmp_path):
    a, b = tmp_path / "exp" / "aaaa1.h5", tmp_path / "exp" / "bbbb2.h5"
    _result(a, "aaaa1", width=8, seed=0, lr=0.1)
    _result(b, "bbbb2", width=16, seed=0, lr=0.1)
    out = hpc_cli("diff", "aaaa1", "bbbb2", root=tmp_path).stdout
    assert out.split() == ["width", "8", "16"]
    assert "identical" in hpc_cli("diff", str(a), str(a), root=tmp_path).stdout
    bad = hpc_cli("diff", "cccc", "aaaa1", root=tmp_path, check=False)
    assert bad.returncode != 0 and "'cccc' names 0 result files" in bad.stderr


def test_collect_writes_one_row_per_run_with_config_and_metrics(tmp_path):
    sweep = Sweep.create(tmp_path, "exp", "x:y")
    for rid, width in (("r1", 8), ("r2", 16)):
        sweep.add_run(rid, [f"width={width}"], "")
        _result(sweep.result_path(rid), rid, width=width, seed=0)
    sweep.add_run("r3", ["width=32"], "")  # never submitted: a row with its state, no metrics
    sweep.add_submission("local", None, ["r1", "r2"], {})
    hpc_cli("collect", "latest", "-o", str(tmp_path / "runs.csv"), root=tmp_path)
    with open(tmp_path / "runs.csv") as handle:
        rows = {r["run_id"]: r for r in csv.DictReader(handle)}
    assert rows["r1"]["config.width"] == "8" and rows["r2"]["metrics.test.err"] == "16.0"
    assert rows["r1"]["state"] == "completed" and rows["r3"]["state"] == "lost" and rows["r3"]["config.width"] == ""
    assert "config.seed" not in rows["r1"] and "meta.host" not in rows["r1"]  # the same in every run
    hpc_cli("collect", "latest", "-o", str(tmp_path / "all.csv"), "--all-config", root=tmp_path)
    with open(tmp_path / "all.csv") as handle:
        everything = next(csv.DictReader(handle))
    assert everything["config.seed"] == "0" and everything["meta.host"] == "h"
    frame = hpc.load("latest", root=tmp_path)  # the same table, for notebooks
    assert list(frame["run_id"]) == ["r1", "r2", "r3"] and list(frame.columns) == list(rows["r1"])
    assert frame.loc[1, "metrics.test.err"] == 16.0
    bad = hpc_cli("collect", "latest", "-o", str(tmp_path / "runs.txt"), root=tmp_path, check=False)
    assert bad.returncode != 0 and "must end in .csv or .parquet" in bad.stderr


@pytest.mark.slurm  # `hpc status` asks the controller
@pytest.mark.slow
def test_plan_writes_a_manifest_without_submitting(tmp_path, slurm_cluster):
    done = hpc_cli(
        "plan", "curriculum=smoke", "width=8,16", "cluster.time_min=10", f"results_root={tmp_path}", root=tmp_path
    )
    sweep = Sweep.load(next((tmp_path / "default" / "sweeps").iterdir()))
    assert f"sbatch {sweep.path / 'array.sbatch'}" in done.stdout
    manifest = (sweep.path / "manifest.txt").read_text().splitlines()
    assert len(manifest) == 2 and "width=8" in manifest[0] and "width=16" in manifest[1]
    text = (sweep.path / "array.sbatch").read_text()
    assert "#SBATCH --array=0-1%2" in text and "#SBATCH --time=10" in text and "#SBATCH --signal=B:USR2@60" in text
    assert [s["kind"] for s in sweep.submissions] == ["manifest"]
    if shutil.which("squeue"):  # without Slurm here nobody can tell whether it was submitted elsewhere
        assert "planned 2" in hpc_cli("status", "latest", root=tmp_path).stdout


def test_root_is_taken_before_or_after_the_command():
    from hpc.cli import parser

    commands = parser()._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        positional = []  # what the command requires, filled with placeholders
        for action in sub._actions:
            count = action.nargs if isinstance(action.nargs, int) else 1
            if not action.option_strings:
                placeholder = action.choices[0] if action.choices else "x"
                positional += [placeholder] * count if action.nargs not in ("*", "?") else []
            elif action.required:
                positional += [action.option_strings[0], *["x"] * count]
        after = parser().parse_args([name, *positional, "--root", "/r"])
        before = parser().parse_args(["--root", "/r", name, *positional])
        assert after.root == before.root == "/r", name
        assert parser().parse_args([name, *positional]).root is None, name
    # the README's own: `hpc runs --root $SCRATCH/neuralode-hpc width=64 ...`
    assert parser().parse_args(["runs", "--root", "/s/neuralode-hpc", "width=64"]).root == "/s/neuralode-hpc"

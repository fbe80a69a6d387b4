"""`hpc runs` and `hpc.find`: every run of a results root, across sweeps and experiments, on
real result files; the expectations are read from the files with h5py directly."""

import csv
import os
import pathlib
import subprocess
import sys

import h5py
import numpy as np
import pytest

import hpc
from conftest import hpc_cli
from hpc import catalog
from hpc.store import write_evaluation, write_result

METRIC = "metrics.complex_TBP_planar_100_test.accel_pct_mean"


def _write(root, experiment, run_id, head, width, error, status="completed"):
    config = {"output_head": head, "width": width, "seed": int(run_id[-1])}
    tree = {"metrics": {"complex_TBP_planar_100_test": {"accel_pct_mean": error, "loglog_slope": -2 + error / 100}}}
    path = root / experiment / f"{run_id}.h5"
    write_result(path, status=status, run_id=run_id, config=config, config_yaml="", metadata={}, tree=tree)
    return path


@pytest.fixture
def root(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "root"
    for experiment, prefix in (("first", "a"), ("second", "b")):  # two experiments, each as a sweep would leave it
        for i, (head, width) in enumerate([(h, w) for h in ("signed", "simple") for w in (8, 16)] * 2):
            _write(root, experiment, f"{prefix}{i:04d}", head, width, float(rng.uniform(1, 50)))
    _write(root, "second", "f0000", "signed", 8, float("nan"), status="failed")
    (root / "datasets").mkdir()
    (root / "datasets" / "orbits.h5").write_bytes(b"")  # not a result file: never a row
    (root / "second" / "scribble.h5").write_bytes(b"not HDF5")  # nor is a stray file among the results
    return root


def _direct(root) -> dict:
    """run id -> (experiment, head, width, status, error), read with h5py."""
    out = {}
    for path in root.glob("*/*.h5"):
        if path.parent.name == "datasets" or path.name == "scribble.h5":
            continue
        with h5py.File(path) as f:
            out[f.attrs["run_id"]] = (
                path.parent.name,
                f["config"].attrs["output_head"],
                int(f["config"].attrs["width"]),
                f.attrs["status"],
                float(f["metrics/complex_TBP_planar_100_test"].attrs["accel_pct_mean"]),
            )
    return out


def test_filters_ordering_and_best_of_equal_the_files(root):
    direct = _direct(root)
    frame = hpc.find(root=root)
    assert sorted(frame.run_id) == sorted(direct) and set(frame.experiment) == {"first", "second"}

    chosen = hpc.find("output_head=signed", width=16, root=root, sort="metrics.*_100_test.accel_pct_mean")
    expected = sorted((v[4], r) for r, v in direct.items() if v[1] == "signed" and v[2] == 16)
    assert list(chosen.run_id) == [r for _, r in expected]
    assert list(chosen[METRIC]) == [e for e, _ in expected]

    where = hpc.find(root=root, where="metrics.*_100_test.accel_pct_mean < 20")
    assert sorted(where.run_id) == sorted(r for r, v in direct.items() if v[4] < 20)

    best = hpc.find(root=root, sort=METRIC, best_of="output_head")
    for head in ("signed", "simple"):
        completed = [(v[4], r) for r, v in direct.items() if v[1] == head and v[3] == "completed"]
        assert best.set_index("config.output_head").loc[head, "run_id"] == min(completed)[1]
    descending = hpc.find(root=root, sort="-" + METRIC, best_of=["output_head", "width"])
    assert len(descending) == 4 and all(descending.status == "completed")

    closest = hpc.find(root=root, sort="metrics.*_100_test.loglog_slope~-2")
    assert closest.run_id[0] == min((v[4], r) for r, v in direct.items() if v[3] == "completed")[1]


def test_the_command_lists_writes_and_names_a_bad_key(root, tmp_path):
    out = tmp_path / "runs.csv"
    done = hpc_cli("runs", "width=8", "--sort", METRIC, "--best-of", "output_head", "-o", str(out), root=root)
    assert "2 of 17 runs" in done.stdout
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    direct = _direct(root)
    assert {r["run_id"] for r in rows} == {
        min((v[4], r) for r, v in direct.items() if v[1] == h and v[2] == 8 and v[3] == "completed")[1]
        for h in ("signed", "simple")
    }
    assert all(r["path"].endswith(f"{r['run_id']}.h5") for r in rows)
    bad = hpc_cli("runs", "widht=8", root=root, check=False)
    assert bad.returncode == 2 and "filter `widht`: no run has it; did you mean width" in bad.stderr
    bad = hpc_cli("runs", "--where", "width >> 3", root=root, check=False)
    assert bad.returncode == 2 and "--where is `<column> <op> <value>`" in bad.stderr


def test_a_run_written_replaced_evaluated_or_deleted_shows_in_the_next_query(root):
    first = hpc.find(root=root)
    assert (root / catalog.CACHE).exists() and len(first) == 17
    _write(root, "first", "n0001", "signed", 8, 0.5)  # a run finished since
    gone = root / "second" / "b0003.h5"
    gone.unlink()
    _write(root, "first", "a0000", "signed", 8, 99.0)  # resubmitted: replaced
    write_evaluation(
        root / "first" / "a0001.h5",
        "complex_3d_100",
        status="completed",
        run_id="a0001",
        config={},
        config_yaml="",
        metadata={},
        tree={"metrics": {"complex_3d_100_test": {"accel_pct_mean": 7.0}}},
    )
    again = hpc.find(root=root).set_index("run_id")
    assert "n0001" in again.index and "b0003" not in again.index and len(again) == 17
    assert again.loc["a0000", METRIC] == 99.0
    assert again.loc["a0001", "eval.complex_3d_100_test.accel_pct_mean"] == 7.0
    assert hpc.find(root=root, sort=METRIC).run_id[0] == "n0001"


def test_a_truncated_result_is_listed_as_corrupt_with_its_path(root):
    hpc.find(root=root)  # cached while it read
    damaged = root / "first" / "a0002.h5"
    size = damaged.stat().st_size
    with open(damaged, "r+b") as handle:  # `truncate -s`: it still starts as HDF5
        handle.truncate(size // 2)
    listed = hpc_cli("runs", root=root).stdout
    (line,) = [line for line in listed.splitlines() if line.startswith("a0002")]
    assert line.split()[2] == "corrupt" and line.endswith(str(damaged)), line
    assert "17 of 17 runs" in listed  # the stray non-HDF5 file is still no run
    row = hpc.find(root=root, status="corrupt").iloc[0]
    assert row.path == str(damaged) and row.message.startswith("result file does not read (OSError")
    filtered = hpc_cli("runs", "width=8", root=root)  # a filter cannot match it: said, not silent
    assert "a0002" not in filtered.stdout and "do not read and match no filter" in filtered.stderr
    assert str(damaged) in filtered.stderr


def _readme_block(marker: str) -> str:
    """The fenced bash block of the README that follows `marker`, as a user would copy it."""
    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    after = text[text.index(marker) :]
    return after[after.index("```bash\n") + len("```bash\n") : after.index("\n```", after.index("```bash\n"))]


def test_the_readmes_copy_off_scratch_runs_as_written_and_its_check_can_fail(tmp_path):
    scratch, home = tmp_path / "scratch", tmp_path / "home"
    root = scratch / "neuralode-hpc"
    for run_id, status in (("c0001", "completed"), ("c0002", "completed"), ("f0003", "failed")):
        _write(root, "default", run_id, "signed", 8, 3.0, status=status)
    _write(root, "other", "o0004", "signed", 8, 3.0)  # another experiment: not picked
    evaluation = dict(status="completed", run_id="c0001", config={}, config_yaml="", metadata={})
    write_evaluation(root / "default" / "c0001.h5", "complex_3d_100", **evaluation)
    home.mkdir()
    env = {
        **os.environ,
        "SCRATCH": str(scratch),
        "HOME": str(home),
        "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    block = _readme_block("**Copying results off scratch.**")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "copy checked: 3 files" in done.stdout, done.stdout + done.stderr
    dest = home / "backup" / "neuralode-hpc"
    assert (home / "keep.txt").read_text().split() == [
        "default/c0001.h5",
        "default/c0001.evals/complex_3d_100.h5",
        "default/c0002.h5",
    ]
    assert (dest / "default" / "c0002.h5").read_bytes() == (root / "default" / "c0002.h5").read_bytes()
    with open(dest / "default" / "c0002.h5", "r+b") as handle:  # a copy that went wrong
        handle.seek(100)
        handle.write(b"\x00\x01")
    check = block.splitlines()[-1]
    bad = subprocess.run(["bash", "-c", f"DEST={dest}; {check}"], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "c0002.h5: FAILED" in bad.stdout + bad.stderr

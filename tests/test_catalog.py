"""`hpc runs` and `hpc.find`: every run of a results root, across sweeps and experiments, on
real result files; the expectations are read from the files with h5py directly."""

import csv
import os
import pathlib
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import hpc
from conftest import fenced_bash_block, hpc_cli
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


def _evaluate(path, label: str, error: float, **metadata):
    """An evaluation of the run at `path` on the 3D test set, as evaluate.py writes one."""
    write_evaluation(
        path,
        label,
        status="completed",
        run_id=path.stem,
        config={},
        config_yaml="",
        metadata=metadata,
        tree={"metrics": {"complex_3d_100_test": {"accel_pct_mean": error}}},
    )


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


@pytest.mark.slow  # runs the command in subprocesses
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


def _age(root, seconds=60):
    """Every experiment folder as if last changed `seconds` ago, and its index built since."""
    past = time.time() - seconds
    for folder in (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        os.utime(folder, (past, past))
    hpc.find(root=root)


def _nan_as_none(table: dict) -> dict:
    """NaN as the index keeps it: missing (Parquet's null), which ranks as NaN does, last."""
    return {k: tuple(None if isinstance(v, float) and v != v else v for v in row) for k, row in table.items()}


def _indexed(root) -> dict:
    """What the index files hold, read with pyarrow: run id -> (experiment, head, width, status, error)."""
    import pyarrow.parquet as pq

    out = {}
    for file in (root / catalog.INDEX).glob("*.parquet"):
        for row in pq.read_table(file).to_pylist():
            if row.get("run_id") and row["status"] != "corrupt":
                out[row["run_id"]] = (
                    row["experiment"],
                    row["config.output_head"],
                    int(row["config.width"]),
                    row["status"],
                    row[METRIC],
                )
    return out


def test_a_run_written_replaced_evaluated_or_deleted_shows_in_the_next_query(root):
    (root / ".hpc-runs.json").write_text("{}")  # the JSON cache before the index: it goes
    first = hpc.find(root=root)
    assert (root / catalog.INDEX / "first.parquet").exists() and len(first) == 17
    assert not (root / ".hpc-runs.json").exists()
    _write(root, "first", "n0001", "signed", 8, 0.5)  # a run finished since
    gone = root / "second" / "b0003.h5"
    gone.unlink()
    _write(root, "first", "a0000", "signed", 8, 99.0)  # resubmitted: replaced
    _evaluate(root / "first" / "a0001.h5", "complex_3d_100", 7.0)
    again = hpc.find(root=root).set_index("run_id")
    assert "n0001" in again.index and "b0003" not in again.index and len(again) == 17
    assert again.loc["a0000", METRIC] == 99.0
    assert again.loc["a0001", "eval.complex_3d_100_test.accel_pct_mean"] == 7.0
    assert hpc.find(root=root, sort=METRIC).run_id[0] == "n0001"
    assert _indexed(root) == _nan_as_none(_direct(root))  # the index files equal what h5py reads


def test_the_index_answers_from_folder_times_and_rereads_only_what_changed(root):
    _age(root)
    built = {p.name: p.stat().st_mtime_ns for p in (root / catalog.INDEX).iterdir()}
    found = catalog.Catalog([root])
    assert found.read == 0  # nothing changed: no file read, no index written
    assert {p.name: p.stat().st_mtime_ns for p in (root / catalog.INDEX).iterdir()} == built
    _write(root, "first", "n0002", "simple", 16, 0.25)  # a new file changes its folder's time
    (root / "second" / "b0001.h5").unlink()
    found = catalog.Catalog([root])
    assert found.read == 1 and _indexed(root) == _nan_as_none(_direct(root))
    # within the racy window: a file replaced while its folder's time stays what the index saw
    folder = root / "first"
    stamp = folder.stat().st_mtime_ns
    _write(root, "first", "a0003", "simple", 16, 77.0)
    os.utime(folder, ns=(stamp, stamp))
    assert catalog.Catalog([root]).read >= 1  # built within RACY_S of that time: looked at again
    assert hpc.find(root=root, run_id="a0003")[METRIC][0] == 77.0
    # --verify: a file changed in place (not by a rename), which no folder time shows
    _age(root)
    victim = root / "first" / "a0004.h5"
    with h5py.File(victim, "r+") as f:
        f.attrs["status"] = "failed"
        f.attrs["summary_json"] = f.attrs["summary_json"].replace('"completed"', '"failed"')
    os.utime(folder, (time.time() - 60, time.time() - 60))
    assert hpc.find(root=root, run_id="a0004").status[0] == "completed"  # the index, as it assumes
    assert "failed" in hpc_cli("runs", "run_id=a0004", "--verify", root=root).stdout
    every = [p for p in root.glob("*/*.h5") if p.parent.name not in catalog.SKIP]
    assert catalog.Catalog([root], rebuild=True).read == len(every)


def test_two_refreshes_racing_leave_a_valid_index(root):
    _age(root)
    for i in range(30):
        _write(root, "first", f"r{i:04d}", "signed", 8, float(i))
    cmd = [sys.executable, "-m", "hpc.cli", "--root", str(root), "runs", "width=8"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert len({o.splitlines()[-1] for o, _ in outs}) == 1  # each answered the same
    assert _indexed(root) == _nan_as_none(_direct(root)) and not list((root / catalog.INDEX).glob(".*"))


def test_a_read_only_root_works_from_memory(root, tmp_path, tmpfs):
    ro = tmpfs("size=8m")
    subprocess.run(["cp", "-a", f"{root}/.", str(ro)], check=True)
    subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
    assert len(hpc.find(root=ro)) == 17 and not (ro / catalog.INDEX).exists()
    wanted = sum(1 for v in _direct(root).values() if v[1:3] == ("signed", 8))
    assert f"{wanted} of 17 runs" in hpc_cli("runs", "width=8", "output_head=signed", root=ro).stdout


@pytest.mark.slow  # runs the command in subprocesses
def test_evaluations_link_to_every_model_they_used_and_the_tables_export(root, tmp_path):
    models = [["a0000", "reference"], ["a0001", "candidate"], ["b0002", "candidate"]]
    _evaluate(root / "first" / "a0000.h5", "compare_3", 4.0, models=models)
    linked = hpc.sql(
        "SELECT m.run_id, m.role FROM eval_models m JOIN evals e USING (eval_id) WHERE e.label = 'compare_3'", root=root
    )
    assert sorted(map(list, linked.itertuples(index=False))) == sorted(models)
    evals = hpc.sql("SELECT * FROM evals", root=root)
    assert list(evals.label) == ["compare_3"] and evals["metrics.complex_3d_100_test.accel_pct_mean"][0] == 4.0
    joined = hpc_cli("runs", "--sql", "SELECT r.run_id, e.label FROM runs r JOIN evals e USING (run_id)", root=root)
    assert "a0000" in joined.stdout and "compare_3" in joined.stdout
    bad = hpc_cli("runs", "--sql", "SELECT nope FROM runs", root=root, check=False)
    assert bad.returncode == 2 and "--sql:" in bad.stderr
    hpc_cli("db", "export", str(tmp_path / "backup"), root=root)
    import pandas as pd

    for table in catalog.TABLES:
        back = pd.read_csv(tmp_path / "backup" / f"{table}.csv.gz")
        here = hpc.sql(f"SELECT * FROM {table}", root=root)
        assert len(back) == len(here) and list(back.columns) == list(here.columns)
    back = pd.read_csv(tmp_path / "backup" / "runs.csv.gz").set_index("run_id")
    assert back.loc["a0003", METRIC] == hpc.find(root=root, run_id="a0003")[METRIC][0]


def test_a_truncated_result_is_listed_as_corrupt_with_its_path(root):
    hpc.find(root=root)  # indexed while it read
    damaged = root / "first" / "a0002.h5"
    size = damaged.stat().st_size
    with open(damaged, "r+b") as handle:  # `truncate -s`: it still starts as HDF5
        handle.truncate(size // 2)
    # damaged in place, which no folder time shows: --verify looks at every file
    listed = hpc_cli("runs", "--verify", root=root).stdout
    (line,) = [line for line in listed.splitlines() if line.startswith("a0002")]
    assert line.split()[2] == "corrupt" and line.endswith(str(damaged)), line
    assert "17 of 17 runs" in listed  # the stray non-HDF5 file is still no run
    row = hpc.find(root=root, status="corrupt").iloc[0]
    assert row.path == str(damaged) and row.message.startswith("result file does not read (OSError")
    filtered = hpc_cli("runs", "width=8", root=root)  # a filter cannot match it: said, not silent
    assert "a0002" not in filtered.stdout and "do not read and match no filter" in filtered.stderr
    assert str(damaged) in filtered.stderr


def test_the_guides_copy_off_scratch_runs_as_written_and_its_check_can_fail(tmp_path):
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
    block = fenced_bash_block("docs/guide/answers.md", "**Copying results off scratch.**")
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


def test_a_result_truncated_before_it_was_indexed_is_corrupt_at_once(root):
    damaged = root / "second" / "b0004.h5"
    with open(damaged, "r+b") as handle:
        handle.truncate(damaged.stat().st_size // 2)
    line = [x for x in hpc_cli("runs", root=root).stdout.splitlines() if x.startswith("b0004")][0]
    assert line.split()[2] == "corrupt" and line.endswith(str(damaged))


def test_a_refresh_backs_up_the_experiments_that_changed(root, tmp_path, monkeypatch):
    import pandas as pd

    backup = tmp_path / "backup"
    monkeypatch.setenv(catalog.BACKUP, str(backup))
    _age(root)  # every experiment indexed, and so backed up
    first, second = backup / "runs" / "first.csv.gz", backup / "runs" / "second.csv.gz"
    stamps = {p: p.stat().st_mtime_ns for p in (first, second)}
    _write(root, "second", "n0003", "simple", 8, 1.5)  # only `second` changes
    hpc.find(root=root)
    assert first.stat().st_mtime_ns == stamps[first] and second.stat().st_mtime_ns != stamps[second]
    here = hpc.find(root=root, experiment="second").set_index("run_id")
    back = pd.read_csv(second).set_index("run_id")
    assert sorted(back.index) == sorted(here.index) and back.loc["n0003", METRIC] == 1.5


def test_a_folder_without_results_is_indexed_and_read_again(root):
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("no results here")
    for _ in range(2):  # the second query reads the first's index of the empty folder
        assert len(hpc.find(root=root)) == 17


def test_a_root_without_runs_answers_empty(tmp_path):
    assert hpc.find(root=tmp_path / "none", width=64, sort=METRIC, best_of="output_head").empty
    assert int(hpc.sql("SELECT count(*) AS n FROM evals", root=tmp_path / "none").n[0]) == 0
    assert "0 of 0 runs" in hpc_cli("runs", "width=64", root=tmp_path / "none").stdout

"""Run states from result files, notes, checkpoints and Slurm, including when Slurm is down."""

import os
import stat

import pytest

from conftest import hpc_cli
from hpc import slurm
from hpc.checkpoint import checkpoint_path
from hpc.status import run_states, totals, unfinished
from hpc.store import is_completed, write_note, write_result
from hpc.sweep import Sweep

COMMON = dict(config={}, config_yaml="", metadata={})


def _sweep(root, kind="local", runs=("a", "b", "c", "d", "e", "f", "g")):
    sweep = Sweep.create(root, "exp", "train:train")
    for rid in runs:
        sweep.add_run(rid, [f"x={rid}"], "x: 1\n")
    submitted = [r for r in runs if r != "d"]
    if kind == "slurm":
        sweep.add_submission("slurm", "999999", submitted, {}, [f"999999_{i}" for i in range(len(submitted))])
    else:
        sweep.add_submission("local", None, submitted, {})
    return sweep


def test_states_from_files_notes_and_checkpoints(tmp_path):
    sweep = _sweep(tmp_path)
    write_result(sweep.result_path("a"), status="completed", run_id="a", **COMMON)
    write_result(
        sweep.result_path("b"),
        status="non_finite",
        run_id="b",
        message="non-finite loss at step 4",
        failures=("non_finite",),
        **COMMON,
    )  # an app's own failure status
    write_result(
        sweep.result_path("e"), status="timeout", run_id="e", message="time limit reached at step 81", **COMMON
    )
    sweep.result_path("f").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # truncated
    write_note(sweep.result_path("g"), "could not write the result file: [Errno 28] No space left on device")
    checkpoint_path(sweep.result_path("c")).write_bytes(b"")
    states = {s.run_id: s for s in run_states(Sweep.load(sweep.path))}
    assert states["a"].status == "completed"
    assert states["b"].status == "failed" and "step 4" in states["b"].reason
    assert states["c"].status == "lost" and "checkpoint is kept" in states["c"].reason
    assert states["d"].reason == "never submitted"
    assert states["e"].status == "timeout" and "step 81" in states["e"].reason
    assert states["f"].status == "corrupt" and str(sweep.result_path("f")) in states["f"].reason
    assert not is_completed(sweep.result_path("f"))  # so a resubmit or rerun trains it again
    assert states["g"].status == "failed" and "No space left" in states["g"].reason
    assert unfinished(list(states.values())) == ["b", "c", "d", "e", "f", "g"]
    assert totals(list(states.values()))["corrupt"] == 1 and "unknown" not in totals(list(states.values()))

    # every command copes with the corrupt file
    failed = hpc_cli("failed", str(sweep.path), root=tmp_path, check=False)
    assert failed.returncode == 1 and "6 of 7 runs did not complete" in failed.stdout
    assert "corrupt" in hpc_cli("status", str(sweep.path), "--runs", root=tmp_path).stdout
    hpc_cli("collect", str(sweep.path), "-o", str(tmp_path / "r.csv"), root=tmp_path)
    assert "corrupt" in (tmp_path / "r.csv").read_text()


@pytest.fixture(params=["fail", "hang"])
def slurm_down(request, tmp_path, monkeypatch):
    """Slurm's commands on PATH that fail (controller down) or hang (controller stuck)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    body = {
        "fail": 'echo "slurm_load_jobs error: Unable to contact slurm controller (connect failure)" >&2; exit 1',
        "hang": "exec sleep 600",
    }[request.param]
    for name in ("squeue", "scontrol", "sacct", "sinfo", "sbatch"):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    if request.param == "hang":
        monkeypatch.setattr(slurm, "QUERY_TIMEOUT_S", 2)
        monkeypatch.setenv("HPC_SLURM_TIMEOUT_S", "2")
    return request.param


@pytest.mark.slow  # a controller that hangs until its timeout
def test_slurm_unreachable_is_unknown_and_resubmit_refuses(tmp_path, slurm_down):
    sweep = _sweep(tmp_path, kind="slurm", runs=("a", "b", "c"))
    write_result(sweep.result_path("a"), status="completed", run_id="a", **COMMON)
    states = {s.run_id: s for s in run_states(Sweep.load(sweep.path))}
    assert states["a"].status == "completed"  # a result file needs no Slurm
    assert states["b"].status == states["c"].status == "unknown"
    assert "Slurm unreachable" in states["b"].reason
    assert unfinished(list(states.values())) == []
    shown = hpc_cli("status", str(sweep.path), root=tmp_path).stdout
    assert "unknown 2" in shown and "lost 0" in shown
    refused = hpc_cli("resubmit", str(sweep.path), root=tmp_path, check=False)
    assert refused.returncode == 2 and "not resubmitting" in refused.stderr
    # with every run decided by its file, a resubmit still never falls back to this machine
    for rid in ("b", "c"):
        write_result(sweep.result_path(rid), status="failed", run_id=rid, message="boom", **COMMON)
    refused = hpc_cli("resubmit", str(sweep.path), root=tmp_path, check=False)
    assert refused.returncode == 2 and "no Slurm controller answers" in refused.stderr
    assert "Resubmitting" not in refused.stdout  # refused before it says what it would do
    assert len(Sweep.load(sweep.path).submissions) == 1  # nothing submitted, nothing run here


@pytest.mark.slow  # a controller that hangs until its timeout
def test_a_slurm_that_does_not_answer_is_an_outage_not_a_local_run(tmp_path, slurm_down):
    from conftest import TINY, run_train

    results = tmp_path / "results"
    done = run_train("-m", *TINY, "seed=7", f"results_root={results}", check=False)
    assert done.returncode == 2 and "no Slurm controller answers on this machine" in done.stderr
    assert "Traceback" not in done.stderr and "Running" not in done.stdout
    assert not results.exists()  # nothing trained here, nothing written


def test_a_hung_controller_costs_one_timeout(tmp_path, slurm_down):
    import time

    if slurm_down != "hang":
        pytest.skip("the failing controller answers at once")
    sweep = _sweep(tmp_path, kind="slurm", runs=("a",))
    tic = time.monotonic()
    assert run_states(Sweep.load(sweep.path))[0].status == "unknown"
    assert time.monotonic() - tic < 2 * slurm.QUERY_TIMEOUT_S  # sacct hung: scontrol is not asked too


def test_a_pipe_closed_early_is_no_traceback(tmp_path):
    import subprocess
    import sys

    sweep = _sweep(tmp_path, runs=tuple(f"r{i:04d}" for i in range(3000)))
    shell = f"{sys.executable} -m hpc.cli --root {tmp_path} status {sweep.path} --runs | head -n 1"
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, cwd=os.path.dirname(__file__))
    assert done.stdout.startswith("r0000") and done.stderr == ""


@pytest.mark.slow  # runs subprocesses
def test_an_interrupted_submission_is_lost_with_its_reason(tmp_path):
    sweep = Sweep.create(tmp_path, "exp", "train:train")
    sweep.add_run("a", ["x=a"], "x: 1\n")
    sweep.add_submission("slurm", None, ["a"], {}, job_name="exp-s-s0")  # killed before `sbatch` answered
    if not slurm.available():
        pytest.skip("needs a Slurm controller to ask for the job name")
    (state,) = run_states(Sweep.load(sweep.path))
    assert state.status == "lost" and "Slurm knows no job named exp-s-s0" in state.reason


def test_a_damaged_record_shows_what_can_be_read_and_names_a_truncated_result(tmp_path):
    sweep = Sweep.create(tmp_path, "exp", "train:APP", argv="train.py -m seed=0,1,2,3")
    for rid in ("r0", "r1", "r2", "r3"):
        sweep.add_run(rid, [f"seed={rid[1]}", "x" * 100], "x: 1\n")
    sweep.add_submission("local", None, list(sweep.runs), {})
    write_result(sweep.result_path("r0"), status="completed", run_id="r0", **COMMON)
    write_result(sweep.result_path("r1"), status="completed", run_id="r1", **COMMON)
    write_result(sweep.result_path("r2"), status="failed", run_id="r2", message="boom", **COMMON)
    truncated = sweep.result_path("r1")
    os.truncate(truncated, truncated.stat().st_size // 2)
    record = sweep.path / "sweep.json"
    damaged = record.read_bytes()[:700]  # what `head -c 700` leaves
    record.write_bytes(damaged)

    done = hpc_cli("status", str(sweep.path), "--runs", root=tmp_path)
    assert f"the sweep record {record} is damaged (JSONDecodeError" in done.stderr
    assert "4 runs (their configs), 0 submissions it still holds whole" in done.stderr
    states = {line.split()[0]: line.split(None, 3)[1:] for line in done.stdout.splitlines()[:4]}
    assert states["r0"][0] == "completed" and states["r2"][0] == "failed"
    assert states["r1"][0] == "corrupt" and f"result file {truncated} does not read" in states["r1"][2]
    assert states["r3"][0] == "unknown"  # its submission is in the part that did not read
    assert "its result files are intact" not in done.stdout + done.stderr
    failed = hpc_cli("failed", str(sweep.path), root=tmp_path, check=False)
    assert failed.returncode == 1 and "r1  corrupt" in failed.stdout and "overrides: seed=1" in failed.stdout

    refused = hpc_cli("resubmit", str(sweep.path), root=tmp_path, check=False)
    assert refused.returncode == 2 and "it was left as it is" in refused.stderr
    assert "rerun the sweep's command (`train.py -m seed=0,1,2,3`), which skips its completed runs" in refused.stderr
    assert record.read_bytes() == damaged  # nothing overwritten


def test_wait_polls_soon_then_at_its_interval(monkeypatch, tmp_path):
    """`hpc wait` sees a short sweep end within a second or two, and a long one costs a query
    per interval: the pauses start at 1 s and grow by half each time, up to the interval."""
    from hpc import status
    from hpc.status import RunState

    polls = iter(["running"] * 7 + ["completed"])
    monkeypatch.setattr(status, "run_states", lambda sweep: [RunState("a", next(polls))])
    pauses = []
    monkeypatch.setattr(status.time, "sleep", pauses.append)
    states = status.wait_for(_sweep(tmp_path, runs=("a",)), interval_s=4.0)
    assert [s.status for s in states] == ["completed"]
    assert pauses == [1.0, 1.5, 2.25, 3.375, 4.0, 4.0, 4.0]

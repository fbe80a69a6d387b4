"""Sweeps on a real single-node Slurm cluster (slurmctld, slurmd, munge from Debian)."""

import csv
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from conftest import ROOT, TINY, foreign_checkpoint, hpc_cli, run_id_of, run_lsq, run_train
from hpc.sweep import Sweep, find_sweep

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

GRID_TINY = [a for a in TINY if not a.startswith("dataset.test_sizes")] + ["dataset.test_sizes=[1]"]


def _sweep(root) -> Sweep:
    return Sweep.load(find_sweep("latest", root))


def _wait(root, timeout=300):
    return hpc_cli("wait", "latest", "--interval", "2", "--timeout", str(timeout), root=root, check=False)


def test_grid_is_one_array_job_and_results_land(results, slurm_cluster):
    done = run_train(
        "-m",
        *GRID_TINY,
        "width=8,16",
        "depth=1",
        "cluster.array_parallelism=1",
        f"results_root={results}",
        "experiment=grid",
    )
    sweep = _sweep(results)
    assert len(sweep.submissions) == 1 and len(sweep.submissions[0]["runs"]) == 2
    job = sweep.submissions[0]["job_id"]
    assert f"Submitted 2 runs as 1 array job(s) {job}" in done.stdout
    shown = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True).stdout
    allowed = {"0", "1", "0-1%1", "1"}
    assert {line.split("ArrayTaskId=")[1].split()[0] for line in shown.splitlines()} <= allowed
    assert "ArrayJobId=" + job in shown
    # the profile reached sbatch: name, time limit, CPUs, throttle
    assert f"JobName=grid-{sweep.sweep_id}-s0" in shown and "TimeLimit=01:00:00" in shown, shown
    assert re.search(r"NumCPUs=1\b", shown) and "ArrayTaskThrottle=1 " in shown, shown

    early = hpc_cli("status", "latest", root=results).stdout  # while tasks are pending (throttled to 1)
    counts = {k: int(v) for k, v in re.findall(r"(pending|running|completed|failed|lost) (\d+)", early)}
    assert counts["pending"] + counts["running"] >= 1 and counts["lost"] == counts["failed"] == 0, early

    assert _wait(results).returncode == 0
    final = hpc_cli("status", "latest", "--runs", root=results).stdout
    assert "completed 2" in final and "failed 0" in final
    files = sorted((results / "grid").glob("*.h5"))
    assert {f.stem for f in files} == set(sweep.runs)
    for f in files:
        with h5py.File(f) as h:
            assert h.attrs["status"] == "completed"
            assert h["metadata"]["slurm"].attrs["array_job_id"] == job
            threads = h["metadata"]["threads"].attrs  # what the task ran with: one CPU's worth
            assert threads["OMP_NUM_THREADS"] == threads["OPENBLAS_NUM_THREADS"] == "1"
            assert threads["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=false"
            if _cores_constrained():
                assert threads["cpus_usable"] == 1  # the cgroup cpuset, as on Zaratan

    hpc_cli("collect", "latest", "-o", str(results / "runs.csv"), root=results)
    with open(results / "runs.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and {r["config.width"] for r in rows} == {"8", "16"}
    assert all(float(r["metrics.complex_TBP_planar_1_test.accel_pct_mean"]) > 0 for r in rows)
    hpc_cli("collect", "latest", "-o", str(results / "runs.parquet"), root=results)
    import pandas as pd

    assert len(pd.read_parquet(results / "runs.parquet")) == 2

    a, b = [f.stem for f in files[:2]]
    out = hpc_cli("diff", a, b, root=results).stdout
    keys = {line.split()[0] for line in out.splitlines()}
    assert keys == {"width"}

    # the same grid again: every run is skipped, nothing is submitted
    again = run_train("-m", *GRID_TINY, "width=8,16", "depth=1", f"results_root={results}", "experiment=grid")
    assert "2 already completed" in again.stdout and "Submitted" not in again.stdout


def test_a_failing_run_is_isolated_and_resubmitted_alone(results, slurm_cluster):
    bad_run = run_id_of(*GRID_TINY, "n_orbits=3", "dataset.train_seed=5")
    foreign_checkpoint(results / "iso" / f"{bad_run}.ckpt")
    run_train("-m", *GRID_TINY, "n_orbits=3", "dataset.train_seed=0,5", f"results_root={results}", "experiment=iso")
    assert _wait(results).returncode == 1
    assert "completed 1" in hpc_cli("status", "latest", root=results).stdout
    done = hpc_cli("failed", "latest", root=results, check=False)
    failed = done.stdout
    assert done.returncode == 1 and "1 of 2 runs did not complete" in failed and "dataset.train_seed=5" in failed
    assert "checkpoint does not match" in failed and "a resubmit starts over" in failed and "delete" not in failed
    with h5py.File(results / "iso" / f"{bad_run}.h5") as f:
        assert f.attrs["status"] == "failed" and "Traceback" in f["error"].attrs["traceback"]
    assert (results / "iso" / f"{bad_run}.ckpt.unusable").exists()  # set aside, never resumed from
    stamps = {p.name: p.stat().st_mtime_ns for p in (results / "iso").glob("*.h5") if p.stem != bad_run}

    out = hpc_cli("resubmit", "latest", root=results).stdout
    assert "Resubmitted 1 runs" in out
    assert _wait(results).returncode == 0
    assert "completed 2" in hpc_cli("status", "latest", root=results).stdout
    assert _sweep(results).submissions[-1]["runs"] == [bad_run]
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (results / "iso").glob("*.h5") if p.stem != bad_run}


def test_a_cancelled_task_is_not_a_success_and_is_resubmitted(results, slurm_cluster):
    run_train(
        "-m",
        *GRID_TINY,
        "curriculum.phases.0.steps=20000",
        "cluster.checkpoint_steps=20",
        "seed=7,8",
        f"results_root={results}",
        "experiment=cancel",
    )
    sweep = _sweep(results)
    task = sweep.submissions[0]["tasks"][0]
    assert task == f"{sweep.submissions[0]['job_id']}_0"
    ckpt = results / "cancel" / f"{sweep.submissions[0]['runs'][0]}.ckpt"
    deadline = time.monotonic() + 300
    while _saved_steps(ckpt) == 0:  # training, inside the signal handlers
        assert time.monotonic() < deadline, "the run never checkpointed"
        time.sleep(0.2)
    subprocess.run(["scancel", task], check=True)
    subprocess.run(["scancel", sweep.submissions[0]["job_id"]], check=True)  # the other run is not needed
    _wait(results, timeout=120)
    status = hpc_cli("status", "latest", "--runs", root=results).stdout
    assert "completed 0" in status and "cancelled" in status and "Slurm CANCELLED" in status
    log = (sweep.path / "slurm" / task / f"{task}_0_log.out").read_text()
    assert "Received SIGTERM: checkpointing, then stopping." in log and "Stopped by SIGTERM" in log  # not SIGKILL
    assert "Traceback" not in log and "ended with status interrupted" in log.splitlines()[-1]  # one line says it
    for path in [results / "cancel" / f"{r}.h5" for r in sweep.runs]:
        if path.exists():
            with h5py.File(path) as f:
                assert f.attrs["status"] != "completed"
    out = hpc_cli("resubmit", "latest", root=results).stdout
    assert "Resubmitted 2 runs" in out
    assert task.split("_")[0] != _sweep(results).submissions[-1]["job_id"]
    new_job = _sweep(results).submissions[-1]["job_id"]
    subprocess.run(["scancel", new_job], check=True)


def test_bad_resources_fail_before_submission(results, slurm_cluster):
    for override, field in (
        ("cluster.partition=gpu", "cluster.partition"),
        ("cluster.cpus_per_task=999", "cluster.cpus_per_task"),
    ):
        done = run_train("-m", *GRID_TINY, "width=8,16", override, f"results_root={results}", check=False)
        assert done.returncode != 0 and f"`{field}`" in done.stderr
    assert not (results / "default" / "sweeps").exists()
    done = run_train(
        "-m", *GRID_TINY, "segment_length=400", "curriculum=lofi", "width=8,16", f"results_root={results}", check=False
    )
    assert done.returncode != 0 and "`segment_length`=400" in done.stderr


def _squeue_state(task):
    return subprocess.run(["squeue", "-h", "-r", "-j", task, "-o", "%T"], capture_output=True, text=True).stdout.split()


def _saved_steps(path) -> int:
    try:
        with h5py.File(path) as f:
            return f["losses"].shape[0]
    except (OSError, KeyError):
        return 0


def _interrupt(task, ckpt, command, after_step):
    """Once the run's checkpoint is past `after_step`, interrupt its task with `command`;
    return the step of the checkpoint it leaves."""
    deadline = time.monotonic() + 300
    while _saved_steps(ckpt) <= after_step:
        assert time.monotonic() < deadline, f"no checkpoint past step {after_step}"
        time.sleep(0.2)
    subprocess.run([*command, task], check=True)
    for _ in range(600):  # until the task has stopped and, if requeued, start it without Slurm's delay
        state = _squeue_state(task)
        if state in (["PENDING"], []):
            break
        time.sleep(0.1)
    subprocess.run(["scontrol", "update", f"jobid={task}", "StartTime=now"], capture_output=True)
    return _saved_steps(ckpt)


def test_time_limits_and_preemption_lose_no_work(results, tmp_path, slurm_cluster):
    """The warning before the time limit (SIGUSR2, as `--signal` sends it) checkpoints and
    requeues; a preemption (`scontrol requeue`: SIGTERM, then requeued) checkpoints and the
    rerun resumes; with the requeues spent the run ends `timeout` with its partial history,
    and `hpc resubmit` finishes it. The losses equal an uninterrupted run's, step for step."""
    args = [
        *GRID_TINY,
        "curriculum.phases.0.steps=1500",
        "cluster.checkpoint_steps=25",
        "cluster.max_requeues=1",
        "experiment=ckpt",
    ]
    reference = tmp_path / "reference"
    run_train("-m", *args, "seed=3", f"results_root={reference}")
    run_train("-m", *args, "seed=3", f"results_root={results}")
    sweep = _sweep(results)
    (run_id,) = sweep.runs
    task = sweep.submissions[0]["tasks"][0]
    ckpt = results / "ckpt" / f"{run_id}.ckpt"

    first = _interrupt(task, ckpt, ["scancel", "--signal=USR2"], 0)  # time limit near: requeue 1 of 1
    second = _interrupt(task, ckpt, ["scontrol", "requeue"], first)  # preempted: SIGTERM, Slurm requeues
    third = _interrupt(task, ckpt, ["scancel", "--signal=USR2"], second)  # no requeue left
    assert 0 < first < second < third
    _wait(results)
    failed = hpc_cli("failed", "latest", root=results, check=False).stdout
    assert "timeout" in failed and f"time limit reached at step {third}" in failed, failed
    with h5py.File(results / "ckpt" / f"{run_id}.h5") as f:
        assert f.attrs["status"] == "timeout" and f["history"]["loss"].shape == (third,)
    log = "".join(p.read_text() for p in (sweep.path / "slurm").rglob("*.out"))
    assert "requeued task" in log and f"Resuming run {run_id} from its checkpoint at step {first}" in log
    # the time-limit requeue and the preemption are no errors; the timeout is, in one line
    assert log.count(f"hpc: run {run_id} ended with status timeout") == 1 and "Traceback" not in log, log

    assert "Resubmitted 1 runs" in hpc_cli("resubmit", "latest", root=results).stdout
    assert _wait(results).returncode == 0
    assert _wait(reference).returncode == 0
    with h5py.File(results / "ckpt" / f"{run_id}.h5") as f, h5py.File(reference / "ckpt" / f"{run_id}.h5") as g:
        assert f.attrs["status"] == g.attrs["status"] == "completed"
        np.testing.assert_array_equal(f["history"]["loss"][()], g["history"]["loss"][()])
        assert f["history"]["loss"].shape == (1502,)
    assert not ckpt.exists()  # a completed run keeps no checkpoint


def _preempt_args():
    # each victim takes half the node; the urgent job asks for all of it, so both must go. Long
    # enough (about 30 s of training) to be running still when Slurm's scheduling pass preempts
    # it: at 3,000 steps a victim could finish first.
    return [
        *GRID_TINY,
        "curriculum.phases.0.steps=8000",
        "cluster.checkpoint_steps=25",
        "seed=4",
        "experiment=preempt",
        f"cluster.cpus_per_task={max(1, _node_cpus() // 2)}",
    ]


@pytest.fixture(scope="module")
def preempt_reference(tmp_path_factory, slurm_cluster):
    """The uninterrupted run the preempted ones must equal."""
    reference = tmp_path_factory.mktemp("reference")
    run_train("-m", *_preempt_args(), f"results_root={reference}")
    assert _wait(reference).returncode == 0
    return reference


def test_preempted_runs_are_requeued_and_resume(results, preempt_reference):
    """On the partitions Slurm preempts (PreemptMode=REQUEUE; `scavenger` with a GraceTime of
    30 s, `scavenger_nograce` without), a job of a higher tier takes the node from a run on
    each: each checkpoints on SIGTERM, its task is requeued, and the rerun resumes; its losses
    equal an uninterrupted run's."""
    victims = {}
    for partition in ("scavenger", "scavenger_nograce"):
        root = results / partition
        run_train("-m", *_preempt_args(), f"results_root={root}", f"cluster.partition={partition}")
        sweep = _sweep(root)
        (run_id,) = sweep.runs
        victims[partition] = (
            root,
            sweep,
            run_id,
            sweep.submissions[0]["tasks"][0],
            root / "preempt" / f"{run_id}.ckpt",
        )
    deadline = time.monotonic() + 300
    while any(_saved_steps(v[4]) == 0 for v in victims.values()):
        assert time.monotonic() < deadline, "no checkpoint"
        time.sleep(0.2)
    urgent = subprocess.run(
        ["sbatch", "--parsable", "-p", "urgent", "-c", str(_node_cpus()), "-o", "/dev/null", "--wrap", "sleep 1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for _ in range(1200):  # Slurm preempts on its scheduling pass (tens of seconds)
        if all(_squeue_state(v[3]) in (["PENDING"], []) for v in victims.values()):
            break
        time.sleep(0.1)
    stopped = {}
    for partition, (_, _, _, task, ckpt) in victims.items():
        assert _squeue_state(task) == ["PENDING"], f"the preempted task on {partition} was not requeued"
        stopped[partition] = _saved_steps(ckpt)
        subprocess.run(["scontrol", "update", f"jobid={task}", "StartTime=now"], capture_output=True)
    for partition, (root, sweep, run_id, _, _) in victims.items():
        assert _wait(root).returncode == 0, hpc_cli("status", "latest", "--runs", root=root).stdout
        log = "".join(p.read_text() for p in (sweep.path / "slurm").rglob("*.out"))
        assert f"Resuming run {run_id} from its checkpoint at step {stopped[partition]}" in log, log
        assert "Traceback" not in log  # a preemption is no error
        with (
            h5py.File(root / "preempt" / f"{run_id}.h5") as f,
            h5py.File(preempt_reference / "preempt" / f"{run_id}.h5") as g,
        ):
            np.testing.assert_array_equal(f["history"]["loss"][()], g["history"]["loss"][()])
    subprocess.run(["scancel", urgent], capture_output=True)


def test_one_run_id_trains_alike_on_slurm_and_in_a_local_pool(results, slurm_cluster):
    """The same config, once as a Slurm array task and once in a local pool of as many workers
    as there are CPUs: each on one CPU of its own, with the same thread settings, so the
    losses are identical from step 1."""
    args = [*GRID_TINY, "curriculum.phases.0.steps=40", "seed=21,22", "experiment=alike"]
    run_train("-m", *args, f"results_root={results / 'slurm'}")
    assert _wait(results / "slurm").returncode == 0
    run_train("-m", *args, f"results_root={results / 'local'}", "cluster=local")
    for path in sorted((results / "slurm" / "alike").glob("*.h5")):
        with h5py.File(path) as f, h5py.File(results / "local" / "alike" / path.name) as g:
            np.testing.assert_array_equal(f["history"]["loss"][()], g["history"]["loss"][()])
            assert g["metadata"]["threads"].attrs["cpus_usable"] == 1
            if _cores_constrained():
                assert f["metadata"]["threads"].attrs["cpus_usable"] == 1
            assert dict(f["metadata"]["threads"].attrs) == dict(g["metadata"]["threads"].attrs)


def _hpc_elsewhere(*args, cwd, env=None):
    """`hpc` run as from another shell: another directory, its own environment."""
    done = subprocess.run(
        [sys.executable, "-m", "hpc.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_a_resubmit_uses_the_sweeps_root_and_directory_whatever_the_shell(tmp_path, slurm_cluster):
    scratch = tmp_path / "scratch-a"
    env = {**os.environ, "SCRATCH": str(scratch)}
    root = scratch / "neuralode-hpc"  # $SCRATCH/<app>, as planned
    args = [*GRID_TINY, "seed=0,1,2", "experiment=shell", "cluster.hold=true"]
    bad = run_id_of(*GRID_TINY, "seed=1", "experiment=shell")
    foreign_checkpoint(root / "shell" / f"{bad}.ckpt")  # that run fails the first time
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sweep = Sweep.load(find_sweep("latest", root))
    assert sweep.results_root == str(root)
    subprocess.run(["scontrol", "release", sweep.submissions[0]["job_id"]], check=True)
    assert _wait(root).returncode == 1
    assert "completed 2" in hpc_cli("status", str(sweep.path), root=root).stdout

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    plain = {k: v for k, v in os.environ.items() if k != "SCRATCH"}
    plain["PYTHONPATH"] = str(ROOT)  # `hpc` itself is importable; `train` only from the sweep's own directory
    out = _hpc_elsewhere("resubmit", str(sweep.path), cwd=elsewhere, env=plain).stdout
    assert "Resubmitted 1 runs" in out and "Resubmitting with the sweep's own cluster settings:" in out
    assert "hold" not in out
    resubmitted = Sweep.load(sweep.path).submissions[-1]
    assert resubmitted["cluster"]["hold"] is False and resubmitted["runs"] == [bad]
    assert _wait(root).returncode == 0  # not held: it ran, from the sweep's directory, into its root
    assert "completed 3" in hpc_cli("status", str(sweep.path), root=root).stdout
    assert (root / "shell" / f"{bad}.h5").exists() and not (elsewhere / "scratch").exists()

    # a late `scontrol requeue` of a finished task: the completed result stands
    task = resubmitted["tasks"][0]
    subprocess.run(["scontrol", "requeue", task], capture_output=True)
    states = hpc_cli("status", str(sweep.path), "--runs", root=root).stdout
    assert "completed 3" in states and "pending 0" in states, states
    subprocess.run(["scancel", task], capture_output=True)


def _cancelled_sweep(results, experiment):
    """A sweep of two runs whose held array was cancelled: both to resubmit."""
    run_train(
        "-m", *GRID_TINY, "seed=31,32", f"results_root={results}", f"experiment={experiment}", "cluster.hold=true"
    )
    sweep = _sweep(results)
    subprocess.run(["scancel", sweep.submissions[0]["job_id"]], check=True)
    for _ in range(100):
        if "cancelled 2" in hpc_cli("status", str(sweep.path), root=results).stdout:
            return sweep
        time.sleep(0.2)
    raise AssertionError("the cancelled runs did not show as cancelled")


def test_two_resubmits_at_once_give_one_array_and_record_it(results, slurm_cluster):
    sweep = _cancelled_sweep(results, "together")
    cmd = [sys.executable, "-m", "hpc.cli", "--root", str(results), "resubmit", str(sweep.path), "--set", "hold=true"]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    said = "".join(o for o, _ in outs)
    assert said.count("Resubmitted 2 runs") == 1 and "Nothing to resubmit" in said, said
    record = Sweep.load(sweep.path)
    assert len(record.submissions) == 2  # the first array and one resubmission, both recorded
    queued = subprocess.run(["squeue", "-h", "-o", "%j", "-u", "root"], capture_output=True, text=True).stdout.split()
    assert queued.count(record.submissions[-1]["job_name"]) == 1
    assert len([q for q in queued if sweep.sweep_id in q]) == 1
    subprocess.run(["scancel", record.submissions[-1]["job_id"]], check=True)
    assert not (sweep.path / "submitting.claim").exists()


def test_a_submitter_killed_after_sbatch_is_replaced_by_the_next_resubmit(results, tmp_path, slurm_cluster):
    # submitit saves a task's work only after `sbatch` returns: killed in between, the array
    # Slurm took can never start (JobLaunchFailure once released)
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    real = shutil.which("sbatch")
    (wrapper / "sbatch").write_text(f'#!/bin/sh\nout=$({real} "$@")\ncode=$?\necho "$out"\nkill -9 $PPID\nexit $code\n')
    (wrapper / "sbatch").chmod(0o755)
    env = {**os.environ, "PATH": f"{wrapper}{os.pathsep}{os.environ['PATH']}"}
    killed = subprocess.run(
        [sys.executable, "lsq.py", "-m", "seed=41,42", "+cluster.hold=true", f"results_root={results}"],
        cwd=ROOT / "tests" / "lsq_app",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr  # killed between sbatch and saving the job id
    sweep = _sweep(results)
    intent = sweep.submissions[-1]
    assert intent["job_id"] is None and intent["job_name"].endswith(f"{sweep.sweep_id}-s0")
    states = hpc_cli("status", str(sweep.path), "--runs", root=results).stdout
    assert "failed 2" in states and "pending 0" in states, states
    assert states.count("submission was interrupted after sbatch") == 2 and "cannot start" in states, states
    # a live submitter between its sbatch and saving the job id: its runs are being submitted
    submitter = subprocess.Popen(["sleep", "60"])
    lock = sweep.path / "submitting.claim"
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": submitter.pid, "job": None, "since": "now"}))
    meanwhile = hpc_cli("status", str(sweep.path), "--runs", root=results).stdout
    submitter.kill()
    submitter.wait()
    lock.unlink()
    assert "pending 2" in meanwhile and "being submitted" in meanwhile, meanwhile
    queued = subprocess.run(["squeue", "-h", "-o", "%i %j", "-u", "root"], capture_output=True, text=True).stdout
    (stranded,) = {line.split()[0].split("_")[0] for line in queued.splitlines() if intent["job_name"] in line}

    again = hpc_cli("resubmit", str(sweep.path), root=results).stdout
    assert f"Cancelled array job(s) {stranded}" in again and "Resubmitted 2 runs" in again, again
    assert _wait(results, timeout=120).returncode == 0
    final = hpc_cli("status", str(sweep.path), root=results).stdout
    assert "completed 2" in final and "failed 0" in final, final
    queued = subprocess.run(["squeue", "-h", "-o", "%i", "-u", "root"], capture_output=True, text=True).stdout
    assert stranded not in queued  # cancelled, not left held in the queue


def _node_cpus() -> int:
    shown = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True).stdout
    return int(shown.split()[0].rstrip("+"))


def test_two_submissions_of_one_grid_train_each_run_once(results, slurm_cluster):
    args = [
        *GRID_TINY,
        "curriculum.phases.0.steps=300",
        "seed=11,12",
        "cluster.array_parallelism=1",
        f"results_root={results}",
        "experiment=twice",
    ]
    run_train("-m", *args)
    run_train("-m", *args)  # at once: both arrays are queued before either starts
    sweeps = [Sweep.load(p) for p in sorted((results / "twice" / "sweeps").iterdir())]
    assert len(sweeps) == 2 and set(sweeps[0].runs) == set(sweeps[1].runs)
    for sweep in sweeps:
        assert (
            hpc_cli(
                "wait", str(sweep.path), "--interval", "2", "--timeout", "300", root=results, check=False
            ).returncode
            == 0
        )
    logs = "".join(p.read_text() for s in sweeps for p in (s.path / "slurm").rglob("*.out"))
    trained = re.findall(r"Result: .*/(\w+)\.h5", logs)
    assert sorted(trained) == sorted(sweeps[0].runs), logs  # each run once
    busy, skipped = logs.count("already being trained by Slurm job"), logs.count("Skipping run")
    assert busy + skipped == 2 and busy >= 1, logs  # the copies overlapped: the claim kept one out
    assert not list((results / "twice").glob("*.claim"))


def _cores_constrained() -> bool:
    return (
        "ConstrainCores=yes" in pathlib.Path("/etc/slurm/cgroup.conf").read_text()
        if pathlib.Path("/etc/slurm/cgroup.conf").exists()
        else False
    )


def _memory_enforced() -> bool:
    shown = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
    return re.search(r"^TaskPlugin\s+=\s+.*task/cgroup", shown, re.M) is not None


def test_a_run_over_its_memory_is_out_of_memory_everywhere(results, slurm_cluster):
    if not _memory_enforced():
        pytest.skip("the local cluster runs without task/cgroup here (local_cluster.sh said why)")
    run_train("-m", *GRID_TINY, "seed=21", "cluster.mem_per_cpu_mb=120", f"results_root={results}", "experiment=oom")
    assert _wait(results).returncode == 1
    shown = hpc_cli("status", "latest", root=results).stdout
    assert "out_of_memory 1" in shown, shown
    failed = hpc_cli("failed", "latest", root=results, check=False)
    assert failed.returncode == 1 and "Slurm OUT_OF_MEMORY" in failed.stdout
    assert "--set mem_per_cpu_mb=" in failed.stdout
    assert "Resubmitted 1 runs" in hpc_cli("resubmit", "latest", "--set", "mem_per_cpu_mb=4000", root=results).stdout
    assert _wait(results).returncode == 0


def _until_the_queue_is_empty(timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while subprocess.run(["squeue", "-h", "-r", "-o", "%i %T"], capture_output=True, text=True).stdout.strip():
        assert time.monotonic() < deadline, "the queue did not empty"
        time.sleep(0.5)


def test_a_grid_over_the_job_limit_is_sent_in_parts(results, slurm_cluster):
    # the toolkit's job limit, not training: the numpy app (about a second a run) as the workload
    run_lsq("-m", "seed=range(30,35)", "cluster.max_submit_jobs=3", f"results_root={results}", "experiment=parts")
    shown = hpc_cli("status", "latest", root=results).stdout
    deferred = int(re.search(r"deferred (\d+)", shown).group(1))
    assert deferred >= 2, shown
    _wait(results)
    assert f"deferred {deferred}" in hpc_cli("status", "latest", root=results).stdout  # never lost
    _until_the_queue_is_empty()  # a finished task can linger as COMPLETING, and counts against the limit
    changes = ["--set", "cluster.max_requeues=7", "--set", "checkpoint_steps=4"]  # either spelling
    shown = hpc_cli("resubmit", "latest", *changes, root=results).stdout
    assert f"Resubmitted {deferred} runs as 1 array job(s)" in shown and "max_requeues=7" in shown
    assert _wait(results).returncode == 0
    # what the resubmit reported is what its runs ran with: their config's cluster, which the
    # lifeline (requeues, checkpoints) reads; the runs sent first keep the sweep's own
    seen = {}
    for path in (results / "parts").glob("*.h5"):
        with h5py.File(path) as f:
            cluster = f["config"].attrs
            seen[f.attrs["run_id"]] = (int(cluster["cluster.max_requeues"]), cluster["cluster.checkpoint_steps"])
    assert sorted(seen.values()).count((7, 4)) == deferred and len(seen) == 5, seen
    assert all(v == (7, 4) or v[0] == 3 for v in seen.values()), seen


def test_a_newer_slurm_failure_outranks_an_older_result(tmp_path, slurm_cluster):
    """A resubmitted task that dies before writing (a broken environment, say) is reported as
    that failure, not as the earlier result's state."""
    from hpc.status import run_states
    from hpc.store import write_result

    sweep = Sweep.create(tmp_path, "exp", "train:train")
    sweep.add_run("a", ["x=a"], "x: 1\n")
    write_result(
        sweep.result_path("a"),
        status="failed",
        run_id="a",
        config={},
        config_yaml="",
        metadata={},
        message="the first try's reason",
    )
    time.sleep(1.1)
    job = subprocess.run(
        ["sbatch", "--parsable", "-o", "/dev/null", "--wrap", "exit 1"], capture_output=True, text=True, check=True
    ).stdout.strip()
    sweep.add_submission("slurm", job, ["a"], {}, [job])
    for _ in range(300):
        (state,) = run_states(Sweep.load(sweep.path))
        if state.status not in ("pending", "running"):
            break
        time.sleep(0.2)
    assert state.status == "failed" and "Slurm FAILED: its latest task ended without writing a result" in state.reason
    assert "the first try's reason" not in state.reason

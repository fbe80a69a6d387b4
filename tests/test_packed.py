"""Several runs per Slurm task (`cluster.runs_per_task`), on the real local cluster: one warm
process trains them in turn, each with its own claim, result file, checkpoint and state."""

import re
import subprocess
import time

import h5py
import numpy as np
import pytest
from test_slurm import GRID_TINY, _squeue_state, _sweep, _wait

from conftest import hpc_cli, run_id_of, run_lsq, run_train
from hpc.store import read_summary

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _counts(text) -> dict:
    return {k: int(v) for k, v in re.findall(r"(pending|running|completed|failed|lost|timeout) (\d+)", text)}


def test_eight_runs_in_two_tasks_equal_the_runs_unpacked(results, tmp_path, slurm_cluster):
    done = run_train(
        "-m", *GRID_TINY, "seed=range(0,8)", "cluster.runs_per_task=4", f"results_root={results}", "experiment=packed"
    )
    sweep = _sweep(results)
    (sub,) = sweep.submissions
    assert len(sub["runs"]) == 8 and len(set(sub["tasks"])) == 2 and sub["tasks"][:4] == [sub["tasks"][0]] * 4
    assert f"Submitted 8 runs in 2 tasks (4 runs per task) as 1 array job(s) {sub['job_id']}" in done.stdout
    early = _counts(hpc_cli("status", "latest", root=results).stdout)  # a task's state is not each run's
    assert sum(early.values()) == 8 and early.get("running", 0) <= 2 and early.get("failed", 0) == 0, early
    assert _wait(results).returncode == 0
    assert _counts(hpc_cli("status", "latest", root=results).stdout)["completed"] == 8
    assert set(sweep.runs) == {run_id_of(*GRID_TINY, f"seed={s}") for s in range(8)}  # the ids of unpacked runs
    logs = "".join(p.read_text() for p in (sweep.path / "slurm").rglob("*.out"))
    assert logs.count("--- hpc: run 4 of 4 of this task") == 2

    reference = tmp_path / "reference"  # the warm positions of each task, trained as runs of their own
    run_train("-m", *GRID_TINY, "seed=1,7", f"results_root={reference}", "experiment=packed")
    assert _wait(reference).returncode == 0
    for seed in (1, 7):
        rid = run_id_of(*GRID_TINY, f"seed={seed}")
        packed, alone = results / "packed" / f"{rid}.h5", reference / "packed" / f"{rid}.h5"
        with h5py.File(packed) as f, h5py.File(alone) as g:
            np.testing.assert_array_equal(f["history/loss"][()], g["history/loss"][()])
        metrics = lambda s: {k: v for k, v in s.items() if k.startswith("metrics.")}  # noqa: E731
        assert metrics(read_summary(packed)) == metrics(read_summary(alone)) != {}

    # Two of these seeds as one ensemble: one task, one program, two result files of their own
    # that equal the runs trained alone to the tolerance test_ensemble.py explains.
    together = tmp_path / "ensemble"
    run_train(
        "-m",
        *GRID_TINY,
        "seed=1,7",
        "cluster.runs_per_task=2",
        "cluster.ensemble=2",
        f"results_root={together}",
        "experiment=packed",
    )
    (sub,) = _sweep(together).submissions
    assert len(set(sub["tasks"])) == 1
    assert _wait(together).returncode == 0
    assert _counts(hpc_cli("status", "latest", root=together).stdout)["completed"] == 2
    for seed in (1, 7):
        rid = run_id_of(*GRID_TINY, f"seed={seed}")
        with h5py.File(together / "packed" / f"{rid}.h5") as f, h5py.File(reference / "packed" / f"{rid}.h5") as g:
            assert f.attrs["status"] == "completed"
            np.testing.assert_allclose(f["history/loss"][()], g["history/loss"][()], rtol=1e-3)


def _checkpoint_step(path) -> int:
    try:
        with h5py.File(path) as f:
            return int(f.attrs["step"])
    except (OSError, KeyError):
        return 0


def test_a_packed_task_warned_of_its_time_limit_requeues_and_resumes(tmp_path, slurm_cluster):
    """SIGUSR2 mid-run in a task of three runs: the run in progress checkpoints and the task
    requeues itself; the rerun skips the finished run, resumes the interrupted one and trains
    the last."""
    root = tmp_path / "results"
    run_lsq(
        "-m",
        "steps=1,150,2",
        "step_s=0.05",
        "+cluster.runs_per_task=3",
        "+cluster.checkpoint_steps=5",
        f"results_root={root}",
        "experiment=packed",
    )
    sweep = _sweep(root)
    first, middle, last = sweep.runs
    (task,) = set(sweep.submissions[0]["tasks"])
    ckpt = root / "packed" / f"{middle}.ckpt"
    deadline = time.monotonic() + 120
    while _checkpoint_step(ckpt) == 0:
        assert time.monotonic() < deadline, "no checkpoint of the middle run"
        time.sleep(0.1)
    assert (root / "packed" / f"{first}.h5").exists()  # the first run finished before the second began
    subprocess.run(["scancel", "--signal=USR2", task], check=True)
    for _ in range(300):
        if _squeue_state(task) == ["PENDING"]:
            break
        time.sleep(0.1)
    shown = hpc_cli("status", "latest", "--runs", root=root).stdout
    assert re.search(rf"{first}\s+completed", shown) and re.search(rf"{last}\s+pending", shown), shown
    stopped = _checkpoint_step(ckpt)
    subprocess.run(["scontrol", "update", f"jobid={task}", "StartTime=now"], capture_output=True)
    assert _wait(root).returncode == 0
    assert _counts(hpc_cli("status", "latest", root=root).stdout)["completed"] == 3
    log = "".join(p.read_text() for p in (sweep.path / "slurm").rglob("*.out"))
    assert "Time limit near: checkpoint at step" in log and f"Skipping run {first}" in log, log
    assert f"Resuming run at step {stopped}" in log
    with h5py.File(root / "packed" / f"{middle}.h5") as f:
        assert f.attrs["status"] == "completed"
        np.testing.assert_array_equal(f["passes/steps"][()], np.arange(stopped + 1, 151))  # resumed, not redone


def test_plain_sbatch_packs_runs_per_task_and_splits_at_max_array_size(tmp_path, slurm_cluster):
    """Ten runs, two per task: five tasks, and MaxArraySize 4 splits them into arrays of four
    tasks (eight runs) and one task (two runs)."""
    root = tmp_path / "results"
    run_lsq(
        "-m",
        "seed=range(0,10)",
        "+cluster.runs_per_task=2",
        "hydra/launcher=manifest",
        f"results_root={root}",
        "experiment=plainpacked",
    )
    sweep = _sweep(root)
    assert [len(s["runs"]) for s in sweep.submissions] == [8, 2]
    scripts = [sweep.path / "array.sbatch", sweep.path / "array-1.sbatch"]
    assert "#SBATCH --array=0-3%4" in scripts[0].read_text() and "#SBATCH --array=0-0%1" in scripts[1].read_text()
    for script in scripts:
        subprocess.run(["sbatch", str(script)], check=True, capture_output=True)
    assert _wait(root).returncode == 0
    assert _counts(hpc_cli("status", "latest", root=root).stdout)["completed"] == 10
    logs = [p.read_text() for p in (sweep.path / "slurm").glob("*.out")]
    assert len(logs) == 5 and all(text.count("--- hpc: run ") == 2 for text in logs)
    assert sorted(int(re.search(r"runs manifest lines from (\d+)", t).group(1)) for t in logs) == [1, 3, 5, 7, 9]

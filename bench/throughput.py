"""Runs per core-hour: one run per Slurm task against K runs per task (`cluster.runs_per_task`)
and against K-member ensembles per task (`cluster.ensemble`).

    python bench/throughput.py                         # 8 runs, K=4, 100 steps of `quick`; JSON
    python bench/throughput.py --runs 8 --per-task 8 --steps 2000   # whole default runs, K=8

On the Slurm cluster this machine talks to (the local test cluster: `scripts/local_cluster.sh
start`), each layout submits the same N seeds through `python train.py -m` as a user types it
(`SCRATCH` set to one directory for all, no `results_root`; an experiment per layout, so that no
layout finds another's results completed) and waits for them.
Reported per layout: `wall_s` (submission to the last result), `core_s` (the sum over its tasks
of Slurm's elapsed time x CPUs, from `scontrol show job` while the controller still holds the
finished tasks), `cpu_s_per_run`, `runs_per_core_hour`, `jobs_per_1000_runs`, and the ratios
against one run per task. For the ensembles also `lane_occupancy`: the sum of the members'
solver steps over K x the slowest member's (1: no lane waits for another member), from the
result files' `history/solver_steps`.
"""

import argparse
import datetime
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def core_seconds(job_ids) -> tuple[float, int]:
    """(sum of elapsed x CPUs, number of tasks) of the tasks of `job_ids`."""
    total, tasks = 0.0, 0
    while subprocess.run(["squeue", "-h", "-j", ",".join(job_ids)], capture_output=True, text=True).stdout.strip():
        time.sleep(0.5)  # a task still exiting shows its time limit as EndTime
    for job in job_ids:
        shown = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True).stdout
        for line in shown.splitlines():
            fields = dict(re.findall(r"(\w+)=(\S+)", line))
            start, end = (datetime.datetime.fromisoformat(fields[k]) for k in ("StartTime", "EndTime"))
            total += (end - start).total_seconds() * int(fields["NumCPUs"])
            tasks += 1
    return total, tasks


def lane_occupancy(root: pathlib.Path, sweep: dict) -> float:
    """The mean over ensemble tasks of sum(members' solver steps) / (K x the slowest member's)."""
    tasks: dict = {}
    for sub in sweep["submissions"]:
        for run_id, task in zip(sub["runs"], sub["tasks"]):
            with h5py.File(root / sweep["experiment"] / f"{run_id}.h5") as f:
                tasks.setdefault(task, []).append(float(np.sum(f["history/solver_steps"][()])))
    return round(float(np.mean([sum(s) / (len(s) * max(s)) for s in tasks.values()])), 3)


def layout(runs: int, per_task: int, steps: int, work: pathlib.Path, ensemble: int = 1) -> dict:
    experiment = f"k{per_task}e{ensemble}-{work.name}"
    root = work.parent / "scratch" / "neuralode-hpc"
    args = [
        sys.executable,
        "train.py",
        "-m",
        f"seed=range(0,{runs})",
        "curriculum=quick",
        f"curriculum.phases.0.steps={steps}",
        "progress=off",
        f"cluster.runs_per_task={per_task}",
        f"cluster.ensemble={ensemble}",
        f"experiment={experiment}",
    ]
    env = {**os.environ, "SCRATCH": str(work.parent / "scratch")}
    tic = time.perf_counter()
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True, text=True, env=env)
    subprocess.run(
        [sys.executable, "-m", "hpc.cli", "wait", "latest", "--interval", "1"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - tic
    sweep = json.loads(next((root / experiment).glob("sweeps/*/sweep.json")).read_text())
    core_s, tasks = core_seconds([s["job_id"] for s in sweep["submissions"] if s["job_id"]])
    out = {"lane_occupancy": lane_occupancy(root, sweep)} if ensemble > 1 else {}
    return {
        **out,
        "runs_per_task": per_task,
        "ensemble": ensemble,
        "wall_s": round(wall, 1),
        "core_s": core_s,
        "slurm_tasks": tasks,
        "cpu_s_per_run": round(core_s / runs, 1),
        "runs_per_core_hour": round(runs * 3600 / core_s, 1),
        "jobs_per_1000_runs": round(1000 * tasks / runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--per-task", type=int, default=4)
    parser.add_argument("--steps", type=int, default=100)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        k = opts.per_task
        warm = min(opts.steps, 20)  # fills the compilation cache, as an earlier sweep would
        layout(2, 1, warm, pathlib.Path(tmp, "warm"))
        layout(k, k, warm, pathlib.Path(tmp, "warm"), ensemble=k)
        work = pathlib.Path(tmp, "timed")
        one, packed = (layout(opts.runs, n, opts.steps, work) for n in (1, k))
        together = layout(opts.runs, k, opts.steps, work, ensemble=k)
    ratio = lambda a, b, key: round(a[key] / b[key], 2)  # noqa: E731
    print(
        json.dumps(
            {
                "runs": opts.runs,
                "steps": opts.steps,
                "one_per_task": one,
                "packed": packed,
                "ensembles": together,
                "ratio_runs_per_core_hour": ratio(packed, one, "runs_per_core_hour"),
                "ratio_wall": ratio(one, packed, "wall_s"),
                "ensemble_ratio_runs_per_core_hour": ratio(together, one, "runs_per_core_hour"),
                "ensemble_over_packed_runs_per_core_hour": ratio(together, packed, "runs_per_core_hour"),
                "ensemble_ratio_wall": ratio(one, together, "wall_s"),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

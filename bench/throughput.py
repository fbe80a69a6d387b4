"""Runs per core-hour: one run per Slurm task against K runs per task (`cluster.runs_per_task`).

    python bench/throughput.py                         # 8 runs, K=4, 100 steps of `quick`; JSON
    python bench/throughput.py --runs 16 --per-task 4 --steps 2000   # two-minute runs

On the Slurm cluster this machine talks to (the local test cluster: `scripts/local_cluster.sh
start`), each layout submits the same N seeds through `python train.py -m` and waits for them.
Reported per layout: `wall_s` (submission to the last result), `core_s` (the sum over its tasks
of Slurm's elapsed time x CPUs, from `scontrol show job` while the controller still holds the
finished tasks), `cpu_s_per_run`, `runs_per_core_hour`, `jobs_per_1000_runs`, and the ratios
against one run per task. Vmapped ensembles are not built: nothing is reported for them.
"""

import argparse
import datetime
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import time

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


def layout(runs: int, per_task: int, steps: int, work: pathlib.Path) -> dict:
    root = work / f"k{per_task}"
    args = [
        sys.executable,
        "train.py",
        "-m",
        f"seed=range(0,{runs})",
        "curriculum=quick",
        f"curriculum.phases.0.steps={steps}",
        "progress=off",
        f"cluster.runs_per_task={per_task}",
        f"results_root={root}",
        f"jax_cache={work / 'jax-cache'}",
    ]
    tic = time.perf_counter()
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True, text=True)
    subprocess.run(
        [sys.executable, "-m", "hpc.cli", "--root", str(root), "wait", "latest", "--interval", "1"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - tic
    sweep = json.loads(next(root.glob("*/sweeps/*/sweep.json")).read_text())
    core_s, tasks = core_seconds([s["job_id"] for s in sweep["submissions"] if s["job_id"]])
    return {
        "runs_per_task": per_task,
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
        work = pathlib.Path(tmp)
        layout(2, 1, opts.steps, work / "warm")  # fills the compilation cache, as an earlier sweep would
        one, packed = (layout(opts.runs, k, opts.steps, work) for k in (1, opts.per_task))
    print(
        json.dumps(
            {
                "runs": opts.runs,
                "steps": opts.steps,
                "one_per_task": one,
                "packed": packed,
                "ratio_runs_per_core_hour": round(packed["runs_per_core_hour"] / one["runs_per_core_hour"], 2),
                "ratio_wall": round(one["wall_s"] / packed["wall_s"], 2),
                "ensembles": "not built",
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

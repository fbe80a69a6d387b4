"""Sweeps at size: planning, submitting and watching 1,000 to 100,000 runs.

    python bench/sweep_scale.py                      # sizes 1000 and 10000; prints JSON
    python bench/sweep_scale.py --sizes 10000 100000 --no-submit --results-up-to 10000

For each size N, every time is the wall time of a whole process, as a user meets it:
- `plan_scratch_s`: `SCRATCH=<dir> python train.py -m "seed=range(0,N)" curriculum=smoke
  hydra/launcher=manifest`, as a cluster user types it: no `results_root`, the root comes
  from `SCRATCH` (compose, check, write the sweep record, `configs.jsonl`, the manifest and
  the sbatch scripts); `sweep_files`: what its sweep directory then holds, less the sbatch
  scripts (one per `MaxArraySize` tasks: `max_array_size` says how many that made);
- `status_planned_s`: `hpc status` on that planned sweep, before any run has a result;
- `plan_s`: the same with `results_root=<dir>` (and without `SCRATCH`);
- `submit_held_s`: the same grid through submitit (`cluster.hold=true`: `sbatch --hold`),
  where a Slurm controller answers; the bench cancels the arrays afterwards;
- `status_s`, `failed_s`, `collect_s`: `hpc status`, `hpc failed` and `hpc collect -o runs.csv`
  on the planned sweep once every run has a result file (fabricated here: completed, with a
  metrics group shaped like a real run's), for sizes up to `--results-up-to`.
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(cmd, **kw) -> tuple[float, subprocess.CompletedProcess]:
    tic = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, **kw)
    if done.returncode not in (0, 1) or (done.returncode == 1 and "failed" not in cmd):  # hpc failed: 1 = some did
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - tic, done


def fabricate_results(sweep_dir: pathlib.Path) -> float:
    """A completed result file for every run of the sweep; returns the seconds it took."""
    import numpy as np

    from hpc.store import write_result
    from hpc.sweep import Sweep

    tic = time.perf_counter()
    sweep = Sweep.load(sweep_dir)
    metrics = {
        f"complex_TBP_planar_{n}_test": {
            "accel_pct_mean": 8.0,
            "accel_pct_median": 6.0,
            "loglog_slope": -2.0,
            "radial_sign_error_pct": 0.0,
            "accel_pct_per_orbit": np.ones(n),
        }
        for n in (1, 10, 100)
    }
    for run_id in sweep.runs:
        config = json.loads(sweep.config_yaml(run_id))
        write_result(
            sweep.result_path(run_id),
            status="completed",
            run_id=run_id,
            config=config,
            config_yaml=sweep.config_yaml(run_id),
            metadata={"host": "bench"},
            tree={"metrics": metrics, "training": {"final_loss": 0.02}, "history": {"loss": np.ones(50)}},
        )
    return time.perf_counter() - tic


def one_size(n: int, submit: bool, results: bool, work: pathlib.Path) -> dict:
    from hpc import slurm

    out = {"runs": n}
    scratch = {**os.environ, "SCRATCH": str(work / f"scratch-{n}")}
    out["plan_scratch_s"], done = timed(
        [sys.executable, "train.py", "-m", f"seed=range(0,{n})", "curriculum=smoke", "hydra/launcher=manifest"],
        env=scratch,
    )
    planned = pathlib.Path(re.search(r"record in (\S+)", done.stdout).group(1))
    out["sweep_files"] = sum(1 for p in planned.rglob("*") if p.suffix != ".sbatch")
    out["sweep_bytes"] = sum(p.stat().st_size for p in planned.rglob("*") if p.is_file() and p.suffix != ".sbatch")
    out["status_planned_s"], _ = timed([sys.executable, "-m", "hpc.cli", "status", str(planned)], env=scratch)
    root = work / f"plan-{n}"
    grid = [f"seed=range(0,{n})", "curriculum=smoke", f"results_root={root}"]
    plain = {k: v for k, v in os.environ.items() if k != "SCRATCH"}
    out["plan_s"], done = timed([sys.executable, "train.py", "-m", *grid, "hydra/launcher=manifest"], env=plain)
    out["plan_arrays"] = done.stdout.count("  sbatch ")
    sweep_dir = pathlib.Path(re.search(r"record in (\S+)", done.stdout).group(1))
    if submit and slurm.available():
        held = work / f"held-{n}"
        out["submit_held_s"], done = timed(
            [
                sys.executable,
                "train.py",
                "-m",
                f"seed=range(0,{n})",
                "curriculum=smoke",
                f"results_root={held}",
                "cluster.hold=true",
            ]
        )
        found = re.search(r"array job\(s\) ([\d, ]+)", done.stdout)
        if found is None:
            raise RuntimeError(f"the held submission failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        jobs = found.group(1).replace(" ", "").split(",")
        out["submit_arrays"] = len(jobs)
        subprocess.run(["scancel", *jobs], check=True)
    if not results:
        return out
    out["fabricate_results_s"] = fabricate_results(sweep_dir)
    hpc = [sys.executable, "-m", "hpc.cli", "--root", str(root)]
    out["status_s"], _ = timed([*hpc, "status", str(sweep_dir)])
    out["failed_s"], _ = timed([*hpc, "failed", str(sweep_dir)])
    out["collect_s"], _ = timed([*hpc, "collect", str(sweep_dir), "-o", str(work / f"runs-{n}.csv")])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--no-submit", action="store_true", help="skip the held submitit submission")
    parser.add_argument(
        "--results-up-to", type=int, default=None, help="fabricate results (and time status on them) up to this size"
    )
    args = parser.parse_args()
    from hpc import slurm

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        results = [
            one_size(n, not args.no_submit, args.results_up_to is None or n <= args.results_up_to, pathlib.Path(tmp))
            for n in args.sizes
        ]
    print(json.dumps({"cpus": os.cpu_count(), "max_array_size": slurm.max_array_size(), "sizes": results}, indent=2))


if __name__ == "__main__":
    main()

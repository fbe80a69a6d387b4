"""What the notebook's sweep (`sweep=notebook_2BP_12_10`, 576 runs) costs, projected from the
runs of it that set its time: one per segment-length strategy x depth x length strategy.

    python bench/notebook_cost.py                       # 12 runs, 2 at a time, one core each; JSON
    python bench/notebook_cost.py --checkout /tmp/old   # the same runs with another checkout's code

Each run is `python train.py sweep=notebook_2BP_12_10 <its cell>` as a user types it (SCRATCH set to
one fresh directory for all, no `results_root`), the rest of its grid point fixed at 10 training
orbits, tanh, `sph_4D_rinv_vel` and `logmag_unit_exp`: the head, the activation and the feature
layer change a run's time little, and the training set only through its evaluation. Each runs
pinned to one core with a Slurm task's thread settings (`taskset`, one XLA thread), `--parallel`
at a time. Reported per cell: the wall time of the whole process (data, compilation, training,
evaluation), its steps per second and its 100-orbit test error; and the sweep's projected
core-hours: 576 / 12 runs per cell times the cells' wall times.
"""

import argparse
import concurrent.futures
import itertools
import json
import os
import pathlib
import queue
import re
import subprocess
import sys
import tempfile
import time

import h5py

ROOT = pathlib.Path(__file__).resolve().parents[1]
SEGMENTS = ([4], [10], [18])
DEPTHS = (2, 4)
LENGTHS = ("[[0.0,0.1],[0.0,1.0],[0.0,1.0]]", "[[0.0,1.0]]")  # the notebook's two length strategies
FIXED = ["n_orbits=10", "activation=tanh", "feature_layer=sph_4D_rinv_vel", "output_head=logmag_unit_exp"]
RUNS_IN_SWEEP = 576


def run(checkout: pathlib.Path, scratch: pathlib.Path, cell: tuple, cores: queue.Queue) -> dict:
    core = cores.get()  # a core no other run holds
    try:
        return _run(checkout, scratch, cell, core)
    finally:
        cores.put(core)


def _run(checkout: pathlib.Path, scratch: pathlib.Path, cell: tuple, core: int) -> dict:
    segment, depth, length = cell
    args = [
        "sweep=notebook_2BP_12_10",
        *FIXED,
        f"curriculum.segment_length_strategy={segment}",
        f"depth={depth}",
        f"curriculum.length_strategy={length}",
        "progress=off",
    ]
    env = {
        **os.environ,
        "SCRATCH": str(scratch),
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    tic = time.perf_counter()
    done = subprocess.run(
        ["taskset", "-c", str(core), sys.executable, "train.py", *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - tic
    out = {"cell": {"segment_length_strategy": segment, "depth": depth, "length_strategy": length}, "wall_s": wall}
    if done.returncode:
        return {**out, "error": done.stderr[-2000:]}
    path = pathlib.Path(re.search(r"[Rr]esult: (\S+?\.h5)", done.stdout).group(1))
    with h5py.File(path if path.is_absolute() else checkout / path) as f:
        metrics = f["metrics/complex_TBP_planar_100_test"].attrs
        out.update(
            steps_per_s=float(f["metadata"].attrs["steps_per_s"]),
            accel_pct_mean_100=float(metrics["accel_pct_mean"]),
            loglog_slope_100=float(metrics["loglog_slope"]),
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", default=str(ROOT), help="the checkout whose train.py runs (default: this one)")
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time, one core each")
    opts = parser.parse_args()
    cells = list(itertools.product(SEGMENTS, DEPTHS, LENGTHS))
    with tempfile.TemporaryDirectory(prefix="notebook-cost-") as scratch:
        cores: queue.Queue = queue.Queue()
        for core in range(opts.parallel):
            cores.put(core)
        with concurrent.futures.ThreadPoolExecutor(opts.parallel) as pool:
            jobs = [pool.submit(run, pathlib.Path(opts.checkout), pathlib.Path(scratch), cell, cores) for cell in cells]
            results = [job.result() for job in jobs]
    total = sum(r["wall_s"] for r in results)
    print(
        json.dumps(
            {
                "checkout": opts.checkout,
                "runs": results,
                "runs_per_cell": RUNS_IN_SWEEP // len(cells),
                "mean_run_s": total / len(cells),
                "projected_core_hours": RUNS_IN_SWEEP // len(cells) * total / 3600,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

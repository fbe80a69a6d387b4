"""What the notebook's sweep (`sweep=notebook_2BP_12_10`, 576 runs) costs, projected from the
runs of it that set its time: one per segment-length strategy x depth x length strategy.

    python bench/notebook_cost.py                       # 12 runs on cores 0 and 1, one each; JSON
    python bench/notebook_cost.py --orbits 1 10 100     # 36 runs: every training set
    python bench/notebook_cost.py --checkout /tmp/old   # the same runs with another checkout's code

Each run is `python train.py sweep=notebook_2BP_12_10 <its cell>` as a user types it (SCRATCH set to
one fresh directory for all, no `results_root`), the rest of its grid point fixed at tanh,
`sph_4D_rinv_vel` and `logmag_unit_exp` (the head, the activation and the feature layer change a
run's time little) and at `--orbits` training orbits (10 by default). The training set sets how
many segments a step solves (all of them when there are no more than the batch of 256: 20 for one
orbit of 18-point segments), so a projection from 10 orbits alone overstates the one-orbit runs;
`--orbits 1 10 100` measures each. Each runs
pinned to one core of `--cores` with a Slurm task's thread settings (`taskset`, one XLA thread),
one run per core at a time. Reported per cell: the wall time of the whole process (data, compilation, training,
evaluation), its steps per second and its 100-orbit test error; and the sweep's projected
core-hours: the 576 runs spread evenly over the measured cells, times their wall times.
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
FIXED = ["activation=tanh", "feature_layer=sph_4D_rinv_vel", "output_head=logmag_unit_exp"]
RUNS_IN_SWEEP = 576


def run(checkout: pathlib.Path, scratch: pathlib.Path, cell: tuple, cores: queue.Queue) -> dict:
    core = cores.get()  # a core no other run holds
    try:
        return _run(checkout, scratch, cell, core)
    finally:
        cores.put(core)


def _run(checkout: pathlib.Path, scratch: pathlib.Path, cell: tuple, core: int) -> dict:
    orbits, segment, depth, length = cell
    args = [
        "sweep=notebook_2BP_12_10",
        *FIXED,
        f"n_orbits={orbits}",
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
    cell = {"n_orbits": orbits, "segment_length_strategy": segment, "depth": depth, "length_strategy": length}
    out = {"cell": cell, "wall_s": wall}
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
    parser.add_argument("--cores", type=int, nargs="+", default=[0, 1], help="the cores to run on, one run each")
    parser.add_argument("--orbits", type=int, nargs="+", default=[10], help="training sets measured (of 1, 10, 100)")
    opts = parser.parse_args()
    cells = list(itertools.product(opts.orbits, SEGMENTS, DEPTHS, LENGTHS))
    with tempfile.TemporaryDirectory(prefix="notebook-cost-") as scratch:
        cores: queue.Queue = queue.Queue()
        for core in opts.cores:
            cores.put(core)
        with concurrent.futures.ThreadPoolExecutor(len(opts.cores)) as pool:
            jobs = [pool.submit(run, pathlib.Path(opts.checkout), pathlib.Path(scratch), cell, cores) for cell in cells]
            results = [job.result() for job in jobs]
    total = sum(r["wall_s"] for r in results)
    print(
        json.dumps(
            {
                "checkout": opts.checkout,
                "runs": results,
                "runs_per_cell": RUNS_IN_SWEEP / len(cells),
                "mean_run_s": total / len(cells),
                "projected_core_hours": RUNS_IN_SWEEP / len(cells) * total / 3600,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

"""`hpc runs` over a results root of 10,000 or 100,000 result files: how long a query takes, as typed.

    python bench/runs_scale.py                      # 10,000 files in 4 experiments; prints JSON
    python bench/runs_scale.py --runs 100000        # 2,000 written, the rest hard links to them

Each written file is a completed result shaped like a real one: the config a `train.py` run
records (about 100 keys), three test sets and the training set with their scalar metrics, a
2,000-step history, and the stored summary `hpc.store.write_result` keeps. Beyond `--distinct`
files the rest are hard links to them under new names (the bench's cost is not the product's:
each is still a file the index lists and reads). Timed, as whole processes (the command a user
types: `hpc runs` with a filter, a condition, a sort and best-of, `SCRATCH` set and no `--root`,
from a fresh directory): the first query (no index: every file is read), the same query warm
(three times), the first query after 1,000 new files and 1,000 deleted ones, and `--rebuild`.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HEADS = ("simple", "mag_dir", "signed", "softplus", "logmag_unit_exp")
SETS = ("complex_TBP_planar_1_test", "complex_TBP_planar_10_test", "complex_TBP_planar_100_test")
METRICS = ("accel_pct_mean", "accel_pct_median", "angle_deg_mean", "loglog_slope", "radial_sign_error_pct")


def fabricate(root: pathlib.Path, start: int, count: int, experiments: int = 4) -> None:
    from hpc.store import write_result

    rng = np.random.default_rng(start)
    history = {"loss": rng.random(2000), "steps": 2000}
    for i in range(start, start + count):
        config = {
            "output_head": HEADS[i % 5],
            "width": (16, 32, 64, 128)[i // 5 % 4],
            "lr": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)[i // 20 % 5],
            "seed": i // 100,
            **{f"setting_{k}": k for k in range(90)},  # the rest of a recorded config
        }
        metrics = {s: {m: float(rng.uniform(1, 50)) for m in METRICS} for s in SETS}
        write_result(
            root / f"exp{i % experiments}" / f"run{i:07d}.h5",
            status="completed",
            run_id=f"run{i:07d}",
            config=config,
            config_yaml="",
            metadata={"wall_time_s": 120.0},
            tree={"history": history, "metrics": metrics, "training": {"final_loss": 0.01}},
        )


def query(scratch: pathlib.Path, *more: str) -> tuple[float, str]:
    """`hpc runs ...` as a user types it: no `--root`, `SCRATCH` set, from a directory of their own."""
    cmd = [
        sys.executable,
        "-m",
        "hpc.cli",
        "runs",
        "width=64",
        "--where",
        "metrics.*_100_test.accel_pct_mean < 25",
        "--sort",
        "metrics.*_100_test.accel_pct_mean",
        "--best-of",
        "output_head",
        *more,
    ]
    tic = time.perf_counter()
    env = {**os.environ, "SCRATCH": str(scratch), "HPC_STATE_DIR": str(scratch / "state")}
    done = subprocess.run(cmd, cwd=scratch / "home", env=env, check=True, capture_output=True, text=True)
    return round(time.perf_counter() - tic, 2), done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--distinct", type=int, default=2_000, help="files written; the rest are hard links")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runs-scale-") as tmp:
        scratch = pathlib.Path(tmp)  # $SCRATCH; the results go where train.py puts them: $SCRATCH/neuralode-hpc
        root = scratch / "neuralode-hpc"
        (scratch / "home").mkdir()
        tic = time.perf_counter()
        import concurrent.futures

        distinct = min(opts.distinct, opts.runs)
        parts = [(i, min(1000, distinct - i)) for i in range(0, distinct, 1000)]
        with concurrent.futures.ProcessPoolExecutor(2) as pool:  # writing is the slow part: fsync per file
            list(pool.map(fabricate, [root] * len(parts), *zip(*parts)))
        written = sorted(root.glob("exp*/*.h5"))
        for i in range(distinct, opts.runs):  # the same contents under new names
            os.link(written[i % distinct], root / f"exp{i % 4}" / f"run{i:07d}.h5")
        written_s = time.perf_counter() - tic
        cold_s, cold = query(scratch)
        warm = [query(scratch) for _ in range(3)]
        for i in range(opts.runs, opts.runs + 1000):  # 1,000 new files and 1,000 deleted
            os.link(written[i % distinct], root / f"exp{i % 4}" / f"run{i:07d}.h5")
        for path in sorted(root.glob("exp1/*.h5"))[:1000]:
            path.unlink()
        changed_s, changed = query(scratch)
        rebuild_s, rebuilt = query(scratch, "--rebuild")
        index_mb = sum(p.stat().st_size for p in (root / ".hpc-index").iterdir()) / 1e6
    print(
        json.dumps(
            {
                "files": opts.runs,
                "distinct_contents": distinct,
                "fabricate_s": round(written_s, 1),
                "first_query_s": cold_s,
                "warm_query_s": [s for s, _ in warm],
                "after_1000_new_1000_deleted_s": changed_s,
                "rebuild_s": rebuild_s,
                "answers": [cold, warm[-1][1], changed, rebuilt],
                "index_mb": round(index_mb, 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

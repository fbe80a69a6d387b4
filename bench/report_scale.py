"""`hpc report` on a 1,000-run sweep: how long a researcher waits for the page.

    python bench/report_scale.py                 # 1,000 runs; prints JSON
    python bench/report_scale.py --seeds 2       # 400 runs

The grid is planned for real (`python train.py -m ... hydra/launcher=manifest`: the sweep record
and the configs are what a user's would be): 2 feature layers x 5 output heads x 4 widths x
5 learning rates x `--seeds` seeds. Each run then gets a fabricated completed result file shaped
like a real one: a 2,000-step history with phase boundaries and failed segments, and three test
sets (1, 10, 100 orbits) with their scalar metrics, per-orbit errors and the predicted |a| at
every test point. Timed, as whole processes: `hpc report` (its figures included) and, for
comparison, `hpc collect`.
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

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRID = [
    "feature_layer=cartesian,sph_4D_rinv_vel",
    "output_head=simple,mag_dir,signed,softplus,logmag_unit_exp",
    "width=16,32,64,128",
    "lr=1e-4,3e-4,1e-3,3e-3,1e-2",
]
POINTS = 360


def fabricate(sweep_dir: pathlib.Path, steps: int = 2000) -> float:
    """A completed result file for every run of the sweep; returns the seconds it took."""
    import yaml

    from hpc.store import write_result
    from hpc.sweep import Sweep

    tic = time.perf_counter()
    sweep = Sweep.load(sweep_dir)
    rng = np.random.default_rng(0)
    for run_id in sweep.runs:
        text = sweep.config_yaml(run_id)
        config = yaml.safe_load(text)
        quality = 1 + np.log10(config["lr"] / 1e-4) + 0.01 * config["width"] + rng.random()  # a made-up landscape
        bend = 0.1 * quality  # how far the learned field is from 1/r^2
        metrics = {}
        for n in (1, 10, 100):
            radius = rng.uniform(1.05, 7.0, (n, POINTS))
            accel = radius ** (-2 + bend * (radius > 4)) * (1 + 0.02 * rng.standard_normal((n, POINTS)))
            per_orbit = np.abs(quality * 5 * (1 + 0.3 * rng.standard_normal(n)))
            metrics[f"complex_TBP_planar_{n}_test"] = {
                "accel_pct_mean": float(per_orbit.mean()),
                "accel_pct_median": float(np.median(per_orbit)),
                "loglog_slope": -2 + bend / 2,
                "radial_sign_error_pct": 0.0,
                "accel_pct_per_orbit": per_orbit,
                "radius": radius,
                "accel_norm": accel,
            }
        loss = 50 * np.exp(-np.arange(steps) / (300 * quality)) + rng.random(steps)
        history = {
            "loss": loss,
            "phase": np.repeat([0, 1], steps // 2),
            "phase_starts": [0, steps // 2],
            "failed_segments": rng.poisson(0.05, steps).astype(np.int32),
            "steps": steps,
        }
        tree = {
            "metrics": metrics,
            "history": history,
            "training": {"status": "completed", "final_loss": loss[-1]},
            "datasets": {"train": "complex_TBP_planar_10_train", "train_max_radius": 6.6},
        }
        write_result(
            sweep.result_path(run_id),
            status="completed",
            run_id=run_id,
            config=config,
            config_yaml=text,
            metadata={"host": "bench"},
            tree=tree,
            file_format="neuralode-hpc-result/1",
        )
    return time.perf_counter() - tic


def timed(cmd) -> tuple[float, str]:
    tic = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - tic, done.stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--keep", default=None, help="write here and keep it (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        work = pathlib.Path(args.keep or tmp)
        root = work / "results"
        _, out = timed(
            [
                sys.executable,
                "train.py",
                "-m",
                *GRID,
                f"seed=range(0,{args.seeds})",
                "curriculum=smoke",
                f"results_root={root}",
                "hydra/launcher=manifest",
            ]
        )
        sweep_dir = pathlib.Path(re.search(r"record in (\S+)", out).group(1))
        result = {"cpus": os.cpu_count(), "fabricate_s": round(fabricate(sweep_dir), 1)}
        hpc = [sys.executable, "-m", "hpc.cli", "--root", str(root)]
        result["report_s"], result["report"] = timed([*hpc, "report", str(sweep_dir), "-o", str(work / "report")])
        result["collect_s"], _ = timed([*hpc, "collect", str(sweep_dir), "-o", str(work / "runs.csv")])
        result["figures"] = sorted(p.name for p in (work / "report" / "figures").glob("*.png"))
        result["report_s"], result["collect_s"] = round(result["report_s"], 2), round(result["collect_s"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""How large a healthy Adam update is, against the stall rule's threshold: for every step of
the given completed runs, the update's RMS per weight divided by that step's learning rate.

    python bench/update_health.py "$SCRATCH"/neuralode-hpc/study_table/*.h5 scratch/default/*.h5

`neuralode.StallRule` calls a run stalled when this ratio stays below 1e-3 for 50 steps; a
healthy run's smallest ratio says how far above that threshold learning runs, and a stalled
run's last steps how far below it a frozen model sits. Prints JSON: per run its status, smallest
and largest ratio and the median of its last 50 steps (each phase's first step is left out:
Adam's first update is lr-sized by construction), and over the completed runs the smallest,
the 1st percentile and the largest.
"""

import argparse
import json
import os
import sys

import h5py
import numpy as np
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def ratios(path: str) -> tuple[str, np.ndarray]:
    """The status of the run at `path` and the update RMS / learning rate of each of its steps."""
    import neuralode

    with h5py.File(path, "r") as f:
        status = f.attrs["status"]
        config = yaml.safe_load(f["config/yaml"][()])
        updates, phase = f["history/update_norm"][()], f["history/phase"][()]
        n_params = sum(f["model"][name].size for name in f["model"])
    phases = neuralode.phases_from_config(config)
    out, start = [], 0
    for k, p in enumerate(phases):
        steps = int((phase == k).sum())
        lr = np.array([p.lr_at(i) for i in range(steps)])
        out.append((updates[start : start + steps] / np.sqrt(n_params) / lr)[1:])
        start += steps
    return status, np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="result files (.h5)")
    args = parser.parse_args()
    per_run, healthy = {}, []
    for path in args.results:
        status, r = ratios(path)
        per_run[os.path.basename(path)] = {
            "status": status,
            "steps": int(r.size),
            "min": float(r.min()),
            "max": float(r.max()),
            "last_50_median": float(np.median(r[-50:])),
        }
        if status == "completed":
            healthy.append(r)
    every = np.concatenate(healthy)
    print(
        json.dumps(
            {
                "completed_runs": len(healthy),
                "steps": int(every.size),
                "min": float(every.min()),
                "p01": float(np.percentile(every, 1)),
                "max": float(every.max()),
                "stall_threshold": 1e-3,
                "per_run": per_run,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""`hpc export --to wandb` at sweep size: runs per second with one process and with several.

    python bench/export_speed.py                # 24 runs, 1 worker against the default, twice each; JSON

Each run is a completed result shaped like a real one (`bench/runs_scale.py`: a 2,000-step
history, about 100 config keys, three test sets). Timed as a whole process, as typed, with
`--workers 1` and without (`--workers` defaults to the usable CPUs), alternately, as typed:
`hpc export runs` with `SCRATCH` set, no `--root`, from a fresh directory.
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


def main() -> None:
    from bench.runs_scale import fabricate

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=2)
    opts = parser.parse_args()
    out = {"runs": opts.runs, "usable_cpus": len(os.sched_getaffinity(0)), "runs_per_s": {"1": [], "default": []}}
    with tempfile.TemporaryDirectory(prefix="export-speed-") as tmp:
        scratch = pathlib.Path(tmp)  # $SCRATCH: the results where train.py puts them
        fabricate(scratch / "neuralode-hpc", 0, opts.runs)
        (scratch / "home").mkdir()
        env = {**os.environ, "SCRATCH": str(scratch), "HPC_STATE_DIR": str(scratch / "state")}
        for repeat in range(opts.repeats):
            for label, more in (("1", ["--workers", "1"]), ("default", [])):
                target = scratch / f"wb-{label}-{repeat}"
                cmd = [sys.executable, "-m", "hpc.cli", "export", "runs", "--to", "wandb", str(target), *more]
                tic = time.perf_counter()
                done = subprocess.run(cmd, cwd=scratch / "home", env=env, capture_output=True, text=True, check=True)
                seconds = time.perf_counter() - tic
                assert re.search(rf"Exported {opts.runs} runs", done.stdout), done.stdout + done.stderr
                out["runs_per_s"][label].append(round(opts.runs / seconds, 2))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

"""CPU use of one training task: does a task given N CPUs stay within them?

    python bench/task_cpu.py              # 1 and 4 CPUs per task (where the node has them); JSON

Each measurement submits one run of `curriculum=lofi` (width 32, batch 64) as a Slurm task
with `cluster.cpus_per_task=N` to the cluster this machine talks to (the local test cluster:
`scripts/local_cluster.sh start`), waits until it trains (its first checkpoint), then
samples the CPU time of its Python process (all threads, from /proc) over three 5-second
windows, and cancels it. 100 % is one CPU kept busy; a task within its share stays at or
under 100 x N %.
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


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def measure(cpus: int, work: pathlib.Path, windows: int = 3, window_s: float = 5.0) -> dict:
    root = work / f"cpus-{cpus}"
    done = subprocess.run(
        [
            sys.executable,
            "train.py",
            "-m",
            "curriculum=lofi",
            "n_orbits=2",
            "batch_size=64",
            "width=32",
            "seed=0",
            f"cluster.cpus_per_task={cpus}",
            "cluster.checkpoint_steps=10",
            f"results_root={root}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    job = re.search(r"array job\(s\) (\d+)", done.stdout).group(1)
    try:
        deadline = time.monotonic() + 300
        while not list(root.glob("default/*.ckpt")):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the task did not start training: {done.stdout}")
            time.sleep(0.5)
        (claim,) = root.glob("default/*.claim")
        pid = json.loads(claim.read_text())["pid"]
        samples = []
        for _ in range(windows):
            cpu, tic = cpu_seconds(pid), time.monotonic()
            time.sleep(window_s)
            samples.append(100 * (cpu_seconds(pid) - cpu) / (time.monotonic() - tic))
        threads = len(os.listdir(f"/proc/{pid}/task"))
        affinity = len(os.sched_getaffinity(pid))
    finally:
        subprocess.run(["scancel", job])
    return {
        "cpus_per_task": cpus,
        "cpu_pct_windows": [round(s, 1) for s in samples],
        "cpu_pct_max": round(max(samples), 1),
        "threads": threads,
        "cpus_it_may_use": affinity,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    from hpc import slurm

    node = max(slurm.partitions().values())
    shown = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
    plugins = dict(re.findall(r"^(TaskPlugin|ProctrackType)\s+=\s+(\S+)", shown, re.M))
    out = {"node_cpus": node, **plugins, "tasks": []}
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
        for cpus in args.cpus:
            if cpus > node:
                out["tasks"].append({"cpus_per_task": cpus, "skipped": f"the node has {node} CPUs"})
                continue
            out["tasks"].append(measure(cpus, pathlib.Path(tmp)))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

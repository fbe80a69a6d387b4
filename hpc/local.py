"""Sweeps on this machine, without Slurm: a pool of worker processes, one log file per run.

The driver (the process that owns the pool) is recorded in the sweep's submission, so
`hpc status` can tell pending runs (driver alive, no claim yet) from running ones (a live
claim) and lost ones (driver gone, no result). Workers stop when the driver dies: each
checks its parent every second and sends itself SIGTERM (a training run checkpoints first).
`detach` starts the driver as its own session and returns at once. Each worker is pinned to
`cpus_per_task` CPUs of its own and gets a Slurm task's thread settings, so a run computes
here exactly as it does in a Slurm task.

    python -m hpc.local <sweep dir> <submission position>   # the detached driver
"""

import concurrent.futures
import contextlib
import datetime
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from .claim import process_alive
from .profile import Profile
from .scheduler import Scheduler, TaskCall
from .sweep import Sweep
from .task import RunFailed, TaskSettings, run_task, run_tasks


def log_path(sweep: Sweep, run_id: str):
    return sweep.path / "logs" / f"{run_id}.log"


def driver_alive(driver: dict | None) -> bool | None:
    """Whether a local sweep's driver process lives; `None` when it runs on another host."""
    return process_alive(driver.get("host"), driver.get("pid")) if driver else False


_DRIVER = {"pid": None}


def _start_worker(parent: int, cpu_sets) -> None:
    """In a new worker: take CPUs of its own, as a Slurm task gets (so a run computes here
    exactly as it does there), and watch the driver."""
    cpus = cpu_sets.get()
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
    _watch_parent(parent)


def _watch_parent(parent: int) -> None:
    """In a worker: once the driver is gone, stop (SIGTERM lets a training run checkpoint)."""
    _DRIVER["pid"] = parent

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


@contextlib.contextmanager
def _output_to(path):
    """Send this process's stdout and stderr (file descriptors included) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _worker(pack) -> None:
    """The runs of one task (`cluster.runs_per_task` of them), one after the other in this
    warm worker, each with its output in its own log; an ensemble's (`cluster.ensemble`) goes
    to its first run's log, and the others' logs say so."""
    together = pack[0][2].cluster.ensemble
    for start in range(0, len(pack), together):
        group = pack[start : start + together]
        entry, config_yaml, settings, log = group[0][:4]
        for later in group[1:]:
            later[3].parent.mkdir(parents=True, exist_ok=True)
            with open(later[3], "a") as f:
                f.write(f"--- trained in an ensemble of {len(group)} runs: its output is in {log}\n")
        with _output_to(log):
            print(
                f"--- {datetime.datetime.now().astimezone().isoformat()} on {socket.gethostname()} (pid {os.getpid()})",
                flush=True,
            )
            try:
                if len(group) == 1:
                    run_task(entry, config_yaml, settings)
                else:
                    run_tasks(entry, [(run_id, path, yaml) for _, yaml, _, _, run_id, path in group], settings)
            except RunFailed as exc:  # one run's failure must not stop the others; its result file says why
                print(f"hpc: {exc}", flush=True)
            except Exception:
                import traceback

                traceback.print_exc()
        if _DRIVER["pid"] is not None and os.getppid() != _DRIVER["pid"]:
            os._exit(1)  # the driver is gone: take no further run


def _usable_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def workers_for(n_runs: int, cpus_per_task: int) -> int:
    return max(1, min(n_runs, len(_usable_cpus()) // max(1, cpus_per_task)))


def cpu_sets(workers: int, cpus_per_task: int) -> list[list[int]]:
    """The CPUs of each worker: `cpus_per_task` of this process's usable CPUs each, disjoint."""
    usable = _usable_cpus()
    return [usable[i * cpus_per_task : (i + 1) * cpus_per_task] for i in range(workers)]


def run_pool(sweep: Sweep, position: int) -> None:
    """Run the runs of local submission `position` of `sweep`, in parallel processes (at
    most one per `cpus_per_task` cores), each run's output in its log file. Blocks."""
    sub, profile = sweep.submissions[position], sweep.profile(position)
    settings = TaskSettings(profile, sub["workdir"], sweep.results_root)
    per_task = profile.runs_per_task
    workers = workers_for(-(-len(sub["runs"]) // per_task), profile.cpus_per_task)
    context = multiprocessing.get_context("spawn")
    runs = [
        (sweep.entry, sweep.config_yaml(r), settings, log_path(sweep, r), r, str(sweep.result_path(r)))
        for r in sub["runs"]
    ]
    jobs = [runs[i : i + per_task] for i in range(0, len(runs), per_task)]
    sets = context.Queue()
    for cpus in cpu_sets(workers, profile.cpus_per_task):
        sets.put(cpus)
    with concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(), sets)
    ) as pool:
        list(pool.map(_worker, jobs))


def start(sweep: Sweep, run_ids: list[str], profile: Profile, workdir: str) -> None:
    """Run `run_ids` locally: in this process's pool (blocking), or, with
    `cluster.detach`, in a driver of its own that outlives this process."""
    detach = profile.detach
    workers = workers_for(-(-len(run_ids) // profile.runs_per_task), profile.cpus_per_task)
    driver = {"host": socket.gethostname(), "pid": os.getpid()}
    sweep.add_submission("local", None, run_ids, profile)
    position = len(sweep.submissions) - 1
    sweep.submissions[position].update(workdir=workdir, workers=workers, driver=driver)
    sweep.save()
    why = "cluster.submit=local" if profile.submit == "local" else "Slurm is not installed here"
    logs = sweep.path / "logs"
    if not detach:
        print(f"Running {len(run_ids)} runs locally ({why}) in {workers} processes; logs in {logs}.", flush=True)
        run_pool(sweep, position)
        return
    logs.mkdir(exist_ok=True)
    with open(logs / "driver.log", "a") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hpc.local", str(sweep.path), str(position)],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    sweep.submissions[position]["driver"] = {"host": driver["host"], "pid": proc.pid}
    sweep.save()
    print(
        f"Running {len(run_ids)} runs locally ({why}) in {workers} processes, detached (driver pid "
        f"{proc.pid}); logs in {logs}. Watch with: hpc status {sweep.path}",
        flush=True,
    )


class LocalScheduler(Scheduler):
    """This machine's process pool as a scheduler: its tasks have no job to list, requeue or
    cancel (`hpc status` asks a sweep's driver instead, `driver_alive`)."""

    name = "local"

    def installed(self) -> bool:
        return True

    def submit(self, sweep, run_ids: list[str], profile, workdir: str, call: TaskCall) -> list[str]:
        """`start` the runs. The pool's workers run `hpc.task` themselves rather than `call`:
        each run's output goes to a log of its own (`log_path`). **Returns:** no job ids."""
        start(sweep, run_ids, profile, workdir)
        return []


def main(argv=None) -> None:
    sweep_dir, position = argv or sys.argv[1:]
    run_pool(Sweep.load(sweep_dir), int(position))


if __name__ == "__main__":
    main()

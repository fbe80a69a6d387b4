"""The life of one run, for any workload: skip it if done, record where and how it ran, and
write exactly one result file, `failed` with the traceback if the work raises.

    outcome = hpc.execute(path, work, run_id=rid, config=config, config_yaml=text)

`work()` does the science and returns an `Outcome`; everything else is here.
"""

import dataclasses
import datetime
import pathlib
import platform
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from importlib import metadata

import h5py

from .slurmenv import slurm_info
from .store import FORMAT, is_completed, write_result


@dataclasses.dataclass
class Outcome:
    """What a run's work produced: its `status` (see `hpc.store.STATUSES`), the `tree` of its
    result file, a `message` (why it did not complete), `metadata` to add to `/metadata`,
    `extra(file)` to write groups of its own, and `summary`, which `execute` returns."""

    status: str
    tree: dict
    message: str = ""
    metadata: dict = dataclasses.field(default_factory=dict)
    extra: Callable[[h5py.File], None] | None = None
    summary: dict = dataclasses.field(default_factory=dict)


def versions(packages) -> dict:
    """Python's version and each installed package's (`absent` where it is not installed)."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def git_commit(source_dir) -> str:
    """The commit checked out in `source_dir`, or `none`."""
    try:
        done = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=source_dir,
                              capture_output=True, text=True, timeout=5)
        return done.stdout.strip() if done.returncode == 0 else "none"
    except (OSError, subprocess.SubprocessError):
        return "none"


def execute(path, work: Callable[[], Outcome], *, run_id: str, config: dict, config_yaml: str,
            packages=(), source_dir=None, force: bool = False, file_format: str = FORMAT) -> dict:
    """Run `work` once for the run whose result file is `path`, and write that file atomically.

    A completed result already at `path` skips the run (unless `force`). Provenance (versions
    of `packages`, the git commit of `source_dir`, host, Python, times, Slurm ids, argv) goes
    to `/metadata`; the root attribute `format` is `file_format`. If `work` raises, a `failed`
    result with the traceback is written and the exception propagates.

    **Returns:** `{"status", "run_id", "path", **outcome.summary}`; `status` is `skipped` when
    the run was skipped.
    """
    path = pathlib.Path(path)
    if not force and is_completed(path):
        print(f"Skipping run {run_id}: a completed result exists at {path} (force=true reruns it).")
        return {"status": "skipped", "run_id": run_id, "path": str(path)}
    started, tic = datetime.datetime.now().astimezone(), time.monotonic()
    meta = {"versions": versions(packages), "git_commit": git_commit(source_dir or pathlib.Path.cwd()),
            "host": socket.gethostname(), "python_executable": sys.executable, "python_prefix": sys.prefix,
            "start_time": started.isoformat(), "slurm": slurm_info(), "argv": " ".join(sys.argv)}

    def finish(outcome: Outcome) -> None:
        meta.update(outcome.metadata, end_time=datetime.datetime.now().astimezone().isoformat(),
                    wall_time_s=time.monotonic() - tic)
        write_result(path, status=outcome.status, config=config, config_yaml=config_yaml, run_id=run_id,
                     metadata=meta, tree=outcome.tree, message=outcome.message, extra=outcome.extra,
                     file_format=file_format)
        print(f"Result ({outcome.status}) written to {path}")

    try:
        outcome = work()
        finish(outcome)
    except Exception as exc:
        finish(Outcome("failed", {"error": {"type": type(exc).__name__, "traceback": traceback.format_exc()}},
                       message=f"{type(exc).__name__}: {exc}"))
        raise
    return {"status": outcome.status, "run_id": run_id, "path": str(path), **outcome.summary}

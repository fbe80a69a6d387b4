"""The life of one run, for any workload: skip it if done, record where and how it ran,
checkpoint it, requeue it before its time limit, and write exactly one result file (`failed`
with the traceback if the work raises).

    outcome = hpc.execute(path, work, run_id=rid, config=config, config_yaml=text)

`work(checkpoint)` does the science and returns an `Outcome`; it resumes from
`checkpoint.load()` and saves when `checkpoint.due(step)` (see `hpc.checkpoint`). Everything
else is here.
"""

import dataclasses
import datetime
import os
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

from . import slurm
from .atomic import FULL, no_new_empty_dirs
from .checkpoint import Checkpoint, UnusableCheckpoint, checkpoint_path
from .claim import Busy, Claim
from .hygiene import THREAD_VARIABLES, devices
from .layout import check_writable
from .profile import Profile
from .slurm.env import slurm_info
from .store import FORMAT, clean_stale, drop_note, is_completed, reserve_note, write_note, write_result
from .summary import print_summary


@dataclasses.dataclass
class Outcome:
    """What a run's work produced: its `status` (see `hpc.store.STATUSES`), the `tree` of its
    result file, a `message` (why it did not complete), `metadata` to add to `/metadata`,
    `extra(file)` to write groups of its own, and `summary`, which `execute` returns."""

    status: str  # a result status, or `interrupted` (stopped by a signal after a checkpoint)
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
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=source_dir, capture_output=True, text=True, timeout=5
        )
        return done.stdout.strip() if done.returncode == 0 else "none"
    except (OSError, subprocess.SubprocessError):
        return "none"


@dataclasses.dataclass(frozen=True)
class Lifeline:
    """How a run survives its time limit: a checkpoint every `every_min` minutes and/or
    `every_steps` steps (`None`: not on that count; always on a stop signal), and up to
    `max_requeues` requeues of its Slurm task when the time-limit signal comes."""

    every_min: float | None = Profile.checkpoint_min  # the profile's defaults: one source
    every_steps: int | None = Profile.checkpoint_steps
    max_requeues: int = Profile.max_requeues

    @classmethod
    def from_cluster(cls, cluster) -> "Lifeline":
        """From a cluster profile (`hpc.Profile` or a config's `cluster` mapping)."""
        profile = Profile.from_dict(cluster)
        return cls(profile.checkpoint_min, profile.checkpoint_steps, profile.max_requeues)


def execute(
    path,
    work: Callable[[Checkpoint], Outcome],
    *,
    run_id: str,
    config: dict,
    config_yaml: str,
    packages=(),
    source_dir=None,
    force: bool = False,
    file_format: str = FORMAT,
    lifeline: Lifeline = Lifeline(),
    failures=(),
    app=None,
) -> dict:
    """Run `work` once for the run whose result file is `path`, and write that file atomically.

    A completed result already at `path` skips the run (unless `force`). Provenance (versions
    of `packages`, the git commit of `source_dir`, host, Python, times, Slurm ids, argv) goes
    to `/metadata`; the root attribute `format` is `file_format`. `work`'s status is one of
    `hpc.store.STATUSES` or of the workload's own `failures`; `app`, an `hpc.App`, gives
    `packages`, `file_format` and `failures` instead. If `work` raises, a `failed`
    result with the traceback is written and the exception propagates.

    `work` gets the run's `Checkpoint` (beside `path`, per `lifeline`), which SIGUSR2 and
    SIGTERM ask to stop. When work comes back `interrupted`:
    - by SIGUSR2 (the time limit is near) in a Slurm task requeued fewer than
      `lifeline.max_requeues` times: the task requeues itself and the rerun resumes; no
      result is written. With no requeue left, the result is `timeout` with the partial history.
    - by SIGTERM in a Slurm task being preempted: requeued (by Slurm, or by the task itself
      when a grace time runs, as Slurm would not requeue a task that ends within it); no
      result is written and the rerun resumes.
    - by SIGTERM otherwise (`scancel`, a node shutdown): nothing is written; Slurm's state
      tells which, and a resubmitted run resumes from the checkpoint.
    The checkpoint is removed once a final result other than `timeout` is written.

    At most one copy of a run trains at a time (`hpc.claim`): a run another live process
    owns is not started (`busy`).

    **Returns:** `{"status", "run_id", "path", **outcome.summary}`; `status` is `skipped` when
    the run was skipped, `busy`, `requeued` or `interrupted` when no result was written.
    """
    if app is not None:  # an `hpc.App` gives the packages, the file format and the failure statuses
        packages, file_format, failures = app.packages, app.file_format, app.failures
    path = pathlib.Path(path)
    if not force and is_completed(path):
        print(f"Skipping run {run_id}: a completed result exists at {path} (force=true reruns it).")
        return {"status": "skipped", "run_id": run_id, "path": str(path)}
    started, tic = datetime.datetime.now().astimezone(), time.monotonic()
    info = slurm_info()
    meta = {
        "versions": versions(packages),
        "git_commit": git_commit(source_dir or pathlib.Path.cwd()),
        "host": socket.gethostname(),
        "python_executable": sys.executable,
        "python_prefix": sys.prefix,
        "start_time": started.isoformat(),
        "slurm": info,
        "argv": " ".join(sys.argv),
        "devices": devices(),
        "threads": {
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else -1,
            **{var: os.environ.get(var, "") for var in THREAD_VARIABLES + ("XLA_FLAGS",)},
        },
    }
    every_s = lifeline.every_min * 60 if lifeline.every_min is not None else None
    checkpoint = Checkpoint(checkpoint_path(path), every_s, lifeline.every_steps)

    def finish(outcome: Outcome) -> None:
        meta.update(
            outcome.metadata,
            end_time=datetime.datetime.now().astimezone().isoformat(),
            wall_time_s=time.monotonic() - tic,
        )
        write_result(
            path,
            status=outcome.status,
            config=config,
            config_yaml=config_yaml,
            run_id=run_id,
            metadata=meta,
            tree=outcome.tree,
            message=outcome.message,
            extra=outcome.extra,
            file_format=file_format,
            failures=failures,
        )
        print_summary(path, app)  # read back from the file: the numbers it holds

    try:
        with no_new_empty_dirs(path.parent):  # refused for a full disk: nothing is left behind
            check_writable(path.parent)
            claim = Claim(path).acquire()
    except Busy as exc:
        print(f"Not running {run_id}: {exc}.", flush=True)
        return {"status": "busy", "run_id": run_id, "path": str(path)}
    clean_stale(path)  # left by a killed writer of this run (no live one: the claim is ours)
    try:
        if not force and is_completed(path):  # finished by another copy while this one queued
            print(f"Skipping run {run_id}: a completed result exists at {path}.")
            return {"status": "skipped", "run_id": run_id, "path": str(path)}
        reserve_note(path)  # should the disk fill up, the note saying so still fits
        with checkpoint.signals():
            outcome = work(checkpoint)
        if outcome.status == "interrupted":
            outcome = _interrupted(outcome, checkpoint, info, lifeline.max_requeues)
            if outcome.status in ("requeued", "interrupted"):
                drop_note(path)
                return {"status": outcome.status, "run_id": run_id, "path": str(path)}
        finish(outcome)
        if outcome.status != "timeout":
            checkpoint.remove()
    except Exception as exc:
        full = isinstance(exc, OSError) and exc.errno in FULL and exc.strerror  # `disk full writing <path> (...)`
        message = f"{type(exc).__name__}: {exc.strerror if full else exc}"
        if isinstance(exc, OSError):  # the result did not fit: keep what was trained where it does
            try:
                checkpoint.save_offered()
            except OSError as nor:
                message += f"; nor did its final state fit ({nor})"
        if isinstance(exc, UnusableCheckpoint) and checkpoint.path.exists():
            message += f"; it was moved to {checkpoint.set_aside('unusable').name}: a resubmit starts over"
        elif checkpoint.path.exists():
            message += f" (checkpoint at step {checkpoint.saved_step} kept: a resubmit resumes it)"
        try:
            finish(
                Outcome(
                    "failed",
                    {"error": {"type": type(exc).__name__, "traceback": traceback.format_exc()}},
                    message=message,
                )
            )
        except OSError as write_error:  # full disk, quota: leave a note, and the log says it too
            why = (
                f"the run failed ({message}) and its result could not be written ({write_error})"
                if not isinstance(exc, OSError)
                else f"the run failed: {message}; nor could its result be written"
            )
            print(why, file=sys.stderr, flush=True)
            write_note(path, why)
        exc.add_note(f"{RECORDED} {path}")
        raise
    finally:
        claim.release()  # after the result is written: no second copy starts in between
    return {"status": outcome.status, "run_id": run_id, "path": str(path), **outcome.summary}


RECORDED = "hpc: this failure is recorded for"  # the note `execute` adds to what it raises once it has


def recorded(exc: BaseException) -> bool:
    """Whether `exc` is a run's failure that `execute` already recorded (in its result file or
    note) and announced: a command line need only exit non-zero."""
    return any(note.startswith(RECORDED) for note in getattr(exc, "__notes__", ()))


_STOPPED: dict = {}  # (job id, restart count, cause) -> what this process already did about it


def execute_many(runs: list[dict], work: Callable[[list], dict], **common) -> list[dict]:
    """`execute` for several runs whose work is done together (an ensemble): `runs[i]` holds
    run `i`'s keyword arguments of `execute` (`path`, `run_id`, `config`, `config_yaml`, ...),
    `common` those they share.

    Every run gets its own claim, checkpoint, stop signals and result file, exactly as with
    `execute`; the runs that are neither completed nor busy are handed to one call of
    `work([(i, checkpoint), ...])`, which returns `{i: Outcome or the exception of run i}`.
    One run's exception fails that run alone; an exception of `work` itself fails every run
    it was given. **Returns:** what `execute` returned, per run (`status` `failed` where it raised).
    """
    outcomes: dict = {}
    results: list = [None] * len(runs)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000 + 40 * len(runs)))  # one level per run

    def nest(i: int, joined: list) -> None:  # run i's `execute` holds its claim while runs i+1... go on inside it
        if i == len(runs):
            if joined:
                try:
                    outcomes.update(work(joined))
                except Exception as exc:  # the shared work failed: every run it was given failed
                    outcomes.update({j: exc for j, _ in joined})
            return
        reached = False

        def one(checkpoint: Checkpoint) -> Outcome:
            nonlocal reached
            reached = True
            nest(i + 1, [*joined, (i, checkpoint)])
            got = outcomes[i]
            if isinstance(got, BaseException):
                raise got
            return got

        try:
            results[i] = execute(work=one, **runs[i], **common)
        except Exception as exc:  # its result file says so; the others are not affected
            results[i] = {"status": "failed", "run_id": runs[i]["run_id"], "path": str(runs[i]["path"]), "error": exc}
        finally:
            if not reached:  # skipped, busy or failed before its work: the others still train
                nest(i + 1, joined)

    nest(0, [])
    return results


def stop_task(cause: str, info: dict, max_requeues: int, done: str) -> str:
    """What a task stopped by a signal does (`cause`: `timeout` for SIGUSR2, else SIGTERM's),
    once `done` (`checkpoint at step 40`, or `between runs`) is safe: `requeued` (by Slurm, or
    by itself: within a preemption's grace time, or near its time limit with requeues left),
    `interrupted` (nothing to do: `scancel`, a node shutdown), or `timeout` (no requeue left).
    Decided once per task and signal: the members of an ensemble, which stop together, do not
    requeue their task twice."""
    restarts = int(info.get("restart_count") or 0)
    key = (info.get("job_id"), restarts, cause)
    if key[0] is not None and key in _STOPPED:
        return _STOPPED[key]
    what = _stop_task(cause, info, max_requeues, done, restarts)
    if key[0] is not None:
        _STOPPED[key] = what
    return what


def _stop_task(cause: str, info: dict, max_requeues: int, done: str, restarts: int) -> str:
    if cause != "timeout":
        preempted = slurm.preemption(info["job_id"], restarts) if "job_id" in info else None
        if preempted == "preempted":  # within a grace time: Slurm would end the task without a requeue
            slurm.requeue(info["job_id"])
        if preempted:
            print(f"Preempted: {done}; the task is requeued and the rerun resumes.", flush=True)
            return "requeued"
        print(f"Stopped by SIGTERM; {done}.", flush=True)
        return "interrupted"
    if "job_id" in info and restarts < max_requeues:
        slurm.requeue(info["job_id"])
        print(
            f"Time limit near: {done}; requeued task {info['job_id']} (requeue {restarts + 1} of {max_requeues}).",
            flush=True,
        )
        return "requeued"
    return "timeout"


def _interrupted(outcome: Outcome, checkpoint: Checkpoint, info: dict, max_requeues: int) -> Outcome:
    """What an interrupted run becomes: `requeued`, `interrupted` (nothing to write) or a
    `timeout` result."""
    step = checkpoint.saved_step
    done = f"checkpoint at step {step}" + ("" if checkpoint.stop == "timeout" else f" in {checkpoint.path}")
    what = stop_task(checkpoint.stop, info, max_requeues, done)
    if what != "timeout":
        return Outcome(what, {})
    restarts = int(info.get("restart_count") or 0)
    why = (
        f"after {restarts} requeue(s) (cluster.max_requeues={max_requeues})"
        if "job_id" in info
        else "outside Slurm, no requeue"
    )
    return dataclasses.replace(
        outcome,
        status="timeout",
        message=(f"time limit reached at step {step} {why}; the checkpoint is kept: `hpc resubmit` resumes it"),
    )

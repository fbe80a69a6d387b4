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
from contextlib import ExitStack
from importlib import metadata

import h5py

from . import scheduler
from .atomic import FULL, no_new_empty_dirs
from .checkpoint import Checkpoint, UnusableCheckpoint, checkpoint_path
from .claim import Busy, Claim
from .hygiene import THREAD_VARIABLES, devices
from .layout import check_writable
from .profile import Profile
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


def execute(path, work: Callable[[Checkpoint], Outcome], **run) -> dict:
    """Run `work` once for the run whose result file is `path`, and write that file atomically.

    `run`: the keyword arguments of `Life` (`run_id`, `config`, `config_yaml`, and optionally
    `packages`, `source_dir`, `force`, `file_format`, `lifeline`, `failures`, `app`). A completed
    result already at `path` skips the run (unless `force`). Provenance (versions of `packages`,
    the git commit of `source_dir`, host, Python, times, the scheduler's ids, argv) goes to
    `/metadata`; the root attribute `format` is `file_format`. `work`'s status is one of
    `hpc.store.STATUSES` or of the workload's own `failures`; `app`, an `hpc.App`, gives
    `packages`, `file_format` and `failures` instead. If `work` raises, a `failed` result with
    the traceback is written and the exception propagates.

    `work` gets the run's `Checkpoint` (beside `path`, per `lifeline`), which SIGUSR2 and
    SIGTERM ask to stop. When work comes back `interrupted`:
    - by SIGUSR2 (the time limit is near) in a task requeued fewer than
      `lifeline.max_requeues` times: the task requeues itself and the rerun resumes; no
      result is written. With no requeue left, the result is `timeout` with the partial history.
    - by SIGTERM in a task being preempted: requeued (by the scheduler, or by the task itself
      when a grace time runs, as Slurm would not requeue a task that ends within it); no
      result is written and the rerun resumes.
    - by SIGTERM otherwise (`scancel`, a node shutdown): nothing is written; the scheduler's
      state tells which, and a resubmitted run resumes from the checkpoint.
    The checkpoint is removed once a final result other than `timeout` is written.

    At most one copy of a run trains at a time (`hpc.claim`): a run another live process
    owns is not started (`busy`).

    **Returns:** `{"status", "run_id", "path", **outcome.summary}`; `status` is `skipped` when
    the run was skipped, `busy`, `requeued` or `interrupted` when no result was written.
    """
    life = Life(path, **run)
    early = life.begin()
    if early is not None:
        return early
    try:
        with life.checkpoint.signals():
            outcome = work(life.checkpoint)
        return life.conclude(outcome)
    except Exception as exc:
        life.fail(exc)
        raise
    finally:
        life.release()  # after the result is written: no second copy starts in between


def execute_many(runs: list[dict], work: Callable[[list], dict], **common) -> list[dict]:
    """`execute` for several runs whose work is done together (an ensemble): `runs[i]` holds
    run `i`'s keyword arguments of `execute` (`path`, `run_id`, `config`, `config_yaml`, ...),
    `common` those they share.

    Every run gets its own claim, checkpoint, stop signals and result file, exactly as with
    `execute`; the runs that are neither completed nor busy are handed to one call of
    `work([(i, checkpoint), ...])`, which returns `{i: Outcome or the exception of run i}`.
    One run's exception fails that run alone; an exception of `work` itself fails every run
    it was given. The runs of one task stop together: what a stop signal makes of the task
    (requeued, interrupted, timeout) is decided once for all of them.
    **Returns:** what `execute` returned, per run (`status` `failed` where it raised).
    """
    stopper = Stopper()
    lives = [Life(stopper=stopper, **run, **common) for run in runs]
    results: list = [None] * len(runs)
    for i, life in enumerate(lives):  # each claimed in turn; a skipped, busy or failed one is done
        try:
            results[i] = life.begin()
        except Exception as exc:  # its result file says so; the others are not affected
            results[i] = life.failed(exc)
    chosen = [i for i, result in enumerate(results) if result is None]
    with ExitStack() as signals:  # held until every result is written, as `execute` holds its own
        for i in chosen:
            signals.enter_context(lives[i].checkpoint.signals())
        try:
            outcomes = work([(i, lives[i].checkpoint) for i in chosen]) if chosen else {}
        except Exception as exc:  # the shared work failed: every run it was given failed
            outcomes = {i: exc for i in chosen}
        for i in chosen:
            results[i] = lives[i].end(outcomes, i)
    return results


class Life:
    """One run's lifecycle in named steps: `begin` (skip it if done, claim it, reserve room for
    a note), `conclude` (what its work's outcome becomes: a result file, or a requeue), `fail`
    (a `failed` result and what was kept), `release`. `execute` and `execute_many` call them."""

    def __init__(
        self,
        path,
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
        stopper: "Stopper | None" = None,
    ):
        if app is not None:  # an `hpc.App` gives the packages, the file format and the failure statuses
            packages, file_format, failures = app.packages, app.file_format, app.failures
        self.path, self.run_id, self.config, self.config_yaml = pathlib.Path(path), run_id, config, config_yaml
        self.packages, self.source_dir, self.force, self.file_format = packages, source_dir, force, file_format
        self.lifeline, self.failures, self.app = lifeline, failures, app
        self.stopper = stopper or Stopper()
        every_s = lifeline.every_min * 60 if lifeline.every_min is not None else None
        self.checkpoint = Checkpoint(checkpoint_path(self.path), every_s, lifeline.every_steps)
        self.claim: Claim | None = None
        self.meta: dict = {}
        self.tic = 0.0

    def answer(self, status: str, **summary) -> dict:
        return {"status": status, "run_id": self.run_id, "path": str(self.path), **summary}

    def skip(self, reason: str = " (force=true reruns it)") -> dict | None:
        """`skipped` when a completed result exists (and `force` is off), else `None`."""
        if self.force or not is_completed(self.path):
            return None
        print(f"Skipping run {self.run_id}: a completed result exists at {self.path}{reason}.")
        return self.answer("skipped")

    def begin(self) -> dict | None:
        """Make the run this process's to train: `None` when it is, else what `execute`
        returns for it (`skipped`, `busy`). Raises (after recording it) when the run cannot
        even start: a full disk."""
        early = self.skip()
        if early is not None:
            return early
        self.tic = time.monotonic()
        self.meta = provenance(self.packages, self.source_dir, self.stopper.env)
        try:
            with no_new_empty_dirs(self.path.parent):  # refused for a full disk: nothing is left behind
                check_writable(self.path.parent)
                self.claim = Claim(self.path).acquire()
        except Busy as exc:
            print(f"Not running {self.run_id}: {exc}.", flush=True)
            return self.answer("busy")
        clean_stale(self.path)  # left by a killed writer of this run (no live one: the claim is ours)
        try:
            early = self.skip("")  # finished by another copy while this one queued
            if early is None:
                reserve_note(self.path)  # should the disk fill up, the note saying so still fits
        except Exception as exc:
            self.fail(exc)
            self.release()
            raise
        if early is not None:
            self.release()
        return early

    def conclude(self, outcome: Outcome) -> dict:
        """Write what `outcome` says (an interrupted run: requeued, left for a resubmit, or
        `timeout`); the checkpoint goes once a final result other than `timeout` is written."""
        if outcome.status == "interrupted":
            outcome = self.stopper.interrupted(outcome, self.checkpoint, self.lifeline.max_requeues)
            if outcome.status in ("requeued", "interrupted"):
                drop_note(self.path)
                return self.answer(outcome.status)
        self.write(outcome)
        if outcome.status != "timeout":
            self.checkpoint.remove()
        return self.answer(outcome.status, **outcome.summary)

    def write(self, outcome: Outcome) -> None:
        """The result file, atomically, with the run's provenance; then its summary, read back."""
        self.meta.update(
            outcome.metadata,
            end_time=datetime.datetime.now().astimezone().isoformat(),
            wall_time_s=time.monotonic() - self.tic,
        )
        write_result(
            self.path,
            status=outcome.status,
            config=self.config,
            config_yaml=self.config_yaml,
            run_id=self.run_id,
            metadata=self.meta,
            tree=outcome.tree,
            message=outcome.message,
            extra=outcome.extra,
            file_format=self.file_format,
            failures=self.failures,
        )
        print_summary(self.path, self.app)  # read back from the file: the numbers it holds

    def fail(self, exc: Exception) -> None:
        """Record `exc` as the run's `failed` result (or, should that not fit, a note), keeping
        what was trained where it fits; mark `exc` as recorded (`recorded`)."""
        message = self.failure_message(exc)
        try:
            self.write(
                Outcome("failed", {"error": {"type": type(exc).__name__, "traceback": traceback.format_exc()}}, message)
            )
        except OSError as unwritten:  # full disk, quota: leave a note, and the log says it too
            why = (
                f"the run failed ({message}) and its result could not be written ({unwritten})"
                if not isinstance(exc, OSError)
                else f"the run failed: {message}; nor could its result be written"
            )
            print(why, file=sys.stderr, flush=True)
            write_note(self.path, why)
        exc.add_note(f"{RECORDED} {self.path}")

    def failure_message(self, exc: Exception) -> str:
        """What a `failed` result says of `exc`, and of the checkpoint it leaves (a result that
        did not fit: the final training state, saved where it fits)."""
        full = isinstance(exc, OSError) and exc.errno in FULL and exc.strerror  # `disk full writing <path> (...)`
        message = f"{type(exc).__name__}: {exc.strerror if full else exc}"
        checkpoint = self.checkpoint
        if isinstance(exc, OSError):  # the result did not fit: keep what was trained where it does
            try:
                checkpoint.save_offered()
            except OSError as nor:
                message += f"; nor did its final state fit ({nor})"
        if isinstance(exc, UnusableCheckpoint) and checkpoint.path.exists():
            message += f"; it was moved to {checkpoint.set_aside('unusable').name}: a resubmit starts over"
        elif checkpoint.path.exists():
            message += f" (checkpoint at step {checkpoint.saved_step} kept: a resubmit resumes it)"
        return message

    def failed(self, exc: Exception) -> dict:
        """What `execute_many` returns for a run whose `execute` would have raised `exc`."""
        return self.answer("failed", error=exc)

    def end(self, outcomes: dict, i: int) -> dict:
        """`conclude` with run `i`'s entry of a shared work's `outcomes` (an exception fails
        it), then `release`: what `execute_many` returns for the run."""
        try:
            got = outcomes[i]
            if isinstance(got, BaseException):
                raise got
            return self.conclude(got)
        except Exception as exc:  # its result file says so; the others are not affected
            self.fail(exc)
            return self.failed(exc)
        finally:
            self.release()

    def release(self) -> None:
        if self.claim is not None:
            self.claim.release()


def provenance(packages, source_dir, env) -> dict:
    """Where and how a run ran, for its `/metadata`: versions, commit, host, Python, start
    time, the scheduler's record of the task (`env.fields`, under `slurm`, the result file's
    name for it), argv, devices and thread settings."""
    return {
        "versions": versions(packages),
        "git_commit": git_commit(source_dir or pathlib.Path.cwd()),
        "host": socket.gethostname(),
        "python_executable": sys.executable,
        "python_prefix": sys.prefix,
        "start_time": datetime.datetime.now().astimezone().isoformat(),
        "slurm": dict(env.fields),
        "argv": " ".join(sys.argv),
        "devices": devices(),
        "threads": {
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else -1,
            **{var: os.environ.get(var, "") for var in THREAD_VARIABLES + ("XLA_FLAGS",)},
        },
    }


RECORDED = "hpc: this failure is recorded for"  # the note `execute` adds to what it raises once it has


def recorded(exc: BaseException) -> bool:
    """Whether `exc` is a run's failure that `execute` already recorded (in its result file or
    note) and announced: a command line need only exit non-zero."""
    return any(note.startswith(RECORDED) for note in getattr(exc, "__notes__", ()))


class Stopper:
    """What a task stopped by a signal does, asked of the scheduler it runs under (its
    `TaskEnv`, `requeue`, `preemption`), decided once per signal: the runs of an ensemble,
    which stop together, do not requeue their task twice."""

    def __init__(self, backend: scheduler.Scheduler | None = None):
        self.backend = backend or scheduler.here()
        self.env = self.backend.env()
        self.decided: dict[str, str] = {}  # cause -> what was done about it

    def decide(self, cause: str, max_requeues: int, done: str) -> str:
        """Once `done` (`checkpoint at step 40`, or `between runs`) is safe, for a stop of
        `cause` (`timeout` for SIGUSR2, else SIGTERM's): `requeued` (by the scheduler, or by
        the task itself: within a preemption's grace time, or near its time limit with requeues
        left), `interrupted` (nothing to do: `scancel`, a node shutdown), or `timeout` (no
        requeue left)."""
        if cause not in self.decided:
            self.decided[cause] = self._decide(cause, max_requeues, done)
        return self.decided[cause]

    def _decide(self, cause: str, max_requeues: int, done: str) -> str:
        job, restarts = self.env.job_id, self.env.restart_count
        if cause != "timeout":
            preempted = self.backend.preemption(job, restarts) if job is not None else None
            if preempted == "preempted":  # within a grace time: Slurm would end the task without a requeue
                self.backend.requeue(job)
            if preempted:
                print(f"Preempted: {done}; the task is requeued and the rerun resumes.", flush=True)
                return "requeued"
            print(f"Stopped by SIGTERM; {done}.", flush=True)
            return "interrupted"
        if job is not None and restarts < max_requeues:
            self.backend.requeue(job)
            print(
                f"Time limit near: {done}; requeued task {job} (requeue {restarts + 1} of {max_requeues}).", flush=True
            )
            return "requeued"
        return "timeout"

    def interrupted(self, outcome: Outcome, checkpoint: Checkpoint, max_requeues: int) -> Outcome:
        """What an interrupted run becomes: `requeued`, `interrupted` (nothing to write) or a
        `timeout` result."""
        step = checkpoint.saved_step
        done = f"checkpoint at step {step}" + ("" if checkpoint.stop == "timeout" else f" in {checkpoint.path}")
        what = self.decide(checkpoint.stop, max_requeues, done)
        if what != "timeout":
            return Outcome(what, {})
        why = (
            f"after {self.env.restart_count} requeue(s) (cluster.max_requeues={max_requeues})"
            if self.env.job_id is not None
            else "outside Slurm, no requeue"
        )
        return dataclasses.replace(
            outcome,
            status="timeout",
            message=f"time limit reached at step {step} {why}; the checkpoint is kept: `hpc resubmit` resumes it",
        )

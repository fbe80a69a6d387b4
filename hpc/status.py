"""The state of every run of a sweep, from its result files and from Slurm.

Every state printed is one we know: a run Slurm lists is pending or running; a result file
says completed, failed or timeout (or does not read: corrupt); a task that ended without a
result has Slurm's final state (timeout, preempted, out_of_memory, node_fail, cancelled,
failed); a plain-sbatch sweep not yet submitted is planned. When Slurm does not answer, runs
without a result are `unknown`, never lost, and so are those of a damaged record that no
submission it still holds accounts for; `lost` is kept for runs nobody can account for.
"""

import dataclasses
import datetime
import os
import pathlib
import socket
import time

from . import claim, local, scheduler
from .checkpoint import checkpoint_path
from .store import is_completed, note_path, read_note, read_status
from .sweep import SUBMIT_LOCK, Sweep

# The one vocabulary of run states, and its named sets; every command uses these.
WAITING = ("planned", "deferred")  # not submitted yet: by hand (plain sbatch), or held back by the job limit
ACTIVE = ("pending", "running")  # Slurm, a local driver or a live claim has it
DONE = ("completed",)
ENDED_BADLY = ("failed", "timeout", "preempted", "out_of_memory", "node_fail", "cancelled", "corrupt", "lost")
UNSURE = ("unknown",)  # Slurm does not answer: neither active nor ended, as far as we know
STATES = WAITING + ACTIVE + DONE + ENDED_BADLY + UNSURE
NOT_FINISHED = WAITING + ACTIVE + UNSURE  # may still complete without anyone doing anything but `sbatch`
NOT_COMPLETED = WAITING + ACTIVE + ENDED_BADLY + UNSURE  # `hpc failed` lists these less ACTIVE
RERUN = ("deferred",) + ENDED_BADLY  # what `resubmit` sends: never active, planned or unknown
ALWAYS_SHOWN = ("pending", "running", "completed", "failed", "lost")


HINTS = {
    "out_of_memory": ": the task used more memory than it asked for; resubmit with more "
    "(hpc resubmit --set mem_per_cpu_mb=<MB>)",
    "timeout": ": the time limit came before a checkpoint could requeue it (hpc resubmit --set time_min=<min>)",
    "node_fail": ": its node failed; a resubmit runs it elsewhere",
    "preempted": ": a higher-priority job took its node",
}


@dataclasses.dataclass(frozen=True)
class RunState:
    run_id: str
    status: str  # one of STATES
    reason: str = ""
    job: str = ""  # Slurm task id of its latest submission ("<array job id>_<index>")
    cancel: str = ""  # a Slurm job of this run's that can never start: `hpc resubmit` cancels it


def _cluster_tasks(sweep: Sweep, backend: scheduler.Scheduler) -> tuple[dict, dict, str]:
    """({submission position: [task id per run]}, {task id: Slurm state}, why Slurm is
    unreachable or "") for the sweep's Slurm and plain-sbatch submissions. Submissions whose job
    id the record lacks (plain sbatch; a submitter killed between `sbatch` and saving the
    record) are found by their job name, which is unique to the sweep and the submission."""
    job_ids = {s["job_id"] for s in sweep.submissions if s["kind"] == "slurm" and s["job_id"]}
    by_names = [s for s in sweep.submissions if s["kind"] in ("slurm", "manifest") and not s["job_id"]]
    try:
        found = backend.tasks(job_ids, {s["job_name"] for s in by_names if s.get("job_name")})
    except scheduler.Unreachable as exc:
        return {}, {}, str(exc)
    by_name = {(t.name, t.index): t.task_id for t in found.values()}
    tasks = {}
    for n, sub in enumerate(sweep.submissions):
        if sub["kind"] == "slurm" and sub["job_id"]:
            tasks[n] = sub.get("tasks") or []
        elif sub["kind"] in ("slurm", "manifest") and not sub["job_id"]:  # as `by_names`
            name, count, per_task = sub.get("job_name"), len(sub["runs"]), sweep.profile(n).runs_per_task
            # submitit sends a batch of one task as a plain job: no array index
            tasks[n] = [
                by_name.get((name, i // per_task)) or (by_name.get((name, None), "") if count <= per_task else "")
                for i in range(count)
            ]
    return tasks, {t.task_id: t.state for t in found.values()}, ""


def _from_file(run_id: str, path, job: str) -> RunState:
    try:
        summary = read_status(path)
    except (OSError, KeyError) as exc:
        return RunState(
            run_id, "corrupt", f"result file {path} does not read ({type(exc).__name__}); `hpc resubmit` reruns it", job
        )
    status = summary.get("status")
    if status == "completed":
        return RunState(run_id, "completed", "", job)
    return RunState(run_id, "timeout" if status == "timeout" else "failed", summary.get("message") or status, job)


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What is known of one run when its state is decided: its latest submission, the
    scheduler's word for its task, and what lies beside its result file."""

    run_id: str
    path: os.PathLike
    latest: object  # `hpc.sweep.Placement` or None: where the run was last submitted
    job: str  # the scheduler's task id of the latest submission ("" when none is known)
    state: str | None  # the scheduler's word for that task (None: it lists none)
    present: set  # the names in the results folder
    sweep: Sweep
    backend: scheduler.Scheduler
    owners: "_Owners"
    unreachable: str  # why the scheduler did not answer ("" when it did)

    @property
    def kind(self) -> str | None:
        return self.latest.submission["kind"] if self.latest is not None else None

    @property
    def active(self) -> str | None:
        """`pending` or `running` when the scheduler lists the task as live."""
        return self.backend.active.get(self.state) if self.state else None

    @property
    def final(self) -> str | None:
        """Our status for the scheduler's final word on a task that did not complete."""
        return self.backend.final.get(self.state) if self.state else None

    def has(self, path) -> bool:
        return pathlib.Path(path).name in self.present

    def state_(self, status: str, reason: str = "", **more) -> RunState:
        return RunState(self.run_id, status, reason, self.job, **more)


def run_states(sweep: Sweep, backend: scheduler.Scheduler | None = None) -> list[RunState]:
    """One `RunState` per run, in the sweep's order (see the module docstring): the first of
    `RULES` that speaks for it. The cluster's scheduler (`backend`, default
    `hpc.scheduler.cluster()`) is asked once per sweep, and only when the sweep was submitted to it."""
    backend = backend or scheduler.cluster()
    on_cluster = any(s["kind"] in ("slurm", "manifest") for s in sweep.submissions)
    tasks, states, unreachable = _cluster_tasks(sweep, backend) if on_cluster else ({}, {}, "")
    owners = _Owners(backend)
    folder = sweep.result_path("-").parent
    present = _names(folder)  # after the scheduler was asked: a run that ended meanwhile has its file here
    out = []
    for run_id in sweep.runs:
        latest = sweep.latest_submission(run_id)
        job = tasks.get(latest.position, [])[latest.index] if latest is not None and tasks.get(latest.position) else ""
        evidence = Evidence(
            run_id, folder / f"{run_id}.h5", latest, job, states.get(job) if job else None, present, sweep,
            backend, owners, unreachable
        )  # fmt: skip
        out.append(next(state for rule in RULES if (state := rule(evidence)) is not None))
    return out


# The rules, in order: each takes a run's `Evidence` and returns its `RunState`, or `None`
# when it does not decide. A new state is a new rule.


def _requeued_after_completing(e: Evidence) -> RunState | None:
    """Requeued after it finished (a late requeue): it will skip; the result stands."""
    if e.active == "pending" and is_completed(e.path):
        return e.state_("completed", f"its task is {e.state} again; it will skip the run")
    return None


def _submission_interrupted(e: Evidence) -> RunState | None:
    """A submitter killed after `sbatch`, before it saved the job id and the tasks' work."""
    interrupted = e.kind == "slurm" and not e.latest.submission["job_id"]
    if not (interrupted and e.state and not e.backend.has_payload(e.sweep.path, e.job)):
        return None
    submitter = e.owners.submitting(e.sweep)  # between sbatch and saving the job id, alive: wait for it
    if submitter is not None:
        return e.state_("pending", f"being submitted ({submitter})")
    return _stranded(e.run_id, e.job, e.state)


def _live_task(e: Evidence) -> RunState | None:
    """The scheduler lists its task as pending or running."""
    if e.active is None:
        return None
    per_task = e.sweep.profile(e.latest.position).runs_per_task
    if per_task > 1:
        return _in_packed_task(e, per_task)
    return e.state_(e.active, e.state)


def _claimed(e: Evidence) -> RunState | None:
    """Trained now: by another submission, a rerun, a local process."""
    owner = claim.read(claim.claim_path(e.path)) if e.has(claim.claim_path(e.path)) else None
    if owner and e.owners.alive(owner):
        return e.state_("running", f"claimed by {claim.owner_text(owner)}")
    return None


def _result_file(e: Evidence) -> RunState | None:
    """Its result file says; unless the latest task failed without writing one since."""
    if not e.has(e.path):
        return None
    if e.final and _older_than(e.path, e.latest.submission):
        # the latest task failed before writing: that is the news, not the earlier result
        return e.state_(
            e.final,
            f"{e.backend.title} {e.state}: its latest task ended without writing a result (the "
            f"result file is from an earlier try){HINTS.get(e.final, '')}; see its {e.backend.title} log",
        )
    return _from_file(e.run_id, e.path, e.job)


def _note(e: Evidence) -> RunState | None:
    """A note left where the result could not be written (a full disk, a run not started)."""
    note = read_note(e.path) if e.has(note_path(e.path)) else None
    if note is None:
        return None
    said = note.get("status")
    return e.state_(said if said in ENDED_BADLY else "failed", note.get("message", ""))


def _resume(e: Evidence) -> str:
    kept = e.has(checkpoint_path(e.path))
    return "; its checkpoint is kept, a resubmit resumes it" if kept else ""


def _not_submitted(e: Evidence) -> RunState | None:
    """No submission accounts for it: the record is damaged, it was never submitted, or the
    job limit deferred it."""
    if e.latest is None and e.sweep.damaged:  # its submission may be in the part that did not read
        return RunState(e.run_id, "unknown", "no result; the damaged record does not say where it was submitted")
    if e.latest is None:
        return RunState(e.run_id, "lost", "never submitted")
    if e.kind == "deferred":
        why = "not submitted: the cluster's job limit was reached; `hpc resubmit` submits it"
        return RunState(e.run_id, "deferred", why)
    return None


def _cluster_unknown(e: Evidence) -> RunState | None:
    """Sent to the cluster, whose scheduler did not answer, or not yet (a plan), or under a
    job name it does not know."""
    if e.kind not in ("slurm", "manifest"):
        return None
    if e.unreachable:
        return e.state_("unknown", f"{e.backend.title} unreachable: {e.unreachable}")
    if e.kind == "manifest" and not e.job:
        return RunState(e.run_id, "planned", f"not submitted yet: sbatch {e.latest.submission.get('script')}")
    if e.kind == "slurm" and not e.latest.submission["job_id"] and not e.job:
        return RunState(
            e.run_id,
            "lost",
            f"its submission was interrupted before its job id was saved, and {e.backend.title} knows no job named "
            f"{e.latest.submission.get('job_name')}; `hpc resubmit` sends it",
        )
    return None


def _task_ended(e: Evidence) -> RunState | None:
    """The scheduler's final word on a task that left no result."""
    if e.final:
        state = e.backend.final_state(e.sweep.path, e.job, e.state)  # its log may say more (out of memory)
        final = e.backend.final[state]
        return e.state_(final, f"{e.backend.title} {state}{HINTS.get(final, '')}{_resume(e)}")
    if e.state is not None and e.state == e.backend.completed:
        return e.state_("lost", "the task ended without writing a result" + _resume(e))
    return None


def _local_run(e: Evidence) -> RunState | None:
    """A run of a local pool: its driver says whether it still waits."""
    if e.kind != "local":
        return None
    driver = e.latest.submission.get("driver")
    alive = local.driver_alive(driver)
    if alive is None:
        return e.state_("unknown", f"a local run on {driver['host']}: ask there")
    if alive:
        return e.state_("pending", f"queued in the local pool (driver pid {driver['pid']})")
    return e.state_("lost", "the local run ended without writing a result" + _resume(e))


def _nobody_knows(e: Evidence) -> RunState:
    return e.state_("lost", f"no result, and {e.backend.title} no longer knows the task" + _resume(e))


RULES = (
    _requeued_after_completing,
    _submission_interrupted,
    _live_task,
    _claimed,
    _result_file,
    _note,
    _not_submitted,
    _cluster_unknown,
    _task_ended,
    _local_run,
    _nobody_knows,
)


def _stranded(run_id: str, job: str, slurm_state: str) -> RunState:
    """A run whose array Slurm took while its submitter was killed before saving the tasks'
    work: Slurm holds the task, but it cannot start (it fails at launch when released)."""
    return RunState(
        run_id,
        "failed",
        f"its submission was interrupted after sbatch: Slurm's task {job} ({slurm_state}) was never given "
        "its run and cannot start; `hpc resubmit` cancels it and sends the run again",
        job,
        cancel=job.split("_")[0],
    )


def _names(folder) -> set[str]:
    """The names in `folder` (none when it does not exist): one listing, not a few `stat` calls
    per run, which on a parallel filesystem's metadata server is what makes a status slow."""
    try:
        return {entry.name for entry in os.scandir(folder)}
    except OSError:
        return set()


def _in_packed_task(e: Evidence, per_task: int) -> RunState:
    """A run whose task trains several runs one after the other and is active: the task's
    state is not the run's. Its result written since the submission (or a completed one, which
    the task skips) says what became of it; a live claim, that it trains now; else it waits
    for its turn in the task."""
    if is_completed(e.path) or (e.path.exists() and not _older_than(e.path, e.latest.submission)):
        return _from_file(e.run_id, e.path, e.job)
    owner = claim.read(claim.claim_path(e.path))
    if owner and e.owners.alive(owner):
        return e.state_("running", f"in task {e.job}, claimed by {claim.owner_text(owner)}")
    turn = "its task is running another of its runs" if e.active == "running" else f"its task is {e.state}"
    return e.state_("pending", f"{turn}; it trains {per_task} runs one after the other")


def _older_than(path, submission: dict) -> bool:
    """Whether the file at `path` was last written before `submission` was made."""
    submitted = datetime.datetime.fromisoformat(submission["submitted"]).timestamp()
    return path.stat().st_mtime < submitted


class _Owners:
    """Liveness of claim owners, asking Slurm at most once per status."""

    def __init__(self, backend: scheduler.Scheduler):
        self.backend = backend
        self.live: set[str] | None = None
        self.submitter: tuple[str | None] = ()  # (who submits to the sweep now, or None), once asked

    def submitting(self, sweep: Sweep) -> str | None:
        """Who is submitting to `sweep` now (`hpc.launch.exclusive`), or `None`."""
        if not self.submitter:
            owner = claim.read(claim.claim_path(sweep.path / SUBMIT_LOCK))
            mine = owner and (owner.get("host"), owner.get("pid")) == (socket.gethostname(), os.getpid())
            self.submitter = (claim.owner_text(owner) if owner and not mine and self.alive(owner) else None,)
        return self.submitter[0]

    def alive(self, owner: dict) -> bool:
        if owner.get("job") and self.live is None:
            try:
                self.live = self.backend.live_jobs()
            except scheduler.Unreachable:
                return True
        return claim.owner_alive(owner, self.live)


def totals(states: list[RunState]) -> dict[str, int]:
    """Count per state: always the main ones, the others where non-zero."""
    counts = {s: sum(r.status == s for r in states) for s in STATES}
    return {s: n for s, n in counts.items() if n or s in ALWAYS_SHOWN}


def unfinished(states: list[RunState]) -> list[str]:
    """Runs to resubmit (`RERUN`)."""
    return [r.run_id for r in states if r.status in RERUN]


FIRST_POLL_S = 1.0  # `wait_for`'s first pause; each next one is 1.5 times longer, up to its interval


def wait_for(sweep: Sweep, interval_s: float = 5.0, timeout_s: float | None = None) -> list:
    """Block until no run of `sweep` is pending, running or unknown (or `timeout_s` passes);
    of a damaged record, whose unknown runs stay so, until none is pending or running. The
    pauses between polls start at `FIRST_POLL_S` and grow to `interval_s`: a short sweep is
    seen done within a second or two, a long one costs the controller a query per interval."""
    start = time.monotonic()
    pause = min(FIRST_POLL_S, interval_s)
    while True:
        states = run_states(sweep)
        active = [r for r in states if r.status in (ACTIVE if sweep.damaged else ACTIVE + UNSURE)]
        if not active:
            return states
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"sweep {sweep.sweep_id} still has runs active after {timeout_s} s: {totals(states)}")
        time.sleep(pause)
        pause = min(pause * 1.5, interval_s)

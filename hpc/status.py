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
import socket
import time

from . import claim, local, slurm
from .checkpoint import checkpoint_path
from .slurm import logs
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


def _slurm_tasks(sweep: Sweep) -> tuple[dict, dict, str]:
    """({submission position: [task id per run]}, {task id: Slurm state}, why Slurm is
    unreachable or "") for the sweep's Slurm and plain-sbatch submissions. Submissions whose job
    id the record lacks (plain sbatch; a submitter killed between `sbatch` and saving the
    record) are found by their job name, which is unique to the sweep and the submission."""
    job_ids = {s["job_id"] for s in sweep.submissions if s["kind"] == "slurm" and s["job_id"]}
    by_names = [s for s in sweep.submissions if s["kind"] in ("slurm", "manifest") and not s["job_id"]]
    try:
        found = slurm.tasks(job_ids, {s["job_name"] for s in by_names if s.get("job_name")})
    except slurm.SlurmUnreachable as exc:
        return {}, {}, str(exc)
    by_name = {(t.name, t.index): t.task_id for t in found.values()}
    tasks = {}
    for n, sub in enumerate(sweep.submissions):
        if sub["kind"] == "slurm" and sub["job_id"]:
            tasks[n] = sub.get("tasks") or []
        elif sub["kind"] in ("slurm", "manifest") and not sub["job_id"]:  # as `by_names`
            name, count, per_task = sub.get("job_name"), len(sub["runs"]), _per_task(sub)
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


def run_states(sweep: Sweep) -> list[RunState]:
    """One `RunState` per run, in the sweep's order (see the module docstring). Slurm is
    asked once per sweep, and only when the sweep was submitted to it."""
    on_slurm = any(s["kind"] in ("slurm", "manifest") for s in sweep.submissions)
    tasks, states, unreachable = _slurm_tasks(sweep) if on_slurm else ({}, {}, "")
    owners = _Owners()
    folder = sweep.result_path("-").parent
    present = _names(folder)  # after Slurm was asked: a run that ended meanwhile has its file here
    out = []
    for run_id in sweep.runs:
        latest = sweep.latest_submission(run_id)
        kind = latest.submission["kind"] if latest is not None else None
        job = tasks.get(latest.position, [])[latest.index] if latest is not None and tasks.get(latest.position) else ""
        slurm_state = states.get(job) if job else None
        path = folder / f"{run_id}.h5"
        if slurm.ACTIVE.get(slurm_state) == "pending" and is_completed(path):
            # requeued after it finished (a late `scontrol requeue`): it will skip; the result stands
            out.append(RunState(run_id, "completed", f"its task is {slurm_state} again; it will skip the run", job))
            continue
        interrupted = kind == "slurm" and not latest.submission["job_id"]  # killed before saving the job id
        if interrupted and slurm_state and not logs.has_payload(sweep.path, job):
            submitter = owners.submitting(sweep)  # between sbatch and saving the job id, alive: wait for it
            out.append(
                _stranded(run_id, job, slurm_state)
                if submitter is None
                else RunState(run_id, "pending", f"being submitted ({submitter})", job)
            )
            continue
        if slurm_state in slurm.ACTIVE and _per_task(latest.submission) > 1:
            out.append(_in_packed_task(run_id, path, latest.submission, job, slurm_state, owners))
            continue
        if slurm_state in slurm.ACTIVE:
            out.append(RunState(run_id, slurm.ACTIVE[slurm_state], slurm_state, job))
            continue
        owner = claim.read(claim.claim_path(path)) if f"{run_id}{claim.SUFFIX}" in present else None
        if owner and owners.alive(owner):  # trained now: by another submission, a rerun, a local process
            out.append(RunState(run_id, "running", f"claimed by {claim.describe(owner)}", job))
            continue
        if path.name in present:
            if slurm_state in slurm.FINAL and _older_than(path, latest.submission):
                # the latest task failed before writing: that is the news, not the earlier result
                hint = HINTS.get(slurm.FINAL[slurm_state], "")
                out.append(
                    RunState(
                        run_id,
                        slurm.FINAL[slurm_state],
                        f"Slurm {slurm_state}: its latest task ended without writing a result (the "
                        f"result file is from an earlier try){hint}; see its Slurm log",
                        job,
                    )
                )
                continue
            out.append(_from_file(run_id, path, job))
            continue
        note = read_note(path) if note_path(path).name in present else None
        if note is not None:
            said = note.get("status")
            out.append(RunState(run_id, said if said in ENDED_BADLY else "failed", note.get("message", ""), job))
            continue
        kept = checkpoint_path(path).name in present
        resume = "; its checkpoint is kept, a resubmit resumes it" if kept else ""
        if latest is None and sweep.damaged:  # its submission may be in the part that did not read
            out.append(RunState(run_id, "unknown", "no result; the damaged record does not say where it was submitted"))
        elif latest is None:
            out.append(RunState(run_id, "lost", "never submitted"))
        elif kind == "deferred":
            out.append(
                RunState(
                    run_id, "deferred", "not submitted: the cluster's job limit was reached; `hpc resubmit` submits it"
                )
            )
        elif kind in ("slurm", "manifest") and unreachable:
            out.append(RunState(run_id, "unknown", f"Slurm unreachable: {unreachable}", job))
        elif kind == "manifest" and not job:
            out.append(RunState(run_id, "planned", f"not submitted yet: sbatch {latest.submission.get('script')}"))
        elif kind == "slurm" and not latest.submission["job_id"] and not job:
            out.append(
                RunState(
                    run_id,
                    "lost",
                    "its submission was interrupted before its job id was saved, and Slurm knows no job named "
                    f"{latest.submission.get('job_name')}; `hpc resubmit` sends it",
                )
            )
        elif slurm_state in slurm.FINAL:
            if slurm_state == "FAILED" and logs.says_oom(sweep.path, job):
                slurm_state = "OUT_OF_MEMORY"  # the job step was; the batch script around it just failed
            hint = HINTS.get(slurm.FINAL[slurm_state], "")
            out.append(RunState(run_id, slurm.FINAL[slurm_state], f"Slurm {slurm_state}{hint}{resume}", job))
        elif slurm_state == "COMPLETED":
            out.append(RunState(run_id, "lost", "the task ended without writing a result" + resume, job))
        elif kind == "local":
            driver = latest.submission.get("driver")
            alive = local.driver_alive(driver)
            if alive is None:
                out.append(RunState(run_id, "unknown", f"a local run on {driver['host']}: ask there"))
            elif alive:
                out.append(RunState(run_id, "pending", f"queued in the local pool (driver pid {driver['pid']})"))
            else:
                out.append(RunState(run_id, "lost", "the local run ended without writing a result" + resume))
        else:
            out.append(RunState(run_id, "lost", "no result, and Slurm no longer knows the task" + resume, job))
    return out


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


def _per_task(submission: dict) -> int:
    """How many runs each task of `submission` trains (`cluster.runs_per_task`)."""
    return int((submission.get("cluster") or {}).get("runs_per_task") or 1)


def _in_packed_task(run_id: str, path, submission: dict, job: str, slurm_state: str, owners) -> RunState:
    """A run whose task trains several runs one after the other and is active: the task's
    state is not the run's. Its result written since the submission (or a completed one, which
    the task skips) says what became of it; a live claim, that it trains now; else it waits
    for its turn in the task."""
    if is_completed(path) or (path.exists() and not _older_than(path, submission)):
        return _from_file(run_id, path, job)
    owner = claim.read(claim.claim_path(path))
    if owner and owners.alive(owner):
        return RunState(run_id, "running", f"in task {job}, claimed by {claim.describe(owner)}", job)
    turn = "its task is running another of its runs" if slurm_state == "RUNNING" else f"its task is {slurm_state}"
    return RunState(run_id, "pending", f"{turn}; it trains {_per_task(submission)} runs one after the other", job)


def _older_than(path, submission: dict) -> bool:
    """Whether the file at `path` was last written before `submission` was made."""
    submitted = datetime.datetime.fromisoformat(submission["submitted"]).timestamp()
    return path.stat().st_mtime < submitted


class _Owners:
    """Liveness of claim owners, asking Slurm at most once per status."""

    def __init__(self):
        self.live: set[str] | None = None
        self.submitter: tuple[str | None] = ()  # (who submits to the sweep now, or None), once asked

    def submitting(self, sweep: Sweep) -> str | None:
        """Who is submitting to `sweep` now (`hpc.launch.exclusive`), or `None`."""
        if not self.submitter:
            owner = claim.read(claim.claim_path(sweep.path / SUBMIT_LOCK))
            mine = owner and (owner.get("host"), owner.get("pid")) == (socket.gethostname(), os.getpid())
            self.submitter = (claim.describe(owner) if owner and not mine and self.alive(owner) else None,)
        return self.submitter[0]

    def alive(self, owner: dict) -> bool:
        if owner.get("job") and self.live is None:
            try:
                self.live = slurm.live_jobs()
            except slurm.SlurmUnreachable:
                return True
        return claim.owner_alive(owner, self.live)


def totals(states: list[RunState]) -> dict[str, int]:
    """Count per state: always the main ones, the others where non-zero."""
    counts = {s: sum(r.status == s for r in states) for s in STATES}
    return {s: n for s, n in counts.items() if n or s in ALWAYS_SHOWN}


def unfinished(states: list[RunState]) -> list[str]:
    """Runs to resubmit (`RERUN`)."""
    return [r.run_id for r in states if r.status in RERUN]


def wait_for(sweep: Sweep, interval_s: float = 5.0, timeout_s: float | None = None) -> list:
    """Block until no run of `sweep` is pending, running or unknown (or `timeout_s` passes);
    of a damaged record, whose unknown runs stay so, until none is pending or running."""
    start = time.monotonic()
    while True:
        states = run_states(sweep)
        active = [r for r in states if r.status in (ACTIVE if sweep.damaged else ACTIVE + UNSURE)]
        if not active:
            return states
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"sweep {sweep.sweep_id} still has runs active after {timeout_s} s: {totals(states)}")
        time.sleep(interval_s)

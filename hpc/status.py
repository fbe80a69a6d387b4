"""The state of every run of a sweep, from its result files and from Slurm."""

import dataclasses
import time

from . import slurm
from .store import read_summary
from .sweep import Sweep

STATES = ("pending", "running", "completed", "failed", "lost")


@dataclasses.dataclass(frozen=True)
class RunState:
    run_id: str
    status: str  # one of STATES
    reason: str = ""
    job: str = ""  # Slurm task id of its latest submission ("<array job id>_<index>")


def run_states(sweep: Sweep) -> list[RunState]:
    """One `RunState` per run, in the sweep's order.

    A run Slurm still lists as pending or running is that; otherwise its result file decides
    (completed, or failed with the file's message); with no file, Slurm's final state gives
    the reason (`OUT_OF_MEMORY`, `TIMEOUT`, `CANCELLED` ...), and a run nobody knows is lost.
    Slurm accounting is not needed.
    """
    jobs = sorted({s["job_id"] for s in sweep.submissions if s["kind"] == "slurm"})
    on_slurm = slurm.available()
    states = slurm.task_states(jobs) if jobs and on_slurm else {}
    tasks = {n: sub.get("tasks") or [] for n, sub in enumerate(sweep.submissions)}
    for n, sub in enumerate(sweep.submissions):
        if sub["kind"] == "manifest" and on_slurm:  # submitted by hand: find its tasks by job name
            found = slurm.tasks_named(sub["job_name"])
            tasks[n] = [found.get(i, ("", None))[0] for i in range(len(sub["runs"]))]
            states.update(dict(found.values()))
    out = []
    for run_id in sweep.runs:
        latest = sweep.latest_submission(run_id)
        job = tasks[latest.position][latest.index] if latest is not None and tasks[latest.position] else ""
        slurm_state = states.get(job) if job else None
        if slurm_state in slurm.ACTIVE:
            out.append(RunState(run_id, slurm.ACTIVE[slurm_state], slurm_state, job))
            continue
        path = sweep.result_path(run_id)
        if path.exists():
            summary = read_summary(path)
            status = summary.get("status")
            if status == "completed":
                out.append(RunState(run_id, "completed", "", job))
            else:
                out.append(RunState(run_id, "failed", summary.get("message") or status, job))
        elif latest is None:
            out.append(RunState(run_id, "lost", "never submitted", job))
        elif latest.submission["kind"] == "manifest" and not job:
            out.append(RunState(run_id, "lost", f"no result and no Slurm task: submitted with "
                                                f"`sbatch {latest.submission.get('script')}`?", job))
        elif slurm_state in slurm.FINAL_FAILED:
            out.append(RunState(run_id, "failed", f"Slurm {slurm_state}", job))
        elif slurm_state == "COMPLETED":
            out.append(RunState(run_id, "lost", "task ended without writing a result", job))
        else:
            out.append(RunState(run_id, "lost", "no result, and Slurm no longer knows the task", job))
    return out


def totals(states: list[RunState]) -> dict[str, int]:
    return {s: sum(r.status == s for r in states) for s in STATES}


def unfinished(states: list[RunState]) -> list[str]:
    """Runs to resubmit: failed, lost (never those pending, running or completed)."""
    return [r.run_id for r in states if r.status in ("failed", "lost")]


def wait_for(sweep: Sweep, interval_s: float = 5.0, timeout_s: float | None = None) -> list:
    """Block until no run of `sweep` is pending or running (or `timeout_s` passes)."""
    start = time.monotonic()
    while True:
        states = run_states(sweep)
        counts = totals(states)
        if counts["pending"] + counts["running"] == 0:
            return states
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"sweep {sweep.sweep_id} still has runs active after {timeout_s} s: {counts}")
        time.sleep(interval_s)

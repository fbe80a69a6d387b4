"""The one door between `hpc`'s core and a batch scheduler.

The core (`run`, `claim`, `task`, `status`, `launch`) asks a `Scheduler` what it needs: a
running task, about itself (`TaskEnv`: its job and array ids, the CPUs it holds, its restarts),
to requeue itself, whether it is being preempted; a submitter, to check a profile, submit an
array, and list, read and cancel job states. `hpc/slurm/` implements it for Slurm, `hpc/local.py`
for this machine's process pool. `hpc.launch.backend` is the one place that chooses (and imports)
a backend: the core never names one.
"""

import dataclasses
from collections.abc import Callable, Mapping


class Unreachable(RuntimeError):
    """The scheduler's commands are missing here, failed or did not answer: task states are unknown."""


@dataclasses.dataclass(frozen=True)
class Task:
    """One task as the scheduler lists it."""

    task_id: str  # "<array job id>_<index>", or the job id of a job that is not an array
    job_id: str  # the array job id (the job id for a plain job)
    index: int | None
    name: str
    state: str  # the scheduler's own word (`Scheduler.active`, `Scheduler.final` say what it means)


@dataclasses.dataclass(frozen=True)
class TaskEnv:
    """What a running task knows of itself; every field `None` (and `fields` empty) outside a job."""

    fields: Mapping[str, str] = dataclasses.field(default_factory=dict)  # as the scheduler names them
    job_id: str | None = None  # this task's own job id (one per array task)
    array_job_id: str | None = None
    array_task_id: str | None = None
    cpus: int | None = None  # the CPUs the task was given
    node: str = ""
    tmpdir: str | None = None  # node-local storage the scheduler provides
    restart_count: int = 0  # how often the task was requeued

    @property
    def task_name(self) -> str | None:
        """`<array job id>_<index>` in an array task, else `None`."""
        return f"{self.array_job_id}_{self.array_task_id}" if self.array_task_id is not None else None


# What a submitter hands a backend for each task: the runs it trains -> the call that trains them
TaskCall = Callable[[list[str]], Callable[[], object]]


class Scheduler:
    """What the core may ask of a scheduler. The base class answers as a machine without one
    does: no job, nothing to requeue, nothing listed."""

    name = "none"
    title = "the scheduler"  # how messages name it
    active: Mapping[str, str] = {}  # the scheduler's states of a live task -> `pending` or `running`
    final: Mapping[str, str] = {}  # its final states of a task that did not complete -> our status
    completed = ""  # its final state of a task that ended well

    # a running task
    def env(self, environ=None) -> TaskEnv:
        """This task's `TaskEnv`, from `environ` (default `os.environ`)."""
        return TaskEnv()

    def requeue(self, job_id: str) -> None:
        """Put task `job_id` back in the queue: it runs again from the start of its script."""
        raise NotImplementedError(f"{self.name} cannot requeue a task")

    def preemption(self, job_id: str, restart_count: int) -> str | None:
        """Whether the task that got SIGTERM is being preempted: `requeued` (back in the queue
        already), `preempted` (selected, not requeued yet) or `None` (cancelled, or unknown)."""
        return None

    def allocated_cpus(self, job_id: str, node: str) -> list[int]:
        """The CPU ids the task holds on `node` (empty: unknown). Raises `Unreachable`."""
        return []

    # a submitter
    def installed(self) -> bool:
        """Whether this scheduler's commands are on this machine (whether or not it answers)."""
        return False

    def unanswered(self) -> str | None:
        """Why this scheduler cannot take work here, or `None` when it can."""
        return None

    def check(self, profile) -> None:
        """Raise `ValueError` naming the field when the scheduler cannot satisfy `profile`."""

    def submit(self, sweep, run_ids: list[str], profile, workdir: str, call: TaskCall) -> list[str]:
        """Send `run_ids` of `sweep` (`profile.runs_per_task` per task, each task running
        `call(its runs)()`), recording each submission in the sweep. **Returns:** job ids."""
        raise NotImplementedError

    def tasks(self, job_ids=(), names=()) -> dict[str, Task]:
        """Task id -> `Task` for the jobs `job_ids` and those named `names`. Raises `Unreachable`."""
        return {}

    def live_jobs(self) -> set[str]:
        """The job ids of every pending or running task. Raises `Unreachable`."""
        return set()

    def cancel(self, job_ids) -> None:
        """Cancel the jobs `job_ids`. Raises `Unreachable`."""

    def has_payload(self, sweep_dir, task: str) -> bool:
        """Whether task `task` of the sweep can find its work (a submitter killed after
        submitting may have left it none)."""
        return True

    def final_state(self, sweep_dir, task: str, state: str) -> str:
        """The final `state` of task `task` of the sweep, as its log corrects it (a task killed
        for its memory that the scheduler calls only failed)."""
        return state


def cluster() -> Scheduler:
    """The cluster's scheduler: the one whose jobs a sweep's record and a claim name
    (`hpc.launch.backend`)."""
    from .launch import cluster_backend

    return cluster_backend()


def here() -> Scheduler:
    """The scheduler whose task this process is: the cluster's inside one of its jobs, else
    the local one (`hpc.launch.backend_here`)."""
    from .launch import backend_here

    return backend_here()

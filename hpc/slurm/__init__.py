"""Everything that talks to Slurm's commands: limits, partitions, job states."""

import getpass
import os
import re
import shutil
import subprocess

from ..scheduler import Task, Unreachable

# Slurm's final job states -> our run status: the one mapping, used everywhere.
FINAL = {
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "REVOKED": "cancelled",
    "TIMEOUT": "timeout",
    "DEADLINE": "timeout",
    "PREEMPTED": "preempted",
    "OUT_OF_MEMORY": "out_of_memory",
    "NODE_FAIL": "node_fail",
    "BOOT_FAIL": "node_fail",
}
ACTIVE = {
    "PENDING": "pending",
    "CONFIGURING": "pending",
    "REQUEUED": "pending",
    "RESIZING": "pending",
    "SUSPENDED": "pending",
    "RUNNING": "running",
    "COMPLETING": "running",
    "STOPPED": "running",
}


# How long a Slurm query may take before the controller counts as unreachable.
QUERY_TIMEOUT_S = float(os.environ.get("HPC_SLURM_TIMEOUT_S", 30))


def _run(*cmd: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout or QUERY_TIMEOUT_S)


def installed() -> bool:
    """Whether Slurm's commands are on this machine (whether or not a controller answers)."""
    return bool(shutil.which("sbatch") and shutil.which("sinfo"))


def unanswered() -> str | None:
    """Why no Slurm controller answers here (`sinfo` missing, failing or hanging), or `None`
    when one does."""
    if not installed():
        return "Slurm's commands (sbatch, sinfo) are not installed on this machine"
    timeout = min(15, QUERY_TIMEOUT_S)
    try:
        done = _run("sinfo", "-h", "-o", "%P", timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"`sinfo` did not answer within {timeout:.0f} s"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`sinfo` could not run ({exc})"
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        return f"`sinfo` failed: {said[-1] if said else f'exit code {done.returncode}'}"
    return None


def available() -> bool:
    """Whether this machine can submit to a Slurm controller that answers."""
    return unanswered() is None


def config() -> dict[str, str]:
    """`scontrol show config` as a dict (read at run time rather than hard-coded)."""
    out = _run("scontrol", "show", "config").stdout
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^(\w+)\s+=\s+(.*)$", out, re.M)}


SLURM_DEFAULT_MAX_ARRAY_SIZE = 1001


def max_array_size() -> int:
    """The cluster's MaxArraySize (array indices go 0 .. MaxArraySize - 1); Slurm's default
    where no controller answers (a plan written on a machine without Slurm)."""
    if not available():
        return SLURM_DEFAULT_MAX_ARRAY_SIZE
    return int(config().get("MaxArraySize", str(SLURM_DEFAULT_MAX_ARRAY_SIZE)))


def array_parts(items: list, size: int | None = None) -> list[tuple[int, list]]:
    """`items` split into arrays of at most `size` (default `max_array_size()`), each with the
    offset of its first item."""
    size = size or max_array_size()
    return [(start, items[start : start + size]) for start in range(0, len(items), size)]


def packs(items: list, size: int) -> list[list]:
    """`items` in consecutive groups of `size` (the last may be smaller): the runs of each task
    when a task trains `cluster.runs_per_task` of them.

    >>> packs(["a", "b", "c", "d", "e"], 2)
    [['a', 'b'], ['c', 'd'], ['e']]
    """
    return [items[start : start + size] for start in range(0, len(items), size)]


def requeue(job_id: str) -> None:
    """Put a task back in the queue (`scontrol requeue`): Slurm ends it and runs it again
    from the start of its script, with `SLURM_RESTART_COUNT` one higher."""
    done = _run("scontrol", "requeue", job_id, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"`scontrol requeue {job_id}` failed: {done.stderr.strip()}")


def cancel(job_ids) -> None:
    """Cancel jobs (`scancel`; an array job id cancels all its tasks). Raises `SlurmUnreachable`."""
    _ask("scancel", *sorted(job_ids), timeout=60)


def partitions() -> dict[str, int]:
    """Partition name -> the most CPUs of any of its nodes."""
    out = _run("sinfo", "-h", "-o", "%P %c").stdout
    parts: dict[str, int] = {}
    for line in out.splitlines():
        name, cpus = line.split()
        name = name.rstrip("*")
        parts[name] = max(parts.get(name, 0), int(cpus.rstrip("+")))
    return parts


def default_partition() -> str | None:
    for line in _run("sinfo", "-h", "-o", "%P").stdout.splitlines():
        if line.endswith("*"):
            return line[:-1]
    return None


def check_resources(partition: str | None, cpus_per_task: int) -> None:
    """Raise `ValueError` naming the field when the cluster cannot satisfy the request."""
    parts = partitions()
    name = partition or default_partition()
    if partition is not None and partition not in parts:
        raise ValueError(
            f"`cluster.partition`={partition!r} does not exist on this cluster; partitions: {', '.join(sorted(parts))}."
        )
    if name in parts and cpus_per_task > parts[name]:
        raise ValueError(
            f"`cluster.cpus_per_task`={cpus_per_task} is more than any node of partition {name!r} has ({parts[name]})."
        )


class SlurmUnreachable(Unreachable):
    """Slurm's commands are missing here, failed or did not answer: task states are unknown."""


def _ask(*cmd: str, timeout: float | None = None, known_failure: str | None = None) -> str | None:
    """The output of a Slurm query. Raises `SlurmUnreachable` when the command is missing,
    fails or hangs; returns `None` when it fails with `known_failure` in its message."""
    try:
        done = _run(*cmd, timeout=timeout)
    except FileNotFoundError as exc:
        raise SlurmUnreachable(f"`{cmd[0]}` is not installed on this machine") from exc
    except subprocess.TimeoutExpired as exc:
        raise SlurmUnreachable(f"`{cmd[0]}` did not answer within {timeout or QUERY_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        if known_failure and known_failure in done.stderr + done.stdout:
            return None
        raise SlurmUnreachable(f"`{' '.join(cmd[:2])}` failed: {(done.stderr or done.stdout).strip()[:300]}")
    return done.stdout


def expand_indices(indices: str) -> list[int]:
    """An index expression (array tasks `"0-3%1"`, CPU ids `"1,4-5"`) -> the indices."""
    out = []
    for part in indices.split("%")[0].split(","):
        low, _, high = part.partition("-")
        if low.isdigit():
            out.extend(range(int(low), int(high or low) + 1))
    return out


def _task(job_id: str, index, name: str, state: str) -> "Task":
    task_id = f"{job_id}_{index}" if index is not None else job_id
    return Task(task_id, job_id, index, name, state.split()[0] if state else "UNKNOWN")


def read_listing(text: str) -> list["Task"]:
    r"""The tasks of `squeue -h -r -o %i|%j|%T` or `sacct -n -P -X -o JobID,JobName,State` output
    (pure). An array's summary line (`12_[3-9]`) is left out: `-r` lists its tasks one by one.

    >>> listed = read_listing("12_0|grid|COMPLETED\n12_[1-3]|grid|PENDING\n13|one|CANCELLED by 0")
    >>> [(t.task_id, t.state) for t in listed]
    [('12_0', 'COMPLETED'), ('13', 'CANCELLED')]
    """
    out = []
    for line in text.splitlines():
        job, name, state = (line.split("|") + ["", ""])[:3]
        base, _, index = job.partition("_")
        if base and "[" not in index:
            out.append(_task(base, int(index) if index.isdigit() else None, name, state))
    return out


def read_jobs(text: str) -> list["Task"]:
    """The tasks of `scontrol -o show job` output (pure): one line per job, an array's pending
    tasks as one line with an `ArrayTaskId` range, expanded here."""
    out = []
    for line in text.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        base = fields.get("ArrayJobId") or fields.get("JobId", "")
        index = fields.get("ArrayTaskId")
        out.extend(
            _task(base, i, fields.get("JobName", ""), fields.get("JobState", "UNKNOWN"))
            for i in (expand_indices(index) if index else [None])
        )
    return out


def tasks(job_ids=(), names=(), user: str | None = None) -> dict[str, Task]:
    """Task id -> `Task` for every task Slurm still knows of the array jobs `job_ids` and of
    the jobs named `names` (plain-sbatch submissions, whose ids only Slurm knows).

    One `squeue` call gives the pending and running tasks (pending ranges expanded), and
    proves the controller answers. Ended tasks come from `sacct` where accounting is on, else
    from `scontrol show job` (those that ended within MinJobAge). Raises `SlurmUnreachable`
    when the controller does not answer: the caller must then not guess.
    """
    job_ids, names = {str(j) for j in job_ids}, set(names)
    if not job_ids and not names:
        return {}
    user = user or getpass.getuser()
    acct = _run_quietly(
        "sacct",
        "-n",
        "-P",
        "-X",
        "-o",
        "JobID,JobName,State",
        "-u",
        user,
        "-S",
        "now-14days",
        *(["-j", ",".join(sorted(job_ids))] if job_ids and not names else []),
        *(["--name", ",".join(sorted(names))] if names and not job_ids else []),
    )
    if acct is not None:
        ended = read_listing(acct)
    else:
        ended = read_jobs(
            _ask(
                "scontrol",
                "-o",
                "show",
                "job",
                *(sorted(job_ids) if len(job_ids) == 1 and not names else []),
                known_failure="Invalid job id",
            )
            or ""
        )
    queued = read_listing(_ask("squeue", "-h", "-r", "-u", user, "-o", "%i|%j|%T"))
    return {t.task_id: t for t in ended + queued if t.job_id in job_ids or t.name in names}  # the queue's last


def job_room(max_submit_jobs: int | None = None) -> int | None:
    """How many more jobs (array tasks count one each) this user may submit now: the
    controller's `MaxJobCount` less the jobs it holds, and `max_submit_jobs` (a site's
    `MaxSubmitJobs`, from the cluster profile) less this user's. `None` when unknown."""
    rooms = []
    try:
        queued = _ask("squeue", "-h", "-r", "-o", "%u")
        limit = int(config().get("MaxJobCount", "0") or 0)
    except (SlurmUnreachable, ValueError):
        return max_submit_jobs
    users = queued.split()
    if limit:
        rooms.append(limit - len(users))
    if max_submit_jobs:
        rooms.append(max_submit_jobs - users.count(getpass.getuser()))
    return max(0, min(rooms)) if rooms else None


def preemption(job_id: str, restart_count: int) -> str | None:
    """Whether the job whose task got SIGTERM is being preempted: `requeued` (Slurm has put it
    back in the queue already: its `Restarts` passed `restart_count`), `preempted` (selected
    for preemption, `PreemptTime` set, within a grace time, and not requeued yet) or `None`
    (cancelled, or Slurm cannot tell)."""
    try:
        shown = _ask("scontrol", "-o", "show", "job", str(job_id), timeout=10) or ""
    except SlurmUnreachable:
        return None
    return preemption_shown(shown, restart_count)


def preemption_shown(shown: str, restart_count: int) -> str | None:
    """`preemption` from the `scontrol -o show job` line `shown` (pure).

    >>> preemption_shown("JobId=7 JobState=COMPLETING Restarts=1 PreemptTime=None", 0)
    'requeued'
    >>> preemption_shown("JobId=7 JobState=RUNNING Restarts=1 PreemptTime=2026-12-02T00:11:45", 1)
    'preempted'
    >>> preemption_shown("JobId=7 JobState=CANCELLED Restarts=0 PreemptTime=None", 0) is None
    True
    """
    fields = dict(f.split("=", 1) for f in shown.split() if "=" in f)
    if int(fields.get("Restarts", "0") or 0) > restart_count:
        return "requeued"
    return "preempted" if fields.get("PreemptTime", "None") not in ("None", "Unknown", "") else None


def allocated_cpus(shown: str, node: str) -> list[int]:
    """The CPUs Slurm allocated to a job on `node`, from `scontrol show job -d` (pure)."""
    lines = re.findall(r"Nodes=(\S+) CPU_IDs=(\S+)", shown)
    for nodes, ids in lines:
        if nodes == node or len(lines) == 1:
            return expand_indices(ids)
    return []


def show_job(job_id: str) -> str:
    """`scontrol show job -d <job id>`: the job's details, its CPU ids per node included."""
    return _ask("scontrol", "show", "job", "-d", str(job_id), timeout=10)


def live_jobs() -> set[str]:
    """The raw job ids (`SLURM_JOB_ID`, one per array task) of every job Slurm lists as
    pending or running; one `squeue` call. Raises `SlurmUnreachable`."""
    out = _ask("squeue", "-h", "-r", "-o", "%A|%T")
    return {job for job, _, state in (line.partition("|") for line in out.splitlines()) if state in ACTIVE}


def _run_quietly(*cmd: str) -> str | None:
    """A query that may fail for reasons other than an outage (sacct without accounting). One
    that hangs is an outage: raises `SlurmUnreachable` at once, rather than asking the next
    command to hang as long."""
    try:
        done = _run(*cmd)
    except subprocess.TimeoutExpired as exc:
        raise SlurmUnreachable(f"`{cmd[0]}` did not answer within {QUERY_TIMEOUT_S:.0f} s") from exc
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 and done.stdout.strip() else None

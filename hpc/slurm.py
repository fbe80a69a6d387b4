"""Everything that talks to Slurm's commands: limits, partitions, job states."""

import re
import shutil
import subprocess

# Slurm job states -> our run status
FINAL_FAILED = {"FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
                "BOOT_FAIL", "DEADLINE", "REVOKED"}
ACTIVE = {"PENDING": "pending", "CONFIGURING": "pending", "REQUEUED": "pending", "RESIZING": "pending",
          "SUSPENDED": "pending", "RUNNING": "running", "COMPLETING": "running", "STOPPED": "running"}


def _run(*cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def available() -> bool:
    """Whether this machine can submit to a Slurm controller that answers."""
    if not shutil.which("sbatch") or not shutil.which("sinfo"):
        return False
    try:
        return _run("sinfo", "-h", "-o", "%P", timeout=15).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


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
    return [(start, items[start:start + size]) for start in range(0, len(items), size)]


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
        raise ValueError(f"`cluster.partition`={partition!r} does not exist on this cluster; "
                         f"partitions: {', '.join(sorted(parts))}.")
    if name in parts and cpus_per_task > parts[name]:
        raise ValueError(f"`cluster.cpus_per_task`={cpus_per_task} is more than any node of partition "
                         f"{name!r} has ({parts[name]}).")


def task_states(array_job_ids: list[str]) -> dict[str, str]:
    """Task id as Slurm prints it (`"<array job id>_<index>"`, or the job id of a job that is
    not an array) -> Slurm state, for the tasks Slurm still knows about.

    Uses `sacct` when accounting is enabled, else `squeue` (pending and running tasks) and
    `scontrol show job` (tasks that ended within MinJobAge). Tasks none of them knows are
    absent: the caller decides from the result files.
    """
    if not array_job_ids:
        return {}
    states: dict[str, str] = {}
    acct = _run("sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(array_job_ids))
    if acct.returncode == 0 and acct.stdout.strip():
        for line in acct.stdout.splitlines():
            job, state = line.split("|")[:2]
            if "[" not in job:
                states[job] = state.split()[0]
        return states
    for job_id in array_job_ids:
        shown = _run("scontrol", "-o", "show", "job", job_id)
        for line in shown.stdout.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            task = fields.get("ArrayTaskId", "")
            if task.isdigit():
                states[f"{fields.get('ArrayJobId', job_id)}_{task}"] = fields.get("JobState", "UNKNOWN")
            elif not task and "JobId" in fields:
                states[fields["JobId"]] = fields.get("JobState", "UNKNOWN")
    queued = _run("squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(array_job_ids))
    for line in queued.stdout.splitlines():
        job, state = line.split()
        if "[" not in job:
            states[job] = state
    return states


def tasks_named(job_name: str) -> dict[int, tuple[str, str]]:
    """Array index -> (task id, Slurm state) of the array job(s) called `job_name` (plain
    sbatch submissions, whose job ids only Slurm knows)."""
    found: dict[int, tuple[str, str]] = {}

    def add(job: str, state: str) -> None:
        if "_" in job and "[" not in job:
            found[int(job.split("_")[1])] = (job, state)

    acct = _run("sacct", "-n", "-P", "-X", "--name", job_name, "-o", "JobID,State")
    if acct.returncode == 0:
        for line in acct.stdout.splitlines():
            job, state = line.split("|")[:2]
            add(job, state.split()[0])
    else:
        for line in _run("scontrol", "-o", "show", "job").stdout.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if fields.get("JobName") == job_name and fields.get("ArrayTaskId", "").isdigit():
                add(f"{fields['ArrayJobId']}_{fields['ArrayTaskId']}", fields.get("JobState", "UNKNOWN"))
    for line in _run("squeue", "-h", "-r", "-n", job_name, "-o", "%i %T").stdout.splitlines():
        add(*line.split())
    return found

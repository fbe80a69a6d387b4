"""The one place that reads Slurm's environment variables."""

import os

# field name -> environment variable set by Slurm inside a job
SLURM_VARIABLES = {
    "job_id": "SLURM_JOB_ID",
    "array_job_id": "SLURM_ARRAY_JOB_ID",
    "array_task_id": "SLURM_ARRAY_TASK_ID",
    "cpus_per_task": "SLURM_CPUS_PER_TASK",
    "job_name": "SLURM_JOB_NAME",
    "partition": "SLURM_JOB_PARTITION",
    "node": "SLURMD_NODENAME",
    "tmpdir": "SLURM_TMPDIR",
    "gpus": "SLURM_GPUS_ON_NODE",
    "restart_count": "SLURM_RESTART_COUNT",
}


def slurm_info(environ=None) -> dict[str, str]:
    """The Slurm fields present in `environ` (default `os.environ`); empty outside a job."""
    environ = os.environ if environ is None else environ
    return {field: environ[var] for field, var in SLURM_VARIABLES.items() if var in environ}

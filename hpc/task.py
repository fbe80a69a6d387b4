"""What runs on a compute node (or a local worker) for one run of a sweep."""

import os
import tempfile

from . import layout, slurm
from .hygiene import private_tmp, task_env_vars
from .slurm.env import slurm_info


class RunFailed(RuntimeError):
    """The run ended without a completed result (its result file says why)."""


PREPARED = "HPC_TASK_PREPARED"
# What an entry may return for a healthy task: busy (another copy trains the run), requeued (it comes back)
TASK_OK = ("completed", "skipped", "busy", "requeued")


def task_settings(profile, workdir: str, results_root: str | None = None) -> dict:
    """What `hpc.task.apply_task_env` needs, from a cluster profile (`hpc.Profile` or its
    mapping) and the sweep's record (its results root and the directory it was launched from)."""
    from .profile import Profile

    profile = Profile.from_dict(profile)
    return {
        "cpus": profile.cpus_per_task,
        "shared_gpu": bool(profile.gpus_per_task) and profile.shared_gpu,
        "tmp_base": profile.node_local_tmp,
        "xla_flags": profile.xla_flags,
        "workdir": workdir,
        "results_root": results_root,
    }


def prepare_batch_task(cluster, workdir: str) -> None:
    """In an array task started by plain `sbatch` (`jobs/` templates), apply the same hygiene
    as `run_task` before the workload imports JAX. Elsewhere, an interactive `salloc` shell
    included, do nothing: the user's own thread settings stand."""
    if "array_task_id" in slurm_info():
        apply_task_env(task_settings(cluster, workdir))


def bind_to_allocation(cpus: int) -> None:
    """Where Slurm does not confine a task to its cores (no cgroup cpuset), pin this process to
    the CPUs Slurm allocated it, so that every thread pool sized from the usable CPUs (XLA's)
    stays within them. Anything unclear leaves the process as it is."""
    info = slurm_info()
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if "job_id" not in info or len(usable) <= cpus:
        return
    try:
        shown = slurm.show_job(info["job_id"])
    except slurm.SlurmUnreachable:
        return
    ids = slurm.allocated_cpus(shown, info.get("node", ""))
    if ids and len(ids) <= cpus * 2 and set(ids) <= usable:
        os.sched_setaffinity(0, ids)


def apply_task_env(settings: dict) -> None:
    """Apply `task_env_vars` and a private temporary directory to this process (once).

    `settings`: `cpus`, `shared_gpu`, `tmp_base` (node-local storage), `xla_flags`, and
    `results_root`, which every run of the task writes under (`hpc.layout.results_root`). Must
    run before JAX is imported.
    """
    if settings.get("results_root"):
        os.environ[layout.ROOT_VARIABLE] = str(settings["results_root"])
    if os.environ.get(PREPARED):
        return
    info = slurm_info()
    name = "hpc-task-" + (
        f"{info['array_job_id']}_{info['array_task_id']}" if "array_task_id" in info else str(os.getpid())
    )
    tmp = private_tmp(settings.get("tmp_base") or info.get("tmpdir"), name)
    cpus = int(info.get("cpus_per_task") or settings.get("cpus") or 1)
    bind_to_allocation(cpus)
    os.environ.update(
        task_env_vars(
            cpus, shared_gpu=bool(settings.get("shared_gpu")), tmp_dir=str(tmp), xla_flags=settings.get("xla_flags", "")
        )
    )
    tempfile.tempdir = None  # re-read TMPDIR
    os.environ[PREPARED] = "1"


def run_task(app: str, config_yaml: str, settings: dict) -> dict:
    """Prepare the environment, then call the entry of the application `app` (`module:APP`,
    see `hpc.app.load`) with the config.

    `settings` as for `apply_task_env`, plus `workdir` (where the application imports from).
    Raises `RunFailed` when the entry reports a status other than completed, skipped, busy or
    requeued (the task put itself back in the queue: healthy), so Slurm records the task as failed.
    """
    apply_task_env(settings)
    from omegaconf import OmegaConf

    from .app import load

    out = load(app, settings.get("workdir")).entry(OmegaConf.create(config_yaml))
    if out.get("status") not in TASK_OK:
        raise RunFailed(f"run {out.get('run_id')} ended with status {out.get('status')}")
    return out

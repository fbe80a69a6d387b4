"""What runs on a compute node (or a local worker) for one run of a sweep."""

import importlib
import os
import re
import sys
import tempfile

from . import layout, slurm
from .hygiene import private_tmp, task_env_vars
from .slurmenv import slurm_info


class RunFailed(RuntimeError):
    """The run ended without a completed result (its result file says why)."""


PREPARED = "HPC_TASK_PREPARED"


def task_settings(cluster: dict, workdir: str, results_root: str | None = None) -> dict:
    """What `hpc.task.apply_task_env` needs, from a cluster profile and the sweep's record (its
    results root and the directory it was launched from)."""
    return {"cpus": int(cluster.get("cpus_per_task") or 1),
            "shared_gpu": bool(cluster.get("gpus_per_task")) and bool(cluster.get("shared_gpu", False)),
            "tmp_base": cluster.get("node_local_tmp"),
            "xla_flags": cluster.get("xla_flags") or "",
            "workdir": workdir, "results_root": results_root}


def prepare_batch_task(cluster: dict, workdir: str) -> None:
    """In an array task started by plain `sbatch` (`jobs/` templates), apply the same hygiene
    as `run_task` before the workload imports JAX. Elsewhere, an interactive `salloc` shell
    included, do nothing: the user's own thread settings stand."""
    if "array_task_id" in slurm_info():
        apply_task_env(task_settings(cluster, workdir))


def allocated_cpus(shown: str, node: str) -> list[int]:
    """The CPUs Slurm allocated to a job on `node`, from `scontrol show job -d` (pure)."""
    lines = re.findall(r"Nodes=(\S+) CPU_IDs=(\S+)", shown)
    for nodes, ids in lines:
        if nodes == node or len(lines) == 1:
            return slurm.expand_indices(ids)
    return []


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
    ids = allocated_cpus(shown, info.get("node", ""))
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
    name = "hpc-task-" + (f"{info['array_job_id']}_{info['array_task_id']}"
                               if "array_task_id" in info else str(os.getpid()))
    tmp = private_tmp(settings.get("tmp_base") or info.get("tmpdir"), name)
    cpus = int(info.get("cpus_per_task") or settings.get("cpus") or 1)
    bind_to_allocation(cpus)
    os.environ.update(task_env_vars(cpus, shared_gpu=bool(settings.get("shared_gpu")), tmp_dir=str(tmp),
                                    xla_flags=settings.get("xla_flags", "")))
    tempfile.tempdir = None  # re-read TMPDIR
    os.environ[PREPARED] = "1"


def run_task(entry: str, config_yaml: str, settings: dict) -> dict:
    """Prepare the environment, then call `entry` (`"module:function"`) with the config.

    `settings` as for `apply_task_env`, plus `workdir` (put on `sys.path` so `module`
    imports). Raises `RunFailed` when the function reports a status other than completed,
    skipped, busy or requeued (the task put itself back in the queue: healthy), so Slurm records
    the task as failed.
    """
    apply_task_env(settings)
    if settings.get("workdir") and settings["workdir"] not in sys.path:
        sys.path.insert(0, settings["workdir"])
    module, function = entry.split(":")
    fn = getattr(importlib.import_module(module), function)
    from omegaconf import OmegaConf

    out = fn(OmegaConf.create(config_yaml))
    if out.get("status") not in ("completed", "skipped", "busy", "requeued"):  # busy: another copy trains it
        raise RunFailed(f"run {out.get('run_id')} ended with status {out.get('status')}")
    return out

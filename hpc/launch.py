"""Send a sweep's runs to Slurm as array jobs (via submitit), or run them in local processes."""

import concurrent.futures
import multiprocessing
import os
import pathlib

from . import slurm
from .sbatch import activation_lines
from .sweep import Sweep
from .task import run_task

SUBMIT_MODES = ("auto", "slurm", "local")


def task_settings(results_root, cluster: dict, workdir: str) -> dict:
    """What `hpc.task.prepare_environment` needs, from a cluster profile."""
    return {"cpus": int(cluster.get("cpus_per_task") or 1),
            "shared_gpu": bool(cluster.get("gpus_per_task")) and bool(cluster.get("shared_gpu", False)),
            "tmp_base": cluster.get("node_local_tmp"),
            "cache_dir": str(pathlib.Path(results_root) / "jax-cache"),
            "xla_flags": cluster.get("xla_flags") or "",
            "workdir": workdir}


def submitit_parameters(cluster: dict, job_name: str) -> dict:
    """Our cluster profile -> `submitit.SlurmExecutor.update_parameters` keywords (pure)."""
    params = {"job_name": job_name, "time": int(cluster["time_min"]),
              "cpus_per_task": int(cluster.get("cpus_per_task") or 1), "ntasks_per_node": 1,
              "array_parallelism": int(cluster.get("array_parallelism") or 256),
              "stderr_to_stdout": True, "signal_delay_s": 60}
    for key in ("partition", "account", "qos"):
        if cluster.get(key):
            params[key] = str(cluster[key])
    if cluster.get("mem_per_cpu_mb"):
        params["mem_per_cpu"] = f"{int(cluster['mem_per_cpu_mb'])}M"
    if cluster.get("gpus_per_task"):
        params["gpus_per_task"] = int(cluster["gpus_per_task"])
    setup = list(cluster.get("setup") or []) + activation_lines(cluster.get("environment"))
    if setup:
        params["setup"] = setup
    return params


def mode(cluster: dict) -> str:
    """`slurm` or `local` for this profile on this machine."""
    wanted = cluster.get("submit", "auto")
    if wanted not in SUBMIT_MODES:
        raise ValueError(f"`cluster.submit`={wanted!r}; allowed: {', '.join(SUBMIT_MODES)}.")
    if wanted == "auto":
        return "slurm" if slurm.available() else "local"
    if wanted == "slurm" and not slurm.available():
        raise ValueError("`cluster.submit`='slurm' but no Slurm controller answers on this machine "
                         "(sinfo failed); use cluster.submit=auto or local.")
    return wanted


def check(cluster: dict) -> str:
    """Validate the profile against this machine before anything is submitted; return the mode."""
    how = mode(cluster)
    for field in ("time_min", "cpus_per_task"):
        value = cluster.get(field)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`cluster.{field}` must be a positive integer, got {value!r}.")
    if how == "slurm":
        slurm.check_resources(cluster.get("partition"), int(cluster["cpus_per_task"]))
    return how


def submit(sweep: Sweep, run_ids: list[str], cluster: dict, workdir: str) -> list[str]:
    """Submit `run_ids` as one array job per `MaxArraySize` (or run them locally, blocking).

    **Returns:** the Slurm array job ids (empty for local runs).
    """
    how = check(cluster)
    settings = task_settings(sweep.results_root, cluster, workdir)
    if how == "local":
        run_local(sweep, run_ids, settings)
        return []
    import submitit

    python = cluster.get("python")
    if (cluster.get("environment") or {}).get("kind", "none") != "none":
        python = python or "python"  # the activated environment's, not this process's
    executor = submitit.SlurmExecutor(folder=sweep.path / "slurm" / "%j", python=python)
    executor.update_parameters(**submitit_parameters(cluster, f"{sweep.experiment}-{sweep.sweep_id}"))
    size = slurm.max_array_size()
    job_ids = []
    for start in range(0, len(run_ids), size):
        part = run_ids[start:start + size]
        with executor.batch():
            jobs = [executor.submit(run_task, sweep.entry, sweep.config_yaml(r), settings) for r in part]
        # submitit sends a batch of one as a plain job: its task id has no array index
        job_id = jobs[0].job_id.split("_")[0]
        sweep.add_submission("slurm", job_id, part, cluster, [job.job_id for job in jobs])
        job_ids.append(job_id)
    return job_ids


def _local_worker(args) -> None:
    try:
        run_task(*args)
    except Exception:  # one run's failure must not stop the others; its result file says why
        pass


def run_local(sweep: Sweep, run_ids: list[str], settings: dict) -> None:
    """Run in parallel processes, at most one per core; each run's failure stays its own."""
    workers = max(1, min(len(run_ids), (os.cpu_count() or 1) // max(1, settings["cpus"])))
    print(f"No Slurm here: running {len(run_ids)} runs locally in {workers} processes.", flush=True)
    sweep.add_submission("local", None, run_ids, {"workers": workers})
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(_local_worker, [(sweep.entry, sweep.config_yaml(r), settings) for r in run_ids]))

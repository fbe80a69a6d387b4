"""Per-task thread, memory and temporary-file hygiene, applied before JAX is imported."""

import atexit
import functools
import os
import pathlib
import shutil

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def task_env_vars(
    cpus: int, *, shared_gpu: bool, tmp_dir: str, xla_flags: str = "", gpu_mem_fraction: float | None = None
) -> dict[str, str]:
    """The environment variables one task should run with (a pure function).

    Every threading library gets `cpus` threads, so array tasks packed on one node do not
    oversubscribe it; XLA's CPU backend runs single-threaded when given one CPU (XLA sizes its
    own pools from the CPUs the task may use, which Slurm's cgroup cpuset sets). GPU memory
    preallocation is off when tasks share a GPU, and `gpu_mem_fraction` caps the share of its
    memory JAX takes (a MIG slice, or several tasks on one GPU). Temporary files go to the task's own
    `tmp_dir`. HDF5 file locking is off,
    since BeeGFS and Lustre scratch do not support it reliably.
    """
    if cpus < 1:
        raise ValueError(f"`cpus_per_task` must be >= 1, got {cpus}.")
    env = dict.fromkeys(THREAD_VARIABLES, str(cpus))
    flags = xla_flags.split()
    if cpus == 1:
        flags += ["--xla_cpu_multi_thread_eigen=false"]  # no Eigen thread pool
    if flags:
        env["XLA_FLAGS"] = " ".join(dict.fromkeys(flags))
    if shared_gpu:
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    if gpu_mem_fraction is not None:
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{gpu_mem_fraction:g}"
    env.update({"TMPDIR": tmp_dir, "TMP": tmp_dir, "TEMP": tmp_dir, "HDF5_USE_FILE_LOCKING": "FALSE"})
    return env


# where Slurm and CUDA say which GPUs a task has: recorded with every result (`devices`)
GPU_VARIABLES = ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "GPU_DEVICE_ORDINAL")


def devices() -> dict[str, str]:
    """The accelerators this process was given, from the environment alone (no JAX): the GPU
    variables that are set, and `gpus` = what `nvidia-smi -L` lists (empty: none visible, or no
    driver). The workload adds what its framework ran on."""
    return {**{var: os.environ[var] for var in GPU_VARIABLES if var in os.environ}, "gpus": _listed_gpus()}


@functools.cache  # a process keeps its GPUs: asked once, however many runs a task trains
def _listed_gpus() -> str:
    import subprocess

    if not shutil.which("nvidia-smi"):
        return ""
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return listed.stdout.strip() if listed.returncode == 0 else ""


def private_tmp(base: str | None, name: str) -> pathlib.Path:
    """Create `<base>/<name>` (base: node-local storage, default $TMPDIR or /tmp) and remove it
    when the process exits."""
    root = pathlib.Path(base or os.environ.get("TMPDIR") or "/tmp")
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path

"""Where a sweep's Slurm tasks write their logs and find their work, and what a log says that
Slurm's state does not."""

import pathlib

OOM_SIGNS = ("oom-kill event", "Out Of Memory", "oom_kill")


def log_paths(sweep_dir, task: str) -> tuple[pathlib.Path, pathlib.Path]:
    """The logs task `task` (`<array job>_<index>`) may have written under the sweep directory:
    submitit's (folder `slurm/%j`) and the plain-sbatch template's (`slurm/%A_%a.out`)."""
    folder = pathlib.Path(sweep_dir) / "slurm"
    return folder / task / f"{task}_0_log.out", folder / f"{task}.out"


def has_payload(sweep_dir, task: str) -> bool:
    """Whether submitit saved task `task`'s work (its pickled call) where the task looks for it,
    `slurm/<task>/<task>_submitted.pkl`. submitit moves it there after `sbatch` returns: a task
    of an array whose submitter was killed in between has none, and fails at launch."""
    return (pathlib.Path(sweep_dir) / "slurm" / task / f"{task}_submitted.pkl").exists()


def says_oom(sweep_dir, task: str) -> bool:
    """Whether Slurm wrote that it killed `task` for its memory into the task's log (the job's
    state says only FAILED when a step inside the batch script was the one killed)."""
    for log in (p for p in log_paths(sweep_dir, task) if p.exists()):
        with open(log, "rb") as handle:
            handle.seek(max(0, log.stat().st_size - 8192))
            tail = handle.read().decode(errors="replace")
        if any(sign in tail for sign in OOM_SIGNS):
            return True
    return False

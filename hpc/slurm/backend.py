"""`hpc.scheduler.Scheduler` for Slurm: what the core asks, answered with Slurm's commands
(`hpc.slurm`), variables (`env`), logs (`logs`) and submitit (`submit`)."""

import os

from .. import slurm
from ..scheduler import Scheduler, TaskCall, TaskEnv
from . import logs
from .env import slurm_info


class SlurmScheduler(Scheduler):
    name = "slurm"
    title = "Slurm"
    active = slurm.ACTIVE
    final = slurm.FINAL
    completed = "COMPLETED"

    def env(self, environ=None) -> TaskEnv:
        info = slurm_info(os.environ if environ is None else environ)
        cpus = info.get("cpus_per_task")
        return TaskEnv(
            fields=info,
            job_id=info.get("job_id"),
            array_job_id=info.get("array_job_id"),
            array_task_id=info.get("array_task_id"),
            cpus=int(cpus) if cpus else None,
            node=info.get("node", ""),
            tmpdir=info.get("tmpdir"),
            restart_count=int(info.get("restart_count") or 0),
        )

    def requeue(self, job_id: str) -> None:
        slurm.requeue(job_id)

    def preemption(self, job_id: str, restart_count: int) -> str | None:
        return slurm.preemption(job_id, restart_count)

    def allocated_cpus(self, job_id: str, node: str) -> list[int]:
        return slurm.allocated_cpus(slurm.show_job(job_id), node)

    def installed(self) -> bool:
        return slurm.installed()

    def unanswered(self) -> str | None:
        return slurm.unanswered()

    def check(self, profile) -> None:
        slurm.check_resources(profile.partition, profile.cpus_per_task)

    def submit(self, sweep, run_ids: list[str], profile, workdir: str, call: TaskCall) -> list[str]:
        from .submit import submit_arrays

        return submit_arrays(sweep, run_ids, profile, workdir, call)

    def tasks(self, job_ids=(), names=()):
        return slurm.tasks(job_ids, names)

    def live_jobs(self) -> set[str]:
        return slurm.live_jobs()

    def cancel(self, job_ids) -> None:
        slurm.cancel(job_ids)

    def has_payload(self, sweep_dir, task: str) -> bool:
        return logs.has_payload(sweep_dir, task)

    def final_state(self, sweep_dir, task: str, state: str) -> str:
        if state == "FAILED" and logs.says_oom(sweep_dir, task):
            return "OUT_OF_MEMORY"  # the job step was; the batch script around it just failed
        return state

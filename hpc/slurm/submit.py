"""Sending a sweep's runs to Slurm through submitit: one array job per `MaxArraySize` runs."""

from .. import slurm
from ..profile import Profile, slurm_options
from ..scheduler import TaskCall
from ..sweep import Sweep
from .sbatch import PACKAGED, activation_lines, task_setup, template_dirs


def submitit_parameters(profile: Profile, job_name: str, templates=PACKAGED) -> dict:
    """A profile -> `submitit.SlurmExecutor.update_parameters` keywords (pure). Its `setup` is
    what the plain-sbatch script runs before Python (`task_setup`, from the template chain in
    `templates`: a checkout's `jobs/`, then the package's)."""
    params = {
        "job_name": job_name,
        **slurm_options(profile),
        "ntasks_per_node": 1,
        "array_parallelism": profile.array_parallelism,
        "stderr_to_stdout": True,
        "signal_delay_s": profile.signal_s,
        "additional_parameters": {"requeue": True},
    }
    if profile.hold:
        params["additional_parameters"]["hold"] = True  # queued, not started: `scontrol release` starts them
    setup = task_setup(templates, profile.name or "default", list(profile.setup), activation_lines(profile.environment))
    if setup:
        params["setup"] = setup
    return params


def submit_arrays(sweep: Sweep, run_ids: list[str], profile: Profile, workdir: str, call: TaskCall) -> list[str]:
    """Submit `run_ids` as one array job per `MaxArraySize` tasks, each task training
    `profile.runs_per_task` of them (`call(its runs)`, the core's task), each recorded before `sbatch`
    under a job name unique to the sweep and the submission, then with its job id. Runs beyond
    the cluster's job limit are recorded as deferred. **Returns:** the array job ids."""
    import submitit

    python = profile.python
    if profile.environment.kind != "none":
        python = python or "python"  # the activated environment's, not this process's
    executor = submitit.SlurmExecutor(folder=sweep.path / "slurm" / "%j", python=python)
    name = f"{sweep.experiment}-{sweep.sweep_id}"
    executor.update_parameters(**submitit_parameters(profile, name, template_dirs(workdir)))
    per_task = profile.runs_per_task
    room = slurm.job_room(profile.max_submit_jobs)
    room = None if room is None else room * per_task  # in runs: each job trains `runs_per_task` of them
    if room is not None and len(run_ids) > room:  # the rest waits: `hpc resubmit` sends it later
        run_ids, later = run_ids[:room], run_ids[room:]
        sweep.add_submission("deferred", None, later, profile)
        print(
            f"The cluster takes {room} more jobs now: submitting {len(run_ids)} runs, {len(later)} wait "
            f"(`hpc resubmit {sweep.path}` submits them once there is room).",
            flush=True,
        )
    job_ids = []
    for _, part in slurm.array_parts(run_ids, slurm.max_array_size() * per_task):
        name = f"{sweep.experiment}-{sweep.sweep_id}-s{len(sweep.submissions)}"  # unique in the sweep
        entry = sweep.add_submission("slurm", None, part, profile, job_name=name)  # the intent, saved first
        executor.update_parameters(job_name=name)
        packs = slurm.packs(part, per_task)
        with executor.batch():
            jobs = [executor.submit(call(pack)) for pack in packs]
        # submitit sends a batch of one as a plain job: its task id has no array index; each run
        # is recorded with the task that trains it (`runs_per_task` runs share one)
        tasks = [job.job_id for job, pack in zip(jobs, packs) for _ in pack]
        entry.update(job_id=jobs[0].job_id.split("_")[0], tasks=tasks)
        sweep.save()
        job_ids.append(entry["job_id"])
    return job_ids

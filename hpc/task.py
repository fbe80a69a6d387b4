"""What runs on a compute node (or a local worker) for one run of a sweep."""

import dataclasses
import functools
import os
import sys
import tempfile

from . import layout, scheduler
from .checkpoint import stop_signals
from .hygiene import private_tmp, task_env_vars
from .profile import Profile


class RunFailed(RuntimeError):
    """The run ended without a completed result (its result file says why)."""


PREPARED = "HPC_TASK_PREPARED"
# What an entry may return for a healthy task: busy (another copy trains the run), requeued (it comes back)
TASK_OK = ("completed", "skipped", "busy", "requeued")


@dataclasses.dataclass(frozen=True)
class TaskSettings:
    """What a task needs beyond its runs' configs: the cluster profile it was submitted with
    (`None`: each run keeps the one it was planned with), the directory its application
    imports from, and the results root every run writes under (`hpc.layout.results_root`)."""

    profile: Profile | None = None
    workdir: str | None = None
    results_root: str | None = None

    def __post_init__(self):
        if self.profile is not None:  # a mapping (a sweep record's) is made a Profile, and checked
            object.__setattr__(self, "profile", Profile.from_dict(self.profile))

    @property
    def cluster(self) -> Profile:
        """The profile, or the defaults where none was given."""
        return self.profile or Profile()


def prepare_batch_task(cluster, workdir: str) -> None:
    """In an array task started by plain `sbatch` (`jobs/` templates), apply the same hygiene
    as `run_task` before the workload imports JAX. Elsewhere, an interactive `salloc` shell
    included, do nothing: the user's own thread settings stand."""
    if scheduler.here().env().array_task_id is not None:
        apply_task_env(TaskSettings(cluster, workdir))


def bind_to_allocation(cpus: int) -> None:
    """Where Slurm does not confine a task to its cores (no cgroup cpuset), pin this process to
    the CPUs Slurm allocated it, so that every thread pool sized from the usable CPUs (XLA's)
    stays within them. Anything unclear leaves the process as it is."""
    backend = scheduler.here()
    env = backend.env()
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if env.job_id is None or len(usable) <= cpus:
        return
    try:
        ids = backend.allocated_cpus(env.job_id, env.node)
    except scheduler.Unreachable:
        return
    if ids and len(ids) <= cpus * 2 and set(ids) <= usable:
        os.sched_setaffinity(0, ids)


def apply_task_env(settings: TaskSettings) -> None:
    """Apply `task_env_vars` and a private temporary directory to this process (once), from
    the profile's `cpus_per_task` (the scheduler's count where it gives one), GPU sharing,
    `node_local_tmp` and `xla_flags`; and pin the results root. Must run before JAX is imported."""
    if settings.results_root:
        os.environ[layout.ROOT_VARIABLE] = str(settings.results_root)
    if os.environ.get(PREPARED):
        return
    env, profile = scheduler.here().env(), settings.cluster
    name = "hpc-task-" + (env.task_name or str(os.getpid()))
    tmp = private_tmp(profile.node_local_tmp or env.tmpdir, name)
    cpus = int(env.cpus or profile.cpus_per_task)
    bind_to_allocation(cpus)
    gpus = bool(profile.gpus_per_task)
    os.environ.update(
        task_env_vars(
            cpus,
            shared_gpu=gpus and profile.shared_gpu,
            tmp_dir=str(tmp),
            xla_flags=profile.xla_flags,
            gpu_mem_fraction=profile.gpu_mem_fraction if gpus else None,
        )
    )
    tempfile.tempdir = None  # re-read TMPDIR
    os.environ[PREPARED] = "1"


def submitted_config(config_yaml: str, settings: TaskSettings):
    """A run's config (an OmegaConf mapping) with the cluster profile its task was submitted with
    (`settings.profile`): a resubmit's `--set max_requeues=10` reaches the run that reads
    `cluster.max_requeues`, not the value the sweep was planned with. Where and how a run ran is
    not part of its identity (`hpc.NOT_IDENTITY`), so its run id stays."""
    from omegaconf import OmegaConf

    config = OmegaConf.create(config_yaml)
    if settings.profile is not None:
        config.cluster = OmegaConf.create(settings.profile.to_dict())
    return config


def run_task(app: str, config_yaml: str, settings: TaskSettings) -> dict:
    """Prepare the environment, then call the entry of the application `app` (`module:APP`,
    see `hpc.app.load_app`) with the config.

    Raises `RunFailed` when the entry reports a status other than completed, skipped, busy or
    requeued (the task put itself back in the queue: healthy), so Slurm records the task as failed.
    """
    apply_task_env(settings)
    from .app import load_app

    out = load_app(app, settings.workdir).entry(submitted_config(config_yaml, settings))
    if out.get("status") not in TASK_OK:
        raise RunFailed(f"run {out.get('run_id')} ended with status {out.get('status')}")
    return out


def task_call(sweep, profile, workdir: str) -> scheduler.TaskCall:
    """What each task of a submission of `sweep` with `profile` runs, for a backend to send:
    its runs (`run_task` for one run per task, `run_tasks` for several) as a batch task."""
    settings = TaskSettings(profile, workdir, sweep.results_root)

    def call(run_ids: list[str]):
        if profile.runs_per_task == 1:
            (run_id,) = run_ids
            return functools.partial(as_batch_task, run_task, sweep.entry, sweep.config_yaml(run_id), settings)
        runs = [(r, str(sweep.result_path(r)), sweep.config_yaml(r)) for r in run_ids]
        return functools.partial(as_batch_task, run_tasks, sweep.entry, runs, settings)

    return call


def as_batch_task(fn, *args):
    """`fn(*args)` (`run_task`, `run_tasks`) as the body of a batch task: a `RunFailed` is one
    line on stderr and exit status 1, so Slurm records the task as failed, with no traceback
    after the run's own lines (its result file or note says why)."""
    try:
        return fn(*args)
    except RunFailed as exc:
        print(f"hpc: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


class _Stops:
    """SIGUSR2 and SIGTERM that come between the runs of a task (a run's own checkpoint takes
    them while it trains), remembered as their cause."""

    def __init__(self):
        self.cause: str | None = None

    def caught(self):
        def remember(cause: str, name: str) -> None:
            self.cause = self.cause or cause
            print(f"Received {name} between runs.", flush=True)

        return stop_signals(remember, self)


def run_tasks(app: str, runs: list, settings: TaskSettings) -> list[dict]:
    """Train several runs of the application `app` one after the other in this one process
    (`cluster.runs_per_task`): one import, one compile (the cache hits after the first), and
    each run with its own claim, result file, checkpoint and log lines. With
    `cluster.ensemble` and an application that has an `App.ensemble`, each turn hands it that
    many consecutive runs to train together.

    `runs`: `(run id, result path, config YAML)` each; `settings` as for `run_task`. A run
    that fails does not stop the others: the task raises `RunFailed` naming every failed run
    once all have had their turn. When a run comes back `requeued` or `interrupted`, the task
    is going away: the runs after it wait for its rerun, which skips the completed ones and
    resumes the interrupted one from its checkpoint. A stop signal between two runs does the
    same before the next starts (`hpc.run.Stopper`); with no requeue left, the runs not started
    get a note saying so (`hpc status`: timeout).
    **Returns:** what each run's entry returned, for the runs that ran.
    """
    apply_task_env(settings)
    from .app import load_app
    from .run import Stopper

    application = load_app(app, settings.workdir)
    together = settings.cluster.ensemble if application.ensemble is not None else 1
    outs, failed = [], []
    with _Stops().caught() as stops:
        for n in range(0, len(runs), together):
            if stops.cause:
                if Stopper().decide(stops.cause, settings.cluster.max_requeues, "between runs") == "timeout":
                    failed += _not_started(runs, n)
                break
            chosen = runs[n : n + together]
            which = f"{n + 1}-{n + len(chosen)}" if len(chosen) > 1 else f"{n + 1}"
            print(f"--- hpc: run {which} of {len(runs)} of this task: {', '.join(r for r, _, _ in chosen)}", flush=True)
            results = _turn(application, chosen, settings)
            outs.extend(r for r in results if "error" not in r)
            failed += _failures(results)
            statuses = {out.get("status") for out in results}
            if statuses & {"requeued", "interrupted"}:
                break
            if "timeout" in statuses:  # its time limit came, with no requeue left: start no other
                failed += _not_started(runs, n + len(chosen))
                break
    if failed:
        raise RunFailed(f"{len(failed)} of the task's {len(runs)} runs did not complete: {'; '.join(failed)}")
    return outs


def _turn(application, chosen: list, settings: TaskSettings) -> list[dict]:
    """One turn of a task: one run, or an ensemble of them trained together. An exception is
    the runs' failure (their result files say why): the next runs still get their turn."""
    configs = [submitted_config(config_yaml, settings) for _, _, config_yaml in chosen]
    try:
        return application.ensemble(configs) if len(chosen) > 1 else [application.entry(configs[0])]
    except Exception as exc:
        import traceback

        traceback.print_exc()
        return [{"status": "failed", "run_id": run_id, "error": exc} for run_id, _, _ in chosen]


def _failures(results: list[dict]) -> list[str]:
    """The runs of a turn that did not end well, each as `run id (why)`."""
    out = []
    for result in results:
        if "error" in result:
            out.append(f"{result['run_id']} ({type(result['error']).__name__})")
        elif result.get("status") not in TASK_OK + ("interrupted",):
            out.append(f"{result.get('run_id')} ({result.get('status')})")
    return out


def _not_started(runs: list, start: int) -> list[str]:
    """The time limit is near, with no requeue left: a note for each run from `start` on,
    saying so; and their failure, in one entry."""
    from .store import write_note

    rest = runs[start:]
    for _, later_path, _ in rest:
        write_note(
            later_path,
            f"not started: its task ({len(runs)} runs per task) reached its time limit with no "
            "requeue left; `hpc resubmit` runs it",
            status="timeout",
        )
    return [f"{', '.join(r for r, _, _ in rest)} (not started: time limit)"] if rest else []


def main(argv=None) -> None:
    """`python -m hpc.task <sweep dir> <offset>`: in a plain-sbatch array task, the runs of
    this task (`cluster.runs_per_task` of the manifest part starting at `offset`, by
    `SLURM_ARRAY_TASK_ID`), from the sweep's record."""
    from .sweep import Sweep

    sweep_dir, offset = argv or sys.argv[1:]
    sweep = Sweep.load(sweep_dir)
    position = next(
        n
        for n in reversed(range(len(sweep.submissions)))
        if sweep.submissions[n]["kind"] == "manifest" and sweep.submissions[n].get("offset") == int(offset)
    )
    part = sweep.submissions[position]
    settings = TaskSettings(sweep.profile(position), sweep.workdir or os.getcwd(), sweep.results_root)
    size = settings.cluster.runs_per_task
    index = int(scheduler.here().env().array_task_id)
    chosen = part["runs"][index * size : (index + 1) * size]
    runs = [(r, str(sweep.result_path(r)), sweep.config_yaml(r)) for r in chosen]
    as_batch_task(run_tasks, sweep.entry, runs, settings)


if __name__ == "__main__":
    main()

"""Send a sweep's runs to Slurm as array jobs (via submitit), or run them in local processes.

Submitting to a sweep is exclusive (`exclusive`: one submitter at a time, the record reloaded
under the lock), and each array is recorded before `sbatch` under a job name unique to the sweep
and the submission: a submitter killed in between leaves an entry that status resolves by name.
"""

import contextlib
import dataclasses
import functools
import pathlib
import shutil
import time

from . import claim, layout, local, status
from .app import load_app, script_of
from .atomic import no_new_empty_dirs, write_error
from .profile import FIELDS, Profile
from .scheduler import Scheduler
from .store import is_completed
from .sweep import SUBMIT_LOCK, Sweep
from .task import task_call


@functools.cache
def backend(name: str) -> Scheduler:
    """The scheduler called `name`: `slurm` (`hpc.slurm`) or `local` (`hpc.local`). The one
    place that chooses and imports a backend; the core reaches it through `hpc.scheduler`."""
    if name == "slurm":
        from .slurm.backend import SlurmScheduler

        return SlurmScheduler()
    if name == "local":
        return local.LocalScheduler()
    raise ValueError(f"no scheduler called {name!r}; there are: local, slurm.")


def cluster_backend() -> Scheduler:
    """The cluster's scheduler: Slurm (whose jobs sweep records and claims name)."""
    return backend("slurm")


def backend_here() -> Scheduler:
    """The scheduler whose task this process is: the cluster's inside one of its jobs, else
    the local one."""
    cluster = cluster_backend()
    return cluster if cluster.env().job_id is not None else backend("local")


def _wanted_mode(profile: Profile) -> str:
    """`slurm` or `local` for this profile on this machine. `auto` runs locally only where
    Slurm is not installed: where it is but does not answer, a grid is not trained on what is
    likely a login node; that is an outage, and it says so."""
    if profile.submit == "local":
        return "local"
    cluster = cluster_backend()
    problem = cluster.unanswered()
    if problem is None:
        return "slurm"
    if profile.submit == "auto" and not cluster.installed():
        return "local"
    raise ValueError(
        f"no Slurm controller answers on this machine ({problem}); nothing was submitted. "
        "Try again once Slurm is back, or set cluster.submit=local to run here on purpose."
    )


def submit_mode(profile: Profile) -> str:
    """The backend (`slurm` or `local`) of this profile on this machine, once, for Slurm, its
    partition and CPUs are checked: raises `ValueError` naming a bad field."""
    how = _wanted_mode(profile)
    backend(how).check(profile)
    return how


def resubmit_profile(sweep: Sweep, run_ids: list[str], changes: list[str]) -> Profile:
    """The cluster profile a resubmit of `run_ids` uses: the one they were last submitted with
    (or planned with), less `hold`, with `changes` (`KEY=VALUE` or `cluster.KEY=VALUE`, YAML values) applied; nothing
    from the environment of the shell it runs in. Raises `ValueError` naming an unknown key."""
    import yaml

    latest = sweep.latest_submission(run_ids[0])
    profile = (
        sweep.profile(latest.position)
        if latest is not None
        else Profile.from_dict(yaml.safe_load(sweep.config_yaml(run_ids[0])).get("cluster"))
    )
    changed: dict = {"hold": False}
    for item in changes:
        key, _, value = item.partition("=")
        key = key.removeprefix("cluster.")  # as the config spells it: cluster.max_requeues
        if key not in FIELDS:
            raise ValueError(
                f"`--set {item}`: `{key}` is not a cluster setting; they are: {', '.join(sorted(FIELDS))}."
            )
        changed[key] = yaml.safe_load(value)
    if any(sub["kind"] in ("slurm", "manifest") for sub in sweep.submissions):
        changed["submit"] = "slurm"  # a sweep that went to Slurm never falls back to this machine
    return profile.replace(**changed)


def resubmit(sweep, changes=()) -> list[str]:
    """Send the runs of `sweep` (a `Sweep` or its directory) that ended without completing, or
    were deferred, again (`hpc resubmit`): under the sweep's submission lock, with the record
    read afresh; with the profile they were last submitted with, less `hold`, and `changes`
    (`KEY=VALUE`, see `resubmit_profile`); from the sweep's own directory, whatever this
    process's. An array whose submitter was killed after `sbatch` (it can never start) is
    cancelled first. Says what it does as it goes. **Returns:** the run ids sent (none when
    nothing is to be resubmitted). Raises `ValueError` while any run is unknown (Slurm does not
    answer: they may still be running), for an unknown key, a damaged record, or a Slurm
    that does not answer, before anything is submitted."""
    with exclusive(sweep.path if isinstance(sweep, Sweep) else sweep) as sweep:
        states = status.run_states(sweep)
        unknown = [s for s in states if s.status == "unknown"]
        if unknown:
            raise ValueError(
                f"{len(unknown)} runs are unknown ({unknown[0].reason}); not resubmitting anything until Slurm "
                "answers: they may still be running."
            )
        run_ids = status.unfinished(states)
        if not run_ids:
            print("Nothing to resubmit: every run is completed, pending, running or planned.")
            return []
        profile = resubmit_profile(sweep, run_ids, changes)
        how = submit_mode(profile)  # Slurm unreachable: refused here, before anything is said done
        stranded = sorted({s.cancel for s in states if s.cancel and s.run_id in run_ids})
        if stranded:  # arrays whose submitter was killed after sbatch: they would only fail at launch
            cluster_backend().cancel(stranded)
            print(f"Cancelled array job(s) {', '.join(stranded)}: their submission was interrupted after sbatch.")
        print(
            f"Resubmitting with the sweep's own cluster settings: {profile.settings_line()} "
            "(--set KEY=VALUE changes one)."
        )
        # the sweep's own directory: its application imports from there, whatever this shell's
        job_ids = submit(sweep, run_ids, profile, sweep.workdir or str(pathlib.Path.cwd()), how)
        where = (
            f"{len(job_ids)} array job(s) {', '.join(job_ids)}"
            if job_ids
            else "no array job (the cluster's job limit)"
            if how == "slurm"
            else "local processes"
        )
        print(f"Resubmitted {len(run_ids)} runs as {where}; runs with a checkpoint resume from it.", flush=True)
        return run_ids


def expected_run_s(sweep: Sweep, sample: int = 16) -> tuple[float, int] | None:
    """A run's expected wall time in this sweep: the median over its completed runs (up to
    `sample` of them, from their stored summaries) and how many that was; `None` when none
    has completed."""
    import statistics

    from .store import read_summary

    times = []
    for run_id in sweep.runs:
        path = sweep.result_path(run_id)
        if len(times) == sample or not path.exists():
            continue
        try:
            summary = read_summary(path)
        except (OSError, KeyError, ValueError):
            continue
        if summary.get("status") == "completed" and isinstance(summary.get("meta.wall_time_s"), (int, float)):
            times.append(float(summary["meta.wall_time_s"]))
    return (statistics.median(times), len(times)) if times else None


def fit_packing(sweep: Sweep, profile: Profile) -> Profile:
    """`profile`, with fewer runs per task where `runs_per_task` runs of the time this sweep's
    completed runs took would not fit in `time_min` (less the warning before it): those would
    only be requeued, run after run. Unchanged when nothing is known yet, or it fits."""
    per_task = profile.runs_per_task
    known = expected_run_s(sweep) if per_task > 1 else None
    if known is None:
        return profile
    each_s, count = known
    budget_s = profile.time_min * 60 - profile.signal_s
    fits = max(1, int(budget_s // max(each_s, 1e-9)))
    if fits >= per_task:
        return profile
    print(
        f"cluster.runs_per_task={per_task}: {per_task} runs of about {each_s:.0f} s each (the median of "
        f"{count} completed runs of this sweep) do not fit in cluster.time_min={profile.time_min} (less the "
        f"{profile.signal_s} s warning): packing {fits} per task instead.",
        flush=True,
    )
    return profile.replace(runs_per_task=fits, ensemble=min(profile.ensemble, fits))


def submit(sweep: Sweep, run_ids: list[str], profile: Profile, workdir: str, how: str | None = None) -> list[str]:
    """Submit `run_ids` with the backend `how` (`slurm`: one array job per `MaxArraySize`;
    `local`: a pool of processes here), which is what `submit_mode(profile)` returned;
    `None` asks again. **Returns:** the Slurm array job ids (empty for local runs)."""
    profile = Profile.from_dict(profile)
    how = how or submit_mode(profile)
    if how != "local":
        profile = fit_packing(sweep, profile)
    return backend(how).submit(sweep, run_ids, profile, workdir, task_call(sweep, profile, workdir))


@contextlib.contextmanager
def exclusive(path, wait_s: float = 120.0):
    """The sweep at `path`, loaded afresh while this process alone may submit to it. Another
    submitter is waited for (up to `wait_s`); a dead one's lock is taken over, as claims are.
    Raises `ValueError` naming the other submitter when it does not finish in time."""
    lock = claim.Claim(pathlib.Path(path) / SUBMIT_LOCK)
    deadline, told = time.monotonic() + wait_s, False
    while True:
        try:
            lock.acquire()
            break
        except claim.Busy:
            owner = claim.read(lock.path) or {}
            if time.monotonic() > deadline:
                raise ValueError(
                    f"another submission to this sweep is under way ({claim.owner_text(owner)}); "
                    "try again when it has finished."
                ) from None
            if not told:
                print(f"Waiting for another submission to this sweep ({claim.owner_text(owner)}) ...", flush=True)
                told = True
            time.sleep(1.0)
    try:
        yield Sweep.load(path)
    finally:
        lock.release()


@dataclasses.dataclass(frozen=True)
class Run:
    """One composed and checked run of a grid, as the launcher hands it over."""

    run_id: str
    overrides: list[str]
    config_yaml: str  # the resolved config, what the node runs
    results_root: pathlib.Path
    experiment: str
    cluster: Profile  # a mapping is made a Profile (and checked)
    force: bool = False

    def __post_init__(self):
        object.__setattr__(self, "cluster", Profile.from_dict(self.cluster))


def _record(runs: list[Run], app: str, about: dict, argv: str, workdir: str) -> tuple[Sweep, dict[str, list[str]], int]:
    """Write the sweep's record: (the sweep, {cluster profile: run ids to submit}, the number of
    runs already completed). A record that cannot be written (a full disk, a quota) is removed
    whole and raises `ValueError` naming the root: no half-written sweep is left."""
    root = runs[0].results_root
    sweep = None
    try:
        sweep = Sweep.create(root, runs[0].experiment, app, argv, workdir, app=about)
        todo: dict[str, list[str]] = {}
        skipped = 0
        for run in runs:
            if run.run_id in sweep.runs:
                continue
            sweep.add_run(run.run_id, run.overrides, run.config_yaml)
            if not run.force and is_completed(layout.result_path(run.results_root, run.experiment, run.run_id)):
                skipped += 1
                continue
            todo.setdefault(run.cluster, []).append(run.run_id)
        sweep.save()
    except OSError as exc:
        named = str(exc.strerror).startswith(("disk full writing", "could not write"))  # `write_error`'s
        error = exc if named else write_error(exc, exc.filename or (sweep.path if sweep else root))
        if sweep is not None:
            shutil.rmtree(sweep.path, ignore_errors=True)
        raise ValueError(f"{error.strerror}: the sweep's record was not written, nothing was submitted.") from exc
    return sweep, todo, skipped


def _plan(sweep: Sweep, run_ids: list[str], profile: Profile, workdir: str, script: str) -> None:
    """Write the plain-sbatch plan of `run_ids` (manifest and array scripts) and say how to submit it."""
    from .slurm.plan import write_plan

    scripts = write_plan(sweep, run_ids, fit_packing(sweep, profile), workdir, script)
    print(
        f"Planned {len(run_ids)} runs: {sweep.path / 'manifest.txt'}\nSubmit with:\n"
        + "\n".join(f"  sbatch {p}" for p in scripts),
        flush=True,
    )


def _say_submitted(sweep: Sweep, job_ids: list[str]) -> None:
    """What was sent as the array jobs `job_ids` (nothing for local runs), and how to watch it."""
    if not job_ids:
        return
    subs = [s for s in sweep.submissions if s["job_id"] in job_ids]
    sent, tasks = sum(len(s["runs"]) for s in subs), len({t for s in subs for t in s["tasks"]})
    packed = f" in {tasks} tasks ({sent / tasks:.3g} runs per task)" if tasks < sent else ""
    print(
        f"Submitted {sent} runs{packed} as {len(job_ids)} array job(s) {', '.join(job_ids)}. "
        f"Watch with: hpc status {sweep.path}",
        flush=True,
    )


def start_sweep(
    runs: list[Run], *, app: str, workdir: str, argv: str = "", plan: bool = False, wait: bool = False
) -> tuple[Sweep, dict | None]:
    """Record a sweep of `runs` of the application `app` (`module:APP`, importable from
    `workdir`) and submit (or, with `plan`, write the manifest and sbatch scripts of) those
    without a completed result, one array job per distinct cluster profile.

    Every profile is checked once, before anything is written. Runs with the same id (overrides
    that change only where a run goes) are one run. With `wait`, block until no run is active.

    **Returns:** the sweep, and `{run id: RunState}` when the states are final (nothing to
    submit, local runs, or `wait`), else `None`.
    """
    if not runs:
        raise ValueError("the sweep has no runs (an empty range or list among the overrides?); nothing was written.")
    profiles = {r.cluster for r in runs}  # each distinct profile (a frozen, hashable Profile)
    if plan and len(profiles) > 1:
        raise ValueError(
            "`hydra/launcher=manifest` writes one manifest per sweep: do not vary `cluster.*` "
            "within the grid (plan one sweep per cluster setting)."
        )
    modes = {} if plan else {profile: submit_mode(profile) for profile in profiles}  # each checked once
    with no_new_empty_dirs(layout.sweep_dir(runs[0].results_root, runs[0].experiment, "-").parent):
        layout.check_writable(runs[0].results_root)  # refused: no empty <experiment>/sweeps is left
        application = load_app(app, workdir)
        sweep, todo, skipped = _record(runs, app, application.record, argv, workdir)
    print(
        f"Sweep {sweep.sweep_id}: {len(sweep.runs)} runs, {skipped} already completed, record in {sweep.path}",
        flush=True,
    )
    # one submitter at a time (a resubmit started meanwhile waits); a local pool runs in here, so
    # the lock is held for the submission only when the runs go elsewhere
    local_here = not plan and all(modes[key] == "local" and not key.detach for key in todo)
    with contextlib.nullcontext(sweep) if local_here else exclusive(sweep.path) as sweep:
        for key, run_ids in todo.items():
            if plan:
                _plan(sweep, run_ids, key, workdir, script_of(app, application))
            else:
                _say_submitted(sweep, submit(sweep, run_ids, key, workdir, modes[key]))
    if wait and not plan:
        states = status.wait_for(sweep)
    elif not todo or local_here:  # local runs have finished by now; Slurm's are final only after waiting
        states = status.run_states(sweep)
    else:
        return sweep, None
    return sweep, {s.run_id: s for s in states}

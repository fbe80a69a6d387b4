"""Send a sweep's runs to Slurm as array jobs (via submitit), or run them in local processes.

Submitting to a sweep is exclusive (`exclusive`: one submitter at a time, the record reloaded
under the lock), and each array is recorded before `sbatch` under a job name unique to the sweep
and the submission: a submitter killed in between leaves an entry that status resolves by name.
"""

import contextlib
import dataclasses
import pathlib
import shutil
import time

from . import claim, layout, local, slurm, status
from .sbatch import activation_lines, signal_before_s
from .store import is_completed
from .sweep import Sweep
from .task import run_task, task_settings

SUBMIT_MODES = ("auto", "slurm", "local")


def submitit_parameters(cluster: dict, job_name: str) -> dict:
    """Our cluster profile -> `submitit.SlurmExecutor.update_parameters` keywords (pure)."""
    params = {"job_name": job_name, "time": int(cluster["time_min"]),
              "cpus_per_task": int(cluster.get("cpus_per_task") or 1), "ntasks_per_node": 1,
              "array_parallelism": int(cluster.get("array_parallelism") or 256),
              "stderr_to_stdout": True, "signal_delay_s": signal_before_s(cluster),
              "additional_parameters": {"requeue": True}}
    for key in ("partition", "account", "qos"):
        if cluster.get(key):
            params[key] = str(cluster[key])
    if cluster.get("hold"):
        params["additional_parameters"]["hold"] = True  # queued, not started: `scontrol release` starts them
    if cluster.get("mem_per_cpu_mb"):
        params["mem_per_cpu"] = f"{int(cluster['mem_per_cpu_mb'])}M"
    if cluster.get("gpus_per_task"):
        params["gpus_per_task"] = int(cluster["gpus_per_task"])
    setup = list(cluster.get("setup") or []) + activation_lines(cluster.get("environment"))
    if setup:
        params["setup"] = setup
    return params


def _wanted_submit(cluster: dict) -> str:
    wanted = cluster.get("submit", "auto")
    if wanted not in SUBMIT_MODES:
        raise ValueError(f"`cluster.submit`={wanted!r}; allowed: {', '.join(SUBMIT_MODES)}.")
    return wanted


def _wanted_mode(cluster: dict) -> str:
    """`slurm` or `local` for this profile on this machine. `auto` runs locally only where
    Slurm is not installed: where it is but does not answer, a grid is not trained on what is
    likely a login node; that is an outage, and it says so."""
    wanted = _wanted_submit(cluster)
    if wanted == "local":
        return wanted
    problem = slurm.unanswered()
    if problem is None:
        return "slurm"
    if wanted == "auto" and not slurm.installed():
        return "local"
    raise ValueError(f"no Slurm controller answers on this machine ({problem}); nothing was submitted. "
                     "Try again once Slurm is back, or set cluster.submit=local to run here on purpose.")


_INT, _NUM, _STR, _BOOL, _LIST = "an integer", "a number", "a string", "true or false", "a list of strings"
# field -> (kind, smallest value or None, may be null); `environment` is checked by activation_lines
CLUSTER_FIELDS = {
    "name": (_STR, None, True), "submit": (_STR, None, False), "detach": (_BOOL, None, False),
    "hold": (_BOOL, None, False), "partition": (_STR, None, True), "account": (_STR, None, True),
    "qos": (_STR, None, True), "time_min": (_INT, 1, False), "cpus_per_task": (_INT, 1, False),
    "mem_per_cpu_mb": (_INT, 1, True), "gpus_per_task": (_INT, 0, False), "shared_gpu": (_BOOL, None, False),
    "array_parallelism": (_INT, 1, False), "max_submit_jobs": (_INT, 1, True),
    "checkpoint_min": (_NUM, 0, True), "checkpoint_steps": (_INT, 1, True), "max_requeues": (_INT, 0, False),
    "signal_before_s": (_INT, 1, True), "node_local_tmp": (_STR, None, True), "results_root": (_STR, None, True),
    "python": (_STR, None, True), "xla_flags": (_STR, None, False), "setup": (_LIST, None, False),
}


def _is(kind: str, value) -> bool:
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == _STR:
        return isinstance(value, str)
    if kind == _BOOL:
        return isinstance(value, bool)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def check_cluster(cluster: dict) -> None:
    """Type- and range-check every field of a cluster profile (nothing asks Slurm): raises
    `ValueError` naming the field and what it allows."""
    for field, (kind, low, nullable) in CLUSTER_FIELDS.items():
        if field not in cluster or (nullable and cluster[field] is None):
            continue
        value = cluster[field]
        bound = "" if low is None else (f" > {low}" if kind == _NUM else f" >= {low}")
        if not _is(kind, value) or (low is not None and (value <= low if kind == _NUM else value < low)):
            raise ValueError(f"`cluster.{field}` must be {kind}{bound}{' or null' if nullable else ''}, "
                             f"got {value!r}.")
    signal, limit = cluster.get("signal_before_s"), cluster.get("time_min")
    if signal is not None and limit is not None and 2 * signal > 60 * limit:
        raise ValueError(f"`cluster.signal_before_s`={signal} warns of the time limit before half of a "
                         f"{limit}-minute job (cluster.time_min={limit}) has run: every requeue would be wasted. "
                         f"It must be at most {30 * limit} s, or null (a tenth of the limit).")
    _wanted_submit(cluster)
    activation_lines(cluster.get("environment"))


def submit_mode(cluster: dict) -> str:
    """The submit mode (`slurm` or `local`) of this profile on this machine, once the profile
    is checked (`check_cluster`) and, for Slurm, its partition and CPUs are: raises
    `ValueError` naming a bad field."""
    check_cluster(cluster)
    how = _wanted_mode(cluster)
    if how == "slurm":
        slurm.check_resources(cluster.get("partition"), int(cluster["cpus_per_task"]))
    return how


# Shown when a resubmit says what it reuses; `hold` holds one submission, it is never reused.
SHOWN = ("partition", "account", "qos", "time_min", "cpus_per_task", "mem_per_cpu_mb", "gpus_per_task",
         "array_parallelism", "max_requeues")


def resubmit_profile(sweep: Sweep, run_ids: list[str], changes: list[str]) -> dict:
    """The cluster profile a resubmit of `run_ids` uses: the one they were last submitted with
    (or planned with), less `hold`, with `changes` (`KEY=VALUE`, YAML values) applied; nothing
    from the environment of the shell it runs in. Raises `ValueError` naming an unknown key."""
    import yaml

    latest = sweep.latest_submission(run_ids[0])
    cluster = dict(latest.submission["cluster"] if latest is not None
                   else yaml.safe_load(sweep.config_yaml(run_ids[0])).get("cluster") or {})
    cluster["hold"] = False
    for item in changes:
        key, _, value = item.partition("=")
        if key not in CLUSTER_FIELDS and key != "environment":
            raise ValueError(f"`--set {item}`: `{key}` is not a cluster setting; they are: "
                             f"{', '.join(sorted([*CLUSTER_FIELDS, 'environment']))}.")
        cluster[key] = yaml.safe_load(value)
    if any(sub["kind"] in ("slurm", "manifest") for sub in sweep.submissions):
        cluster["submit"] = "slurm"  # a sweep that went to Slurm never falls back to this machine
    return cluster


def describe_profile(cluster: dict) -> str:
    """The settings of `cluster` a user chooses, as `key=value` (those that are set)."""
    return " ".join(f"{k}={cluster[k]}" for k in ("submit", *SHOWN) if cluster.get(k) is not None) or "defaults"


def submit(sweep: Sweep, run_ids: list[str], cluster: dict, workdir: str, how: str | None = None) -> list[str]:
    """Submit `run_ids` as one array job per `MaxArraySize` (or run them locally: `hpc.local`).
    `how` (`slurm` or `local`) is what `submit_mode(cluster)` returned; `None` checks again.

    **Returns:** the Slurm array job ids (empty for local runs).
    """
    how = how or submit_mode(cluster)
    if how == "local":
        local.start(sweep, run_ids, cluster, workdir)
        return []
    settings = task_settings(cluster, workdir, sweep.results_root)
    import submitit

    python = cluster.get("python")
    if (cluster.get("environment") or {}).get("kind", "none") != "none":
        python = python or "python"  # the activated environment's, not this process's
    executor = submitit.SlurmExecutor(folder=sweep.path / "slurm" / "%j", python=python)
    executor.update_parameters(**submitit_parameters(cluster, f"{sweep.experiment}-{sweep.sweep_id}"))
    room = slurm.job_room(cluster.get("max_submit_jobs"))
    if room is not None and len(run_ids) > room:  # the rest waits: `hpc resubmit` sends it later
        run_ids, later = run_ids[:room], run_ids[room:]
        sweep.add_submission("deferred", None, later, cluster)
        print(f"The cluster takes {room} more jobs now: submitting {len(run_ids)} runs, {len(later)} wait "
              f"(`hpc resubmit {sweep.path}` submits them once there is room).", flush=True)
    job_ids = []
    for _, part in slurm.array_parts(run_ids):
        name = f"{sweep.experiment}-{sweep.sweep_id}-s{len(sweep.submissions)}"  # unique in the sweep
        entry = sweep.add_submission("slurm", None, part, cluster, job_name=name)  # the intent, saved first
        executor.update_parameters(job_name=name)
        with executor.batch():
            jobs = [executor.submit(run_task, sweep.entry, sweep.config_yaml(r), settings) for r in part]
        # submitit sends a batch of one as a plain job: its task id has no array index
        entry.update(job_id=jobs[0].job_id.split("_")[0], tasks=[job.job_id for job in jobs])
        sweep.save()
        job_ids.append(entry["job_id"])
    return job_ids


LOCK = "submitting"  # <sweep>/submitting.claim: who is submitting to the sweep now


@contextlib.contextmanager
def exclusive(path, wait_s: float = 120.0):
    """The sweep at `path`, loaded afresh while this process alone may submit to it. Another
    submitter is waited for (up to `wait_s`); a dead one's lock is taken over, as claims are.
    Raises `ValueError` naming the other submitter when it does not finish in time."""
    lock = claim.Claim(pathlib.Path(path) / LOCK)
    deadline, told = time.monotonic() + wait_s, False
    while True:
        try:
            lock.acquire()
            break
        except claim.Busy:
            owner = claim.read(lock.path) or {}
            if time.monotonic() > deadline:
                raise ValueError(f"another submission to this sweep is under way ({claim.describe(owner)}); "
                                 "try again when it has finished.") from None
            if not told:
                print(f"Waiting for another submission to this sweep ({claim.describe(owner)}) ...", flush=True)
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
    cluster: dict
    force: bool = False

    @property
    def result_path(self) -> pathlib.Path:
        return layout.result_path(self.results_root, self.experiment, self.run_id)


def _record(runs: list[Run], entry: str, argv: str, workdir: str) -> tuple[Sweep, dict[str, list[str]], int]:
    """Write the sweep's record: (the sweep, {cluster profile: run ids to submit}, the number of
    runs already completed). A record that cannot be written (a full disk, a quota) is removed
    whole and raises `ValueError` naming the root: no half-written sweep is left."""
    root = runs[0].results_root
    sweep = None
    try:
        sweep = Sweep.create(root, runs[0].experiment, entry, argv, workdir)
        todo: dict[str, list[str]] = {}
        skipped = 0
        for run in runs:
            if run.run_id in sweep.runs:
                continue
            sweep.add_run(run.run_id, run.overrides, run.config_yaml)
            if not run.force and is_completed(run.result_path):
                skipped += 1
                continue
            todo.setdefault(repr(run.cluster), []).append(run.run_id)
        sweep.save()
    except OSError as exc:
        if sweep is not None:
            shutil.rmtree(sweep.path, ignore_errors=True)
        raise ValueError(f"could not write the sweep's record under the results root {root} "
                         f"({exc.strerror or exc}: is the disk or quota full?); nothing was submitted.") from exc
    return sweep, todo, skipped


def start_sweep(runs: list[Run], *, entry: str, workdir: str, argv: str = "", plan: bool = False,
                script: str = "train.py", wait: bool = False) -> tuple[Sweep, dict | None]:
    """Record a sweep of `runs` and submit (or, with `plan`, write the manifest and sbatch
    scripts of) those without a completed result, one array job per distinct cluster profile.

    Every profile is checked once, before anything is written. Runs with the same id (overrides
    that change only where a run goes) are one run. With `wait`, block until no run is active.

    **Returns:** the sweep, and `{run id: RunState}` when the states are final (nothing to
    submit, local runs, or `wait`), else `None`.
    """
    if not runs:
        raise ValueError("the sweep has no runs (an empty range or list among the overrides?); nothing was written.")
    profiles = {repr(r.cluster): r.cluster for r in runs}
    if plan and len(profiles) > 1:
        raise ValueError("`hydra/launcher=manifest` writes one manifest per sweep: do not vary `cluster.*` "
                         "within the grid (plan one sweep per cluster setting).")
    modes = {}
    for key, cluster in profiles.items():
        if plan:
            check_cluster(cluster)
        else:
            modes[key] = submit_mode(cluster)
    layout.check_writable(runs[0].results_root)
    sweep, todo, skipped = _record(runs, entry, argv, workdir)
    print(f"Sweep {sweep.sweep_id}: {len(sweep.runs)} runs, {skipped} already completed, "
          f"record in {sweep.path}", flush=True)
    # one submitter at a time (a resubmit started meanwhile waits); a local pool runs in here, so
    # the lock is held for the submission only when the runs go elsewhere
    local_here = not plan and all(modes[key] == "local" and not profiles[key].get("detach") for key in todo)
    with contextlib.nullcontext(sweep) if local_here else exclusive(sweep.path) as sweep:
        for key, run_ids in todo.items():
            if plan:
                from .plan import write_plan

                scripts = write_plan(sweep, run_ids, profiles[key], workdir, script)
                print(f"Planned {len(run_ids)} runs: {sweep.path / 'manifest.txt'}\nSubmit with:\n"
                      + "\n".join(f"  sbatch {p}" for p in scripts), flush=True)
                continue
            job_ids = submit(sweep, run_ids, profiles[key], workdir, modes[key])
            if job_ids:
                sent = sum(len(s["runs"]) for s in sweep.submissions if s["job_id"] in job_ids)
                print(f"Submitted {sent} runs as {len(job_ids)} array job(s) {', '.join(job_ids)}. "
                      f"Watch with: hpc status {sweep.path}", flush=True)
    if wait and not plan:
        states = status.wait_for(sweep)
    elif not todo or local_here:  # local runs have finished by now; Slurm's are final only after waiting
        states = status.run_states(sweep)
    else:
        return sweep, None
    return sweep, {s.run_id: s for s in states}

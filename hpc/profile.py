"""A cluster profile: where and how a sweep's runs execute (`cluster.*` in a config).

One frozen dataclass, checked when it is made (`Profile.from_dict` names the field and what it
allows), whose defaults are the only ones in code; `conf/cluster/default.yaml` shows them to
users and a test keeps the two equal. `slurm_options` is the one mapping of a profile to
Slurm's options, for submitit and for plain sbatch scripts alike.
"""

import dataclasses
import functools
import typing

SUBMIT_MODES = ("auto", "slurm", "local")
ENVIRONMENT_KINDS = ("none", "packed", "conda", "venv")


@dataclasses.dataclass(frozen=True)
class Environment:
    """What each task runs in: this Python (`none`), an `hpc pack` tarball unpacked on the node
    (`packed`), a conda environment or a venv."""

    kind: str = "none"
    tarball: str | None = None  # packed: the tarball `hpc pack` printed
    unpack_dir: str | None = None  # packed: node-local directory to unpack into (None: $TMPDIR or /tmp)
    conda_env: str | None = None  # conda: environment name or prefix
    venv: str | None = None  # venv: its directory (on a filesystem the nodes see)

    def __post_init__(self):
        if self.kind not in ENVIRONMENT_KINDS:
            raise ValueError(f"`cluster.environment.kind`={self.kind!r}; allowed: {', '.join(ENVIRONMENT_KINDS)}.")
        needed = {
            "packed": ("tarball", "the `hpc pack` tarball"),
            "conda": ("conda_env", "the environment"),
            "venv": ("venv", "the venv directory"),
        }.get(self.kind)
        if needed and not getattr(self, needed[0]):
            raise ValueError(f"`cluster.environment.{needed[0]}` must name {needed[1]} for kind {self.kind!r}.")


@dataclasses.dataclass(frozen=True)
class Profile:
    """The cluster profile; each field as `conf/cluster/default.yaml` documents it."""

    name: str | None = "default"
    submit: str = "auto"  # auto (Slurm where it is installed, else local processes), slurm, local
    detach: bool = False  # local runs: return at once and let them go on
    hold: bool = False  # Slurm: submit held (`scontrol release <job>` starts them); never reused by a resubmit
    partition: str | None = None  # None: the cluster's default
    account: str | None = None
    qos: str | None = None
    time_min: int = 60  # wall-time limit per Slurm task (of its `runs_per_task` runs together)
    cpus_per_task: int = 1  # also the thread count of XLA, OpenMP, MKL and OpenBLAS in the task
    mem_per_cpu_mb: int | None = None
    gpus_per_task: int = 0
    gpu_type: str | None = None  # a GPU type or MIG slice (`a100_1g.5gb`): asked as --gres=gpu:<type>:<n>
    shared_gpu: bool = False  # tasks share a GPU: no GPU memory preallocation
    gpu_mem_fraction: float | None = None  # the share of GPU memory JAX may take (None: JAX's 75 %)
    runs_per_task: int = 1  # runs trained one after the other in one warm process per Slurm task
    ensemble: int = 1  # runs of a task that share every shape train together, this many at once
    array_parallelism: int = 256  # at most this many tasks of one array at once (%N)
    max_submit_jobs: int | None = None  # the site's MaxSubmitJobs per user: a larger grid is sent in parts
    checkpoint_min: float | None = 10  # checkpoint every this many minutes (None: only on a signal)
    checkpoint_steps: int | None = None  # and/or every this many steps
    max_requeues: int = 3  # near its time limit a run checkpoints and requeues itself, this many times
    signal_before_s: int | None = None  # the warning before the time limit (None: a tenth of it, 20 s to 5 min)
    node_local_tmp: str | None = None  # job-private temp dirs go under this (None: $TMPDIR or /tmp)
    results_root: str | None = None
    python: str | None = None  # interpreter on the compute nodes (None: this one)
    xla_flags: str = ""
    setup: tuple[str, ...] = ()  # shell lines run before each task (module loads)
    environment: Environment = Environment()

    def __post_init__(self):
        for field in dataclasses.fields(self):
            if field.name != "environment":
                _check(field, getattr(self, field.name))
        if self.submit not in SUBMIT_MODES:
            raise ValueError(f"`cluster.submit`={self.submit!r}; allowed: {', '.join(SUBMIT_MODES)}.")
        if self.gpu_type is not None and self.gpus_per_task < 1:
            raise ValueError(
                f"`cluster.gpu_type`={self.gpu_type!r} needs `cluster.gpus_per_task` >= 1 (it is "
                f"{self.gpus_per_task}): the type names which GPUs, the count how many."
            )
        if self.ensemble > 1 and self.runs_per_task < self.ensemble:
            raise ValueError(
                f"`cluster.ensemble`={self.ensemble} trains that many runs of one task together: set "
                f"`cluster.runs_per_task` to at least {self.ensemble} (a multiple of it packs whole "
                f"ensembles), got {self.runs_per_task}."
            )
        if self.gpu_mem_fraction is not None and self.gpu_mem_fraction > 1:
            raise ValueError(
                f"`cluster.gpu_mem_fraction` must be a number > 0 and <= 1, got {self.gpu_mem_fraction!r}."
            )
        if self.signal_before_s is not None and 2 * self.signal_before_s > 60 * self.time_min:
            raise ValueError(
                f"`cluster.signal_before_s`={self.signal_before_s} warns of the time limit before half "
                f"of a {self.time_min}-minute job (cluster.time_min={self.time_min}) has run: every "
                f"requeue would be wasted. It must be at most {30 * self.time_min} s, or null (a "
                "tenth of the limit)."
            )

    @classmethod
    def from_dict(cls, values: "dict | Profile | None") -> "Profile":
        """The profile of a config's `cluster` mapping (missing fields take their defaults).
        Raises `ValueError` naming an unknown or bad field and what it allows."""
        if isinstance(values, Profile):
            return values
        values = dict(values or {})
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise ValueError(f"`cluster.{unknown[0]}` is not a cluster setting; they are: {', '.join(FIELDS)}.")
        env = values.pop("environment", None) or {}
        if not isinstance(env, dict):
            raise ValueError(f"`cluster.environment` must be a mapping (kind, tarball, ...), got {env!r}.")
        unknown = sorted(set(env) - {f.name for f in dataclasses.fields(Environment)})
        if unknown:
            raise ValueError(
                f"`cluster.environment.{unknown[0]}` is not an environment setting; they are: "
                f"{', '.join(f.name for f in dataclasses.fields(Environment))}."
            )
        if isinstance(values.get("setup"), list):
            values["setup"] = tuple(values["setup"])
        return cls(**values, environment=Environment(**{k: v for k, v in env.items() if v is not None or k != "kind"}))

    def to_dict(self) -> dict:
        """The profile as a config's `cluster` mapping (what a sweep's record keeps)."""
        out = dataclasses.asdict(self)
        out["setup"] = list(self.setup)
        return out

    def replace(self, **changes) -> "Profile":
        return Profile.from_dict({**self.to_dict(), **changes})

    @property
    def signal_s(self) -> int:
        """Seconds before the time limit at which a task gets SIGUSR2 to checkpoint and
        requeue: `signal_before_s`, else a tenth of the limit, at least 20 s and at most 5 min
        (Slurm may send it up to 60 s earlier than asked)."""
        if self.signal_before_s:
            return int(self.signal_before_s)
        return int(min(300, max(20, self.time_min * 60 // 10)))

    def settings_line(self) -> str:
        """The settings a user chooses, as `key=value` (those that are set)."""
        shown = (
            "submit",
            "partition",
            "account",
            "qos",
            "time_min",
            "cpus_per_task",
            "mem_per_cpu_mb",
            "gpus_per_task",
            "gpu_type",
            "runs_per_task",
            "ensemble",
            "array_parallelism",
            "max_requeues",
        )
        return " ".join(f"{k}={getattr(self, k)}" for k in shown if getattr(self, k) is not None)


FIELDS = tuple(f.name for f in dataclasses.fields(Profile))


def slurm_options(profile: Profile) -> dict:
    """The Slurm options of a profile, `sbatch` long option name (`_` for `-`) -> value; unset
    ones are left out. Both submission paths use this: submitit (`hpc.slurm.submit`) and the
    plain sbatch scripts (`hpc.slurm.plan`)."""
    options = {
        "partition": profile.partition,
        "account": profile.account,
        "qos": profile.qos,
        "time": profile.time_min,
        "cpus_per_task": profile.cpus_per_task,
        "mem_per_cpu": f"{profile.mem_per_cpu_mb}M" if profile.mem_per_cpu_mb else None,
        "gpus_per_task": profile.gpus_per_task or None,
    }
    if profile.gpu_type:  # a type (or MIG slice) is asked for as a generic resource, per node (one task)
        options["gpus_per_task"] = None
        options["gres"] = f"gpu:{profile.gpu_type}:{profile.gpus_per_task}"
    return {k: v for k, v in options.items() if v is not None}


_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


@functools.cache
def _kinds() -> dict[str, tuple[type, bool]]:
    """Each field's (type, may be None), from the annotations (read once)."""
    out = {}
    for name, hint in typing.get_type_hints(Profile).items():
        args = typing.get_args(hint)
        out[name] = (
            next((a for a in args if a is not type(None)), hint) if type(None) in args else hint,
            type(None) in args,
        )
    return out


def _check(field: dataclasses.Field, value) -> None:
    """Type- and range-check one field from its annotation; raises `ValueError` naming it."""
    base, nullable = _kinds()[field.name]
    if value is None and nullable:
        return
    if typing.get_origin(base) is tuple:
        if not (isinstance(value, tuple) and all(isinstance(v, str) for v in value)):
            shown = list(value) if isinstance(value, tuple) else value
            raise ValueError(f"`cluster.{field.name}` must be a list of strings, got {shown!r}.")
        return
    low = _LOWEST.get(field.name)
    if base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, base) and (base is bool or not isinstance(value, bool))
    in_range = not ok or low is None or (value > low if base is float else value >= low)
    if not ok or not in_range:
        kind, bound, _ = field_rule(field.name)
        raise ValueError(
            f"`cluster.{field.name}` must be {kind}{' ' + bound if bound else ''}{' or null' if nullable else ''}, "
            f"got {value!r}."
        )


def field_rule(name: str) -> tuple[str, str, bool]:
    """What profile field `name` takes, as its error messages and the reference page say it: its
    kind (`an integer`, `a list of strings`), its bound (`>= 1`, `> 0`, or ""), and whether it
    may be null. (`submit` also takes only `SUBMIT_MODES`.)"""
    base, nullable = _kinds()[name]
    if typing.get_origin(base) is tuple:
        return "a list of strings", "", nullable
    low = _LOWEST.get(name)
    bound = "" if low is None else (f"> {low}" if base is float else f">= {low}")
    return _KINDS[base], bound, nullable


# the smallest value a number may take (`>` for numbers, `>=` for integers)
_LOWEST = {
    "time_min": 1,
    "cpus_per_task": 1,
    "mem_per_cpu_mb": 1,
    "gpus_per_task": 0,
    "gpu_mem_fraction": 0,
    "runs_per_task": 1,
    "ensemble": 1,
    "array_parallelism": 1,
    "max_submit_jobs": 1,
    "checkpoint_min": 0,
    "checkpoint_steps": 1,
    "max_requeues": 0,
    "signal_before_s": 1,
}

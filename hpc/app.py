"""The application: everything `hpc` is told about a workload, in one object.

    APP = hpc.App(name="neuralode-hpc", entry=train, prepare=prepare, report=hpc.Spec(...), ...)

The launcher is pointed at it once (`hydra.launcher.app=train:APP`); the sweep record keeps
that reference, and every task, `hpc report` and `evaluate.py` find the application through it.
"""

import dataclasses
import importlib
import pathlib
import sys
from collections.abc import Callable

from . import layout
from .report.spec import Spec

GENERIC_COLUMNS = ("metrics.", "eval.")  # what a table shows of any result file, besides `config.*`


@dataclasses.dataclass(frozen=True)
class App:
    """A workload `hpc` runs.

    `name`: the workload's name, that of its results root under `$SCRATCH` and of its jobs;
    `entry(cfg)`: runs one config on a node and returns a dict with `status` and `run_id`
    (`hpc.execute` does the bookkeeping); `prepare(config, overrides)`: checks one resolved
    config before anything is submitted and returns its (run id, results root), raising
    `ValueError` naming a bad field; `report`: what `hpc report` shows; `packages`: the
    distributions whose versions each result file records; `file_format`: the result files'
    root `format` attribute; `conf_dir`: its Hydra configs; `script`: the Hydra script plain
    `sbatch` tasks run (default: the module's file); `failures`: the result statuses of its own
    that mean a failed run (besides `failed` and `timeout`); `columns`: the prefixes of the
    summary keys its tables show besides `metrics.`, `eval.` and the varying `config.*`;
    `describe(summary)`, optional: what a completed run's summary (`hpc.read_summary`) says
    when it ends, as `(headline, lines)` (`hpc.summary`); `ensemble(cfgs)`, optional: runs
    several configs together (`cluster.ensemble`) and returns what `entry` would, per config
    (`hpc.execute_many` does the bookkeeping)."""

    name: str
    entry: Callable
    prepare: Callable
    report: Spec = Spec()
    packages: tuple[str, ...] = ()
    file_format: str = "hpc-result/1"
    conf_dir: pathlib.Path | None = None
    script: str | None = None
    failures: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    ensemble: Callable | None = None
    describe: Callable | None = None

    def __post_init__(self):
        if not self.name or "/" in self.name:
            raise ValueError(f"`App.name` must be a non-empty name without `/`, got {self.name!r}.")
        if not callable(self.entry) or not callable(self.prepare):
            raise ValueError(f"`App.entry` and `App.prepare` must be callables (app {self.name!r}).")

    def results_root(self, configured=None) -> pathlib.Path:
        """Where this app's results go: `hpc.results_root(configured, app=name)`."""
        return layout.results_root(configured, app=self.name)

    @property
    def record(self) -> dict:
        """What a sweep's record keeps of the app, for the commands that do not import it."""
        return {"name": self.name, "columns": list(GENERIC_COLUMNS + self.columns), "failures": list(self.failures)}


def load_app(reference: str, workdir: str | None = None, kinds: tuple[type, ...] = (App,)):
    """The `App` at `reference` (`module:attribute`, or `file.py[:attribute]`; the attribute
    defaults to `APP`), importing from `workdir` (where the sweep was launched) and this
    directory. A reference to anything else (records older than `App` name a function,
    `train:train`) means its module's `APP`. `kinds`: what may be found (`hpc report --app`
    also takes a `Spec`). Raises `ValueError` saying what is missing."""
    module_name, _, attribute = reference.partition(":")
    if module_name.endswith(".py"):
        path = pathlib.Path(module_name).resolve()
        workdir, module_name = str(path.parent), path.stem
    for folder in filter(None, [workdir, str(pathlib.Path.cwd())]):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"the application {reference!r} does not import here ({exc}).") from exc
    if not hasattr(module, attribute or "APP"):
        raise ValueError(f"{reference!r}: {module_name} has no {attribute or 'APP'} (define `APP = hpc.App(...)`).")
    found = getattr(module, attribute or "APP")
    if not isinstance(found, kinds):  # a record older than `App` names the entry function
        found = getattr(module, "APP", None)
    if not isinstance(found, kinds):
        raise ValueError(f"{reference!r} is not an hpc.App (define `APP = hpc.App(...)` in {module_name}).")
    return found


def script_of(reference: str, app: App) -> str:
    """The Hydra script plain `sbatch` tasks run: `app.script`, else the reference's module file."""
    module = reference.partition(":")[0]
    return app.script or (module if module.endswith(".py") else module.replace(".", "/") + ".py")

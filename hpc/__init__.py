"""Generic Slurm toolkit: sweeps, result files and their bookkeeping (no JAX here).

The public API; an application's glue imports only `hpc`:

    APP = hpc.App(name=..., entry=train, prepare=prepare, report=hpc.Spec(...))   # the application
    hpc.execute(path, work, ...)          # one run's lifecycle: claim, checkpoint, requeue, result file
    hpc.execute_many(runs, work)          # several runs trained together (an ensemble), each its own
    hpc.load("latest")                    # a sweep as a DataFrame
    hpc.find(width=64, sort="metrics.*")  # every run of a root, across sweeps, as a DataFrame
    hpc.sql("SELECT ... FROM runs JOIN evals USING (run_id)")  # the tables runs, evals, eval_models
"""

from .app import App as App
from .app import load_app as load_app
from .catalog import find as find
from .catalog import sql as sql
from .checkpoint import Checkpoint as Checkpoint
from .checkpoint import UnusableCheckpoint as UnusableCheckpoint
from .ids import NOT_IDENTITY as NOT_IDENTITY
from .ids import diff as diff
from .ids import flatten as flatten
from .ids import run_id as run_id
from .launch import Run as Run
from .launch import resubmit as resubmit
from .launch import start_sweep as start_sweep
from .layout import result_path as result_path
from .layout import results_root as results_root
from .profile import Environment as Environment
from .profile import Profile as Profile
from .profile import slurm_options as slurm_options
from .progress import Progress as Progress
from .report.aggregate import best_runs as best_runs
from .report.aggregate import goal_key as goal_key
from .report.spec import Curve as Curve
from .report.spec import Figure as Figure
from .report.spec import Spec as Spec
from .run import Lifeline as Lifeline
from .run import Outcome as Outcome
from .run import execute as execute
from .run import execute_many as execute_many
from .run import versions as versions
from .status import RunState as RunState
from .status import run_states as run_states
from .store import read_config_yaml as read_config_yaml
from .store import read_summary as read_summary
from .store import write_evaluation as write_evaluation
from .store import write_result as write_result
from .sweep import Sweep as Sweep
from .sweep import find_result as find_result
from .sweep import find_sweep as find_sweep
from .table import load as load
from .table import resolve_metric as resolve_metric
from .table import rows as rows
from .task import TASK_OK as TASK_OK
from .task import prepare_batch_task as prepare_batch_task

__all__ = [
    "App",
    "load_app",
    "Checkpoint",
    "UnusableCheckpoint",
    "NOT_IDENTITY",
    "diff",
    "flatten",
    "run_id",
    "Run",
    "start_sweep",
    "result_path",
    "results_root",
    "Environment",
    "Profile",
    "slurm_options",
    "Progress",
    "best_runs",
    "goal_key",
    "Curve",
    "Figure",
    "Spec",
    "Lifeline",
    "Outcome",
    "find",
    "resubmit",
    "sql",
    "execute",
    "execute_many",
    "versions",
    "RunState",
    "run_states",
    "read_config_yaml",
    "read_summary",
    "write_evaluation",
    "write_result",
    "Sweep",
    "find_result",
    "find_sweep",
    "load",
    "resolve_metric",
    "rows",
    "TASK_OK",
    "prepare_batch_task",
    "user_errors",
    "hydra_cli",
]

_LAZY = {"user_errors": "hints", "hydra_cli": "hints"}  # these import Hydra


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'hpc' has no attribute {name!r}")

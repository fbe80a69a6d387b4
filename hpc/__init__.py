"""Generic Slurm toolkit: sweeps, result files and their bookkeeping (no JAX here)."""

from .ids import diff as diff, flatten as flatten, run_id as run_id
from .layout import result_path as result_path, results_root as results_root
from .store import read_summary as read_summary
from .store import write_result as write_result
from .run import Lifeline as Lifeline, Outcome as Outcome, execute as execute
from .checkpoint import Checkpoint as Checkpoint, UnusableCheckpoint as UnusableCheckpoint
from .table import load as load

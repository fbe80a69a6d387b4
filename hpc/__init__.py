"""Generic Slurm toolkit: sweeps, result files and their bookkeeping (no JAX here)."""

from .ids import diff as diff, flatten as flatten, run_id as run_id
from .store import read_summary as read_summary, results_root as results_root
from .store import write_result as write_result

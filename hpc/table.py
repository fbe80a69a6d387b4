"""A sweep as a table: one row per run with its state, the parameters that vary and the metrics.

    import hpc
    df = hpc.load("latest")                 # a pandas DataFrame, as `hpc collect` writes it
"""

import json

from . import status
from .store import read_summaries
from .sweep import Sweep, find

ALWAYS = ("run_id", "state", "reason")
RESULTS = ("metrics.", "training.")  # besides the varying `config.*`, what a row keeps by default


def rows(sweep: Sweep, all_config: bool = False) -> tuple[list[dict], list[str]]:
    """The rows (one per run, in the sweep's order) and the columns to show: the run id, its
    state and reason, the `config.*` values that differ between runs with a result, and
    `metrics.*` and `training.*`; `all_config` keeps every column (metadata included)."""
    states = status.run_states(sweep)
    readable = [s.run_id for s in states if s.status != "corrupt" and sweep.result_path(s.run_id).exists()]
    summaries = dict(zip(readable, read_summaries([sweep.result_path(r) for r in readable])))
    out = []
    for state in states:
        row = {"run_id": state.run_id, "state": state.status, "reason": state.reason}
        row.update({k: v for k, v in summaries.get(state.run_id, {}).items() if k != "run_id"})
        out.append(row)
    columns = list(dict.fromkeys(k for row in out for k in row))
    if not all_config:
        columns = [c for c in columns if c in ALWAYS or c.startswith(RESULTS)
                   or (c.startswith("config.") and _varies(out, c))]
    return out, columns


def _varies(table: list[dict], column: str) -> bool:
    values = {json.dumps(row[column], sort_keys=True, default=str) for row in table if column in row}
    return len(values) > 1


def load(sweep: str = "latest", root=None, all_config: bool = False):
    """The table of `sweep` (a directory, an id or `latest`, as for `hpc`) as a pandas DataFrame."""
    import pandas as pd

    table, columns = rows(Sweep.load(find(sweep, root)), all_config)
    return pd.DataFrame(table, columns=columns)

"""A sweep as a table: one row per run with its state, the parameters that vary and the
metrics (`metrics.*`, `training.*`, and `eval.*` from the run's evaluations).

    import hpc
    df = hpc.load("latest")                 # a pandas DataFrame, as `hpc collect` writes it
"""

import fnmatch
import json
import math

from . import status
from .store import read_evaluations, read_summaries
from .sweep import Sweep, find

ALWAYS = ("run_id", "state", "reason")
RESULTS = ("metrics.", "training.", "eval.")  # besides the varying `config.*`, what a row keeps by default


def rows(sweep: Sweep, all_config: bool = False) -> tuple[list[dict], list[str]]:
    """The rows (one per run, in the sweep's order) and the columns to show: the run id, its
    state and reason, the `config.*` values that differ between runs with a result, and
    `metrics.*`, `training.*` and `eval.*`; `all_config` keeps every column (metadata included)."""
    states = status.run_states(sweep)
    readable = [s.run_id for s in states if s.status != "corrupt" and sweep.result_path(s.run_id).exists()]
    summaries = dict(zip(readable, read_summaries([sweep.result_path(r) for r in readable])))
    out = []
    for state in states:
        row = {"run_id": state.run_id, "state": state.status, "reason": state.reason}
        row.update({k: v for k, v in summaries.get(state.run_id, {}).items() if k != "run_id"})
        if state.run_id in summaries:
            row.update(read_evaluations(sweep.result_path(state.run_id)))
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


def resolve_metric(columns, wanted) -> str:
    """The one column `wanted` names: a column, or a glob pattern (`metrics.*100*.accel_pct_mean`),
    or a tuple of them tried in order (the first that matches anything; its first match).
    Raises `ValueError` listing the metric columns there are."""
    candidates = [c for c in columns if c.startswith(RESULTS)]
    patterns = (wanted,) if isinstance(wanted, str) else tuple(wanted)
    for pattern in patterns:
        if pattern in candidates:
            return pattern
        matches = fnmatch.filter(candidates, pattern)
        if len(matches) == 1 or (matches and len(patterns) > 1):
            return matches[0]
        if matches:
            raise ValueError(f"`--metric {pattern}` matches {len(matches)} columns ({', '.join(matches[:6])}); "
                             "name one.")
    shown = ", ".join(candidates[:30]) + (" ..." if len(candidates) > 30 else "")
    raise ValueError(f"`--metric {' or '.join(patterns)}` is not a metric of this sweep; its metrics are: "
                     f"{shown or 'none (no run has a result yet)'}.")


def goal_key(value, goal="min") -> tuple:
    """A sort key that puts the best value under `goal` first (`min`, `max`, or a number to be
    close to) and anything that is not a number (NaN, None, text) last. Infinities are ordered:
    `inf` is the best under `max` (a radius beyond every test point)."""
    if not number(value):
        return (1, 0.0)
    return (0, value if goal == "min" else -value if goal == "max" else abs(value - goal))


def number(value) -> bool:
    """Whether `value` is a number that can be ranked: finite or infinite, not NaN (nor a bool,
    None or text)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def best_runs(table: list[dict], metric: str, by=(), goal="min") -> dict[tuple, dict]:
    """The best completed row for each combination of the `by` columns (one group when none),
    under `goal` (see `goal_key`): {values of `by`: row}. Rows whose metric is missing or NaN
    are never chosen."""
    best: dict[tuple, dict] = {}
    for row in table:
        if row["state"] != "completed" or not number(row.get(metric)):
            continue
        key = tuple(json.dumps(row.get(c), sort_keys=True, default=str) for c in by)
        if key not in best or goal_key(row[metric], goal) < goal_key(best[key][metric], goal):
            best[key] = row
    return best

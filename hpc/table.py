"""A sweep as a table: one row per run with its state, the parameters that vary and the
results: `metrics.*`, `eval.*` (from the run's evaluations) and the columns the application
declares (`hpc.App.columns`, kept in the sweep's record; neuralode's: `training.*`).

    import hpc
    df = hpc.load("latest")                 # a pandas DataFrame, as `hpc collect` writes it
"""

import fnmatch
import json

from . import status
from .store import read_evaluations, read_summaries
from .sweep import Sweep, find_sweep

ALWAYS = ("run_id", "state", "reason")
NOT_RESULTS = ("config.", "meta.", "format", "status", "message")  # a summary's keys that are not results


def result_columns(sweep: Sweep) -> tuple[str, ...]:
    """The prefixes of the result columns of `sweep`'s table: its application's (`hpc.App.record`).
    A record older than `hpc.App` names none: every summary key but config and metadata."""
    return tuple(sweep.app.get("columns") or ())


def rows(sweep: Sweep, all_config: bool = False) -> tuple[list[dict], list[str]]:
    """The rows (one per run, in the sweep's order) and the columns to show: the run id, its
    state and reason, the `config.*` values that differ between runs with a result, and the
    results (`result_columns`); `all_config` keeps every column (metadata included)."""
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
        columns = [
            c
            for c in columns
            if c in ALWAYS or is_result(c, result_columns(sweep)) or (c.startswith("config.") and _varies(out, c))
        ]
    return out, columns


def _varies(table: list[dict], column: str) -> bool:
    values = {json.dumps(row[column], sort_keys=True, default=str) for row in table if column in row}
    return len(values) > 1


def load(sweep: str = "latest", root=None, all_config: bool = False):
    """The table of `sweep` (a directory, an id or `latest`, as for `hpc`) as a pandas DataFrame."""
    import pandas as pd

    table, columns = rows(Sweep.load(find_sweep(sweep, root)), all_config)
    return pd.DataFrame(table, columns=columns)


def is_result(column: str, prefixes: tuple[str, ...] = ()) -> bool:
    """Whether `column` is a result: under one of `prefixes`, or, with none, any column but the
    run's identity, state, config and metadata."""
    if prefixes:
        return column.startswith(prefixes)
    return column not in ALWAYS and column != "run_id" and not column.startswith(NOT_RESULTS)


def resolve_metric(columns, wanted) -> str:
    """The one column `wanted` names: a column, or a glob pattern (`metrics.*100*.accel_pct_mean`),
    or a tuple of them tried in order (the first that matches anything; its first match).
    Raises `ValueError` listing the metric columns there are."""
    candidates = [c for c in columns if is_result(c)]
    patterns = (wanted,) if isinstance(wanted, str) else tuple(wanted)
    for pattern in patterns:
        if pattern in candidates:
            return pattern
        matches = fnmatch.filter(candidates, pattern)
        if len(matches) == 1 or (matches and len(patterns) > 1):
            return matches[0]
        if matches:
            raise ValueError(
                f"`--metric {pattern}` matches {len(matches)} columns ({', '.join(matches[:6])}); name one."
            )
    shown = ", ".join(candidates[:30]) + (" ..." if len(candidates) > 30 else "")
    raise ValueError(
        f"`--metric {' or '.join(patterns)}` is not a metric of this sweep; its metrics are: "
        f"{shown or 'none (no run has a result yet)'}."
    )

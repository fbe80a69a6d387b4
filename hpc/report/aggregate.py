"""Configurations: runs grouped by the parameters that vary, seeds aggregated, ranked under
a goal; the best runs of a table (`best_runs`, what `evaluate.py` picks)."""

import dataclasses
import json
import math

import numpy as np

from .spec import Spec


@dataclasses.dataclass
class Config:
    """One configuration: its varying parameters, its runs' rows, and per metric column
    `stats[column] = {"mean", "std", "n", "best", "best_run"}` over its completed runs."""

    params: dict
    runs: list[dict]
    stats: dict = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        return " ".join(f"{k}={show(v)}" for k, v in self.params.items()) or "all runs"

    @property
    def completed(self) -> list[dict]:
        return [r for r in self.runs if r["state"] == "completed"]


def aggregate(table: list[dict], params: list[str], metrics: list[str], spec: Spec) -> list["Config"]:
    """Group the rows that have a config by the values of `params` (the `config.*` columns that
    vary, less the seed) and aggregate each metric over a group's completed runs: mean, sample
    std (NaN for one value), n (values that are numbers: infinities count, NaN does not) and
    best (under `spec.goal`)."""
    groups: dict[str, Config] = {}
    for row in table:
        if not any(k.startswith("config.") for k in row):
            continue  # no result file (yet): in the status, not in the table
        values = {p[len("config.") :]: row.get(p) for p in params}
        key = json.dumps(values, sort_keys=True, default=str)
        groups.setdefault(key, Config(values, [])).runs.append(row)
    for config in groups.values():
        for column in metrics:
            goal = spec.goal(column)
            valued = [r for r in config.completed if number(r.get(column))]
            x = np.array([r[column] for r in valued], float)
            best = min(valued, key=lambda r: goal_key(r[column], goal), default=None)
            config.stats[column] = {
                "mean": float(x.mean()) if x.size else math.nan,
                "std": float(x.std(ddof=1)) if x.size > 1 and np.isfinite(x).all() else math.nan,
                "n": int(x.size),
                "best": best[column] if best else math.nan,
                "best_run": best["run_id"] if best else "",
            }
    return list(groups.values())


def independent(table: list[dict], params: list[str]) -> tuple[list[str], dict[str, str]]:
    """`params` less those that follow another: a parameter whose values split the runs exactly
    as another's do (`curriculum.phases` when its learning rate is `${lr}` and `lr` is swept)
    adds no configuration; of such, the one with the shortest values is kept.
    Returns the parameters kept and {dropped: the parameter it follows}."""
    keyed = [r for r in table if any(k.startswith("config.") for k in r)]

    def longest(p):  # the parameter with the shortest values is kept: `lr`, not `curriculum.phases`
        return max((len(show(r.get(p))) for r in keyed), default=0)

    kept, follows, partitions = [], {}, {}
    for p in sorted(params, key=lambda p: (longest(p), params.index(p))):
        labels: dict[str, int] = {}
        partition = tuple(
            labels.setdefault(json.dumps(r.get(p), sort_keys=True, default=str), len(labels)) for r in keyed
        )
        if partition in partitions:
            follows[p] = partitions[partition]
            continue
        partitions[partition] = p
        kept.append(p)
    return [p for p in params if p in kept], {k[len("config.") :]: v[len("config.") :] for k, v in follows.items()}


def rank(configs: list[Config], metric: str, goal) -> list[Config]:
    """Best first by the mean of `metric`; configurations without a value last."""
    return sorted(configs, key=lambda c: goal_key(c.stats[metric]["mean"], goal))


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


def show(value) -> str:
    """A parameter's value as the page and the figures show it."""
    return json.dumps(value) if isinstance(value, (list, dict)) or value is None else str(value)

"""Every run of a results root, across its sweeps and experiments, queryable by its
hyperparameters and results: `hpc runs` and `hpc.find`.

    import hpc
    df = hpc.find(root="scratch", width=64, where="metrics.*_100_test.accel_pct_mean < 5",
                  sort="metrics.*_100_test.accel_pct_mean", best_of="output_head")
    model = neuralode.load_model(df.path[0])

A row is a result file's stored summary (its root attributes: status, run id, `config.*`,
`meta.*`, `metrics.*`, ...), its evaluations (`eval.*`), its `experiment` and `path`. An HDF5
file that does not read (truncated) is a row too: status `corrupt`, its path and why (`message`).

Reading 10,000 files takes a while, so the rows are cached in `<root>/.hpc-runs.json`, each
under its file's identity (inode, size, modification and change times; an evaluation's too).
Result files are only ever replaced by a rename, so a file written, resubmitted or evaluated
since is read again, and a deleted one is dropped: the cache is never what a query answers
without checking every file's identity first.
"""

import difflib
import fnmatch
import json
import operator
import os
import pathlib
import re

from .atomic import atomic_path
from .report.aggregate import goal_key, number
from .store import read_evaluations, read_summaries, read_summary

CACHE = ".hpc-runs.json"
VERSION = 2  # 2: unreadable files are rows (corrupt)
SKIP = {"datasets", "jax-cache", "sweeps", "report", "envs"}  # folders of a root that hold no results
OPS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt}


def _identity(stat) -> list:
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def _listing(root: pathlib.Path) -> dict[str, list]:
    """Each candidate result file under `root` (`<experiment>/<run id>.h5`), relative path ->
    identity of it and of its evaluations."""
    out = {}
    for experiment in sorted(os.scandir(root), key=lambda e: e.name) if root.is_dir() else []:
        if not experiment.is_dir() or experiment.name in SKIP or experiment.name.startswith("."):
            continue
        entries = {e.name: e for e in os.scandir(experiment.path)}
        for name, entry in entries.items():
            if not name.endswith(".h5") or not entry.is_file():
                continue
            key = [_identity(entry.stat())]
            evals = entries.get(name[: -len(".h5")] + ".evals")
            if evals is not None and evals.is_dir():
                key += [[e.name, *_identity(e.stat())] for e in sorted(os.scandir(evals.path), key=lambda e: e.name)]
            out[f"{experiment.name}/{name}"] = key
    return out


LEFT_OUT = ("meta.versions.", "meta.threads.", "meta.slurm.", "meta.devices.")  # bulky; `hpc diff` shows them


DAMAGED = "hpc.unreadable"  # what `_safe_summary` gives for a file that does not read
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # how an HDF5 file (written by h5py) begins


def _row(root: pathlib.Path, relative: str, summary: dict | None) -> dict | None:
    """The row of one file: None when it is not a result file (no run id and status); a file
    that does not read at all (truncated, overwritten) is a `corrupt` run with its path."""
    path = root / relative
    if summary and DAMAGED in summary:
        return {
            "run_id": path.stem,
            "experiment": relative.split("/", 1)[0],
            "status": "corrupt",
            "path": str(path),
            "message": f"result file does not read ({summary[DAMAGED]})",
        }
    if not summary or "run_id" not in summary or "status" not in summary:
        return None
    return {
        "run_id": summary["run_id"],
        "experiment": relative.split("/", 1)[0],
        "status": summary["status"],
        "path": str(path),
        **{k: v for k, v in summary.items() if k not in ("run_id", "status", "format") and not k.startswith(LEFT_OUT)},
        **read_evaluations(path),
    }


def _safe_summary(path: str) -> dict | None:
    try:
        return read_summary(path)
    except OSError as exc:  # results are only ever replaced whole, by a rename: one that starts as HDF5
        try:  # does and does not read was damaged (truncated); any other file is not a result
            with open(path, "rb") as handle:
                hdf5 = handle.read(8) == HDF5_SIGNATURE
        except OSError:
            hdf5 = False
        return {DAMAGED: f"{type(exc).__name__}: {str(exc).splitlines()[0]}"} if hdf5 else None
    except (KeyError, ValueError):
        return None  # an HDF5 file that is not a result file


def rows(root) -> list[dict]:
    """Every run under `root`, one row each (see the module docstring), read from the cache
    where a file's identity is unchanged and from the file otherwise."""
    root = pathlib.Path(root)
    listing = _listing(root)
    cache_path = root / CACHE
    try:
        cached = json.loads(cache_path.read_text())
        known = cached["files"] if cached.get("version") == VERSION else {}
    except (OSError, ValueError, KeyError, TypeError):
        known = {}
    fresh = {rel: known[rel] for rel, key in listing.items() if rel in known and known[rel]["key"] == key}
    todo = [rel for rel in listing if rel not in fresh]
    summaries = read_summaries([root / rel for rel in todo], reader=_safe_summary)  # in processes when many
    for rel, summary in zip(todo, summaries):
        fresh[rel] = {"key": listing[rel], "row": _row(root, rel, summary)}
    if todo or len(fresh) != len(known):
        try:
            with atomic_path(cache_path, fsync=False) as tmp:
                tmp.write_text(json.dumps({"version": VERSION, "files": fresh}, default=str))
        except OSError:
            pass  # a read-only root: no cache, every query reads the files
    return [entry["row"] for _, entry in sorted(fresh.items()) if entry["row"] is not None]


def files_of(row: dict) -> list[pathlib.Path]:
    """A run's files: its result file and those of its evaluations (`<run id>.evals/`)."""
    path = pathlib.Path(row["path"])
    evals = path.with_suffix(".evals")
    return [path, *(sorted(p for p in evals.iterdir() if p.is_file()) if evals.is_dir() else [])]


def _column(row_keys, name: str) -> list[str]:
    """The columns of a row that `name` means: itself, `config.<name>` (a short name), or the
    columns a glob matches."""
    if name in row_keys:
        return [name]
    if f"config.{name}" in row_keys:
        return [f"config.{name}"]
    return fnmatch.filter(row_keys, name) if any(c in name for c in "*?[") else []


def _value(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _matches(value, wanted) -> bool:
    if isinstance(value, (int, float)) and isinstance(wanted, (int, float)) and not isinstance(value, bool):
        return float(value) == float(wanted)
    return value == wanted or (isinstance(value, str) and str(wanted) == value)


def parse_filter(text: str) -> tuple[str, list]:
    """`key=value` (`key=a,b`: either) -> (key, values)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"a filter is `key=value` (`width=64`, `config.dataset.family=complex`), got {text!r}.")
    parts = [value] if value.startswith(("[", "{")) else value.split(",")
    return key, [_value(p) for p in parts]


def parse_where(text: str) -> tuple[str, str, object]:
    """`"<column or glob> <op> <value>"` -> (column, op, value)."""
    found = re.match(r"^\s*(\S+?)\s*(<=|>=|==|!=|<|>)\s*([^<>=!\s].*?)\s*$", text)
    if not found:
        raise ValueError(
            f"--where is `<column> <op> <value>` with op one of {', '.join(OPS)} "
            f"(`metrics.*_100_test.accel_pct_mean < 5`), got {text!r}."
        )
    return found.group(1), found.group(2), _value(found.group(3))


def _sort_key(spec: str):
    """`M` (ascending), `-M` (descending) or `M~v` (closest to v first) -> (column, key function)."""
    if spec.startswith("-"):
        return spec[1:], lambda v: goal_key(v, "max")
    column, tilde, target = spec.partition("~")
    if tilde:
        goal = _value(target)
        if not isinstance(goal, (int, float)):
            raise ValueError(f"--sort `{spec}`: after `~` comes the number to be closest to, got {target!r}.")
        return column, lambda v: goal_key(v, goal)
    return column, lambda v: goal_key(v, "min")


def value_of(row: dict, name: str):
    """The value of `name` (a column, a short config name or a glob matching one column) in `row`, or None."""
    columns = _column(list(row), name)
    return row[columns[0]] if len(columns) == 1 else None


def select(
    table: list[dict], filters=(), where=(), sort: str | None = None, best_of=None
) -> tuple[list[dict], list[str]]:
    """The rows of `table` that pass every filter (`key=value` strings or (key, values) pairs)
    and every `where` condition, ordered by `sort` (see `_sort_key`), and only the best (first)
    completed run with a number to sort by for each value of `best_of` (a parameter, or a list
    of them: each combination); and the columns that name what was asked. Raises
    `ValueError` naming a key no run has, with the closest ones."""
    everything = sorted({k for row in table for k in row})
    asked = []

    def known(name: str, what: str) -> None:
        if table and not any(_column(list(row), name) for row in table):
            close = difflib.get_close_matches(name, everything + [c[len("config.") :] for c in everything], 5)
            raise ValueError(
                f"{what} `{name}`: no run has it{'; did you mean ' + ', '.join(close) if close else ''}? "
                f"Run `hpc runs` to see the columns."
            )

    conditions = []
    for item in filters:
        key, values = parse_filter(item) if isinstance(item, str) else item
        known(key, "filter")
        conditions.append(lambda row, key=key, values=values: any(_matches(value_of(row, key), v) for v in values))
        asked.append(key)
    for text in [where] if isinstance(where, str) else where:
        column, op, value = parse_where(text)
        known(column, "--where")
        compare = OPS[op]

        def holds(row, column=column, compare=compare, value=value):
            got = value_of(row, column)
            try:
                return got is not None and bool(compare(got, value))
            except TypeError:
                return False

        conditions.append(holds)
        asked.append(column)
    chosen = [row for row in table if all(c(row) for c in conditions)]
    if sort:
        column, key = _sort_key(sort)
        known(column, "--sort")
        chosen.sort(key=lambda row: key(value_of(row, column)))
        asked.append(column)
    if best_of:
        if not sort:
            raise ValueError("--best-of needs --sort: the metric that says which run is best.")
        names = [best_of] if isinstance(best_of, str) else list(best_of)
        for name in names:
            known(name, "--best-of")
        best: dict = {}
        for row in chosen:
            if row["status"] == "completed" and number(value_of(row, column)):
                best.setdefault(json.dumps([value_of(row, n) for n in names], sort_keys=True, default=str), row)
        chosen = list(best.values())
        asked.extend(names)
    return chosen, asked


def columns_to_show(chosen: list[dict], asked) -> list[str]:
    """run id, experiment, status, the config values that differ, what was asked, the path."""
    names = sorted({k for row in chosen for k in row})
    varying = [
        c
        for c in names
        if c.startswith("config.")
        and len({json.dumps(row.get(c), sort_keys=True, default=str) for row in chosen}) > 1
        and not c.startswith(("config.cluster.", "config.results_root", "config.jax_cache"))
    ]
    wanted = [c for a in asked for c in sorted({m for row in chosen for m in _column(list(row), a)})]
    return list(dict.fromkeys(["run_id", "experiment", "status", *varying, *wanted, "path"]))


def find(*filters, root=None, where=(), sort=None, best_of=None, **equal):
    """The runs of `root` (default: every root this user's sweeps went to, and the default
    roots) that match, as a pandas DataFrame with every column and each run's `path`.
    `filters`: `key=value` strings; `equal`: the same as keywords (`width=64`); `where`,
    `sort`, `best_of`: as `hpc runs`' options."""
    import pandas as pd

    table = [row for r in roots(root) for row in rows(r)]
    chosen, _ = select(table, [*filters, *((k, [v]) for k, v in equal.items())], where, sort, best_of)
    return pd.DataFrame(chosen)


def roots(root=None) -> list[pathlib.Path]:
    """`root`, or every results root this user's sweeps went to and the default roots."""
    if root is not None:
        return [pathlib.Path(root)]
    from .sweep import known_roots

    return [pathlib.Path(r) for r in known_roots()]

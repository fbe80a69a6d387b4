"""Every run of a results root, across its sweeps and experiments, as tables queried by their
hyperparameters and results, with SQL: `hpc runs`, `hpc.find`, `hpc.sql`, `hpc db export`.

    import hpc
    df = hpc.find(root="scratch", width=64, where="metrics.*_100_test.accel_pct_mean < 5",
                  sort="metrics.*_100_test.accel_pct_mean", best_of="output_head")
    hpc.sql("SELECT e.label, r.run_id FROM evals e JOIN runs r USING (run_id)", root="scratch")

The tables (`TABLES`):
- `runs`: a row per result file: its stored summary (status, run id, `config.*`, `meta.*`,
  `metrics.*`, ...), its evaluations (`eval.*`), its `experiment` and `path`. An HDF5 file that
  does not read (truncated) is a row too: status `corrupt`, its path and why (`message`).
- `evals`: a row per evaluation file (`<run id>.evals/<label>.h5`): `eval_id` (its path),
  `run_id`, `label`, `status` and its `metrics.*`.
- `eval_models`: which runs each evaluation used, and as what (`eval_id`, `run_id`, `role`):
  the run it lies beside, `model`, or those its metadata names (`models`: run ids, or
  `[run id, role]` pairs), so an analysis over several models is one evaluation, several rows.
- `figures` (`figure_id`, `path`, `title`, `made_by`, `made_at`) and `figure_runs` (`figure_id`,
  `run_id`): each figure `hpc report` drew, and the runs it drew from (`record_figures`, kept in
  `<root>/.hpc-figures/`, one immutable file per command: not part of the index, which can be
  deleted).

**The index.** The rows of each experiment folder are kept in `<root>/.hpc-index/<experiment>
.parquet`, an immutable file written under a temporary name and renamed into place: no lock and
no database file live on scratch, and deleting the folder costs only a rebuild from the result
files, which stay the source of truth. A query looks at each experiment folder's modification
time only (creating, renaming or deleting a file changes it; `write_evaluation` touches it):
unchanged, and older than the index by more than `RACY_S` (git's "racy timestamp" rule), the
index answers; else the folder is listed and only new or replaced files (another inode, or an
evaluations folder changed) are read. What this assumes of the filesystem: results are replaced
whole by a rename, never rewritten in place, and the clocks of the nodes that write and of the
login node agree within `RACY_S`. `verify` (`hpc runs --verify`) checks every file's identity
(inode, size, times) anyway; `rebuild` reads everything again. Compute tasks never write the
index; whichever command finds it out of date refreshes it, and a read-only root works from
memory. Queries run in DuckDB over those files. With `HPC_DB_BACKUP=<dir>` set, each refresh
also writes the experiments that changed as `<dir>/runs/<experiment>.csv.gz` (`export` writes
every table).
"""

import difflib
import fnmatch
import json
import math
import os
import pathlib
import re
import time

from .atomic import atomic_path
from .store import read_summaries, read_summary

INDEX = ".hpc-index"
VERSION = "3"  # of the index files; another version is rebuilt
OLD_CACHE = ".hpc-runs.json"  # the JSON cache before the index: removed, the index rebuilds
RACY_S = 2.0  # a folder changed this close to its index's build is read again
SKIP = {"datasets", "jax-cache", "sweeps", "report", "envs"}  # folders of a root that hold no results
OPS = ("<=", ">=", "==", "!=", "<", ">")
TABLES = ("runs", "evals", "eval_models", "figures", "figure_runs")
BACKUP = "HPC_DB_BACKUP"  # a directory: each experiment's runs as <dir>/runs/<experiment>.csv.gz when it changes
FIGURES = ".hpc-figures"  # <root>/.hpc-figures/<made>-<random>.json: what each drawing command drew
DAMAGED = "hpc.unreadable"  # what `_safe_summary` gives for a file that does not read
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # how an HDF5 file (written by h5py) begins
LEFT_OUT = ("meta.versions.", "meta.threads.", "meta.slurm.", "meta.devices.")  # bulky; `hpc diff` shows them
HIDDEN = ("_file", "_inode", "_evals_mtime", "_size", "_mtime", "_evals", "_root")  # the index's own columns


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


def _row(folder: pathlib.Path, name: str, summary: dict | None) -> dict | None:
    """The `runs` row of one file: None when it is not a result file (no run id and status)."""
    path = folder / name
    if summary and DAMAGED in summary:
        return {
            "run_id": path.stem,
            "experiment": folder.name,
            "status": "corrupt",
            "path": str(path),
            "message": f"result file does not read ({summary[DAMAGED]})",
        }
    if not summary or "run_id" not in summary or "status" not in summary:
        return None
    return {
        "run_id": summary["run_id"],
        "experiment": folder.name,
        "status": summary["status"],
        "path": str(path),
        **{k: v for k, v in summary.items() if k not in ("run_id", "status", "format") and not k.startswith(LEFT_OUT)},
    }


def _evaluations(path: pathlib.Path) -> list[dict]:
    """Each evaluation of the run at `path`: its label, file and summary."""
    folder = path.with_suffix(".evals")
    out = []
    for file in sorted(folder.glob("*.h5")) if folder.is_dir() else []:
        try:
            summary = read_summary(file)
        except (OSError, KeyError, ValueError):
            continue  # a damaged evaluation is not a result; evaluate again to replace it
        out.append({"label": file.stem, "path": str(file), "summary": summary})
    return out


def _listing(folder: pathlib.Path) -> dict[str, tuple[int, int]]:
    """Each candidate result file of an experiment folder -> (inode, its evaluations folder's
    modification time, 0 without one): one listing, and a `stat` per evaluations folder only."""
    entries = {e.name: e for e in os.scandir(folder)}
    out = {}
    for name, entry in entries.items():
        if name.endswith(".h5") and entry.is_file():
            evals = entries.get(name[: -len(".h5")] + ".evals")
            mtime = evals.stat().st_mtime_ns if evals is not None and evals.is_dir() else 0
            out[name] = (entry.inode(), mtime)
    return out


def _read(folder: pathlib.Path, names: list[str], listing: dict) -> list[dict]:
    """The rows of the files `names` of `folder`, with the index's own columns."""
    summaries = read_summaries([folder / n for n in names], reader=_safe_summary)  # in processes when many
    rows = []
    for name, summary in zip(names, summaries):
        row = _row(folder, name, summary)
        if row is None:
            row = {}  # not a result file: remembered as such, so it is not read again
        evaluations = _evaluations(folder / name) if row and listing[name][1] else []
        for e in evaluations:
            if e["summary"].get("status") == "completed":
                row.update({"eval." + k[8:]: v for k, v in e["summary"].items() if k.startswith("metrics.")})
        stat = os.stat(folder / name)
        row.update(
            _file=name,
            _inode=listing[name][0],
            _evals_mtime=listing[name][1],
            _size=stat.st_size,
            _mtime=stat.st_mtime_ns,
            _evals=json.dumps(evaluations, default=str) if evaluations else None,
        )
        rows.append(row)
    return rows


INDEXED = ("run_id", "experiment", "status", "path", "_file", "_inode", "_evals_mtime", "_size", "_mtime", "_evals")


def _frame(rows: list[dict], columns=()):
    """Rows as a pandas DataFrame that Parquet can hold: a column whose values are not all of one
    kind (numbers, text, true/false) holds them as JSON text, as do lists and mappings. It has
    `columns` even when no row does (an experiment folder without results: `INDEXED`)."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    for column in columns:
        if column not in frame.columns:
            frame[column] = pd.Series([None] * len(frame), dtype=object)
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        values = frame[column].dropna()
        kinds = {
            bool if isinstance(v, bool) else str if isinstance(v, str) else float if _num(v) else list for v in values
        }
        if len(kinds) > 1 or list in kinds:
            frame[column] = frame[column].map(
                lambda v: v if v is None or isinstance(v, str) else json.dumps(v, default=str)
            )
        elif kinds == {float}:
            frame[column] = pd.to_numeric(frame[column])
    return frame


def _num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Experiment:
    """The index of one experiment folder: its table, refreshed as the module docstring says."""

    def __init__(self, root: pathlib.Path, name: str, rebuild: bool = False, verify: bool = False):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.folder, self.file = root / name, root / INDEX / f"{name}.parquet"
        seen = os.stat(self.folder).st_mtime_ns  # before the listing: a change during it is seen next time
        old = None
        if not rebuild and self.file.exists():
            try:
                old = pq.read_table(self.file)
                meta = old.schema.metadata or {}
                if meta.get(b"version") != VERSION.encode() or not set(INDEXED) <= set(old.column_names):
                    old = None  # another version's, or not one of ours: rebuilt
            except (OSError, ValueError, pa.ArrowException):
                old = None  # a damaged index: rebuilt from the result files
        if old is not None and not verify:
            built, mtime = int(meta[b"built_ns"]), int(meta[b"folder_mtime_ns"])
            if mtime == seen and built - seen > RACY_S * 1e9:
                self.table, self.read = old, 0
                return
        listing = _listing(self.folder)
        kept, keep = {}, []
        if old is not None:
            names = old.column("_file").to_pylist()
            identity = zip(old.column("_inode").to_pylist(), old.column("_evals_mtime").to_pylist())
            kept = {n: i for i, (n, key) in enumerate(zip(names, identity)) if listing.get(n) == tuple(key)}
            if verify:  # every file's size and modification time as well: changes in place
                sizes, mtimes = old.column("_size").to_pylist(), old.column("_mtime").to_pylist()
                kept = {n: i for n, i in kept.items() if _same(self.folder / n, sizes[i], mtimes[i])}
            keep = sorted(kept.values())
        todo = sorted(n for n in listing if n not in kept)
        self.read = len(todo)
        if not todo and old is not None and len(keep) == old.num_rows:
            table = old
        else:
            rows = _read(self.folder, todo, listing)
            fresh = pa.Table.from_pandas(_frame(rows, INDEXED), preserve_index=False)
            if old is not None and keep:
                try:
                    table = pa.concat_tables(
                        [old.take(keep).replace_schema_metadata(None), fresh], promote_options="permissive"
                    )
                except (pa.ArrowInvalid, pa.ArrowTypeError):  # a column's kind changed: normalized again, whole
                    whole = _frame(old.take(keep).to_pylist() + rows, INDEXED)
                    table = pa.Table.from_pandas(whole, preserve_index=False)
            else:
                table = fresh
            table = table.sort_by("_file") if table.num_rows else table
        self.table = table.replace_schema_metadata(  # what the next query compares the folder's time with
            {"version": VERSION, "built_ns": str(time.time_ns()), "folder_mtime_ns": str(seen)}
        )
        self._write(pq)

    def _write(self, pq) -> None:
        try:
            self.file.parent.mkdir(exist_ok=True)
            with atomic_path(self.file, fsync=False) as tmp:
                pq.write_table(self.table, tmp)
        except OSError:
            return  # a read-only root (or a full one): the index lives in memory for this query
        backup = os.environ.get(BACKUP)
        if backup:  # the experiments that changed, as CSV, as their index is refreshed
            frame = self.table.to_pandas()
            frame = frame[frame.run_id.notna()].drop(columns=[c for c in HIDDEN if c in frame.columns])
            path = pathlib.Path(backup) / "runs" / f"{self.folder.name}.csv.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                frame.to_csv(tmp, index=False, compression="gzip")


def _same(path: pathlib.Path, size: int, mtime: int) -> bool:
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return stat.st_size == size and stat.st_mtime_ns == mtime


def experiments(root: pathlib.Path) -> list[str]:
    """The experiment folders of a results root."""
    if not root.is_dir():
        return []
    return sorted(e.name for e in os.scandir(root) if e.is_dir() and e.name not in SKIP and not e.name.startswith("."))


class Catalog:
    """The tables of one or more results roots in an in-memory DuckDB database (`TABLES`),
    from their indexes, each refreshed first (see the module docstring). `rebuild` reads every
    file again; `verify` checks every file's identity."""

    def __init__(self, roots, rebuild: bool = False, verify: bool = False):
        import duckdb

        self.db = duckdb.connect()
        self.read, parts = 0, []
        for n, root in enumerate(map(pathlib.Path, roots)):
            if (root / OLD_CACHE).exists() and os.access(root, os.W_OK):
                (root / OLD_CACHE).unlink(missing_ok=True)  # the JSON cache before the index
            for name in experiments(root):
                part = _Experiment(root, name, rebuild, verify)
                self.read += part.read
                if part.table.num_rows:
                    view = f"part{len(parts)}"
                    self.db.register(view, part.table)
                    parts.append(f"SELECT *, {n} AS _root FROM {view}")
        empty = ", ".join(
            f"NULL::VARCHAR AS {c}" for c in ("run_id", "experiment", "status", "path", "_evals", "_root")
        )
        body = " UNION ALL BY NAME ".join(parts) if parts else f"SELECT {empty} WHERE false"
        self.db.execute(f"CREATE TEMP VIEW everything AS {body}")
        hidden = ", ".join(h for h in HIDDEN if h in self._names("everything"))
        self.db.execute(
            f"CREATE TEMP VIEW runs AS SELECT * EXCLUDE ({hidden}) FROM everything WHERE run_id IS NOT NULL"
        )
        self._evaluations()
        self._figures(roots)
        self.columns = self._names("runs")

    def _names(self, table: str) -> list[str]:
        return [row[0] for row in self.db.execute(f"DESCRIBE {table}").fetchall()]

    def _evaluations(self) -> None:
        """`evals` and `eval_models` from the evaluations each run row carries."""
        import pandas as pd

        evals, links = [], []
        for run_id, text in self.db.execute(
            "SELECT run_id, _evals FROM everything WHERE _evals IS NOT NULL"
        ).fetchall():
            for e in json.loads(text):
                summary = e["summary"]
                evals.append(
                    {
                        "eval_id": e["path"],
                        "run_id": run_id,
                        "label": e["label"],
                        "status": summary.get("status"),
                        **{k: v for k, v in summary.items() if k.startswith("metrics.")},
                    }
                )
                models = _listed(summary.get("meta.models")) or [run_id]
                for model in models if isinstance(models, list) else [models]:
                    used, role = (model, "model") if isinstance(model, str) else (model[0], model[1])
                    links.append({"eval_id": e["path"], "run_id": used, "role": role})
        frame = (
            _frame(evals)
            if evals
            else pd.DataFrame(
                {
                    "eval_id": pd.Series(dtype=str),
                    "run_id": pd.Series(dtype=str),
                    "label": pd.Series(dtype=str),
                    "status": pd.Series(dtype=str),
                }
            )
        )
        self.db.register("evals_frame", frame)
        self.db.execute("CREATE TEMP TABLE evals AS SELECT * FROM evals_frame")
        links_frame = pd.DataFrame(links, columns=["eval_id", "run_id", "role"]).astype(str)
        self.db.register("links_frame", links_frame)
        self.db.execute("CREATE TEMP TABLE eval_models AS SELECT * FROM links_frame")

    def _figures(self, roots) -> None:
        """`figures` and `figure_runs` from each root's figure records."""
        import pandas as pd

        figures, links = [], []
        for root in map(pathlib.Path, roots):
            for record in sorted((root / FIGURES).glob("*.json")):
                try:
                    made = json.loads(record.read_text())
                except (OSError, ValueError):
                    continue  # a damaged record: its figures are not listed
                for n, figure in enumerate(made.get("figures", [])):
                    figure_id = f"{record.stem}/{n}"
                    figures.append(
                        {
                            "figure_id": figure_id,
                            "path": figure.get("path"),
                            "title": figure.get("title"),
                            "made_by": made.get("made_by"),
                            "made_at": made.get("made_at"),
                        }
                    )
                    links += [{"figure_id": figure_id, "run_id": run} for run in figure.get("runs", [])]
        columns = ["figure_id", "path", "title", "made_by", "made_at"]
        self.db.register("figures_frame", pd.DataFrame(figures, columns=columns).astype(str))
        self.db.execute("CREATE TEMP TABLE figures AS SELECT * FROM figures_frame")
        self.db.register("figure_links", pd.DataFrame(links, columns=["figure_id", "run_id"]).astype(str))
        self.db.execute("CREATE TEMP TABLE figure_runs AS SELECT * FROM figure_links")

    def sql(self, text: str):
        """A pandas DataFrame: `text` (SQL over `TABLES`)."""
        import duckdb

        try:
            return self.db.sql(text).df()
        except duckdb.Error as exc:
            raise ValueError(f"--sql: {str(exc).splitlines()[0]} (the tables: {', '.join(TABLES)}).") from None

    def select(self, filters=(), where=(), sort: str | None = None, best_of=None):
        """The rows of `runs` that pass every filter (`key=value` strings or (key, values)
        pairs) and every `where` condition, ordered by `sort` (see `_order`), and only the best
        (first) completed run with a number to sort by for each value of `best_of` (a parameter,
        or a list of them: each combination), as a DataFrame; and the columns that name what
        was asked. Raises `ValueError` naming a key no run has, with the closest ones."""
        asked, conditions = [], []
        for item in filters:
            key, values = parse_filter(item) if isinstance(item, str) else item
            value = self._expression(key, "filter")
            conditions.append("(" + " OR ".join(_equals(value, v) for v in values) + ")")
            asked.append(key)
        for text in [where] if isinstance(where, str) else where:
            column, op, wanted = parse_where(text)
            value = self._expression(column, "--where")
            sql_op = "=" if op == "==" else op
            if _num(wanted):
                conditions.append(f"(TRY_CAST({value} AS DOUBLE) {sql_op} {float(wanted)!r})")
            else:
                conditions.append(f"(CAST({value} AS VARCHAR) {sql_op} {_text(wanted)})")
            asked.append(column)
        order = ["_root", "experiment", "path"]
        if sort:
            column, key = _order(sort, self._expression(_order_column(sort), "--sort"))
            order = [*key, *order]
            asked.append(column)
        where_sql = " AND ".join(conditions) or "true"
        query = f"SELECT * FROM everything WHERE run_id IS NOT NULL AND {where_sql}"
        if best_of:
            if not sort:
                raise ValueError("--best-of needs --sort: the metric that says which run is best.")
            names = [best_of] if isinstance(best_of, str) else list(best_of)
            groups = [self._expression(name, "--best-of") for name in names]
            ranked = _ranked(self._expression(_order_column(sort), "--sort"))
            query = (
                f"SELECT * FROM ({query}) WHERE status = 'completed' AND {ranked} IS NOT NULL "
                f"QUALIFY row_number() OVER (PARTITION BY {', '.join(groups)} ORDER BY {', '.join(order)}) = 1"
            )
            asked.extend(names)
        frame = self.db.sql(f"SELECT * FROM ({query}) ORDER BY {', '.join(order)}").df()
        return frame.drop(columns=[c for c in HIDDEN if c in frame.columns]), asked

    def _expression(self, name: str, what: str) -> str:
        """SQL for the value of `name` (a column, a short config name or a glob) in a row."""
        columns = _column(self.columns, name)
        if not columns:
            if not self.columns or self.db.execute("SELECT count(*) FROM runs").fetchall()[0][0] == 0:
                return "NULL"  # no runs: nothing matches, and nothing is wrong
            close = difflib.get_close_matches(name, self.columns + [c[len("config.") :] for c in self.columns], 5)
            raise ValueError(
                f"{what} `{name}`: no run has it{'; did you mean ' + ', '.join(close) if close else ''}? "
                f"Run `hpc runs` to see the columns."
            )
        quoted = [f'"{c}"' for c in columns]  # several (a glob): a row has one of them, as text
        return quoted[0] if len(quoted) == 1 else f"COALESCE({', '.join(f'CAST({q} AS VARCHAR)' for q in quoted)})"

    def records(self, frame) -> list[dict]:
        """A DataFrame's rows as dicts, without the columns a row has no value in."""
        return [{k: v for k, v in row.items() if not _missing(v)} for row in frame.to_dict("records")]


def _listed(value):
    """An evaluation's `models` as its summary keeps them: a list, or its text (HDF5 attributes
    hold a list of pairs as their Python text)."""
    if isinstance(value, str):
        import ast

        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return [value]
    return value


def _missing(value) -> bool:
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or value is getattr(__import__("pandas"), "NA")
    )


def _text(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _equals(expression: str, wanted) -> str:
    """SQL: the value `expression` is `wanted` (numbers as numbers, else as text)."""
    if wanted is None:
        return f"({expression} IS NULL)"
    if isinstance(wanted, bool):
        return f"(lower(CAST({expression} AS VARCHAR)) = '{str(wanted).lower()}')"
    if _num(wanted):
        return f"(TRY_CAST({expression} AS DOUBLE) = {float(wanted)!r})"
    if isinstance(wanted, (list, dict)):
        return f"(CAST({expression} AS VARCHAR) = {_text(json.dumps(wanted))})"
    return f"(CAST({expression} AS VARCHAR) = {_text(wanted)})"


def _ranked(expression: str) -> str:
    """SQL: the value as a number that can be ranked (not NaN, not text), else NULL."""
    number = f"TRY_CAST({expression} AS DOUBLE)"
    return f"(CASE WHEN isnan({number}) THEN NULL ELSE {number} END)"


def _order_column(spec: str) -> str:
    return spec[1:] if spec.startswith("-") else spec.partition("~")[0]


def _order(spec: str, expression: str) -> tuple[str, list[str]]:
    """`M` (ascending), `-M` (descending) or `M~v` (closest to v first) -> (column, SQL order
    keys); what is not a number comes last."""
    ranked = _ranked(expression)
    last = f"({ranked} IS NULL)"
    if spec.startswith("-"):
        return spec[1:], [last, f"{ranked} DESC"]
    column, tilde, target = spec.partition("~")
    if tilde:
        goal = _value(target)
        if not _num(goal):
            raise ValueError(f"--sort `{spec}`: after `~` comes the number to be closest to, got {target!r}.")
        return column, [last, f"abs({ranked} - {float(goal)!r})"]
    return column, [last, f"{ranked} ASC"]


def files_of(row: dict) -> list[pathlib.Path]:
    """A run's files: its result file and those of its evaluations (`<run id>.evals/`)."""
    path = pathlib.Path(row["path"])
    evals = path.with_suffix(".evals")
    return [path, *(sorted(p for p in evals.iterdir() if p.is_file()) if evals.is_dir() else [])]


def _column(names, name: str) -> list[str]:
    """The columns that `name` means: itself, `config.<name>` (a short name), or the columns a
    glob matches."""
    if name in names:
        return [name]
    if f"config.{name}" in names:
        return [f"config.{name}"]
    return fnmatch.filter(names, name) if any(c in name for c in "*?[") else []


def _value(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


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


def value_of(row: dict, name: str):
    """The value of `name` (a column, a short config name or a glob matching one column) in `row`, or None."""
    columns = [c for c in _column(list(row), name) if not _missing(row[c])]
    return row[columns[0]] if len(columns) == 1 else None


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
    frame, _ = Catalog(roots(root)).select([*filters, *((k, [v]) for k, v in equal.items())], where, sort, best_of)
    return frame


def sql(text: str, root=None):
    """SQL over the tables of `root` (as for `find`): `runs`, `evals`, `eval_models`; a
    pandas DataFrame."""
    return Catalog(roots(root)).sql(text)


def record_figures(root, figures: list[dict], made_by: str) -> pathlib.Path | None:
    """Keep which runs each of `figures` (`path`, `title`, `runs`: run ids) was drawn from, as
    one immutable file under `<root>/.hpc-figures/` (the `figures` and `figure_runs` tables).
    Best effort: a root that cannot be written keeps no record. **Returns:** the file, or None."""
    import datetime

    made_at = datetime.datetime.now().astimezone().isoformat()
    path = pathlib.Path(root) / FIGURES / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}.json"
    try:
        path.parent.mkdir(exist_ok=True)
        with atomic_path(path, fsync=False) as tmp:
            tmp.write_text(json.dumps({"made_by": made_by, "made_at": made_at, "figures": figures}))
    except OSError:
        return None
    return path


def export(out, root=None) -> list[pathlib.Path]:
    """Each table of `root` (as for `find`) as `<out>/<table>.csv.gz`: a backup that needs
    nothing but a CSV reader. **Returns:** the files written."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(roots(root))
    written = []
    for table in TABLES:
        path = out / f"{table}.csv.gz"
        with atomic_path(path) as tmp:
            catalog.sql(f"SELECT * FROM {table}").to_csv(tmp, index=False, compression="gzip")
        written.append(path)
    return written


def roots(root=None) -> list[pathlib.Path]:
    """`root`, or every results root this user's sweeps went to and the default roots."""
    if root is not None:
        return [pathlib.Path(root)]
    from .sweep import known_roots

    return [pathlib.Path(r) for r in known_roots()]

"""Result files: one self-describing HDF5 file per run, written atomically.

Layout (every group optional except the root attributes):

    /                 attrs: format, status, run_id, message
    /config           attrs: the flattened config; dataset `yaml`: the resolved config
    /metadata         attrs: versions, host, times, Slurm ids ...
    /<any group>      nested dicts: numbers and strings become attributes, arrays datasets

A result file is never changed once written. What is learned about a run later (a finished
model tested on other data) goes into files of its own, `<run id>.evals/<label>.h5`
(`write_evaluation`), in the same format; tables show their `metrics.*` as `eval.*`.
"""

import contextlib
import io
import json
import os
import pathlib
from collections.abc import Callable

import h5py
import numpy as np

from .atomic import atomic_path, ensure_room
from .ids import flatten

FORMAT = "hpc-result/1"  # a workload may name its own (`write_result(..., file_format=...)`)
STATUSES = ("completed", "failed", "timeout")  # a workload may add failures of its own (`failures=`)


def _attr(value):
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) and value:
            return np.asarray(value)
        return str(list(value))
    return value


def _write_tree(group: h5py.Group, tree: dict) -> None:
    for key, value in tree.items():
        if isinstance(value, dict):
            _write_tree(group.require_group(key), value)
        elif isinstance(value, np.ndarray) and value.ndim > 0:
            group.create_dataset(key, data=value, compression="gzip" if value.size > 1024 else None)
        else:
            group.attrs[key] = _attr(value)


def write_result(
    path,
    *,
    status: str,
    config: dict,
    config_yaml: str,
    run_id: str,
    metadata: dict,
    tree: dict | None = None,
    message: str = "",
    extra: Callable[[h5py.File], None] | None = None,
    file_format: str = FORMAT,
    failures=(),
) -> pathlib.Path:
    """Write a result file at `path` via a temporary file and an atomic rename, so the final
    path never holds a half-written file, even if the process is killed mid-write.

    `tree` is nested dicts of arrays and scalars; `extra(file)` may add groups of its own.
    `status` is one of `STATUSES` or of the workload's own `failures` (a failed run, as `failed`).
    """
    if status not in STATUSES + tuple(failures):
        raise ValueError(f"`status` must be one of {', '.join(STATUSES + tuple(failures))}, got {status!r}.")
    path = pathlib.Path(path)
    image = io.BytesIO()  # built in memory: a full disk then fails a plain write, never HDF5
    with h5py.File(image, "w") as f:
        f.attrs.update({"format": file_format, "status": status, "run_id": run_id, "message": message})
        cfg = f.create_group("config")
        cfg.attrs.update({k: _attr(v) for k, v in flatten(config).items()})
        cfg.create_dataset("yaml", data=config_yaml)
        _write_tree(f.create_group("metadata"), metadata)
        _write_tree(f, tree or {})
        if extra is not None:
            extra(f)
        summary = json.dumps(_summary(f), default=str)
        if len(summary) < SUMMARY_MAX:  # one attribute to read instead of hundreds (`read_summary`)
            f.attrs[SUMMARY] = summary
    ensure_room(path, image.getbuffer().nbytes)
    with atomic_path(path) as tmp:
        tmp.write_bytes(image.getbuffer())
    note_path(path).unlink(missing_ok=True)
    return path


def note_path(path) -> pathlib.Path:
    """Where a run that could not write its result file leaves a few lines saying why."""
    return pathlib.Path(path).with_suffix(".note")


NOTE_BYTES = 4096  # reserved at the start of a run, so that a full disk still leaves room for why


def reserve_note(path) -> None:
    """Reserve the space of a note beside the result file `path` while its run trains (a
    note that says nothing yet: `read_note` ignores it). Best effort."""
    try:
        note_path(path).write_text(json.dumps({"status": "reserved"}).ljust(NOTE_BYTES))
    except OSError:
        note_path(path).unlink(missing_ok=True)


def write_note(path, message: str, status: str = "failed") -> bool:
    """Leave `message` beside the result file `path` could not be written to (a full disk,
    a quota), over the reserved space where there is some (rewriting allocated blocks needs
    none). Best effort: returns whether it was written."""
    text = json.dumps({"status": status, "message": message[: NOTE_BYTES - 64]})
    note = note_path(path)
    try:
        if note.exists() and note.stat().st_size >= len(text):
            with open(note, "r+") as handle:  # in place, no truncation: no new blocks needed
                handle.write(text.ljust(note.stat().st_size))
        else:
            note.write_text(text)
        return True
    except OSError:
        return False


def drop_note(path) -> None:
    """Remove the note (reserved or written) beside the result file `path`."""
    note_path(path).unlink(missing_ok=True)


def read_note(path) -> dict | None:
    """What a run that could not write its result left beside it (`None`: nothing, or only
    reserved space)."""
    try:
        note = json.loads(note_path(path).read_text())
    except (OSError, ValueError):
        return None
    return note if note.get("status") != "reserved" else None


def is_completed(path) -> bool:
    """Whether `path` holds a result file whose run completed (a run to skip); a file that
    does not read is not (the run is done again, and its new file replaces it)."""
    path = pathlib.Path(path)
    try:
        return path.exists() and read_status(path).get("status") == "completed"
    except (OSError, KeyError):
        return False


def clean_stale(path) -> list[pathlib.Path]:
    """Remove what an interrupted write of `path` left behind (`.<name>.*.tmp`, see
    `atomic_path`); call it only where no other process writes `path`. Returns what went."""
    path = pathlib.Path(path)
    stale = list(path.parent.glob(f".{path.name}.*.tmp")) if path.parent.exists() else []
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def read_status(path) -> dict:
    """Only the root attributes of a result file (`status`, `run_id`, `message`, `format`):
    what a status needs, about 8x faster than `read_summary`."""
    with h5py.File(path, "r") as f:
        return {k: _plain(f.attrs[k]) for k in f.attrs if k != SUMMARY}


def read_summaries(paths, workers: int | None = None, reader=None) -> list[dict]:
    """`read_summary` (or `reader`, a module-level function) of many files, in parallel
    processes when there are many."""
    paths = [str(p) for p in paths]
    reader = reader or read_summary
    if len(paths) < 500:
        return [reader(p) for p in paths]
    import concurrent.futures
    import os

    workers = workers or min(8, os.cpu_count() or 1)
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        return list(pool.map(reader, paths, chunksize=max(1, len(paths) // (4 * workers))))


SUMMARY = "summary_json"  # a root attribute: `read_summary`'s answer, stored when the file is written
SUMMARY_MAX = 60_000  # bytes; HDF5 keeps attributes up to 64 KiB in the object header


def read_summary(path) -> dict:
    """Status, run id, flattened config (`config.*`), metadata (`meta.*`) and the scalar
    attributes of every other group (`<group path>.<name>`) of one result file: from its
    stored summary when it has one (one attribute), else by walking the file."""
    with h5py.File(path, "r") as f:
        if SUMMARY in f.attrs:
            return json.loads(f.attrs[SUMMARY])
        return _summary(f)


def _summary(f: h5py.File) -> dict:
    out = {k: _plain(v) for k, v in f.attrs.items() if k != SUMMARY}
    out.update({f"config.{k}": _plain(v) for k, v in f["config"].attrs.items()})

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and name != "config":
            prefix = ("meta" + name[len("metadata") :] if name.startswith("metadata") else name).replace("/", ".")
            out.update({f"{prefix}.{k}": _plain(v) for k, v in obj.attrs.items() if np.ndim(v) == 0})

    f.visititems(visit)
    return out


def read_config_yaml(path) -> str:
    with h5py.File(path, "r") as f:
        return f["config"]["yaml"][()].decode()


def evaluation_dir(path) -> pathlib.Path:
    """Where the evaluations of the run whose result file is `path` go: `<run id>.evals/`."""
    return pathlib.Path(path).with_suffix(".evals")


def write_evaluation(path, label: str, **result) -> pathlib.Path:
    """Write an evaluation of the run whose result file is `path` as
    `<run id>.evals/<label>.h5` (atomically, replacing an earlier one of that label), with
    `write_result`'s arguments (`status`, `config` of the evaluation, `tree` with its
    `metrics` ...); the result file itself is not touched."""
    if not label or "/" in label or label.startswith("."):
        raise ValueError(f"an evaluation label must be a plain file name, got {label!r}.")
    written = write_result(evaluation_dir(path) / f"{label}.h5", **result)
    with contextlib.suppress(OSError):  # the experiment folder's time says it changed (`hpc.catalog`)
        os.utime(pathlib.Path(path).parent)
    return written


def read_evaluations(path) -> dict:
    """The scalar `metrics.*` of every completed evaluation of the run whose result file is
    `path`, as `eval.*` (later labels win on a clash); {} when there are none."""
    out = {}
    folder = evaluation_dir(path)
    for file in sorted(folder.glob("*.h5")) if folder.is_dir() else []:
        try:
            summary = read_summary(file)
        except (OSError, KeyError, ValueError):
            continue  # a damaged evaluation is not a result; evaluate again to replace it
        if summary.get("status") == "completed":
            out.update({"eval." + k[len("metrics.") :]: v for k, v in summary.items() if k.startswith("metrics.")})
    return out

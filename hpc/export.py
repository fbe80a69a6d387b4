"""Result files -> the dashboards researchers already use, offline, on a login node.

    hpc export latest --to tensorboard tb/            # then: tensorboard --logdir tb/
    hpc export runs width=64 --to wandb wandb-runs/   # then: wandb sync wandb-runs/wandb/offline-run-*

Each run gets its history (every per-step series of `/history`, as `history/<name>` at its
step), its scalar results (`metrics.*`, `eval.*`, `training.*`, at the last step) and its
config. TensorBoard: one directory of event files per run, `<DIR>/<experiment>/<run id>/`,
the config as its hparams. W&B: one offline run directory per run under `<DIR>/wandb/`, with
the run id as W&B's id and name, the experiment as its group, the config as its config and
the results as its summary. Nothing goes to the network, nor to `/tmp` or the home directory:
W&B's own files are kept under DIR too. Both writers are optional extras
(`pip install -e ".[tensorboard]"`, `".[wandb]"`).
"""

import json
import os
import pathlib
import time

import h5py
import numpy as np
import yaml

RESULTS = ("metrics.", "eval.", "training.")
TARGETS = ("tensorboard", "wandb")


def _need(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(
            f"`--to {extra}` needs the `{extra}` extra: pip install -e \".[{extra}]\" (or pip install {extra}); {exc}"
        ) from None


def history(path) -> dict[str, np.ndarray]:
    """Every per-step series of a result file's `/history` (1-D numbers, one per step)."""
    with h5py.File(path, "r") as f:
        group = f.get("history")
        if group is None:
            return {}
        steps = int(group.attrs.get("steps", 0))
        return {
            name: np.asarray(data[()], np.float64)
            for name, data in group.items()
            if isinstance(data, h5py.Dataset) and data.ndim == 1 and len(data) == steps and data.dtype.kind in "iuf"
        }


def results(row: dict) -> dict[str, float]:
    """A row's scalar results (`metrics.*`, `eval.*`, `training.*`) that are numbers."""
    return {
        k: float(v)
        for k, v in row.items()
        if k.startswith(RESULTS) and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def config(row: dict) -> dict:
    """A row's config, nested as the run's YAML has it."""
    try:
        with h5py.File(row["path"], "r") as f:
            loaded = yaml.safe_load(f["config"]["yaml"][()].decode())
        if isinstance(loaded, dict):
            return loaded
    except (OSError, KeyError, yaml.YAMLError):
        pass
    return {k[len("config.") :]: v for k, v in row.items() if k.startswith("config.")}


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def to_tensorboard(rows: list[dict], out: pathlib.Path) -> list[pathlib.Path]:
    """One directory of TensorBoard event files per row; returns them."""
    _need("tensorboard", "tensorboard")
    from google.protobuf import struct_pb2
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    def scalar(tag, value, step, wall):
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
        return event_pb2.Event(wall_time=wall, step=int(step), summary=summary)

    def hparam(value):
        if isinstance(value, bool):
            return struct_pb2.Value(bool_value=value)
        if isinstance(value, (int, float)):
            return struct_pb2.Value(number_value=float(value))
        return struct_pb2.Value(string_value=value if isinstance(value, str) else json.dumps(value))

    written = []
    for row in rows:
        folder = out / row["experiment"] / row["run_id"]
        writer = EventFileWriter(str(folder))
        wall = time.time()
        series = history(row["path"])
        for name, values in series.items():
            for step, value in enumerate(values):
                writer.add_event(scalar(f"history/{name}", value, step, wall))
        last = max((len(v) for v in series.values()), default=1) - 1
        for name, value in results(row).items():
            writer.add_event(scalar(name.replace(".", "/"), value, last, wall))
        start = plugin_data_pb2.SessionStartInfo(
            hparams={k: hparam(v) for k, v in _flat(config(row)).items() if v is not None}
        )
        content = plugin_data_pb2.HParamsPluginData(version=0, session_start_info=start).SerializeToString()
        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="hparams", content=content)
        )
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag="_hparams_/session_start_info", metadata=metadata)]
        )
        writer.add_event(event_pb2.Event(wall_time=wall, step=0, summary=summary))
        writer.close()
        written.append(folder)
    return written


def to_wandb(rows: list[dict], out: pathlib.Path, project: str) -> list[pathlib.Path]:
    """One W&B offline run directory per row (under `out/wandb/`, for `wandb sync`); returns them."""
    out.mkdir(parents=True, exist_ok=True)
    own = out / ".wandb-files"  # W&B's cache, config and staging: here, not in /tmp or the home directory
    for variable, sub in (("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config"), ("WANDB_DATA_DIR", "data")):
        os.environ[variable] = str(own / sub)
    os.environ.update({"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true"})
    wandb = _need("wandb", "wandb")
    settings = wandb.Settings(console="off", x_disable_stats=True, x_disable_meta=True, x_disable_machine_info=True)
    written = []
    for row in rows:
        run = wandb.init(
            mode="offline",
            dir=str(out),
            project=project,
            id=row["run_id"],
            name=row["run_id"],
            group=row["experiment"],
            config=config(row),
            settings=settings,
            reinit="create_new",
        )
        series = history(row["path"])
        steps = max((len(v) for v in series.values()), default=0)
        for step in range(steps):
            run.log({f"history/{n}": float(v[step]) for n, v in series.items() if step < len(v)}, step=step)
        run.summary.update({**results(row), "status": row["status"]})
        written.append(pathlib.Path(run.dir).parent)
        run.finish()
    return written


def export(rows: list[dict], to: str, out, project: str = "hpc", workers: int | None = None) -> list[pathlib.Path]:
    """Export `rows` (the `runs` rows of `hpc.catalog`) `to` `tensorboard` or `wandb` under
    `out`. W&B writes about a run a second in one process, so its runs are shared out over
    `workers` processes (default: the CPUs this process may use), each with its own W&B."""
    if to not in TARGETS:
        raise ValueError(f"`--to` must be one of {', '.join(TARGETS)}, got {to!r}.")
    out = pathlib.Path(out)
    if to == "tensorboard":
        return to_tensorboard(rows, out)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = max(1, min(workers or usable, len(rows)))
    if workers == 1:
        return to_wandb(rows, out, project)
    _need("wandb", "wandb")  # the message names the extra here, not in each worker
    import concurrent.futures
    import multiprocessing

    shares = [rows[i::workers] for i in range(workers)]
    spawn = multiprocessing.get_context("spawn")  # a fresh W&B per worker, whatever this process imported
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        parts = list(pool.map(to_wandb, shares, [out] * workers, [project] * workers))
    return [path for part in parts for path in part]

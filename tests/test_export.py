"""`hpc export`: result files -> TensorBoard event files and W&B offline runs, read back with
TensorBoard's own event reader and W&B's record format, and compared with the result files."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml

from conftest import ROOT, hpc_cli
from hpc.store import write_result

STEPS = 7


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "root"
    rng = np.random.default_rng(0)
    for experiment, run_id, width in (("first", "r0000001", 8), ("second", "r0000002", 16)):
        config = {"width": width, "output_head": "signed", "dataset": {"family": "complex", "planar": True}}
        write_result(
            root / experiment / f"{run_id}.h5",
            status="completed",
            run_id=run_id,
            config=config,
            config_yaml=yaml.safe_dump(config),
            metadata={},
            tree={
                "history": {"loss": rng.random(STEPS), "failed_segments": np.arange(STEPS), "steps": STEPS},
                "metrics": {"complex_TBP_planar_100_test": {"accel_pct_mean": float(rng.uniform(1, 9))}},
                "training": {"final_loss": 0.25},
            },
        )
    return root


def _truth(path):
    with h5py.File(path) as f:
        return (
            {n: f["history"][n][()].astype(float) for n in ("loss", "failed_segments")},
            float(f["metrics/complex_TBP_planar_100_test"].attrs["accel_pct_mean"]),
            yaml.safe_load(f["config"]["yaml"][()].decode()),
        )


def test_tensorboard_event_files_read_back_as_the_result_files(root, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    out = tmp_path / "tb"
    done = hpc_cli("export", "runs", "--to", "tensorboard", str(out), root=root)
    assert f"Exported 2 runs to {out} (tensorboard, " in done.stdout
    assert f" runs/s). Next: tensorboard --logdir {out}" in done.stdout
    for experiment, run_id in (("first", "r0000001"), ("second", "r0000002")):
        series, accel, config = _truth(root / experiment / f"{run_id}.h5")
        events = EventAccumulator(str(out / experiment / run_id), size_guidance={"scalars": 0})
        events.Reload()
        for name, values in series.items():
            got = events.Scalars(f"history/{name}")
            assert [e.step for e in got] == list(range(STEPS))
            np.testing.assert_array_equal(
                [e.value for e in got], values.astype(np.float32)
            )  # TensorBoard keeps float32
        (final,) = events.Scalars("metrics/complex_TBP_planar_100_test/accel_pct_mean")
        assert final.step == STEPS - 1 and final.value == np.float32(accel)
        content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
        assert hparams["width"].number_value == config["width"]
        assert hparams["dataset.family"].string_value == "complex" and hparams["dataset.planar"].bool_value


def _records(path):
    """The protobuf records of a W&B offline run file (`run-<id>.wandb`): a 7-byte header
    (`:W&B`, magic 0xBEE1, version), then LevelDB's log format in 32 KiB blocks."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B" and data[4:6] == b"\xe1\xbe"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk  # full, first | middle, last
        if kind in (1, 4):
            yield wandb_internal_pb2.Record.FromString(pending)


@pytest.mark.slow  # W&B's writer
def test_wandb_offline_runs_read_back_as_the_result_files(root, tmp_path):
    import json

    out = tmp_path / "wb"
    done = hpc_cli("export", "runs", "width=16", "--to", "wandb", str(out), "--project", "orbits", root=root)
    assert "Exported 1 runs" in done.stdout and "wandb sync" in done.stdout
    (run_file,) = out.glob("wandb/offline-run-*-r0000002/run-r0000002.wandb")
    series, accel, config = _truth(root / "second" / "r0000002.h5")
    history, summary, configured, runs = {}, {}, {}, []
    for record in _records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            history[items["_step"]] = items
        elif kind == "summary":
            summary.update({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.summary.update})
        elif kind == "config":
            configured.update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif kind == "run":  # the config given to `wandb.init` comes with the run
            runs.append(record.run)
            configured.update({i.key: json.loads(i.value_json) for i in record.run.config.update})
    assert runs[0].run_id == "r0000002" and runs[0].project == "orbits" and runs[0].run_group == "second"
    assert sorted(history) == list(range(STEPS))
    for name, values in series.items():
        assert [history[s][f"history/{name}"] for s in range(STEPS)] == list(values)  # JSON: full precision
    assert summary["metrics.complex_TBP_planar_100_test.accel_pct_mean"] == accel
    assert summary["training.final_loss"] == 0.25 and summary["status"] == "completed"
    shown = {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in configured.items()}
    assert {k: v for k, v in shown.items() if not k.startswith("_")} == config


@pytest.mark.slow  # W&B's writer in several processes
def test_wandb_runs_are_written_by_several_processes_and_each_reads_back(root, tmp_path):
    import json

    out = tmp_path / "wb"
    done = hpc_cli("export", "runs", "--to", "wandb", str(out), "--workers", "2", root=root)
    assert "Exported 2 runs" in done.stdout and "runs/s" in done.stdout
    for experiment, run_id in (("first", "r0000001"), ("second", "r0000002")):
        (run_file,) = out.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")
        summary = {}
        for record in _records(run_file):
            if record.WhichOneof("record_type") == "summary":
                summary.update({i.key: json.loads(i.value_json) for i in record.summary.update if i.key})
        _, accel, _ = _truth(root / experiment / f"{run_id}.h5")
        assert summary["metrics.complex_TBP_planar_100_test.accel_pct_mean"] == accel


def test_without_the_extra_the_message_names_it(root, tmp_path):
    blocked = tmp_path / "blocked"
    (blocked / "wandb").mkdir(parents=True)
    (blocked / "wandb" / "__init__.py").write_text("raise ImportError('No module named wandb')\n")
    done = subprocess.run(
        [sys.executable, "-m", "hpc.cli", "--root", str(root), "export", "runs", "--to", "wandb", str(tmp_path / "o")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(blocked)},
    )
    assert done.returncode == 2
    assert '`--to wandb` needs the `wandb` extra: pip install -e ".[wandb]"' in done.stderr
    bad = hpc_cli("export", "runs", "--to", "mlflow", str(tmp_path / "o"), root=root, check=False)
    assert bad.returncode == 2 and "`--to` must be one of tensorboard, wandb, got 'mlflow'" in bad.stderr

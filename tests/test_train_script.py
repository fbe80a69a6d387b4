"""`python train.py` as the README says, on the smoke curriculum, checked through its HDF5 file."""

import json
import pathlib
import re
import subprocess

import h5py
import jax
import numpy as np
import pytest
import yaml

import neuralode
from conftest import TINY, foreign_checkpoint, run_id_of, run_train
from hpc.sweep import Sweep

ROOT = pathlib.Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _only_result(root, experiment):
    files = sorted((root / experiment).glob("*.h5"))
    assert len(files) == 1, files
    return files[0]


def _check_the_reference_names_everything_in(path) -> None:
    """`docs/reference/result-file.md` names every group, attribute and array of a real result
    file (the model's leaves and the config's keys aside: they are the model's and the config's)."""
    page = (ROOT / "docs" / "reference" / "result-file.md").read_text()
    named = {word for span in re.findall(r"`([^`]+)`", page) for word in re.findall(r"[\w.]+", span)}
    with h5py.File(path) as f:
        found = {*f, *f.attrs}
        for group in ("metadata", "training", "units", "datasets", "history"):
            found |= {*f[group], *f[group].attrs}
        for test_set in f["metrics"].values():
            found |= set(test_set)  # its arrays; its scalars are the metrics the guide lists
    assert sorted(found - named) == []


def test_smoke_run_writes_one_complete_result(results):
    done = run_train(*TINY, f"results_root={results}", "experiment=e2e")
    path = _only_result(results, "e2e")
    _check_the_reference_names_everything_in(path)
    assert str(path) in done.stdout
    assert "libtpu" not in done.stdout + done.stderr  # JAX's probe of absent backends stays quiet
    _check_summary(done.stdout, path)
    with h5py.File(path) as f:
        assert f.attrs["status"] == "completed" and f.attrs["run_id"] == path.stem
        assert f.attrs["format"] == "neuralode-hpc-result/1"
        config = yaml.safe_load(f["config"]["yaml"][()].decode())
        assert config["width"] == 8 and f["config"].attrs["width"] == 8
        assert f["history"]["loss"].shape == (5,) and list(f["history"].attrs["phase_starts"]) == [0, 3]
        for name in neuralode.HEALTH:  # training health, per step
            assert f["history"][name].shape == (5,) and np.all(np.isfinite(f["history"][name][()])), name
        assert np.all(f["history"]["update_norm"][()] > 0) and f["training"].attrs["bad_step"] == "None"
        assert f["config"].attrs["clip"] == 1.0 and f["config"].attrs["planar_constraint"]
        assert f["model"].attrs["spec.planar_constraint"]
        for name in ("complex_TBP_planar_1_test", "complex_TBP_planar_2_test"):
            m = f["metrics"][name]
            for key in (
                "accel_pct_mean",
                "accel_pct_median",
                "accel_pct_bowley",
                "angle_deg_mean",
                "radial_sign_error_pct",
                "loglog_slope",
                "final_position_error_km_mean",
                "along_accel_pct_mean",
                "along_accel_pct_median",
            ):
                assert np.isfinite(m.attrs[key]) or key == "final_position_error_km_mean", key
            assert m["accel_pct_per_orbit"].shape == (int(name.split("_")[3]),)
            assert m["along_accel_pct_error"].shape == m["accel_pct_error"].shape
            assert not np.isnan(m.attrs["critical_radius"])  # a radius, or inf beyond every test point
        # the training orbits are scored too, as the study ranks runs by them
        assert f["metrics"]["complex_TBP_planar_2_train"].attrs["accel_pct_mean"] >= 0
        assert f["datasets"].attrs["train"] == "complex_TBP_planar_2_train"
        meta = f["metadata"]
        assert meta.attrs["wall_time_s"] > 0 and meta["versions"].attrs["jax"]
        assert f["units"].attrs["length_km"] == pytest.approx(neuralode.R_EARTH)
    # the weights reload with one call and evaluate on another dataset
    with pytest.raises(ValueError, match="64-bit mode"):
        neuralode.load_model(path)  # float64 weights, and the caller has not asked for x64
    with jax.enable_x64(True):
        model = neuralode.load_model(path)
        other = neuralode.load_or_generate(results, "circular", True, 1, 5, "test")
        t, y = neuralode.CanonicalUnits().to_canonical(other.t, other.y)
        assert neuralode.evaluate(model, t[:, :40], y[:, :40])["accel_pct_error"].shape == (1, 40)
    assert (results / "datasets" / "complex_TBP_planar_2_train.h5").exists()

    # the same config again is skipped; force=true reruns it
    again = run_train(*TINY, f"results_root={results}", "experiment=e2e")
    assert "Skipping run" in again.stdout
    stamp = path.stat().st_mtime_ns
    forced = run_train(*TINY, f"results_root={results}", "experiment=e2e", "force=true")
    assert "Skipping run" not in forced.stdout and path.stat().st_mtime_ns != stamp
    assert _only_result(results, "e2e") == path  # force does not change the run id


@pytest.mark.parametrize("sweep", [[], ["-m", "seed=1,2"]])
@pytest.mark.parametrize("key", ["widht=32", "nosuchkey=3", "+nosuchkey=3"])
def test_an_unknown_key_is_one_line_and_writes_nothing(results, key, sweep):
    done = run_train(*sweep, key, "curriculum=smoke", f"results_root={results}", check=False)
    assert done.returncode == 2 and done.stdout == "", done.stdout
    (line,) = done.stderr.splitlines()
    name = key.split("=")[0].lstrip("+")
    assert line.startswith(f"Error: unknown key `{name}`") and "Short names: width, depth, activation" in line
    assert name != "widht" or "(closest: width" in line
    assert not results.exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["output_head=logmag"], "Unknown `output_head` 'logmag'; known values:"),
        (["curriculum=lofi", "segment_length=400", "curriculum.phases.0.steps=1"], "`segment_length`=400"),
        (["seed=abc"], "`seed` must be an integer >= 0, got 'abc'."),
        (
            ["lr=abc"],
            "`curriculum.phases.0.lr` (the `lr` short name, or the curriculum's) must be a number > 0, got 'ab",
        ),
    ],
)
def test_a_single_run_with_bad_input_says_so_and_writes_nothing(results, overrides, message):
    done = run_train(*TINY, *overrides, f"results_root={results}", "experiment=bad", check=False)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr  # one line
    assert not results.exists()  # a typo leaves nothing behind


def test_a_failure_in_training_leaves_a_failed_result(results):
    # the input checks pass; what fails is the run: a checkpoint left by another model
    foreign_checkpoint(results / "ckpt" / f"{run_id_of(*TINY, 'experiment=ckpt')}.ckpt")
    done = run_train(*TINY, f"results_root={results}", "experiment=ckpt", check=False)
    assert done.returncode == 1 and done.stderr == ""  # a run that failed, not bad input: its line says why
    with h5py.File(_only_result(results, "ckpt")) as f:
        assert f.attrs["status"] == "failed" and "Traceback" in f["error"].attrs["traceback"]
        assert "a resubmit starts over" in f.attrs["message"]
        rid, message, wall = f.attrs["run_id"], f.attrs["message"], f["metadata"].attrs["wall_time_s"]
    # one line says why, with the file's own message
    (line,) = [line for line in done.stdout.splitlines() if line.startswith(f"Run {rid} ")]
    assert line == f"Run {rid} failed after {wall:.1f} s: {message} (result: {_only_result(results, 'ckpt')})"


def _check_summary(stdout: str, path) -> None:
    """The lines a completed run ends with hold its result file's numbers."""
    start = stdout.index(f"Run {path.stem} completed in ")
    text = stdout[start:]
    with h5py.File(path) as f:
        assert f"final loss {f['training'].attrs['final_loss']:.4g}" in text
        assert f"failed segments: {int(np.sum(f['history/failed_segments'][()]))} over 5 steps" in text
        for name in ("complex_TBP_planar_1_test", "complex_TBP_planar_2_test"):
            (row,) = [line.split() for line in text.splitlines() if line.strip().startswith(name)]
            m = f["metrics"][name].attrs
            shown = [float(v) for v in row[1:]]
            expected = [m[k] for k in ("accel_pct_mean", "accel_pct_median", "angle_deg_mean", "loglog_slope")]
            expected.append(m["radial_sign_error_pct"])
            np.testing.assert_allclose(shown, expected, rtol=5e-3, atol=1e-3)  # as printed: 3 digits
    assert f"Result: {path}" in text and f"python evaluate.py {path.stem}" in text


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["seed=abc,1"], "`seed` must be an integer >= 0, got 'abc'."),
        (["lr=abc,1e-3"], "`curriculum.phases.0.lr` (the `lr` short name, or the curriculum's) must be a number > 0"),
        (["seed=range(0,0)"], "the sweep has no runs"),
        (["seed=0,1", "cluster.signal_before_s=120", "cluster.time_min=1"], "`cluster.signal_before_s`=120 warns"),
    ],
)
def test_bad_values_in_a_sweep_are_refused_before_anything_is_written(results, overrides, message):
    done = run_train("-m", *TINY, *overrides, f"results_root={results}", check=False)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not results.exists()


def test_a_full_disk_at_submission_leaves_no_half_written_sweep(tmpfs):
    root = tmpfs("size=64k")
    done = run_train("-m", *TINY, "seed=range(0,200)", "hydra/launcher=manifest", f"results_root={root}", check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()  # one line
    assert line.startswith(f"Error: disk full writing {root}/") and "bytes free)" in line, line
    assert "the sweep's record was not written, nothing was submitted" in line
    assert not list(root.iterdir())  # removed whole: no record, no empty <experiment>/sweeps


def test_a_run_on_a_full_disk_is_one_line_and_leaves_nothing(tmpfs):
    root = tmpfs("size=256k")
    filler = root / "filler"
    subprocess.run(["fallocate", "-l", "256k", str(filler)], check=True)  # another job filled the file system
    done = run_train(*TINY, f"results_root={root}", check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"Error: disk full writing {root}/") and line.endswith("; 0 bytes free)"), line
    assert list(root.iterdir()) == [filler]  # no 0-byte claim, no empty directories


def test_bad_sweep_input_is_one_message_and_writes_nothing(results):
    done = run_train("-m", *TINY, "width=8,16", "cluster.mem_per_cpu_mb=abc", f"results_root={results}", check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "Error: `cluster.mem_per_cpu_mb` must be an integer >= 1 or null, got 'abc'." in done.stderr
    assert not results.exists()
    done = run_train("-m", *TINY, "batch_size=0,8", f"results_root={results}", check=False)
    assert done.returncode == 2 and "`batch_size` must be a positive integer, got 0" in done.stderr
    assert not results.exists()


def test_the_notebooks_sweep_plans_as_one_command(results, tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    done = run_train("-m", "sweep=notebook_2BP_12_10", "hydra/launcher=manifest", f"results_root={results}", cwd=here)
    assert not list(here.iterdir())  # Hydra writes no multirun/ (nor outputs/) where the user stands
    (sweep,) = (results / "notebook_2BP_12_10" / "sweeps").iterdir()
    lines = (sweep / "manifest.txt").read_text().splitlines()
    assert len(lines) == 576 and "Planned 576 runs" in done.stdout
    record = Sweep.load(sweep)
    configs = [yaml.safe_load(record.config_yaml(r)) for r in record.runs]
    assert len(configs) == 576  # one distinct run id per grid point
    assert {tuple(c["curriculum"]["segment_length_strategy"]) for c in configs} == {(4,), (10,), (18,)}
    assert {c["n_orbits"] for c in configs} == {1, 10, 100} and {c["depth"] for c in configs} == {2, 4}
    assert {c["output_head"] for c in configs} == {"signed", "unit", "unit_softplus", "logmag_unit_exp"}
    assert {c["feature_layer"] for c in configs} == {"sph_4D_rinv_vel", "sph_4D_rinv_vel_harmonics"}
    strategies = {json.dumps(c["curriculum"]["length_strategy"]) for c in configs}
    assert strategies == {"[[0.0, 0.1], [0.0, 1.0], [0.0, 1.0]]", "[0.0, 1.0]"}
    first = configs[0]
    assert first["curriculum"]["lr_strategy"] == [1e-3, 1e-3, 1e-4]
    assert first["loss"]["name"] == "percent_error_plus_nmse" and first["width"] == 64
    # the second length strategy is one [start, end] entry: every phase ramps the fraction 0 -> 1
    flat = next(c for c in configs if c["curriculum"]["length_strategy"] == [0.0, 1.0])
    assert [p.length for p in neuralode.phases_from_config(flat)] == [(0.0, 1.0)] * 3
    assert first["dataset"]["rotated"] is False and first["planar_constraint"] is True

"""Plain sbatch submission from a manifest, with a venv-pack'd environment, on the real cluster."""

import os
import pathlib
import re
import subprocess
import sys

import h5py
import pytest
from test_slurm import GRID_TINY, _wait

from conftest import LSQ_DIR, ROOT, hpc_cli, run_lsq, run_train
from hpc.sweep import Sweep, find_sweep

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _sbatch(script) -> str:
    out = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, check=True)
    return out.stdout.strip().split(";")[0]


def _small_venv(where) -> pathlib.Path:
    """A venv with what `hpc` and the lsq app need, `venv-pack`, and the project installed from
    its source (not editable): a user's environment, smaller than the test suite's own."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)  # with pip, as users make one
    pip = [sys.executable, "-m", "pip", "--python", str(where / "bin" / "python"), "install", "-q"]
    subprocess.run([*pip, *LSQ_NEEDS, "venv-pack"], check=True)
    subprocess.run([*pip, "--no-deps", str(ROOT)], check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return where


LSQ_NEEDS = ["setuptools", "h5py", "numpy", "pyyaml", "hydra-core", "omegaconf", "submitit"]


def test_packed_environment_and_manifest_array(results, tmp_path, slurm_cluster):
    venv = _small_venv(tmp_path / "venv")
    env = {"PATH": f"{venv}/bin:{os.environ['PATH']}", "HOME": str(tmp_path)}
    env.update({k: os.environ[k] for k in ("HPC_STATE_DIR",) if k in os.environ})

    def in_venv(*cmd, cwd=ROOT):
        done = subprocess.run([f"{venv}/bin/python", *cmd], cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    packed = in_venv("-m", "hpc.cli", "--root", str(results), "pack")
    tarball = re.search(r"Packed (\S+\.tar\.gz)", packed).group(1)
    assert "Reusing" in in_venv("-m", "hpc.cli", "--root", str(results), "pack")  # unchanged: same tarball
    unpack = tmp_path / "node-local"
    grid = ["degree=2,3", f"results_root={results}", "experiment=plain", "hydra/launcher=manifest"]
    environment = f"+cluster.environment={{kind: packed, tarball: '{tarball}', unpack_dir: '{unpack}'}}"
    done = in_venv("lsq.py", "-m", *grid, environment, cwd=LSQ_DIR)
    sweep = Sweep.load(find_sweep("latest", results))
    manifest = (sweep.path / "manifest.txt").read_text().splitlines()
    assert len(manifest) == 2 and all("degree=" in line for line in manifest)
    assert f"sbatch {sweep.path / 'array.sbatch'}" in done
    planned = hpc_cli("status", "latest", root=results).stdout  # not yet submitted
    assert "planned 2" in planned and "lost 0" in planned, planned
    text = (sweep.path / "array.sbatch").read_text()
    assert "#SBATCH --requeue" in text and re.search(r"#SBATCH --signal=B:USR2@\d+", text)

    _sbatch(sweep.path / "array.sbatch")
    assert _wait(results).returncode == 0
    assert "completed 2" in hpc_cli("status", "latest", root=results).stdout
    for run_id in sweep.runs:
        with h5py.File(results / "plain" / f"{run_id}.h5") as f:
            meta = f["metadata"].attrs
            assert f.attrs["status"] == "completed"
            assert meta["python_prefix"].startswith(str(unpack)), meta["python_prefix"]
            assert not meta["python_prefix"].startswith((sys.prefix, str(venv)))
    logs = "".join(p.read_text() for p in (sweep.path / "slurm").glob("*.out"))
    assert logs.count("hpc: unpacked") == 1 and logs.count("hpc: reusing") == 1

    # the same ids as the submitit path: planning the grid again finds both completed
    assert "2 already completed" in run_lsq("-m", *grid).stdout


def test_grid_larger_than_max_array_size_is_split(results, slurm_cluster):
    limit = int(
        subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True)
        .stdout.split("MaxArraySize")[1]
        .split("=")[1]
        .split()[0]
    )
    assert limit == 4, "the test cluster runs with MAX_ARRAY_SIZE=4"
    # the toolkit's split, not training: the numpy app (about a second a run) as the workload
    run_lsq("-m", "seed=0,1,2,3,4", f"results_root={results}", "experiment=split", "hydra/launcher=manifest")
    sweep = Sweep.load(find_sweep("latest", results))
    assert [len(s["runs"]) for s in sweep.submissions] == [4, 1]
    assert [s["offset"] for s in sweep.submissions] == [0, 4]
    for script in ("array.sbatch", "array-1.sbatch"):
        _sbatch(sweep.path / script)
    assert _wait(results).returncode == 0
    assert "completed 5" in hpc_cli("status", "latest", root=results).stdout
    logs = [p.read_text() for p in (sweep.path / "slurm").glob("*.out")]
    lines = sorted(int(re.search(r"manifest line (\d+)", text).group(1)) for text in logs)
    assert lines == [1, 2, 3, 4, 5]  # every run exactly once

    # and the submitit path splits the same way (held: what is tested is the split, not the runs)
    run_train(
        "-m", *GRID_TINY, "seed=10,11,12,13,14", f"results_root={results}", "experiment=split2", "cluster.hold=true"
    )
    sweep = Sweep.load(find_sweep("latest", results))
    assert [len(s["runs"]) for s in sweep.submissions] == [4, 1]
    jobs = [s["job_id"] for s in sweep.submissions]
    held = subprocess.run(
        ["squeue", "-h", "-r", "-j", ",".join(jobs), "-o", "%i %r"], capture_output=True, text=True
    ).stdout.split("\n")
    assert len([line for line in held if "JobHeldUser" in line]) == 5, held
    subprocess.run(["scancel", *jobs], check=True)

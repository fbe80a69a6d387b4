"""conda-pack end to end on the real local cluster: `hpc pack` in a conda environment ->
conda-pack -> tarball -> node-local unpack -> `conda-unpack` -> tasks that run the unpacked
Python. The environment is built without conda (`tests/conda_env.py` says how and why)."""

import os
import pathlib
import re
import shutil
import subprocess

import h5py
import pip
import pytest
from conda_env import build
from test_plain_sbatch import _sbatch
from test_slurm import _wait

from conftest import LSQ_DIR, ROOT, hpc_cli
from hpc.sweep import Sweep, find_sweep

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
NEEDED = ["setuptools", "h5py", "numpy", "pyyaml", "hydra-core", "omegaconf", "submitit", "conda-pack"]


@pytest.mark.skipif(not pathlib.Path("/usr/bin/python3.11").exists(), reason="needs Debian's python3.11")
def test_a_conda_packed_environment_runs_its_tasks_unpacked(tmp_path, slurm_cluster):
    pip_source = tmp_path / "pip-source"  # this pip, run by the new environment's Python to install into it
    shutil.copytree(pathlib.Path(pip.__file__).parent, pip_source / "pip")
    prefix = build(tmp_path / "conda", ROOT, pip_source, NEEDED)
    env = {
        "PATH": f"{prefix}/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CONDA_PREFIX": str(prefix),  # as `conda activate` sets it
        "HPC_STATE_DIR": os.environ.get("HPC_STATE_DIR", str(tmp_path / "state")),
    }
    root = tmp_path / "results"

    def in_env(*cmd, cwd=ROOT):
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    packed = in_env("python", "-m", "hpc.cli", "--root", str(root), "pack")
    tarball = pathlib.Path(re.search(r"Packed (\S+\.tar\.gz)", packed).group(1))
    assert tarball.exists() and not list(tmp_path.glob("tmp*"))  # staged beside the tarball, not in /tmp

    unpack = tmp_path / "node-local"
    in_env(
        "python",
        "lsq.py",
        "-m",
        "seed=0,1",
        f"+cluster.environment={{kind: packed, tarball: '{tarball}', unpack_dir: '{unpack}'}}",
        "hydra/launcher=manifest",
        f"results_root={root}",
        "experiment=conda",
        cwd=LSQ_DIR,
    )
    sweep = Sweep.load(find_sweep("latest", root))
    _sbatch(sweep.path / "array.sbatch")
    assert _wait(root).returncode == 0
    assert "completed 2" in hpc_cli("status", "latest", root=root).stdout

    (env_dir,) = [p for p in unpack.iterdir() if p.is_dir()]
    for run_id in sweep.runs:  # the tasks ran the unpacked Python, not the one that was packed
        with h5py.File(root / "conda" / f"{run_id}.h5") as f:
            assert f.attrs["status"] == "completed"
            assert f["metadata"].attrs["python_executable"].startswith(str(env_dir))
            assert f["metadata"].attrs["python_prefix"] == str(env_dir)
    # conda-unpack rewrote the prefixes: the managed text file (conda's placeholder) and a pip script
    activate = (env_dir / "etc" / "conda" / "activate.d" / "hpc-env.sh").read_text()
    assert activate == f'export HPC_ENV_PREFIX="{env_dir}"\n'
    # pip's scripts (files conda does not manage) name their Python relative to PATH once packed
    assert (env_dir / "bin" / "hpc").read_text().splitlines()[0] == "#!/usr/bin/env python3.11"
    assert (prefix / "bin" / "hpc").read_text().startswith(f"#!{prefix}/bin/python3.11")  # the original is untouched
    logs = "".join(p.read_text() for p in (sweep.path / "slurm").glob("*.out"))
    assert logs.count("hpc: unpacked") == 1

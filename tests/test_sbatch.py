"""Plain sbatch text (golden files) and the pure parts of environment packing."""

import os
import pathlib

import pytest

from conftest import ROOT
from hpc import envpack
from hpc.sbatch import activation_lines, array_script, directives, render, signal_before_s

GOLDEN = pathlib.Path(__file__).parent / "golden"
ZARATAN = dict(job_name="grid-1", array="0-9%5", output="/scratch/s/slurm/%A_%a.out", partition="standard",
               account="my alloc", time_min=240, cpus_per_task=4, mem_per_cpu_mb=4000, gpus_per_task=0,
               signal="B:USR2@300", requeue=True)
PACKED = {"kind": "packed", "tarball": "/scratch/envs/venv-0123456789ab.tar.gz", "unpack_dir": "/tmp"}


@pytest.mark.parametrize("cluster,environment", [("default", {"kind": "none"}), ("zaratan", PACKED)])
def test_array_script_matches_golden(cluster, environment):
    text = array_script(ROOT / "jobs", cluster, directive_lines=directives(**ZARATAN),
                        setup=["module load python"], activation=activation_lines(environment),
                        sweep_dir="/scratch/exp/sweeps/s", workdir="/home/u/neuralode-hpc",
                        entry_script="train.py", offset=1000, results_root="/scratch/neuralode-hpc")
    golden = GOLDEN / f"array_{cluster}.sbatch"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_directives_quote_and_skip_unset():
    lines = directives(job_name="a b", array="0-1%1", output="/o", account=None, gpus_per_task=0)
    assert lines == ["#SBATCH --job-name='a b'", "#SBATCH --array=0-1%1", "#SBATCH --output=/o"]


def test_the_warning_signal_scales_with_the_time_limit():
    # never 60 s out of a 60 s job; at most 5 minutes out of days
    assert [signal_before_s({"time_min": m}) for m in (1, 2, 10, 60, 7 * 24 * 60)] == [20, 20, 60, 300, 300]
    assert signal_before_s({"time_min": 1, "signal_before_s": 45}) == 45


def test_render_blocks_and_placeholders():
    base = "x={{ x }}\n# >>> one\ndefault\n# <<< one\n"
    assert render(base, "# >>> one\nmine {{ x }}\n# <<< one\n", {"x": "1"}) == "x=1\n# >>> one\nmine 1\n# <<< one\n"
    with pytest.raises(ValueError, match=r"unknown block\(s\) \['two'\]"):
        render(base, "# >>> two\n\n# <<< two\n", {"x": "1"})
    with pytest.raises(KeyError, match="`x`"):
        render(base, None, {})


def test_activation_for_each_kind():
    assert activation_lines(None) == []
    assert activation_lines({"kind": "venv", "venv": "/v"}) == ["source /v/bin/activate"]
    assert activation_lines({"kind": "conda", "conda_env": "node"})[-1] == "conda activate node"
    packed = "\n".join(activation_lines(PACKED))
    assert "flock 9" in packed and "conda-unpack" in packed and 'source "$ENV_DIR/bin/activate"' in packed
    for env, field in (({"kind": "docker"}, "kind"), ({"kind": "packed"}, "tarball"), ({"kind": "venv"}, "venv")):
        with pytest.raises(ValueError, match=f"`cluster.environment.{field}`"):
            activation_lines(env)


def test_pack_commands_and_environment_detection(tmp_path):
    prefix = tmp_path / "env"
    assert envpack.pack_command("conda", prefix, tmp_path / "o.tar.gz")[:3] == ["conda-pack", "--prefix", str(prefix)]
    assert envpack.pack_command("venv", prefix, tmp_path / "o.tar.gz")[0] == "venv-pack"
    (prefix / "conda-meta").mkdir(parents=True)
    assert envpack.active_environment({"CONDA_PREFIX": str(prefix)}, str(prefix), "/usr") == ("conda", prefix)
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert envpack.active_environment({}, str(venv), "/usr") == ("venv", venv)
    with pytest.raises(ValueError, match="neither a conda environment nor a venv.*environment.yml"):
        envpack.active_environment({}, "/usr", "/usr")
    a = envpack.tarball_path(tmp_path, "venv", venv, "numpy==2\n")
    assert a.parent == tmp_path / "envs" and a.name.startswith("venv-") and a.name.endswith(".tar.gz")
    assert a != envpack.tarball_path(tmp_path, "venv", venv, "numpy==1\n")

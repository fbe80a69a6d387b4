"""Plain sbatch text (golden files) and the pure parts of environment packing."""

import os
import pathlib

import pytest

from conftest import ROOT
from hpc import Profile, envpack, slurm_options
from hpc.slurm.sbatch import activation_lines, array_script, directives, render, template_dirs

GOLDEN = pathlib.Path(__file__).parent / "golden"
ZARATAN = dict(
    job_name="grid-1",
    array="0-9%5",
    output="/scratch/s/slurm/%A_%a.out",
    signal="B:USR2@300",
    requeue=True,
    options=slurm_options(
        Profile(partition="standard", account="my alloc", time_min=240, cpus_per_task=4, mem_per_cpu_mb=4000)
    ),
)
PACKED = {"kind": "packed", "tarball": "/scratch/envs/venv-0123456789ab.tar.gz", "unpack_dir": "/tmp"}


@pytest.mark.parametrize("cluster,environment", [("default", {"kind": "none"}), ("zaratan", PACKED)])
def test_array_script_matches_golden(cluster, environment):
    text = array_script(
        template_dirs(ROOT),
        cluster,
        directive_lines=directives(**ZARATAN),
        setup=["module load python"],
        activation=activation_lines(environment),
        sweep_dir="/scratch/exp/sweeps/s",
        workdir="/home/u/neuralode-hpc",
        entry_script="train.py",
        offset=1000,
        results_root="/scratch/neuralode-hpc",
        runs_per_task=4 if cluster == "zaratan" else 1,
    )
    golden = GOLDEN / f"array_{cluster}.sbatch"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_directives_quote_and_skip_unset():
    lines = directives(job_name="a b", array="0-1%1", output="/o", options={"account": None})
    assert lines == ["#SBATCH --job-name='a b'", "#SBATCH --array=0-1%1", "#SBATCH --output=/o"]


def test_render_blocks_and_placeholders():
    base = "x={{ x }}\n# >>> one\ndefault\n# <<< one\n"
    assert render(base, "# >>> one\nmine {{ x }}\n# <<< one\n", {"x": "1"}) == "x=1\n# >>> one\nmine 1\n# <<< one\n"
    with pytest.raises(ValueError, match=r"unknown block\(s\) \['two'\]"):
        render(base, "# >>> two\n\n# <<< two\n", {"x": "1"})
    with pytest.raises(ValueError, match=r"placeholder `\{\{ x \}\}` has no value"):
        render(base, None, {"y": "2"})


def test_a_checkout_jobs_directory_overrides_the_packaged_templates(tmp_path):
    """`base.sbatch` ships with the package; `<workdir>/jobs/` overrides it file by file."""
    args = dict(
        directive_lines=["#SBATCH --x=1"],
        setup=[],
        activation=[],
        sweep_dir="/s",
        workdir="/w",
        entry_script="app.py",
        offset=0,
        results_root="/r",
    )
    packaged = array_script(template_dirs(tmp_path), "default", **args)
    assert "#SBATCH --x=1" in packaged and "app.py" in packaged  # no jobs/ here: the package's base
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "mine.sbatch").write_text("# >>> setup\necho mine\n# <<< setup\n")
    assert "echo mine" in array_script(template_dirs(tmp_path), "mine", **args)
    (tmp_path / "jobs" / "base.sbatch").write_text("#!/bin/bash\n{{ directives }}\nexec {{ entry_script }}\n")
    assert array_script(template_dirs(tmp_path), "default", **args) == "#!/bin/bash\n#SBATCH --x=1\nexec app.py\n"


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


def test_both_submission_paths_run_the_same_setup_before_python(tmp_path):
    from hpc.slurm.sbatch import task_setup

    zaratan = task_setup(template_dirs(ROOT), "zaratan", ["module load python"], activation_lines(PACKED))
    script = (GOLDEN / "array_zaratan.sbatch").read_text()  # the plain-sbatch script of the same profile
    assert zaratan[:2] == ["module purge", "module load python"]
    assert all(line in script.splitlines() for line in zaratan)
    assert zaratan[2:] == activation_lines(PACKED)
    assert task_setup(template_dirs(ROOT), "default", ["module load python"], []) == ["module load python"]
    assert task_setup(template_dirs(ROOT), "default", [], []) == []
    (tmp_path / "jobs").mkdir()  # a checkout's own override of the default profile's template
    (tmp_path / "jobs" / "default.sbatch").write_text("# >>> setup\nsource /etc/lab.sh\n{{ setup }}\n# <<< setup\n")
    assert task_setup(template_dirs(tmp_path), "default", ["module load gcc"], []) == [
        "source /etc/lab.sh",
        "module load gcc",
    ]


def test_a_submitit_job_script_with_a_checkouts_template_matches_golden():
    from submitit.slurm.slurm import _make_sbatch_string

    from hpc.slurm.submit import submitit_parameters

    profile = Profile(
        name="zaratan",
        partition="standard",
        account="my-alloc",
        time_min=240,
        cpus_per_task=4,
        mem_per_cpu_mb=4000,
        setup=("module load python",),
        environment=envpack_environment(),
    )
    params = submitit_parameters(profile, "grid-s0", template_dirs(ROOT))
    params.pop("array_parallelism")  # an array's own (map_count) says how many tasks; one job here
    text = _make_sbatch_string(command="python -u -m submitit.core._submit /s/slurm/%j", folder="/s/slurm/%j", **params)
    golden = GOLDEN / "submitit_zaratan.sbatch"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert "module purge\nmodule load python\n" in text  # the template's setup, as in the plain-sbatch script


def envpack_environment():
    from hpc import Environment

    return Environment(**PACKED)

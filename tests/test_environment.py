"""environment.yml and pyproject.toml declare the same runtime dependencies and lower bounds."""

import json
import re
import subprocess
import sys
import tomllib

import pytest
import yaml

from conftest import ROOT

CONDA_NAMES = {"python-duckdb": "duckdb"}  # conda-forge's name -> pip's


def _name_bound(spec: str):
    match = re.match(r"([A-Za-z0-9_.\-]+)\s*(>=\s*[\w.]+)?", spec)
    return match.group(1).lower().replace("_", "-"), (match.group(2) or "").replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = dict(_name_bound(d) for d in project["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = dict(_name_bound(d) for d in env["dependencies"] if isinstance(d, str))
    assert "conda-forge" in env["channels"]
    conda = {CONDA_NAMES.get(name, name): bound for name, bound in conda.items()}
    for name, bound in runtime.items():
        assert name in conda, f"{name} is in pyproject.toml but not environment.yml"
        assert conda[name] == bound, f"{name}: pyproject {bound!r} vs environment.yml {conda[name]!r}"
    extras = set(conda) - set(runtime) - {"python", "pip", "conda-pack"}
    assert not extras, f"in environment.yml but not pyproject.toml: {extras}"
    assert conda["python"] == project["requires-python"]
    pip = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    assert "-e ." in pip  # the project itself, from the checkout


def test_the_notebook_api_needs_no_extra():
    # hpc.load, hpc.find and hpc.sql return pandas DataFrames from Parquet and DuckDB: a plain
    # `pip install .` must bring them
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {"pandas", "pyarrow", "duckdb"} <= set(dict(_name_bound(d) for d in project["dependencies"]))
    heavy = {
        name
        for extra in ("tensorboard", "wandb")
        for name, _ in map(_name_bound, project["optional-dependencies"][extra])
    }
    assert not heavy & set(dict(_name_bound(d) for d in project["dependencies"]))  # the dashboards stay extras


@pytest.mark.slow
def test_a_plain_install_gives_the_notebook_api(tmp_path):
    # `pip install .` (no extras) in a venv of its own: hpc.load, hpc.find and hpc.sql answer
    from hpc.store import write_result
    from hpc.sweep import Sweep

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT)]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    root = tmp_path / "root"
    sweep = Sweep.create(root, "exp", "train:APP")
    for seed in (1, 2):
        sweep.add_run(f"r{seed}", [f"seed={seed}"], json.dumps({"seed": seed}))
        write_result(
            sweep.result_path(f"r{seed}"),
            status="completed",
            run_id=f"r{seed}",
            config={"seed": seed},
            config_yaml="",
            metadata={},
            tree={"metrics": {"set": {"err": float(seed)}}},
        )
    sweep.save()
    code = (
        "import hpc, sys; root = sys.argv[1]; assert hpc.__file__.startswith(sys.prefix), hpc.__file__; "
        "print(len(hpc.load(sys.argv[2], root=root)), len(hpc.find(root=root, sort='metrics.set.err')), "
        "int(hpc.sql('SELECT count(*) AS n FROM runs', root=root).n[0]))"
    )
    args = [str(venv / "bin" / "python"), "-c", code, str(root), str(sweep.path)]
    ran = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ran.returncode == 0 and ran.stdout.split() == ["2", "2", "2"], ran.stderr[-3000:]

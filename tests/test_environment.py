"""environment.yml and pyproject.toml declare the same runtime dependencies and lower bounds."""

import re
import tomllib

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

"""Pack the active Python environment into one tarball for compute nodes."""

import hashlib
import json
import os
import pathlib
import subprocess
import sys

from .atomic import atomic_path


def active_environment(
    environ=None, prefix: str | None = None, base_prefix: str | None = None
) -> tuple[str, pathlib.Path]:
    """`("conda" | "venv", prefix)` of the active environment, or `ValueError` saying what to do."""
    environ = os.environ if environ is None else environ
    prefix = prefix or sys.prefix
    base_prefix = base_prefix or sys.base_prefix
    conda = environ.get("CONDA_PREFIX")
    if (
        conda
        and (pathlib.Path(conda) / "conda-meta").is_dir()
        and pathlib.Path(conda).resolve() == pathlib.Path(prefix).resolve()
    ):
        return "conda", pathlib.Path(conda)
    if prefix != base_prefix and (pathlib.Path(prefix) / "pyvenv.cfg").exists():
        return "venv", pathlib.Path(prefix)
    raise ValueError(
        "The active Python is neither a conda environment nor a venv, so there is nothing to "
        "pack: create one (`conda env create -f environment.yml`, or `python -m venv .venv && "
        ". .venv/bin/activate && pip install -e .`), activate it, and run `hpc pack` again."
    )


def lock_text(kind: str, prefix: pathlib.Path) -> str:
    """What pins the environment's contents: the package list, with the Python version."""
    if kind == "conda":
        records = sorted(p.name for p in (prefix / "conda-meta").glob("*.json"))
        pip = subprocess.run(
            [str(prefix / "bin" / "python"), "-m", "pip", "freeze", "--all"], capture_output=True, text=True
        ).stdout
        return "\n".join(records) + "\n" + pip
    done = subprocess.run(
        [str(prefix / "bin" / "python"), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True
    )
    return f"python {sys.version.split()[0]}\n{done.stdout}"


def tarball_path(root, kind: str, prefix: pathlib.Path, lock: str) -> pathlib.Path:
    """`<root>/envs/<name>-<hash of the lock>.tar.gz`."""
    name = prefix.name.lstrip(".") or kind
    digest = hashlib.sha256(lock.encode()).hexdigest()[:12]
    return pathlib.Path(root) / "envs" / f"{name}-{digest}.tar.gz"


def pack_command(kind: str, prefix: pathlib.Path, output: pathlib.Path) -> list[str]:
    """The packing command (a pure function): conda-pack for conda, venv-pack for a venv."""
    tool = {"conda": "conda-pack", "venv": "venv-pack"}[kind]
    return [tool, "--prefix", str(prefix), "--output", str(output), "--compress-level", "1", "--force"]


def pack(root, environ=None) -> tuple[pathlib.Path, bool]:
    """Pack the active environment under `root/envs/`, reusing an existing tarball of the same
    lock. **Returns:** `(tarball, packed_now)`."""
    kind, prefix = active_environment(environ)
    lock = lock_text(kind, prefix)
    out = tarball_path(root, kind, prefix, lock)
    if out.exists():
        return out, False
    out.parent.mkdir(parents=True, exist_ok=True)
    tool = pathlib.Path(sys.executable).parent / pack_command(kind, prefix, out)[0]
    if not tool.exists():
        raise ValueError(
            f"`{tool.name}` is not installed in this environment: "
            f"`pip install {tool.name}` (or `conda install -c conda-forge {tool.name}`)."
        )
    with atomic_path(out, suffix=".tmp.tar.gz") as tmp:
        cmd = pack_command(kind, prefix, tmp)
        # conda-pack stages the whole archive in $TMPDIR first: beside the tarball, not in a small /tmp
        env = {**os.environ, "TMPDIR": str(out.parent)}
        subprocess.run([str(tool), *cmd[1:]], check=True, stdout=subprocess.DEVNULL, env=env)
        (out.parent / f"{out.name[: -len('.tar.gz')]}.json").write_text(
            json.dumps({"kind": kind, "prefix": str(prefix), "lock": lock}, indent=1)
        )
    return out, True

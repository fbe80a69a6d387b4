"""A conda environment built without conda (conda is not installable here: neither PyPI nor
Debian has it), laid out as conda lays one out, for conda-pack to pack for real.

- A package cache (`pkgs/<name>-<version>-<build>/`) holds each package as conda extracts it:
  its files, `info/index.json` and `info/paths.json`, where a text file that names the
  install prefix holds conda-build's placeholder instead, with `prefix_placeholder` and
  `file_mode` saying so.
- The environment (`prefix/`) holds each package's files, the placeholder replaced by the
  prefix (conda's "link" step), and one `conda-meta/<dist>.json` record per package (`name`,
  `version`, `build`, `files`, `link.source` = its cache directory), which is what conda-pack
  reads.
- The packages: `python` (Debian's python3.11, which is linked statically and finds its
  standard library next to itself, so a copy of it is relocatable), and `hpc-env` (an
  activation script, `etc/conda/activate.d/hpc-env.sh`, that exports the prefix: a text file
  with a placeholder, as many conda packages ship). Everything `hpc` and the test's
  application need (and conda-pack) is then installed by pip, as users do in conda envs:
  files conda-pack sees as unmanaged.
"""

import json
import pathlib
import shutil
import subprocess

PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"  # conda-build's
PYTHON = "/usr/bin/python3.11"
LEFT_OUT = ("test", "idlelib", "tkinter", "lib2to3", "ensurepip", "__pycache__", "turtledemo")


def _package(pkgs: pathlib.Path, prefix: pathlib.Path, name: str, version: str, files: dict) -> None:
    """Put package `name` in the cache and link it into `prefix`. `files`: relative path ->
    source path, or text (which may hold `PLACEHOLDER`)."""
    dist = f"{name}-{version}-0"
    cache = pkgs / dist
    paths = []
    for rel, source in files.items():
        for root in (cache, prefix):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
        entry = {"_path": rel, "path_type": "hardlink"}
        if isinstance(source, pathlib.Path):
            shutil.copy2(source, cache / rel)
            shutil.copy2(source, prefix / rel)
        else:
            (cache / rel).write_text(source)
            (prefix / rel).write_text(source.replace(PLACEHOLDER, str(prefix)))
            if PLACEHOLDER in source:
                entry.update(prefix_placeholder=PLACEHOLDER, file_mode="text")
        paths.append(entry)
    (cache / "info").mkdir(exist_ok=True)
    index = {"name": name, "version": version, "build": "0", "build_number": 0, "subdir": "linux-64"}
    (cache / "info" / "index.json").write_text(json.dumps(index))
    (cache / "info" / "paths.json").write_text(json.dumps({"paths": paths, "paths_version": 1}))
    record = {
        **index,
        "url": f"https://conda.anaconda.org/local/linux-64/{dist}.tar.bz2",
        "channel": "local",
        "files": sorted(files),
        "link": {"source": str(cache), "type": 1},
    }
    (prefix / "conda-meta").mkdir(exist_ok=True)
    (prefix / "conda-meta" / f"{dist}.json").write_text(json.dumps(record))


def build(where: pathlib.Path, project: pathlib.Path, pip_home: pathlib.Path, packages: list[str]) -> pathlib.Path:
    """A conda environment at `where/env` (package cache `where/pkgs`) with Python, `packages`
    from pip, and the `project` (`hpc`) installed from its source, not editable. `pip_home`: a
    pip wheel, or a folder holding the `pip` package (its `pip/__main__.py` runs it)."""
    prefix, pkgs = where / "env", where / "pkgs"
    stdlib = pathlib.Path("/usr/lib/python3.11")
    files: dict = {"bin/python3.11": pathlib.Path(PYTHON)}
    for path in stdlib.rglob("*"):
        rel = path.relative_to(stdlib)
        if path.is_file() and not path.is_symlink() and not set(rel.parts) & set(LEFT_OUT):
            files[f"lib/python3.11/{rel}"] = path
    # Debian's site module reads dist-packages; conda's layout (and pip's, for this prefix) is site-packages
    files["lib/python3.11/dist-packages/conda-site-packages.pth"] = "../site-packages\n"
    _package(pkgs, prefix, "python", "3.11.2", files)
    for link in ("python", "python3"):
        (prefix / "bin" / link).symlink_to("python3.11")
    script = f'export HPC_ENV_PREFIX="{PLACEHOLDER}"\n'  # conda-unpack rewrites it where the env is unpacked
    _package(pkgs, prefix, "hpc-env", "1.0", {"etc/conda/activate.d/hpc-env.sh": script})
    (prefix / "conda-meta" / "history").write_text(  # conda's log of the environment's transactions
        "==> 2026-12-02 00:00:00 <==\n# cmd: conda create -p env python=3.11.2 hpc-env\n"
        "+local::python-3.11.2-0\n+local::hpc-env-1.0-0\n"
    )
    python = str(prefix / "bin" / "python3.11")
    pip = [python, f"{pip_home}/pip", "install", "-q", "--prefix", str(prefix), "--disable-pip-version-check"]
    env = {"PATH": f"{prefix}/bin:/usr/bin:/bin", "HOME": str(where), "PIP_NO_WARN_SCRIPT_LOCATION": "1"}
    subprocess.run([*pip, "--root-user-action=ignore", "pip", *packages], check=True, env=env)
    subprocess.run(
        [*pip, "--root-user-action=ignore", "--no-deps", "--no-build-isolation", str(project)], check=True, env=env
    )
    return prefix

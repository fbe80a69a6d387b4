import os
import pathlib
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("EQX_ON_ERROR", "nan")
# The sweeps the tests create are not the user's: keep them out of the per-user sweep index.
os.environ["HPC_STATE_DIR"] = os.path.join(tempfile.mkdtemp(prefix="hpc-state-"))

import jax  # noqa: E402

# Compiled training steps are reused across test processes (and across CI runs on one machine).
jax.config.update("jax_compilation_cache_dir", str(ROOT / ".pytest_cache" / "jax"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

# A tiny configuration shared by the training tests, so they compile one step function.
TINY = [
    "curriculum=smoke",
    "batch_size=8",
    "n_orbits=2",
    "width=8",
    "depth=1",
    "dataset.test_sizes=[1,2]",
    "progress=log",
]


def fenced_bash_block(path, marker: str) -> str:
    """The first fenced bash block of the page `path` (relative to the checkout) after `marker`,
    as a user would copy it."""
    text = (ROOT / path).read_text()
    after = text[text.index(marker) :]
    return after.split("```bash\n", 1)[1].split("\n```", 1)[0]


def tiny_spec(**changes):
    """The training tests' model (8 wide, one hidden layer, float32), with `changes`: one shape,
    so they share compiled step functions."""
    from neuralode import ModelSpec

    return ModelSpec(**{"width": 8, "depth": 1, "max_steps": 256, "dtype": "float32", **changes})


@pytest.fixture(scope="session")
def orbits(tmp_path_factory):
    """Two simple planar training orbits in canonical units, `(t, y)`: the training tests' data."""
    import neuralode

    data = neuralode.load_or_generate(tmp_path_factory.mktemp("orbits"), "simple", True, 2, 0, "train")
    return neuralode.CanonicalUnits().to_canonical(data.t, data.y)


@pytest.fixture
def results(tmp_path):
    """A fresh results root."""
    return tmp_path / "results"


def run_train(*overrides, cwd=ROOT, check=True):
    """Run `python train.py` in a subprocess, as a user would."""
    import subprocess

    cache = f"jax_cache={ROOT / '.pytest_cache' / 'jax'}"
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *overrides, cache],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"train.py failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


LSQ_DIR = ROOT / "tests" / "lsq_app"


def run_lsq(*overrides, check=True):
    """Run the second application, `tests/lsq_app/lsq.py` (numpy least squares: about a second
    a run), from its own directory: for the toolkit's own behaviour, where training is not the point."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "lsq.py", *overrides], cwd=LSQ_DIR, capture_output=True, text=True, timeout=300
    )
    if check and done.returncode != 0:
        raise AssertionError(f"lsq.py failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def run_id_of(*overrides) -> str:
    """The run id `python train.py <overrides>` gives, composed as it composes."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import train

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return train.place(OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True))[0]


def foreign_checkpoint(path) -> None:
    """A checkpoint of some other model at `path` (`<run id>.ckpt`): the run fails when it
    tries to resume from it."""
    import h5py
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f["state/0"] = np.zeros(3)
        f["losses"] = np.zeros(2)


def hpc_cli(*args, root, check=True):
    """Run the `hpc` command in a subprocess, as a user would."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "hpc.cli", "--root", str(root), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"hpc {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`scripts/test.sh` runs two workers, `--dist loadgroup`), the tests
    that need the cluster run in one worker, one after another: they share its CPUs and queue,
    and the other worker takes the rest."""
    for item in items:
        if item.get_closest_marker("slurm") or "slurm_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("slurm"))


def _the_only_worker_with_the_cluster():
    """Fail where a second pytest-xdist worker of this run reaches the cluster: its tests would
    race for its CPUs and queue (`--dist loadgroup` left out, or a pytest whose node ids xdist
    can no longer group by: pytest 9.2 with pytest-xdist 3.8, pytest-xdist issue 1386)."""
    run, worker = os.environ.get("PYTEST_XDIST_TESTRUNUID"), os.environ.get("PYTEST_XDIST_WORKER")
    if not run:
        return
    mark = pathlib.Path(tempfile.gettempdir()) / f"neuralode-hpc-cluster-tests-{run}"
    try:
        with mark.open("x") as f:
            f.write(worker)
    except FileExistsError:
        pytest.fail(
            f"the Slurm tests reached {worker} as well as another worker: run them in one group "
            "(`--dist loadgroup`, a pytest that pyproject.toml allows)"
        )


@pytest.fixture(scope="session")
def slurm_cluster():
    """The local single-node Slurm cluster (scripts/local_cluster.sh), started if needed.

    Skipped with the reason where it cannot start (not root, no apt-get); in CI it must run.
    Under pytest-xdist, one worker only may use it (`_the_only_worker_with_the_cluster`).
    """
    import shutil
    import subprocess

    _the_only_worker_with_the_cluster()
    reason = None
    if os.geteuid() != 0:
        reason = "the local Slurm cluster needs root"
    elif not (shutil.which("sbatch") or shutil.which("apt-get")):
        reason = "no Slurm and no apt-get to install it"
    if reason is None:
        # A small MaxArraySize, so that splitting big grids is exercised.
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "local_cluster.sh"), "start"],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "MAX_ARRAY_SIZE": "4"},
        )
        if done.returncode != 0:
            reason = f"local_cluster.sh start failed: {done.stderr[-2000:]}"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"Slurm tests must run in CI: {reason}")
        pytest.skip(reason)
    return True


@pytest.fixture
def tmpfs(tmp_path):
    """`tmpfs(options)`: a directory with a tmpfs mounted on it (`size=1m`, `ro,size=1m` ...),
    unmounted afterwards. Skips where mounting needs root or is not allowed."""
    import contextlib
    import shutil
    import subprocess

    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    mounted = []

    def mount(options: str):
        path = tmp_path / f"tmpfs{len(mounted)}"
        path.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)]).returncode != 0:
            pytest.skip("cannot mount a tmpfs here")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        with contextlib.suppress(OSError):
            subprocess.run(["umount", str(path)])

"""Where a workload's files live: the one place that knows the results layout.

    <results root>/<experiment>/<run id>.h5                  one result file per run
    <results root>/<experiment>/sweeps/<sweep id>/           a sweep's record (hpc.sweep)

The root is chosen by the workload (`results_root(configured, app=...)`). Every sweep created
is also noted in a per-user index (`$HPC_STATE_DIR`, default `~/.local/state/hpc`), so that
`hpc status latest` finds it days later wherever its root was, e.g. a cluster profile's scratch.
"""

import os
import pathlib
import tempfile

# Set in every task of a sweep, from its record: the root the sweep was planned in.
ROOT_VARIABLE = "HPC_RESULTS_ROOT"


def results_root(configured: str | os.PathLike | None = None, app: str | None = None) -> pathlib.Path:
    """In a sweep's task, the sweep's own root (`$HPC_RESULTS_ROOT`, which the task sets from
    the sweep's record), whatever the environment it was submitted from or runs in. Elsewhere
    `configured` if given, else `$SCRATCH/<app>` when `SCRATCH` is set (`app`: the
    application's name, `hpc.App.name`; `hpc` itself for the `hpc` command's own files, such
    as packed environments), else `./scratch`."""
    if os.environ.get(ROOT_VARIABLE):
        return pathlib.Path(os.environ[ROOT_VARIABLE])
    if configured:
        return pathlib.Path(configured).expanduser()
    scratch = os.environ.get("SCRATCH")
    return pathlib.Path(scratch) / (app or "hpc") if scratch else pathlib.Path("scratch")


def default_roots() -> list[pathlib.Path]:
    """The roots an application writes to when none is configured, for any application:
    `./scratch` and every directory directly under `$SCRATCH`."""
    scratch = os.environ.get("SCRATCH")
    if not (scratch and os.path.isdir(scratch)):
        return [pathlib.Path("scratch")]
    return [pathlib.Path("scratch"), *sorted(p for p in pathlib.Path(scratch).iterdir() if p.is_dir())]


def result_path(root, experiment: str, run_id: str) -> pathlib.Path:
    """The result file of run `run_id` of `experiment`."""
    return pathlib.Path(root) / experiment / f"{run_id}.h5"


def sweep_dir(root, experiment: str, sweep_id: str) -> pathlib.Path:
    """The directory of sweep `sweep_id` of `experiment`."""
    return pathlib.Path(root) / experiment / "sweeps" / sweep_id


def sweep_dirs(root) -> list[pathlib.Path]:
    """Every sweep directory under `root` (those holding a `record` file are checked by the caller)."""
    return list(pathlib.Path(root).glob("*/sweeps/*"))


def _index() -> pathlib.Path:
    state = os.environ.get("HPC_STATE_DIR") or pathlib.Path.home() / ".local" / "state" / "hpc"
    return pathlib.Path(state) / "sweeps.txt"


def remember_sweep(path) -> None:
    """Note a new sweep directory in the per-user index (best effort: a read-only home is fine)."""
    try:
        index = _index()
        index.parent.mkdir(parents=True, exist_ok=True)
        with open(index, "a") as handle:
            handle.write(f"{pathlib.Path(path).resolve()}\n")
    except OSError:
        pass


def remembered_sweeps() -> list[pathlib.Path]:
    """The sweep directories in the per-user index that still exist, oldest first."""
    try:
        lines = _index().read_text().splitlines()
    except OSError:
        return []
    return [pathlib.Path(p) for p in dict.fromkeys(lines) if p and pathlib.Path(p).is_dir()]


def check_writable(root) -> None:
    """Raise `ValueError` naming `root` when results cannot be written under it (read-only,
    no permission, a file in the way, a path that cannot exist)."""
    root = pathlib.Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".hpc-write-test-"):
            pass
    except OSError as exc:
        raise ValueError(
            f"the results root {root} is not writable ({exc.strerror or exc}); set "
            f"results_root=<a directory you can write> or cluster.results_root."
        ) from exc

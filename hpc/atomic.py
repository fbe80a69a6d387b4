"""Write a file so that its final path only ever holds a complete version."""

import contextlib
import errno
import os
import pathlib
import shutil
import tempfile

FULL = (errno.ENOSPC, errno.EDQUOT)
NEARLY_FULL_BYTES = 64 * 1024  # less free than this, and a failed write counts as a full disk


def file_mode() -> int:
    """The mode a new file gets under this process's umask, as `open` would give it."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def free_bytes(folder) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def write_error(exc: OSError, path) -> OSError:
    """`exc` as an `OSError` that names the file being written, and says so when the disk (or
    quota) is full: `disk full writing <path>`. HDF5's errors carry no errno, so a failed write
    with almost no space left counts as full too."""
    free = free_bytes(pathlib.Path(path).parent)
    full = exc.errno in FULL or (free is not None and free < NEARLY_FULL_BYTES)
    what = "disk full writing" if full else "could not write"
    error = OSError(
        errno.ENOSPC if full else exc.errno,
        f"{what} {path} ({exc.strerror or exc}" + (f"; {free} bytes free" if free is not None else "") + ")",
    )
    error.filename = str(path)
    return error


def ensure_room(path, nbytes: int) -> None:
    """Raise `write_error` (disk full) before writing `nbytes` at `path` where they cannot fit."""
    free = free_bytes(pathlib.Path(path).parent)
    if free is not None and free < nbytes + NEARLY_FULL_BYTES:
        raise write_error(OSError(errno.ENOSPC, f"{nbytes} bytes to write"), path)


@contextlib.contextmanager
def no_new_empty_dirs(folder):
    """The directories `folder` and its parents that do not exist yet, removed again (deepest
    first, each only if empty) should the block raise: a run or sweep refused for a full disk
    leaves no empty folders behind."""
    folder = pathlib.Path(folder).absolute()
    new = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for path in new:
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp", fsync: bool = True):
    """Yield a temporary path beside `path` to write; on success it is flushed to disk and
    renamed onto `path` (atomic on one file system), on failure removed. A reader (or a
    process killed mid-write) never sees a half-written file at `path`.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text(), [p.name for p in target.parent.iterdir()]
    ('done', ['a.txt'])
    """
    path = pathlib.Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
        os.chmod(fd, file_mode())  # mkstemp's 0600 would hide results from the lab's group
        os.close(fd)
        yield pathlib.Path(tmp)
        if fsync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise write_error(exc, path) from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)

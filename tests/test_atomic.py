"""Files whose final path only ever holds a complete version, and a full disk that says so."""

import errno
import os

import pytest

from hpc.atomic import atomic_path, ensure_room, file_mode, write_error


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    target = tmp_path / "r.h5"
    target.write_text("old")
    with pytest.raises(OSError, match=f"could not write {target}"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise OSError(errno.EIO, "I/O error")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.h5"]


def test_the_file_gets_the_umask_mode_not_mkstemps(tmp_path):
    old = os.umask(0o027)
    try:
        assert file_mode() == 0o640
        with atomic_path(tmp_path / "a") as tmp:
            tmp.write_text("x")
        assert (tmp_path / "a").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_a_full_disk_is_named_with_the_file(tmp_path):
    error = write_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "r.h5")
    assert error.errno == errno.ENOSPC and str(error).startswith(f"[Errno {errno.ENOSPC}] disk full writing {tmp_path}")
    with pytest.raises(OSError, match="disk full writing"):
        ensure_room(tmp_path / "r.h5", 1 << 60)  # more than any disk holds
    ensure_room(tmp_path / "r.h5", 10)

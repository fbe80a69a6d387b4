"""The results layout, and finding sweeps wherever their root."""

import pathlib

import pytest

import hpc
import train
from hpc import layout
from hpc.sweep import Sweep, find_sweep


def test_results_root(monkeypatch, tmp_path):
    monkeypatch.delenv("SCRATCH", raising=False)
    assert layout.results_root() == pathlib.Path("scratch")
    monkeypatch.setenv("SCRATCH", str(tmp_path))
    assert train.APP.results_root() == tmp_path / "neuralode-hpc"  # named after the application
    assert layout.results_root(app="other") == tmp_path / "other"
    assert layout.results_root() == tmp_path / "hpc"  # the `hpc` command's own files (packed environments)
    assert layout.results_root("~/r") == pathlib.Path.home() / "r"
    assert hpc.results_root is layout.results_root


def test_result_and_sweep_paths():
    assert layout.result_path("/r", "exp", "abc") == pathlib.Path("/r/exp/abc.h5")
    assert layout.sweep_dir("/r", "exp", "s1") == pathlib.Path("/r/exp/sweeps/s1")


def test_sweeps_are_found_by_root_or_from_the_index(monkeypatch, tmp_path):
    monkeypatch.setenv("HPC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("SCRATCH", raising=False)
    a = Sweep.create(tmp_path / "root-a", "exp", "m:f")
    a.save()
    b = Sweep.create(tmp_path / "root-b", "other", "m:f")
    b.save()
    assert b.result_path("r1") == tmp_path / "root-b" / "other" / "r1.h5"
    # without a root: every sweep this user created, newest last, wherever its root
    assert find_sweep("latest") == b.path
    assert find_sweep(a.sweep_id) == a.path and find_sweep(a.sweep_id[:8], tmp_path / "root-a") == a.path
    assert find_sweep("latest", tmp_path / "root-a") == a.path
    with pytest.raises(FileNotFoundError, match="No sweep 'nope'"):
        find_sweep("nope")
    with pytest.raises(FileNotFoundError, match="recent sweeps: none"):
        find_sweep("latest", tmp_path / "empty")


def test_latest_is_the_newest_sweep_of_the_root_the_environment_names(monkeypatch, tmp_path):
    """With `SCRATCH` set, `latest` is the newest sweep under it: one another shell created a
    moment later in another root (in the same second, too) is not it; `--root` names a root."""
    monkeypatch.setenv("HPC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SCRATCH", str(tmp_path / "a"))
    mine = Sweep.create(tmp_path / "a" / "neuralode-hpc", "exp", "m:APP")
    mine.save()
    other = Sweep.create(tmp_path / "b", "exp", "m:APP")  # another shell, SCRATCH=.../b
    other.save()
    assert find_sweep("latest") == mine.path
    assert find_sweep("latest", tmp_path / "b") == other.path
    assert find_sweep(other.sweep_id) == other.path  # an id is found wherever it is
    monkeypatch.delenv("SCRATCH")
    assert find_sweep("latest") == other.path  # no root named: the newest this user created
    monkeypatch.setenv("SCRATCH", str(tmp_path / "c"))
    with pytest.raises(FileNotFoundError, match=r"under \$SCRATCH=.*/c \(use --root"):
        find_sweep("latest")


def test_an_unwritable_index_is_not_an_error(monkeypatch, tmp_path):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("HPC_STATE_DIR", str(tmp_path / "file" / "sub"))
    Sweep.create(tmp_path / "root", "exp", "m:f").save()
    assert layout.remembered_sweeps() == []

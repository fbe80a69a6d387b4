import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

import hpc
from hpc import store
from hpc.store import write_result

CONFIG = {"width": 8, "model": {"depth": 2}, "tags": ["a", "b"], "none": None}


def _write(path, status="completed", **kw):
    return write_result(
        path,
        status=status,
        config=CONFIG,
        config_yaml="width: 8\n",
        run_id="abc",
        metadata={"host": "h", "versions": {"jax": "0"}},
        **kw,
    )


def test_round_trip(tmp_path):
    path = _write(
        tmp_path / "r.h5",
        tree={"metrics": {"set": {"mean": 1.5, "per_point": np.arange(3.0)}}, "history": {"loss": np.ones(4)}},
    )
    summary = hpc.read_summary(path)
    assert summary["status"] == "completed" and summary["run_id"] == "abc"
    assert summary["config.model.depth"] == 2 and summary["config.tags"] == "['a', 'b']"
    assert summary["metrics.set.mean"] == 1.5 and summary["meta.versions.jax"] == "0"
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["metrics/set/per_point"][()], np.arange(3.0))
        walked = store._summary(f)  # what the stored summary stands for
    assert summary == walked
    with h5py.File(path, "a") as f:  # a file written before summaries were stored
        del f.attrs[store.SUMMARY]
    assert hpc.read_summary(path) == walked


def test_failure_while_writing_keeps_the_old_file(tmp_path):
    path = _write(tmp_path / "r.h5")

    def boom(f):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        _write(path, status="failed", extra=boom)
    assert hpc.read_summary(path)["status"] == "completed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]


def test_killed_mid_write_leaves_no_file_at_the_final_path(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        sys.path.insert(0, {os.getcwd()!r})
        from hpc.store import write_result
        def hang(f):
            f.create_dataset("big", data=list(range(1000)))
            print("writing", flush=True)
            time.sleep(60)
        write_result({str(tmp_path / 'r.h5')!r}, status="completed", config={{}}, config_yaml="",
                     run_id="x", metadata={{}}, extra=hang)
    """)
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
    assert not (tmp_path / "r.h5").exists()


def test_bad_status_is_rejected_and_an_app_adds_its_own_failures(tmp_path):
    with pytest.raises(ValueError, match="`status` must be one of completed, failed, timeout, got 'done'"):
        _write(tmp_path / "r.h5", status="done")
    with pytest.raises(ValueError, match="`status` must be one of completed, failed, timeout, got 'stalled'"):
        _write(tmp_path / "r.h5", status="stalled")  # a science word: hpc does not know it
    _write(tmp_path / "r.h5", status="stalled", failures=("stalled",))  # the app declares it
    assert store.read_status(tmp_path / "r.h5")["status"] == "stalled"

"""`hpc.execute`: one result file per run, skip when done, `failed` with the traceback."""

import h5py
import pytest

import hpc
from hpc.run import Outcome, execute


def _execute(path, work, **kw):
    return execute(path, work, run_id="r1", config={"seed": 1}, config_yaml="seed: 1\n",
                   packages=("h5py", "not-a-package"), **kw)


def test_a_completed_run_is_written_then_skipped(tmp_path):
    path = tmp_path / "exp" / "r1.h5"
    calls = []

    def work():
        calls.append(1)
        return Outcome("completed", {"history": {"steps": 3}}, metadata={"steps_per_s": 2.0},
                       extra=lambda f: f.create_group("model"), summary={"final_loss": 0.5})

    out = _execute(path, work)
    assert out == {"status": "completed", "run_id": "r1", "path": str(path), "final_loss": 0.5}
    with h5py.File(path) as f:
        assert f.attrs["status"] == "completed" and f["history"].attrs["steps"] == 3 and "model" in f
        meta = f["metadata"]
        assert meta.attrs["steps_per_s"] == 2.0 and meta.attrs["wall_time_s"] >= 0
        assert meta["versions"].attrs["not-a-package"] == "absent" and meta["versions"].attrs["h5py"]
    assert _execute(path, work)["status"] == "skipped" and calls == [1]
    assert _execute(path, work, force=True)["status"] == "completed" and calls == [1, 1]


def test_a_raising_run_leaves_a_failed_result(tmp_path):
    path = tmp_path / "r1.h5"

    def work():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _execute(path, work)
    summary = hpc.read_summary(path)
    assert summary["status"] == "failed" and summary["message"] == "RuntimeError: boom"
    with h5py.File(path) as f:
        assert "Traceback" in f["error"].attrs["traceback"] and f["config"].attrs["seed"] == 1
    assert _execute(path, lambda: Outcome("completed", {}))["status"] == "completed"  # not skipped

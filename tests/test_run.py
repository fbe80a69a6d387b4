"""`hpc.execute`: one result file per run, skip when done, `failed` with the traceback."""

import h5py
import numpy as np
import pytest

import hpc
from hpc.run import Outcome, execute


def _execute(path, work, **kw):
    return execute(path, work, run_id="r1", config={"seed": 1}, config_yaml="seed: 1\n",
                   packages=("h5py", "not-a-package"), **kw)


def test_a_completed_run_is_written_then_skipped(tmp_path):
    path = tmp_path / "exp" / "r1.h5"
    calls = []

    def work(checkpoint):
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

    def work(checkpoint):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _execute(path, work)
    summary = hpc.read_summary(path)
    assert summary["status"] == "failed" and summary["message"] == "RuntimeError: boom"
    with h5py.File(path) as f:
        assert "Traceback" in f["error"].attrs["traceback"] and f["config"].attrs["seed"] == 1
    assert _execute(path, lambda c: Outcome("completed", {}))["status"] == "completed"  # not skipped


def test_checkpoints_are_kept_until_a_final_result_and_stale_temporaries_go(tmp_path):
    path = tmp_path / "r1.h5"
    (tmp_path / ".r1.h5.abc123.tmp").write_bytes(b"half")  # a writer killed mid-write

    def interrupted(checkpoint):
        checkpoint.save({"losses": np.zeros(7)})
        checkpoint.stop = "timeout"  # as SIGUSR2 sets it
        return Outcome("interrupted", {"history": {"loss": np.zeros(7)}})

    out = _execute(path, interrupted)  # outside Slurm there is no requeue: a timeout result
    assert out["status"] == "timeout" and not list(tmp_path.glob(".*.tmp"))
    summary = hpc.read_summary(path)
    assert summary["status"] == "timeout" and "at step 7" in summary["message"] and "resubmit" in summary["message"]
    assert (tmp_path / "r1.ckpt").exists()

    def terminated(checkpoint):
        checkpoint.save({"losses": np.zeros(9)})
        checkpoint.stop = "terminated"
        return Outcome("interrupted", {})

    assert _execute(path, terminated)["status"] == "interrupted"
    assert hpc.read_summary(path)["status"] == "timeout"  # SIGTERM writes nothing

    def resumed(checkpoint):
        assert checkpoint.load()["losses"].shape == (9,)
        return Outcome("completed", {})

    assert _execute(path, resumed)["status"] == "completed" and not (tmp_path / "r1.ckpt").exists()


def test_a_full_disk_ends_in_a_clear_failed_status(tmpfs):
    path = tmpfs("size=1m") / "exp" / "r1.h5"
    big = np.random.default_rng(0).random(400_000)  # 3.2 MB that do not compress
    with pytest.raises(OSError, match="No space left"):
        _execute(path, lambda c: Outcome("completed", {"history": {"loss": big}}))
    summary = hpc.read_summary(path)  # the small failed result fits
    assert summary["status"] == "failed" and "No space left on device" in summary["message"]
    assert [p.name for p in path.parent.iterdir()] == ["r1.h5"]  # no temporaries, no claim, no checkpoint

"""`hpc.execute`: one result file per run, skip when done, `failed` with the traceback."""

import h5py
import numpy as np
import pytest

import hpc
from hpc.claim import claim_path
from hpc.run import Outcome, execute


def _execute(path, work, **kw):
    return execute(
        path, work, run_id="r1", config={"seed": 1}, config_yaml="seed: 1\n", packages=("h5py", "not-a-package"), **kw
    )


def test_a_completed_run_is_written_then_skipped(tmp_path):
    path = tmp_path / "exp" / "r1.h5"
    calls = []

    def work(checkpoint):
        calls.append(1)
        return Outcome(
            "completed",
            {"history": {"steps": 3}},
            metadata={"steps_per_s": 2.0},
            extra=lambda f: f.create_group("model"),
            summary={"final_loss": 0.5},
        )

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
        checkpoint.save({"losses": np.zeros(7)}, step=7)
        checkpoint.stop = "timeout"  # as SIGUSR2 sets it
        return Outcome("interrupted", {"history": {"loss": np.zeros(7)}})

    out = _execute(path, interrupted)  # outside Slurm there is no requeue: a timeout result
    assert out["status"] == "timeout" and not list(tmp_path.glob(".*.tmp"))
    summary = hpc.read_summary(path)
    assert summary["status"] == "timeout" and "at step 7" in summary["message"] and "resubmit" in summary["message"]
    assert (tmp_path / "r1.ckpt").exists()

    def terminated(checkpoint):
        checkpoint.save({"losses": np.zeros(9)}, step=9)
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
    with pytest.raises(OSError, match=f"disk full writing {path}"):
        _execute(path, lambda c: Outcome("completed", {"history": {"loss": big}}))
    summary = hpc.read_summary(path)  # the small failed result fits
    assert summary["status"] == "failed" and f"disk full writing {path}" in summary["message"]
    assert [p.name for p in path.parent.iterdir()] == ["r1.h5"]  # no temporaries, no claim, no checkpoint


def test_a_result_that_does_not_fit_keeps_the_trained_state_and_the_rerun_resumes_it(tmpfs):
    path = tmpfs("size=1m") / "exp" / "r1.h5"
    big = np.random.default_rng(0).random(400_000)  # 3.2 MB that do not compress

    def trained(checkpoint):  # trained 5,000 steps; its final state (40 kB) is offered
        checkpoint.offer(lambda: {"losses": np.zeros(5000)}, 5000)
        return Outcome("completed", {"history": {"loss": big}})

    with pytest.raises(OSError, match=f"disk full writing {path}"):
        _execute(path, trained)
    summary = hpc.read_summary(path)
    assert summary["status"] == "failed" and "checkpoint at step 5000 kept: a resubmit resumes it" in summary["message"]

    def resumed(checkpoint):  # after space was freed: nothing trained again
        assert checkpoint.load()["losses"].shape == (5000,) and checkpoint.saved_step == 5000
        return Outcome("completed", {})

    assert _execute(path, resumed)["status"] == "completed" and not path.with_suffix(".ckpt").exists()


def test_a_disk_that_fills_during_the_run_still_says_why(tmpfs):
    root = tmpfs("size=1m")
    path = root / "exp" / "r1.h5"

    def work(checkpoint):
        with open(root / "filler", "wb") as filler:  # another job fills the file system
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError:
                pass
        checkpoint.save({"losses": np.zeros(50_000)}, step=50_000)  # now nothing fits: not the checkpoint, not a result
        return Outcome("completed", {})

    with pytest.raises(OSError, match=f"disk full writing {path.with_suffix('.ckpt')}"):
        _execute(path, work)
    assert not path.exists()
    note = hpc.store.read_note(path)  # written into the space reserved when the run started
    assert note["status"] == "failed" and f"disk full writing {path.with_suffix('.ckpt')}" in note["message"]
    assert "nor could its result be written" in note["message"]


def test_results_and_notes_honour_the_umask(tmp_path):
    import os
    import stat

    def mode(p):
        return stat.S_IMODE(p.stat().st_mode)

    path = tmp_path / "exp" / "r1.h5"
    seen = {}

    def work(checkpoint):
        checkpoint.save({"losses": np.zeros(3)}, step=3)
        seen.update(
            checkpoint=mode(checkpoint.path),
            claim=mode(path.with_suffix(".claim")),
            note=mode(hpc.store.note_path(path)),
        )
        return Outcome("completed", {})

    old = os.umask(0o027)  # a lab's shared scratch: the group reads, others do not
    try:
        _execute(path, work)
        import neuralode

        data = neuralode.dataset_path(tmp_path, "simple", True, 2, 0, "train")
        neuralode.load_or_generate(tmp_path, "simple", True, 2, 0, "train")
        from hpc.sweep import Sweep

        sweep = Sweep.create(tmp_path, "exp", "train:train")
        sweep.add_run("r1", [], "seed: 1\n")
        sweep.save()
    finally:
        os.umask(old)
    assert seen == {"checkpoint": 0o640, "claim": 0o640, "note": 0o640}
    assert mode(path) == mode(data) == mode(sweep.path / "sweep.json") == 0o640
    assert mode(sweep.path / "configs.jsonl") == 0o640


def _many(tmp_path, ids):
    return [{"path": tmp_path / f"{r}.h5", "run_id": r, "config": {"r": r}, "config_yaml": f"r: {r}\n"} for r in ids]


def test_runs_executed_together_each_get_their_own_claim_checkpoint_and_result(tmp_path):
    runs = _many(tmp_path, ["a", "b", "c", "d"])
    _execute(runs[1]["path"], lambda c: Outcome("completed", {}))  # b is done already: skipped
    seen = []

    def work(joined):
        seen.append([(i, c.path.name) for i, c in joined])
        assert all(claim_path(runs[i]["path"]).exists() for i, _ in joined)  # every claim is held meanwhile
        return {
            0: Outcome("completed", {}, summary={"x": 0}),
            2: ValueError("member c broke"),
            3: Outcome("non_finite", {}, "bad"),
        }

    out = hpc.execute_many(runs, work, failures=("non_finite",))
    assert seen == [[(0, "a.ckpt"), (2, "c.ckpt"), (3, "d.ckpt")]]  # the skipped run is not handed over
    assert [o["status"] for o in out] == ["completed", "skipped", "failed", "non_finite"]
    assert out[0]["x"] == 0 and isinstance(out[2]["error"], ValueError)
    with h5py.File(runs[2]["path"]) as f:  # c's failure is its own, with its traceback
        assert f.attrs["status"] == "failed" and "member c broke" in f.attrs["message"]
    for r, status in ((runs[0], "completed"), (runs[3], "non_finite")):
        with h5py.File(r["path"]) as f:
            assert f.attrs["status"] == status
        assert not claim_path(r["path"]).exists()  # released after the result


def test_when_the_shared_work_fails_every_run_it_had_fails(tmp_path):
    runs = _many(tmp_path, ["a", "b"])

    def work(joined):
        raise RuntimeError("the program did not compile")

    out = hpc.execute_many(runs, work)
    assert [o["status"] for o in out] == ["failed", "failed"]
    for r in runs:
        with h5py.File(r["path"]) as f:
            assert "the program did not compile" in f.attrs["message"]


def test_runs_stopped_together_outside_slurm_each_record_their_timeout(tmp_path):
    runs = _many(tmp_path, ["a", "b"])

    def work(joined):
        for i, checkpoint in joined:  # the time-limit signal: every member saves, then stops
            checkpoint.stop = "timeout"
            checkpoint.save({"w": np.arange(3)}, step=7)
        return {i: Outcome("interrupted", {"history": {"steps": 7}}) for i, _ in joined}

    out = hpc.execute_many(runs, work)
    assert [o["status"] for o in out] == ["timeout", "timeout"]
    for r in runs:
        with h5py.File(r["path"]) as f:
            assert "time limit reached at step 7" in f.attrs["message"]
        assert r["path"].with_suffix(".ckpt").exists()  # kept: a resubmit resumes it

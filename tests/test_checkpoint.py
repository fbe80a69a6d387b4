"""Checkpoints: real HDF5 files, real signals, and a resumed run that equals an uninterrupted one."""

import itertools
import os
import signal
import types

import jax
import numpy as np
import pytest

import neuralode
from conftest import tiny_spec
from hpc.checkpoint import Checkpoint, checkpoint_path
from neuralode import NeuralODE, Phase

pytestmark = pytest.mark.slow  # trains and resumes

SPEC = tiny_spec()
# two phases (the optimizer restarts at the second), a learning-rate schedule, a ramp
PHASES = [
    Phase(steps=5, lr=1e-2, segment_length=8, length=(0.5, 1.0), lr_end=1e-3),
    Phase(steps=4, lr=1e-3, segment_length=6),
]


def _train(orbits, phases=PHASES, **kw):
    t, y = orbits
    init, key = jax.random.split(jax.random.PRNGKey(0))
    return neuralode.train(
        NeuralODE(SPEC, key=init), t, y, phases, loss="percent_error", batch_size=8, key=key, chunk_size=4, **kw
    )


class _SignalAt:
    """Sends this process a real signal after step `at`, as Slurm would."""

    def __init__(self, at, signum):
        self.at, self.signum = at, signum

    def __call__(self, step, phase, loss, model):
        if step == self.at:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("stop_at", [3, 5, 7])  # within the first phase, at its end, within the second
def test_a_resumed_run_equals_an_uninterrupted_one(orbits, tmp_path, stop_at):
    whole = _train(orbits)
    ckpt = Checkpoint(checkpoint_path(tmp_path / "run.h5"), every_s=None, every_steps=None)
    with ckpt.signals():
        first = _train(orbits, checkpoint=ckpt, callback=_SignalAt(stop_at, signal.SIGUSR2))
    assert first.status == "interrupted" and len(first.losses) == stop_at and ckpt.stop == "timeout"
    assert ckpt.path == tmp_path / "run.ckpt" and ckpt.saved_step == stop_at
    assert not list(tmp_path.glob(".*tmp"))  # the write was atomic

    again = Checkpoint(ckpt.path, every_s=None, every_steps=2)
    resumed = _train(orbits, checkpoint=again, resume=again.load())
    assert resumed.status == "completed"
    np.testing.assert_array_equal(resumed.losses, whole.losses)  # step for step, bit for bit
    np.testing.assert_array_equal(resumed.phases, whole.phases)
    for name in neuralode.HEALTH:
        np.testing.assert_array_equal(resumed.health[name], whole.health[name])
    leaves = [jax.tree_util.tree_leaves(r.model) for r in (resumed, whole)]
    assert all(np.array_equal(a, b) for a, b in zip(*leaves))


def test_a_completed_runs_final_state_is_offered_and_resumes_at_its_end(orbits, tmp_path):
    # written only should the result not fit (`hpc.execute`): the rerun then trains no step again
    ckpt = Checkpoint(tmp_path / "r.ckpt", every_s=None)
    done = _train(orbits, checkpoint=ckpt)
    assert done.status == "completed" and not ckpt.path.exists()  # offered, not written
    assert ckpt.save_offered() and ckpt.saved_step == sum(p.steps for p in PHASES)
    again = _train(orbits, resume=Checkpoint(ckpt.path).load())
    assert again.status == "completed"
    np.testing.assert_array_equal(again.losses, done.losses)
    leaves = [jax.tree_util.tree_leaves(r.model) for r in (again, done)]
    assert all(np.array_equal(a, b) for a, b in zip(*leaves))


def test_a_resumed_runs_speed_is_its_own_within_20_percent_of_the_uninterrupted_runs(orbits, tmp_path, monkeypatch):
    # a clock that ticks once per reading, so the rates are exact and the test times nothing:
    # resumed after 80 of 100 steps, the run reports the rate of its own 20 steps (19/20 a
    # tick), where counting all 100 over the time of 20 gave 99/20, 5x the uninterrupted run's
    ticks = itertools.count()
    monkeypatch.setattr(neuralode._train, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    phases = [Phase(steps=100, lr=1e-2, segment_length=8)]
    whole = _train(orbits, phases=phases)
    ckpt = Checkpoint(checkpoint_path(tmp_path / "run.h5"), every_s=None, every_steps=None)
    with ckpt.signals():
        _train(orbits, phases=phases, checkpoint=ckpt, callback=_SignalAt(80, signal.SIGUSR2))
    resumed = _train(orbits, phases=phases, resume=ckpt.load())
    assert len(resumed.losses) == 100 and ckpt.saved_step == 80
    assert abs(resumed.steps_per_s / whole.steps_per_s - 1) < 0.2, (resumed.steps_per_s, whole.steps_per_s)


def test_sigterm_stops_after_a_checkpoint_and_handlers_come_back(orbits, tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    ckpt = Checkpoint(tmp_path / "r.ckpt", every_s=None)
    with ckpt.signals():
        out = _train(orbits, checkpoint=ckpt, callback=_SignalAt(2, signal.SIGTERM))
    assert out.status == "interrupted" and ckpt.stop == "terminated" and ckpt.load()["losses"].shape == (2,)
    assert "interrupted after step 2" in out.message
    assert signal.getsignal(signal.SIGTERM) is before


def test_periodic_checkpoints_and_a_corrupt_one(tmp_path):
    ckpt = Checkpoint(tmp_path / "r.ckpt", every_s=None, every_steps=3)
    assert [ckpt.due(s) for s in (1, 2, 3)] == [False, False, True]
    ckpt.save({"losses": np.zeros(3), "state/00000": np.arange(4)}, step=3)
    assert not ckpt.due(4) and ckpt.due(6)
    assert Checkpoint(tmp_path / "r.ckpt").load()["state/00000"].tolist() == [0, 1, 2, 3]
    (tmp_path / "r.ckpt").write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    assert Checkpoint(tmp_path / "r.ckpt").load() is None  # reported, moved aside, start over
    assert (tmp_path / "r.ckpt.corrupt").exists() and not (tmp_path / "r.ckpt").exists()
    with pytest.raises(ValueError, match="`every_steps` must be > 0 or null"):
        Checkpoint(tmp_path / "x", every_steps=0)

"""Ensembles (`cluster.ensemble`): several runs that share every shape, trained in one program.

One loop trains both: a single run is an ensemble of one, bitwise. Each member of a larger
ensemble must train as it would alone, but not bitwise: its step is vmapped over the members,
so each layer is one batched matrix product `[members, lanes, width]`, which may round
otherwise than the plain product of a run alone (seen: up to 1e-6 relative in float32, 3e-10 in
float64), and the adaptive step-size controller can turn a last-bit difference into another
accepted or rejected step in a segment, which then differs by about the solver's tolerance.
Hence the tolerance below: 1e-3 relative on every loss over a few steps, where the members
differ from each other by far more (a mix-up of members would fail it).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hpc
import neuralode
from conftest import tiny_spec
from neuralode import ModelSpec, NeuralODE, Phase

pytestmark = pytest.mark.slow  # trains ensembles

SPEC = tiny_spec()
OPTIONS = {"loss": "percent_error", "batch_size": 8, "chunk_size": 4}
RTOL = 1e-3  # see the module docstring


def _phases(lr):
    return [
        Phase(steps=2, lr=lr, segment_length=8, length=(0.5, 1.0)),
        Phase(steps=2, lr=lr / 2, segment_length=8, length=(1.0, 1.0)),
    ]


def _member(seed):
    init, key = jax.random.split(jax.random.PRNGKey(seed))
    return NeuralODE(SPEC, key=init), key


LRS = {0: 1e-3, 1: 3e-3, 2: 1e-2, 3: 1e-3}  # four seeds, three learning rates


@pytest.fixture(scope="module")
def alone(orbits):
    return {
        seed: neuralode.train(*_member(seed)[:1], *orbits, _phases(lr), key=_member(seed)[1], **OPTIONS)
        for seed, lr in LRS.items()
    }


def _ensemble(orbits, seeds, models=None, **kw):
    members = [_member(s) for s in seeds]
    return neuralode.train_ensemble(
        models or [m for m, _ in members],
        [orbits] * len(seeds),
        [_phases(LRS[s]) for s in seeds],
        keys=[k for _, k in members],
        **OPTIONS,
        **kw,
    )


def test_each_member_trains_as_it_would_alone(orbits, alone):
    together = _ensemble(orbits, list(LRS))
    for seed, result in zip(LRS, together):
        assert result.status == "completed" and result.losses.shape == (4,)
        np.testing.assert_allclose(result.losses, alone[seed].losses, rtol=RTOL)
        np.testing.assert_allclose(result.health["grad_norm"], alone[seed].health["grad_norm"], rtol=10 * RTOL)
        assert list(result.phases) == [0, 0, 1, 1]
    spread = np.abs(alone[0].losses - alone[1].losses) / np.abs(alone[0].losses)
    assert spread.max() > 100 * RTOL  # the members are told apart far beyond the tolerance
    weights = lambda r: r.model.field.mlp.layers[0].weight  # noqa: E731
    np.testing.assert_allclose(weights(together[2]), weights(alone[2]), rtol=RTOL, atol=1e-6)


def test_a_run_alone_is_an_ensemble_of_one(orbits, alone):
    (one,) = _ensemble(orbits, [1])
    np.testing.assert_array_equal(one.losses, alone[1].losses)
    for name in neuralode.HEALTH:
        np.testing.assert_array_equal(one.health[name], alone[1].health[name])
    for a, b in zip(
        jax.tree_util.tree_leaves(eqx.filter(one.model, eqx.is_array)),
        jax.tree_util.tree_leaves(eqx.filter(alone[1].model, eqx.is_array)),
    ):
        np.testing.assert_array_equal(a, b)


def test_a_member_that_fails_is_reported_alone(orbits, alone):
    models = [_member(s)[0] for s in (0, 1, 2)]
    bias = models[1].field.mlp.layers[-1].bias  # every solve of member 1 fails: no loss at its first step
    models[1] = eqx.tree_at(lambda m: m.field.mlp.layers[-1].bias, models[1], jnp.full_like(bias, jnp.nan))
    together = _ensemble(orbits, [0, 1, 2], models=models)
    assert together[1].status == "non_finite" and together[1].bad_step == 0 and together[1].losses.shape == (0,)
    for i in (0, 2):
        assert together[i].status == "completed"
        np.testing.assert_allclose(together[i].losses, alone[(0, 1, 2)[i]].losses, rtol=RTOL)


def test_an_ensemble_checkpoints_every_member_and_resumes_them_together(orbits, tmp_path):
    whole = _ensemble(orbits, [0, 2])
    checkpoints = [hpc.Checkpoint(tmp_path / f"{s}.ckpt", every_s=None, every_steps=1) for s in (0, 2)]

    class StopAt3:  # the time-limit signal arrives at member 2's checkpoint after step 3
        def __init__(self, checkpoint):
            self.checkpoint = checkpoint

        def __call__(self, step, phase, loss, model):
            if step == 3:
                self.checkpoint.stop = "timeout"

    stopped = _ensemble(orbits, [0, 2], checkpoints=checkpoints, callbacks=[None, StopAt3(checkpoints[1])])
    assert [r.status for r in stopped] == ["interrupted", "interrupted"]
    assert [c.saved_step for c in checkpoints] == [3, 3]
    resumed = _ensemble(orbits, [0, 2], resumes=[c.load() for c in checkpoints])
    for a, b in zip(resumed, whole):
        np.testing.assert_array_equal(a.losses, b.losses)  # the same program, resumed: bitwise
    with pytest.raises(ValueError, match="resume together"):
        _ensemble(orbits, [0, 2], resumes=[checkpoints[0].load(), None])


def test_members_that_do_not_share_their_shapes_are_refused(orbits):
    (m0, k0), (m1, k1) = _member(0), _member(1)
    wider = NeuralODE(ModelSpec(width=16, depth=1, dtype="float32"), key=jax.random.PRNGKey(1))
    with pytest.raises(ValueError, match="one model spec"):
        neuralode.train_ensemble([m0, wider], [orbits] * 2, [_phases(1e-3)] * 2, keys=[k0, k1], **OPTIONS)
    longer = [Phase(steps=3, lr=1e-3, segment_length=8)]
    with pytest.raises(ValueError, match="curriculum"):
        neuralode.train_ensemble([m0, m1], [orbits] * 2, [_phases(1e-3), longer], keys=[k0, k1], **OPTIONS)

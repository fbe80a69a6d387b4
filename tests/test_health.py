"""Training health: gradient clipping, the stall rule, health history, the planar constraint."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import neuralode
from conftest import tiny_spec
from neuralode import ModelSpec, NeuralODE, Phase, StallRule, StallWatch

PARAMS = {"w": jnp.zeros((40, 40)), "b": jnp.zeros(40)}
N_PARAMS = 40 * 40 + 40


def _grads(key, scale=1.0):
    a, b = jax.random.split(key)
    return {"w": scale * jax.random.normal(a, (40, 40)), "b": scale * jax.random.normal(b, (40,))}


def _run(clip, lr=1e-3, steps=200, spike_at=5, spike=1e26):
    """Adam (behind `clip`) on noisy gradients with one huge finite one injected at `spike_at`;
    returns each step's update norm and where `StallWatch` saw the updates collapse."""
    optim = neuralode.optimizer(clip)
    state = optim.init(PARAMS)
    state.hyperparams["learning_rate"] = jnp.asarray(lr)
    watch = StallWatch(StallRule(), N_PARAMS)
    norms, stalled_at = [], None
    for step, key in enumerate(jax.random.split(jax.random.PRNGKey(0), steps)):
        updates, state = optim.update(_grads(key, spike if step == spike_at else 1.0), state, PARAMS)
        norms.append(float(optax.tree.norm(updates)))
        moment = float(jnp.max(optax.tree.get(state, "nu")["w"]))
        if stalled_at is None and watch.stalled(norms[-1], moment, lr):
            stalled_at = step - watch.small + 1
    return np.asarray(norms), stalled_at


def test_clipping_bounds_the_gradient_adam_sees():
    optim = neuralode.optimizer(0.5)
    state = optim.init(PARAMS)
    grads = _grads(jax.random.PRNGKey(1), 1e6)
    _, state = optim.update(grads, state, PARAMS)
    # Adam's first moment after one step is (1 - b1) * the gradient it was given.
    seen = jax.tree_util.tree_map(lambda m: m / 0.1, optax.tree.get(state, "mu"))
    assert float(optax.tree.norm(seen)) == pytest.approx(0.5, rel=1e-5)
    direction = grads["w"] / optax.tree.norm(grads)
    np.testing.assert_allclose(seen["w"], 0.5 * direction, rtol=1e-5)

    unclipped = neuralode.optimizer(None)
    state = unclipped.init(PARAMS)
    _, state = unclipped.update(grads, state, PARAMS)
    assert float(optax.tree.norm(optax.tree.get(state, "mu"))) == pytest.approx(
        0.1 * float(optax.tree.norm(grads)), rel=1e-5
    )
    with pytest.raises(ValueError, match="`clip` must be > 0 or null"):
        neuralode.optimizer(0.0)


@pytest.mark.parametrize("spike", [1e15, 1e26])  # second moment finite / overflowing in float32
def test_one_huge_gradient_neither_freezes_training_nor_goes_unreported(spike):
    norms, stalled_at = _run(clip=1.0, spike=spike)
    rms = norms / np.sqrt(N_PARAMS)
    assert stalled_at is None and rms[50:].min() > 0.05 * 1e-3  # Adam keeps moving ~lr per weight

    # Without clipping the spike fills Adam's second moment and every later update is ~0:
    # the loss would stay finite, so only the stall rule reports it, near the spike.
    norms, stalled_at = _run(clip=None, spike=spike)
    assert norms[150:].max() / np.sqrt(N_PARAMS) < 1e-4 * 1e-3
    assert stalled_at is not None and 5 <= stalled_at < 5 + 100


def test_stall_watch_counts_consecutive_small_updates():
    watch = StallWatch(StallRule(ratio=1e-3, steps=3), n_params=100)
    small, big = 1e-3 * 1e-3 * 10 * 0.5, 1.0  # an RMS of half the limit, and a healthy one
    assert [watch.stalled(u, 1.0, 1e-3) for u in (small, small, big, small, small)] == [False] * 5
    assert watch.stalled(small, 1.0, 1e-3) and watch.small == 3
    assert StallWatch(StallRule(), 100).stalled(1.0, float("inf"), 1e-3)  # overflowing moments


@pytest.mark.slow  # trains
def test_training_records_health_and_stops_stalled(orbits):
    t, y = orbits
    spec = tiny_spec()
    init, key = jax.random.split(jax.random.PRNGKey(0))
    phases = [Phase(steps=3, lr=1e-3, segment_length=8, length=(0.5, 1.0))]
    res = neuralode.train(
        NeuralODE(spec, key=init), t, y, phases, loss="percent_error", batch_size=8, key=key, chunk_size=4
    )
    assert res.status == "completed" and res.message == ""
    assert set(res.health) == set(neuralode.HEALTH)
    for name in neuralode.HEALTH:
        assert res.health[name].shape == (3,) and np.all(np.isfinite(res.health[name])), name
    assert np.all(res.health["grad_norm"] > 0) and np.all(res.health["update_norm"] > 0)
    assert np.all(res.health["solver_steps"] >= 1) and res.failed_segments.tolist() == [0, 0, 0]

    # A rule no update can meet (RMS at least 10 x lr) stops the run after `steps` steps.
    res = neuralode.train(
        NeuralODE(spec, key=init),
        t,
        y,
        phases,
        loss="percent_error",
        batch_size=8,
        key=key,
        chunk_size=4,
        stall=StallRule(ratio=10.0, steps=2),
    )
    assert res.status == "stalled" and res.bad_step == 0 and res.losses.shape == (2,)
    assert "stalled at step 0" in res.message


def _planar_orbit():
    data = neuralode.generate_orbits(1, 3, neuralode.family_ranges("complex", True))
    return neuralode.CanonicalUnits().to_canonical(data[0], data[1])


def test_planar_constraint_keeps_the_orbit_in_its_plane():
    t, y = _planar_orbit()
    assert np.all(y[..., 2] == 0) and np.all(y[..., 5] == 0)
    ts, y0 = jnp.asarray(t[0, :90]), jnp.asarray(y[0, 0])
    for constrained in (True, False):
        spec = ModelSpec(
            width=16,
            depth=2,
            feature_layer="cartesian",
            output_head="signed",
            planar_constraint=constrained,
            max_steps=4096,
            dtype="float32",
        )
        ys, _ = NeuralODE(spec, key=jax.random.PRNGKey(1)).solve(ts, y0)
        assert np.all(np.isfinite(ys))
        out_of_plane = np.abs(np.asarray(ys)[:, [2, 5]]).max()
        assert (out_of_plane == 0) if constrained else (out_of_plane > 1e-6)
    with pytest.raises(ValueError, match="`planar_constraint` must be true or false"):
        ModelSpec(planar_constraint="yes")

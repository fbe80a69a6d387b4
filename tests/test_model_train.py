"""The model, the training loop and the result file round trip, on a tiny configuration."""

import equinox as eqx
import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuralode
from conftest import tiny_spec
from neuralode import ModelSpec, NeuralODE, Phase
from neuralode._train import _sample

pytestmark = pytest.mark.slow  # trains models

SPEC = tiny_spec()
PHASES = [Phase(steps=3, lr=1e-3, segment_length=8, length=(0.5, 1.0))]


def _train(orbits, seed=0, phases=PHASES, **kw):
    t, y = orbits
    init, key = jax.random.split(jax.random.PRNGKey(seed))
    return neuralode.train(
        NeuralODE(SPEC, key=init), t, y, phases, loss="percent_error", batch_size=8, key=key, chunk_size=4, **kw
    )


def _linear_model(sign):
    """A depth-0 MLP is one linear layer: make the acceleration `sign * r` exactly."""
    spec = ModelSpec(width=4, depth=0, output_head="simple", feature_layer="cartesian", max_steps=4096, dtype="float32")
    model = NeuralODE(spec, key=jax.random.PRNGKey(0))
    weight = jnp.zeros((3, 6)).at[:, :3].set(sign * jnp.eye(3))
    layer = model.field.mlp.layers[0]
    return eqx.tree_at(
        lambda m: (m.field.mlp.layers[0].weight, m.field.mlp.layers[0].bias),
        model,
        (weight.astype(layer.weight.dtype), jnp.zeros(3, layer.bias.dtype)),
    )


def test_solve_matches_a_known_solution():
    ts = jnp.linspace(0, 1, 5)
    ys, stats = _linear_model(-1).solve(ts, jnp.array([1.0, 0, 0, 0, 1.0, 0]))  # harmonic oscillator
    np.testing.assert_allclose(ys[:, 0], np.cos(ts), atol=1e-5)
    np.testing.assert_allclose(ys[:, 1], np.sin(ts), atol=1e-5)
    assert int(stats["num_steps"]) > 0


def test_evaluate_signs_and_slope(orbits):
    t, y = orbits
    inward, outward = (neuralode.evaluate(_linear_model(s), t[:1, :30], y[:1, :30], length_km=2.0) for s in (-1, 1))
    assert inward["radial_sign_error_pct"] == 0 and outward["radial_sign_error_pct"] == 100
    # |a| = r: log|a| against log r has slope 1 (the truth's is -2)
    assert inward["loglog_slope"] == pytest.approx(1.0, abs=1e-3)
    assert inward["angle_deg_max"] < 1e-3 and outward["angle_deg_mean"] == pytest.approx(180, abs=1e-3)
    assert inward["accel_pct_error"].shape == (1, 30) and inward["final_position_error_km"].shape == (1,)


def test_a_batch_solves_each_segment_at_most_once():
    key = jax.random.PRNGKey(0)
    drawn = np.asarray(_sample(key, 10, 4))
    assert len(drawn) == 4 and len(set(drawn.tolist())) == 4 and drawn.max() < 10
    assert not np.array_equal(drawn, np.asarray(_sample(jax.random.PRNGKey(1), 10, 4)))  # drawn, not fixed
    # more batch than segments: the full batch, every segment exactly once
    np.testing.assert_array_equal(np.sort(np.asarray(_sample(key, 10, 16))), np.arange(10))
    np.testing.assert_array_equal(np.sort(np.asarray(_sample(key, 10, 10))), np.arange(10))


def test_training_is_reproducible_and_seed_matters(orbits):
    a, b, c = _train(orbits, 0), _train(orbits, 0), _train(orbits, 1)
    assert a.status == "completed" and a.losses.shape == (3,)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert not np.allclose(a.losses, c.losses)


def test_other_adjoints_train_alike(orbits):
    # `recursive_checkpoint` differentiates diffeqsolve in chunks; `replay` (the default)
    # replays the accepted steps. Same batches, same step grids: the same losses, to rounding.
    import dataclasses

    t, y = orbits
    losses = {}
    for adjoint in ("replay", "recursive_checkpoint"):
        init, key = jax.random.split(jax.random.PRNGKey(0))
        model = NeuralODE(dataclasses.replace(SPEC, adjoint=adjoint), key=init)
        res = neuralode.train(model, t, y, PHASES, loss="percent_error", batch_size=8, key=key, chunk_size=4)
        assert res.status == "completed" and res.failed_segments.tolist() == [0, 0, 0]
        losses[adjoint] = res.losses
    np.testing.assert_allclose(losses["replay"], losses["recursive_checkpoint"], rtol=1e-4)


def test_training_solves_at_the_scheduled_tolerance(orbits):
    # `train_rtol` reaches the training solves (fewer steps when loose), not the model's spec
    loose, tight = (_train(orbits, train_rtol=(r, r)) for r in (1e-2, 1e-6))
    assert np.mean(loose.health["solver_steps"]) < np.mean(tight.health["solver_steps"])
    assert loose.model.spec == tight.model.spec == SPEC


def test_curriculum_phases_and_points_used(orbits):
    phases = [
        Phase(steps=2, lr=1e-3, segment_length=8, length=(0.25, 0.25)),
        Phase(steps=2, lr=1e-4, segment_length=8, length=(1.0, 1.0)),
    ]
    res = _train(orbits, phases=phases)
    np.testing.assert_array_equal(res.phases, [0, 0, 1, 1])
    assert phases[0].points_used(0) == 2 and phases[1].points_used(1) == 8
    assert Phase(steps=11, lr=1e-3, segment_length=18, length=(0.1, 1.0)).points_used(5) == 10


def test_bad_segment_length_fails_before_training(orbits):
    seen = []
    with pytest.raises(ValueError, match="`segment_length`=500 .* 360"):
        _train(orbits, phases=[Phase(steps=1, lr=1e-3, segment_length=500)], callback=lambda *a: seen.append(a))
    assert seen == []


def test_non_finite_loss_stops_with_step(orbits):
    t, y = orbits
    init, key = jax.random.split(jax.random.PRNGKey(0))
    model = NeuralODE(SPEC, key=init)
    bias = model.field.mlp.layers[-1].bias
    broken = eqx.tree_at(lambda m: m.field.mlp.layers[-1].bias, model, jnp.full_like(bias, jnp.nan))
    res = neuralode.train(broken, t, y, PHASES, loss="percent_error", batch_size=8, key=key)
    # Every segment's solve fails, so no loss can be computed: the run stops at its first step.
    assert res.status == "non_finite" and res.bad_step == 0 and res.losses.shape == (0,)
    assert res.message == "non-finite loss or gradient at step 0"


def _batch(orbits, n=6, length=8):
    t, y = orbits
    seg = neuralode.segment(t, y, length)
    return jnp.asarray(seg.t[:n]), jnp.asarray(seg.y[:n])


def _grads(fn, model):
    value, grads = eqx.filter_value_and_grad(fn)(model)
    return value, jax.tree_util.tree_leaves(grads)


def _assert_same_grads(grads, expected):
    # float32: summing over segments and steps in another order moves the last digits
    for a, b in zip(grads, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-4 * float(jnp.max(jnp.abs(b))))


def test_solve_batch_matches_differentiating_diffeqsolve(orbits):
    t, y = _batch(orbits)
    t1 = t[:, 5]  # stop early: the last points repeat the state at t1
    model = NeuralODE(SPEC, key=jax.random.PRNGKey(3))
    loss = jax.vmap(neuralode.LOSSES["percent_error"], (0, 0, None))

    # In float32 the vectorisation width moves the last digits, and with them some accept or
    # reject decisions, so the reference solves the same groups (`lanes` consecutive
    # segments) that `solve_batch` does.
    def through_diffrax(m, lanes):
        ys = [
            jax.vmap(m.solve)(t[i : i + lanes], y[i : i + lanes, 0], t1[i : i + lanes])[0]
            for i in range(0, len(t), lanes)
        ]
        return jnp.sum(loss(y, jnp.concatenate(ys), 6))

    def replayed(m, lanes):
        ys, ok, accepted, attempted = neuralode.solve_batch(m, t, y[:, 0], t1, chunk_size=lanes)
        assert bool(jnp.all(ok)) and bool(jnp.all((0 < accepted) & (accepted <= attempted)))
        return jnp.sum(loss(y, ys, 6))

    for lanes in (6, 2):  # every segment in flight, and lanes taking the next segment
        expected, expected_grads = _grads(lambda m: through_diffrax(m, lanes), model)
        value, grads = _grads(lambda m: replayed(m, lanes), model)
        assert float(value) == pytest.approx(float(expected), rel=1e-6)
        _assert_same_grads(grads, expected_grads)


def test_the_forward_pool_takes_the_steps_diffeqsolve_takes(orbits):
    # Lanes refilled as segments finish (2 lanes for 6 segments, in any queue order) solve each
    # segment as a vmapped diffeqsolve does: the same accepted and attempted steps, the same
    # step grid and the same solution, to rounding.
    t, y = _batch(orbits)
    t1 = t[:, 5]
    model = NeuralODE(SPEC, key=jax.random.PRNGKey(3))
    ys, step_t, _, accepted, attempted, ok = jax.vmap(model.solve_steps)(jnp.minimum(t, t1[:, None]), y[:, 0], t1)
    for lanes, effort in ((6, None), (2, None), (2, jnp.array([1, 5, 2, 9, 0, 3]))):
        got, ok_, acc, att = neuralode.solve_batch(model, t, y[:, 0], t1, chunk_size=lanes, effort=effort)
        assert bool(jnp.all(ok & ok_))
        np.testing.assert_array_equal(acc, accepted)
        np.testing.assert_array_equal(att, attempted)
        np.testing.assert_allclose(got, ys, rtol=1e-5, atol=1e-6)


def test_solve_batch_leaves_a_failed_segment_out_of_the_gradient(orbits):
    t, y = _batch(orbits)
    model = NeuralODE(SPEC, key=jax.random.PRNGKey(3))
    loss = neuralode.LOSSES["percent_error"]

    def total(m, y, weight):
        ys, ok, _, _ = neuralode.solve_batch(m, t, y[:, 0], t[:, -1], chunk_size=3)
        safe = jnp.where(ok[:, None, None], ys, y)
        return jnp.sum(weight * jnp.where(ok, jax.vmap(loss, (0, 0, None))(y, safe, 8), 0.0)), ok

    # The last segment cannot be solved; the reference solves it but gives it no weight.
    broken = y.at[-1, 0, 0].set(jnp.nan)
    (value, ok), grads = eqx.filter_value_and_grad(lambda m: total(m, broken, 1.0), has_aux=True)(model)
    assert ok.tolist() == [True] * 5 + [False]
    weight = jnp.array([1.0] * 5 + [0.0])
    (kept, _), kept_grads = eqx.filter_value_and_grad(lambda m: total(m, y, weight), has_aux=True)(model)
    assert float(value) == pytest.approx(float(kept), rel=1e-6)
    _assert_same_grads(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(kept_grads))


def test_model_round_trip_gives_identical_predictions(tmp_path, orbits):
    model = _train(orbits).model
    with h5py.File(tmp_path / "m.h5", "w") as f:
        neuralode.save_model(f.create_group("model"), model)
    loaded = neuralode.load_model(tmp_path / "m.h5")
    assert loaded.spec == model.spec
    t, y = orbits
    ts, y0 = jnp.asarray(t[0, :20], jnp.float32), jnp.asarray(y[0, 0], jnp.float32)
    np.testing.assert_array_equal(model.solve(ts, y0)[0], loaded.solve(ts, y0)[0])


def test_metrics_on_the_truth():
    stats = neuralode.distribution_stats(np.array([1.0, 2, 2, 3, 10]))
    assert stats["median"] == 2 and stats["mean"] == pytest.approx(3.6)
    assert stats["pearson_sk2"] == pytest.approx(3 * 1.6 / np.std([1.0, 2, 2, 3, 10]))
    assert stats["bowley"] == pytest.approx((3 + 2 - 4) / (3 - 2))
    assert stats["skewness"] > 0
    y = np.array([[[2.0, 0, 0, 0, 0.7, 0], [0, 3.0, 0, -0.5, 0, 0]]])
    acc = neuralode.true_acceleration(y)
    np.testing.assert_allclose(acc[0, 0], [-0.25, 0, 0])
    np.testing.assert_allclose(np.linalg.norm(acc[0, 1]), 1 / 9)

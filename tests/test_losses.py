import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neuralode import LOSSES

Y = jnp.asarray(np.random.default_rng(0).normal(size=(10, 6)), jnp.float32) + 3


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_zero_for_perfect_prediction_with_finite_gradient(name):
    loss = LOSSES[name]
    assert float(loss(Y, Y, 10)) == pytest.approx(0, abs=1e-5)
    grad = jax.grad(lambda p: loss(Y, p, 10))(Y)
    assert bool(jnp.all(jnp.isfinite(grad)))


def test_percent_error_value_and_first_point_ignored():
    pred = Y * 1.1
    pred = pred.at[0].set(0.0)  # the first point never counts
    assert float(LOSSES["percent_error"](Y, pred, 10)) == pytest.approx(10.0, rel=1e-5)


def test_only_used_points_count():
    pred = Y.at[5:].add(100.0)
    assert float(LOSSES["percent_error"](Y, pred, 5)) == pytest.approx(0, abs=1e-5)
    assert float(LOSSES["mse"](Y, pred, 5)) == pytest.approx(0, abs=1e-5)
    assert float(LOSSES["mse"](Y, pred, 6)) > 1000


def test_mse_and_nmse_values():
    pred = Y + 0.5
    assert float(LOSSES["mse"](Y, pred, 10)) == pytest.approx(0.25, rel=1e-5)
    rest = Y[1:]
    nrmse = 100 * np.sqrt(np.sum(0.25 * np.ones_like(rest)) / np.sum(np.asarray(rest) ** 2))
    pe = float(LOSSES["percent_error"](Y, pred, 10))
    got = float(LOSSES["percent_error_plus_nmse"](Y, pred, 10, 2.0))
    assert got == pytest.approx(pe + 2 * nrmse, rel=1e-5)

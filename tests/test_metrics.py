"""Metrics of a learned field: along the orbit and at the true states, and the critical radius."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuralode
from neuralode import CanonicalUnits, ModelSpec, NeuralODE, critical_radius


@pytest.fixture(scope="module")
def exact_field():
    """A `NeuralODE` that is the true field -r/|r|^3: no hidden layer, `unit_scaled` head
    (|m0| / r^2 times the normalised direction) with m0 = 1 and direction -r/r."""
    with jax.enable_x64(True):
        spec = ModelSpec(depth=0, feature_layer="sph_4D_rinv_vel", output_head="unit_scaled", planar_constraint=True)
        model = NeuralODE(spec, key=jax.random.PRNGKey(0))
        weight = jnp.zeros((4, 7)).at[1:4, 1:4].set(-jnp.eye(3))  # features [1/r, r_hat, v]
        bias = jnp.zeros(4).at[0].set(1.0)
        layer = model.field.mlp.layers[0]
        yield eqx.tree_at(
            lambda m: (m.field.mlp.layers[0].weight, m.field.mlp.layers[0].bias),
            model,
            (weight.astype(layer.weight.dtype), bias.astype(layer.bias.dtype)),
        )


def test_along_the_orbit_equals_at_the_true_states_for_the_true_field(exact_field, tmp_path):
    test = neuralode.load_or_generate(tmp_path, "complex", True, 10, 1, "test")
    t, y = CanonicalUnits().to_canonical(test.t, test.y)
    with jax.enable_x64(True):
        out = neuralode.evaluate(exact_field, t, y)
    assert out["accel_pct_mean"] < 1e-5  # the field itself is exact
    assert out["propagation_failures"] == 0
    # wherever the propagation goes, the exact field is exact there too
    np.testing.assert_allclose(out["along_accel_pct_error"], out["accel_pct_error"], atol=1e-5)
    assert out["along_accel_pct_mean"] == pytest.approx(out["accel_pct_mean"], abs=1e-6)
    assert out["final_position_error_km_mean"] < 1e-4  # and stays on the orbit (length_km=1: Earth radii)
    assert out["critical_radius"] == np.inf  # 1/r^2 out to the last test point
    assert out["loglog_slope"] == pytest.approx(-2.0, abs=1e-6)


def test_along_the_orbit_error_is_the_fields_error_where_the_model_goes(exact_field, tmp_path):
    test = neuralode.load_or_generate(tmp_path, "complex", True, 3, 1, "test")
    t, y = CanonicalUnits().to_canonical(test.t, test.y)
    # 2 % too strong everywhere: 2 % at any state, though its orbits drift off the true ones
    stronger = eqx.tree_at(
        lambda m: m.field.mlp.layers[0].bias, exact_field, exact_field.field.mlp.layers[0].bias.at[0].set(1.02)
    )
    with jax.enable_x64(True):
        out = neuralode.evaluate(stronger, t, y)
    assert out["accel_pct_mean"] == pytest.approx(2.0, rel=1e-4)
    assert out["along_accel_pct_mean"] == pytest.approx(2.0, rel=1e-4)
    assert out["final_position_error_km_mean"] > 0.1  # the drift shows in the position (Earth radii), not here


def _test_radii():
    """Every point's radius on the 100-orbit test set (canonical units)."""
    _, y, _ = neuralode.generate_orbits(100, 1, neuralode.family_ranges("complex", True))
    return np.linalg.norm(CanonicalUnits().to_canonical(np.zeros(1), y)[1][..., :3], axis=-1).ravel()


@pytest.mark.parametrize("turn", [3.0, 6.0, 9.0])
def test_critical_radius_finds_where_the_field_turns_one_over_r(turn):
    r = _test_radii()
    assert critical_radius(r, r**-2.0) == np.inf and r.max() < np.inf
    a = np.where(r < turn, r**-2.0, 1 / (turn * r))  # continuous, slope -1 beyond `turn`
    found = critical_radius(r, a)
    width = np.exp(np.ptp(np.log(r)) / 24)  # one bin
    assert turn / width <= found <= turn * width


def test_critical_radius_of_noisy_and_degenerate_fields():
    r = _test_radii()
    rng = np.random.default_rng(0)
    noisy = r**-2.0 * np.exp(rng.normal(0, 0.05, r.size))  # 5 % scatter, still 1/r^2
    assert critical_radius(r, noisy) == np.inf
    assert np.isnan(critical_radius(np.full(50, 2.0), np.full(50, 0.25)))  # one radius: no slope
    flat = np.full(r.size, 0.1)  # never falls: breaks at once
    assert critical_radius(r, flat) == pytest.approx(r.min(), rel=0.25)

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neuralode import FEATURE_LAYERS, OUTPUT_HEADS, ModelSpec

STATE = jnp.array([2.0, 0.0, 0.0, 0.0, 0.7, 0.1])  # on +x, moving mostly along +y


@pytest.mark.parametrize("name", sorted(FEATURE_LAYERS))
def test_feature_shapes(name):
    fn, size = FEATURE_LAYERS[name]
    assert fn(STATE).shape == (size,)


def test_spherical_features():
    feats, _ = FEATURE_LAYERS["sph_4D_rinv_vel"]
    np.testing.assert_allclose(feats(STATE), [0.5, 1, 0, 0, 0, 0.7, 0.1])
    rtn, _ = FEATURE_LAYERS["sph_4D_rinv_vel_rtn"]
    out = rtn(jnp.array([0.0, 3.0, 0.0, 0.5, 0.2, 0.0]))
    np.testing.assert_allclose(out[-2:], [0.2, 0.5], rtol=1e-6)  # radial, transverse speed


@pytest.mark.parametrize("name", sorted(OUTPUT_HEADS))
def test_head_shapes_and_finite(name):
    head, size = OUTPUT_HEADS[name]
    out = head(jnp.linspace(-1, 1, size), STATE)
    assert out.shape == (3,) and bool(jnp.all(jnp.isfinite(out)))


def test_head_sign_conventions():
    inward = jnp.array([-1.0, 0.0, 0.0])
    # rtn: a negative radial component points at the origin
    np.testing.assert_allclose(OUTPUT_HEADS["rtn"][0](jnp.array([-2.0, 0, 0]), STATE), 2 * inward, atol=1e-6)
    # rtn: the transverse component lies along the velocity's transverse part
    assert OUTPUT_HEADS["rtn"][0](jnp.array([0.0, 1, 0]), STATE)[1] > 0
    # signed: the sign of m0 flips the direction; mag_dir ignores it
    m = jnp.array([-2.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(OUTPUT_HEADS["signed"][0](m, STATE), 2 * inward)
    np.testing.assert_allclose(OUTPUT_HEADS["mag_dir"][0](m, STATE), -2 * inward)
    # unit heads: magnitude from m0 alone, whatever the raw direction's length
    m = jnp.array([np.log(3.0), -5.0, 0.0, 0.0])
    np.testing.assert_allclose(OUTPUT_HEADS["logmag_unit_exp"][0](m, STATE), 3 * inward, rtol=1e-6)
    sp = float(jax.nn.softplus(m[0]))
    np.testing.assert_allclose(OUTPUT_HEADS["unit_softplus"][0](m, STATE), sp * inward, rtol=1e-6)
    np.testing.assert_allclose(OUTPUT_HEADS["softplus"][0](m, STATE), sp * 5 * inward, rtol=1e-6)


@pytest.mark.parametrize("field,value,known", [
    ("output_head", "logmag", "logmag_unit_exp, mag_dir, rtn"),
    ("feature_layer", "polar", "cartesian, sph_4D_rinv_vel"),
    ("activation", "swish", "elu, gelu, leaky_relu"),
    ("solver", "euler", "bosh3, dopri5"),
])
def test_unknown_names_list_known_ones(field, value, known):
    with pytest.raises(ValueError, match=f"`{field}` '{value}'; known values: .*{known}"):
        ModelSpec(**{field: value})

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuralode
from neuralode import FEATURE_LAYERS, HEAD_ALIASES, OUTPUT_HEADS, ModelSpec

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


def test_the_invariant_features_are_inverse_radius_radial_and_transverse_speed():
    invariant, size = FEATURE_LAYERS["invariant"]
    y = jnp.array([0.0, 3.0, 0.0, 0.5, 0.2, 0.0])  # r = 3 on +y; v_r = 0.2, v_t = 0.5
    np.testing.assert_allclose(invariant(y), [1 / 3, 0.2, 0.5], rtol=1e-6)
    assert size == 3


def _rotation(key) -> np.ndarray:
    """A random proper rotation (det +1)."""
    q, r = np.linalg.qr(np.asarray(jax.random.normal(key, (3, 3)), np.float64))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize("head", ["rtn", "rtn_scaled"])
def test_the_equivariant_model_turns_its_acceleration_with_the_orbit(head):
    """`model=equivariant`: a rotated state gives the rotated acceleration, to rounding, for an
    untrained model (the property is the architecture's, not learned)."""
    spec = ModelSpec(width=16, depth=2, activation="tanh", feature_layer="invariant", output_head=head,
                     planar_constraint=False, dtype="float32")  # fmt: skip
    field = neuralode.NeuralODE(spec, key=jax.random.PRNGKey(0)).field
    states = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (8, 6)), np.float64) + [2, 0, 0, 0, 0.6, 0]
    turns = np.stack([_rotation(jax.random.PRNGKey(10 + i)) for i in range(len(states))])
    turned = np.concatenate(
        [np.einsum("nij,nj->ni", turns, states[:, :3]), np.einsum("nij,nj->ni", turns, states[:, 3:])], 1
    )
    a, a_turned = (
        np.asarray(jax.vmap(field.acceleration)(jnp.asarray(x, jnp.float32)), np.float64) for x in (states, turned)
    )
    expected = np.einsum("nij,nj->ni", turns, a)
    np.testing.assert_allclose(a_turned, expected, atol=2e-6 * np.abs(a).max())
    # and the study's reference model is not: the same check fails for it
    reference = neuralode.NeuralODE(ModelSpec(width=16, dtype="float32"), key=jax.random.PRNGKey(0)).field
    a, a_turned = (np.asarray(jax.vmap(reference.acceleration)(jnp.asarray(x, jnp.float32))) for x in (states, turned))
    assert not np.allclose(a_turned, np.einsum("nij,nj->ni", turns, a), atol=1e-3)


def test_the_studys_feature_layers():
    sq = math.sqrt(0.5)  # |v| of STATE
    vinv, size = FEATURE_LAYERS["sph_4D_rinv_vinv"]
    np.testing.assert_allclose(vinv(STATE), [0.5, 1, 0, 0, 0, 0.7 / sq, 0.1 / sq, 1 / sq], rtol=1e-6)
    assert size == 8
    harmonics, size = FEATURE_LAYERS["sph_4D_rinv_vel_harmonics"]
    y = jnp.array([1.0, 2.0, 2.0, 0.1, 0.2, 0.3])  # r = 3, r_hat = (1, 2, 2) / 3
    expected = [1 / 3, 1 / 3, 2 / 3, 2 / 3, 0.1, 0.2, 0.3, 2 / 9, 4 / 9, 2 / 9, 1 / 9 - 4 / 9, 3 * 4 / 9 - 1]
    np.testing.assert_allclose(harmonics(y), expected, rtol=1e-6)
    assert size == 12


M = jnp.array([-0.5, 3.0, -4.0, 0.0])  # m0 = -0.5, raw direction (3, -4, 0) of length 5
RAW, UNIT = np.array([3.0, -4.0, 0.0]), np.array([0.6, -0.8, 0.0])
SOFTPLUS, SIGMOID, EXP = math.log(1 + math.exp(-0.5)), 1 / (1 + math.exp(0.5)), math.exp(-0.5)
TANH_UNIT = np.tanh(RAW) / np.linalg.norm(np.tanh(RAW))
# head -> the acceleration for M at STATE (r = 2), computed by hand from each head's definition
EXPECTED = {
    "simple": np.array([-0.5, 3.0, -4.0]),  # three outputs
    "mag_dir": 0.5 * RAW,
    "signed": -0.5 * RAW,
    "unit": 0.5 * UNIT,
    "signed_unit": -0.5 * UNIT,
    "unit_scaled": 0.5 / 4 * UNIT,
    "softplus": SOFTPLUS * RAW,
    "unit_softplus": SOFTPLUS * UNIT,
    "sigmoid": SIGMOID * UNIT,
    "logmag_exp": EXP * RAW,
    "logmag_unit_exp": EXP * UNIT,
    "logmag_unit_softplus": (SOFTPLUS + 1e-8) * UNIT,
    "logmag_unit_tanh_exp": EXP * TANH_UNIT,
    "logmag_unit_tanh_softplus": (SOFTPLUS + 1e-8) * TANH_UNIT,
    # local frame at STATE: radial +x; normal along r x v = (0, -0.2, 1.4); transverse = normal x radial
    "rtn_scaled": (
        -0.5 * np.array([1.0, 0, 0]) + 3 * np.array([0, 1.4, 0.2]) / 2**0.5 - 4 * np.array([0, -0.2, 1.4]) / 2**0.5
    )
    / 4,
}


@pytest.mark.parametrize("name", sorted(set(OUTPUT_HEADS) - {"rtn"}))
def test_every_head_gives_its_documented_acceleration(name):
    head, size = OUTPUT_HEADS[name]
    np.testing.assert_allclose(head(M[:size], STATE), EXPECTED[name], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("alias", sorted(HEAD_ALIASES))
def test_the_studys_head_names_are_one_head_each(alias):
    name = HEAD_ALIASES[alias]
    assert ModelSpec(output_head=alias).output_head == name  # the spec (and a saved model) keeps one name
    config = {"output_head": alias, "width": 64}
    assert neuralode.canonical_config(config) == {"output_head": name, "width": 64}
    head, size = OUTPUT_HEADS[name]
    np.testing.assert_allclose(head(M[:size], STATE), EXPECTED[name], rtol=1e-6, atol=1e-12)


def test_the_studys_mlp_4d_is_the_abs_form():
    assert HEAD_ALIASES["mlp_4D"] == HEAD_ALIASES["mlp_4D_abs"] == "mag_dir"
    assert HEAD_ALIASES["mlp_4D_softplus"] == HEAD_ALIASES["mlp_4D_accsoftplus"] == "softplus"


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


@pytest.mark.parametrize(
    "field,value,known",
    [
        ("output_head", "logmag", "logmag_unit_exp, .*mag_dir, rtn, rtn_scaled, sigmoid"),
        ("feature_layer", "polar", "cartesian, invariant, sph_4D_rinv_vel"),
        ("activation", "swish", "elu, gelu, leaky_relu"),
        ("solver", "euler", "bosh3, dopri5"),
    ],
)
def test_unknown_names_list_known_ones(field, value, known):
    with pytest.raises(ValueError, match=f"`{field}` '{value}'; known values: .*{known}"):
        ModelSpec(**{field: value})


def test_an_unknown_head_lists_the_studys_names_too():
    with pytest.raises(ValueError, match=r"known values: .*signed_unit.*\(also accepted, the study's names: mlp_4D, "):
        ModelSpec(output_head="mlp_4D_nonsense")

"""Output heads: how the MLP output `m` becomes an acceleration, given the state `y`.

Four-output heads read `m0` as the magnitude (or its logarithm) and `m[1:4]` as the direction
("raw": used as it is; "unit": normalised). Accelerations are in canonical units (mu = 1), where
the surface gravity is 1.
"""

import jax
import jax.numpy as jnp

EPS = 1e-8


def _unit(d):
    return d / (jnp.linalg.norm(d) + EPS)


def simple(m, y):
    """The three outputs are the acceleration."""
    return m


def mag_dir(m, y):
    """`|m0|` times the raw direction `m[1:4]`."""
    return jnp.abs(m[0]) * m[1:]


def signed(m, y):
    """Signed `m0` times the raw direction `m[1:4]`."""
    return m[0] * m[1:]


def unit(m, y):
    """`|m0|` times the normalised direction `m[1:4]`."""
    return jnp.abs(m[0]) * _unit(m[1:])


def signed_unit(m, y):
    """Signed `m0` times the normalised direction `m[1:4]`."""
    return m[0] * _unit(m[1:])


def unit_scaled(m, y):
    """`|m0| / r^2` times the normalised direction: the magnitude scaled by the inverse-square law,
    so the MLP learns the ratio to it (1 for the truth)."""
    return jnp.abs(m[0]) / jnp.sum(y[:3] ** 2) * _unit(m[1:])


def softplus(m, y):
    """`softplus(m0)` times the raw direction `m[1:4]`."""
    return jax.nn.softplus(m[0]) * m[1:]


def unit_softplus(m, y):
    """`softplus(m0)` times the normalised direction `m[1:4]`."""
    return jax.nn.softplus(m[0]) * _unit(m[1:])


def sigmoid(m, y):
    """`sigmoid(m0)` times the normalised direction: a magnitude bounded to (0, 1), the surface
    gravity (the largest a generated orbit meets is 0.94, at 200 km)."""
    return jax.nn.sigmoid(m[0]) * _unit(m[1:])


def logmag_exp(m, y):
    """`exp(m0)` (m0 is the log-magnitude) times the raw direction `m[1:4]`."""
    return jnp.exp(m[0]) * m[1:]


def logmag_unit_exp(m, y):
    """`exp(m0)` (m0 is the log-magnitude) times the normalised direction `m[1:4]`."""
    return jnp.exp(m[0]) * _unit(m[1:])


def logmag_unit_softplus(m, y):
    """`softplus(m0) + eps` times the normalised direction: never exactly zero."""
    return (jax.nn.softplus(m[0]) + EPS) * _unit(m[1:])


def logmag_unit_tanh_exp(m, y):
    """`exp(m0)` times `tanh(m[1:4])`, normalised: bounded direction logits."""
    return jnp.exp(m[0]) * _unit(jnp.tanh(m[1:]))


def logmag_unit_tanh_softplus(m, y):
    """`softplus(m0) + eps` times `tanh(m[1:4])`, normalised."""
    return (jax.nn.softplus(m[0]) + EPS) * _unit(jnp.tanh(m[1:]))


def _local_frame(y):
    """The radial, transverse and normal unit vectors of a state (normal: along r x v)."""
    r, v = y[:3], y[3:]
    radial = _unit(r)
    normal = _unit(jnp.cross(r, v))
    return radial, jnp.cross(normal, radial), normal


def rtn(m, y):
    """`m` are radial, transverse and normal components, rotated back to Cartesian."""
    radial, transverse, normal = _local_frame(y)
    return m[0] * radial + m[1] * transverse + m[2] * normal


def rtn_scaled(m, y):
    """`rtn` divided by r^2: the MLP learns the acceleration's components in units of the
    inverse-square law (the truth: -1, 0, 0 everywhere), so the field keeps falling as 1/r^2
    where the MLP's output stays level, beyond the training radii too (`unit_scaled`'s idea,
    in the local frame)."""
    return rtn(m, y) / jnp.sum(y[:3] ** 2)


# name -> (function, MLP output size)
OUTPUT_HEADS = {
    "simple": (simple, 3),
    "mag_dir": (mag_dir, 4),
    "signed": (signed, 4),
    "unit": (unit, 4),
    "signed_unit": (signed_unit, 4),
    "unit_scaled": (unit_scaled, 4),
    "softplus": (softplus, 4),
    "unit_softplus": (unit_softplus, 4),
    "sigmoid": (sigmoid, 4),
    "logmag_exp": (logmag_exp, 4),
    "logmag_unit_exp": (logmag_unit_exp, 4),
    "logmag_unit_softplus": (logmag_unit_softplus, 4),
    "logmag_unit_tanh_exp": (logmag_unit_tanh_exp, 4),
    "logmag_unit_tanh_softplus": (logmag_unit_tanh_softplus, 4),
    "rtn": (rtn, 3),
    "rtn_scaled": (rtn_scaled, 3),
}

# The study notebook's names (its `output_layer`), each meaning one head above. Its first
# listing used `mlp_4D` for the signed form; its later entries, and this table, the |m0| form.
HEAD_ALIASES = {
    "mlp_4D": "mag_dir",
    "mlp_4D_abs": "mag_dir",
    "mlp_4D_signed": "signed",
    "mlp_4D_unit": "unit",
    "mlp_4D_signed_unit": "signed_unit",
    "mlp_4D_unit_scaled": "unit_scaled",
    "mlp_4D_softplus": "softplus",
    "mlp_4D_accsoftplus": "softplus",
    "mlp_4D_unit_softplus": "unit_softplus",
    "mlp_4D_sigmoid": "sigmoid",
    "mlp_4D_logmag_exp": "logmag_exp",
    "mlp_4D_logmag_unit_exp": "logmag_unit_exp",
    "mlp_4D_logmag_unit_softplus": "logmag_unit_softplus",
    "mlp_4D_logmag_unit_tanh_exp": "logmag_unit_tanh_exp",
    "mlp_4D_logmag_unit_tanh_softplus": "logmag_unit_tanh_softplus",
}

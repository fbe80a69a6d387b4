"""Output heads: how the MLP output `m` becomes an acceleration, given the state `y`."""

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


def softplus(m, y):
    """`softplus(m0)` times the raw direction `m[1:4]`."""
    return jax.nn.softplus(m[0]) * m[1:]


def unit_softplus(m, y):
    """`softplus(m0)` times the normalised direction `m[1:4]`."""
    return jax.nn.softplus(m[0]) * _unit(m[1:])


def logmag_unit_exp(m, y):
    """`exp(m0)` (m0 is the log-magnitude) times the normalised direction `m[1:4]`."""
    return jnp.exp(m[0]) * _unit(m[1:])


def rtn(m, y):
    """`m` are radial, transverse and normal components, rotated back to Cartesian."""
    r, v = y[:3], y[3:]
    radial = _unit(r)
    normal = _unit(jnp.cross(r, v))
    transverse = jnp.cross(normal, radial)
    return m[0] * radial + m[1] * transverse + m[2] * normal


# name -> (function, MLP output size)
OUTPUT_HEADS = {
    "simple": (simple, 3),
    "mag_dir": (mag_dir, 4),
    "signed": (signed, 4),
    "softplus": (softplus, 4),
    "unit_softplus": (unit_softplus, 4),
    "logmag_unit_exp": (logmag_unit_exp, 4),
    "rtn": (rtn, 3),
}

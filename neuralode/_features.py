"""Feature layers: what the MLP sees of a state `[x, y, z, vx, vy, vz]` (canonical units)."""

import jax.numpy as jnp


def cartesian(y):
    """The state itself: `[x, y, z, vx, vy, vz]`."""
    return y


def sph_4D_rinv_vel(y):
    """`[1/r, x/r, y/r, z/r, vx, vy, vz]`: inverse radius, radial unit vector, velocity."""
    r = jnp.linalg.norm(y[:3])
    return jnp.concatenate([jnp.stack([1 / r]), y[:3] / r, y[3:]])


def sph_4D_rinv_vel_rtn(y):
    """`sph_4D_rinv_vel` plus the radial and transverse speeds."""
    r = jnp.linalg.norm(y[:3])
    r_hat = y[:3] / r
    v_radial = jnp.dot(y[3:], r_hat)
    v_transverse = jnp.linalg.norm(y[3:] - v_radial * r_hat)
    return jnp.concatenate([sph_4D_rinv_vel(y), jnp.stack([v_radial, v_transverse])])


# name -> (function, output size)
FEATURE_LAYERS = {
    "cartesian": (cartesian, 6),
    "sph_4D_rinv_vel": (sph_4D_rinv_vel, 7),
    "sph_4D_rinv_vel_rtn": (sph_4D_rinv_vel_rtn, 9),
}

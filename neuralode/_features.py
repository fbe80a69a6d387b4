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


def sph_4D_rinv_vinv(y):
    """`[1/r, x/r, y/r, z/r, vx/v, vy/v, vz/v, 1/v]`: the velocity as its direction and inverse speed."""
    r, v = jnp.linalg.norm(y[:3]), jnp.linalg.norm(y[3:])
    return jnp.concatenate([jnp.stack([1 / r]), y[:3] / r, y[3:] / v, jnp.stack([1 / v])])


def sph_4D_rinv_vel_harmonics(y):
    """`sph_4D_rinv_vel` plus the five degree-2 real spherical harmonics of the radial direction
    (unnormalised): `[xy, yz, zx, x^2 - y^2, 3z^2 - 1]` of `(x, y, z) / r`."""
    x, yy, z = y[:3] / jnp.linalg.norm(y[:3])
    harmonics = jnp.stack([x * yy, yy * z, z * x, x * x - yy * yy, 3 * z * z - 1])
    return jnp.concatenate([sph_4D_rinv_vel(y), harmonics])


def invariant(y):
    """`[1/r, v_r, v_t]`: inverse radius, radial and transverse speed. Unchanged when the state
    is rotated (`r` and `v` turned together), so a model that composes its acceleration in the
    local frame (`output_head=rtn` or `rtn_scaled`) is rotation-equivariant: rotating an orbit
    rotates the predicted acceleration with it (`model=equivariant`)."""
    r = jnp.linalg.norm(y[:3])
    v_radial = jnp.dot(y[3:], y[:3]) / r
    v_transverse = jnp.linalg.norm(jnp.cross(y[:3], y[3:])) / r  # |h| / r
    return jnp.stack([1 / r, v_radial, v_transverse])


# name -> (function, output size)
FEATURE_LAYERS = {
    "cartesian": (cartesian, 6),
    "sph_4D_rinv_vel": (sph_4D_rinv_vel, 7),
    "sph_4D_rinv_vel_rtn": (sph_4D_rinv_vel_rtn, 9),
    "sph_4D_rinv_vinv": (sph_4D_rinv_vinv, 8),
    "sph_4D_rinv_vel_harmonics": (sph_4D_rinv_vel_harmonics, 12),
    "invariant": (invariant, 3),
}

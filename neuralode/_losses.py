"""Losses between true and predicted segments `[points, 6]`, over the first `n_used` points."""

import jax.numpy as jnp


def _mask(y, n_used):
    return (jnp.arange(y.shape[0]) < n_used).astype(y.dtype)


def _norm(x):
    # The first point of a prediction equals the truth exactly, and the gradient of a plain
    # norm at zero is NaN (which a zero mask does not cancel); clamping keeps it finite.
    return jnp.sqrt(jnp.maximum(jnp.sum(x * x, -1), 1e-30))


def mse(y_true, y_pred, n_used, nmse_weight=0.0):
    """Mean squared error per component over the used points."""
    mask = _mask(y_true, n_used)
    sq = jnp.sum((y_true - y_pred) ** 2, -1) * mask
    return jnp.sum(sq) / (jnp.sum(mask) * y_true.shape[-1])


def percent_error(y_true, y_pred, n_used, nmse_weight=0.0):
    """Mean over the used points after the first of `||y_true - y_pred|| / max(||y_true||, 1e-8) * 100`."""
    mask = _mask(y_true, n_used).at[0].set(0)
    err = _norm(y_true - y_pred) / jnp.maximum(_norm(y_true), 1e-8)
    return 100 * jnp.sum(err * mask) / jnp.maximum(jnp.sum(mask), 1)


def percent_error_plus_nmse(y_true, y_pred, n_used, nmse_weight=1.0):
    """`percent_error` plus `nmse_weight` times the normalised RMSE in percent."""
    mask = _mask(y_true, n_used).at[0].set(0)
    err2 = jnp.sum(jnp.sum((y_true - y_pred) ** 2, -1) * mask)
    ref2 = jnp.sum(jnp.sum(y_true**2, -1) * mask)
    nrmse = 100 * jnp.sqrt(jnp.maximum(err2 / jnp.maximum(ref2, 1e-16), 1e-30))
    return percent_error(y_true, y_pred, n_used) + nmse_weight * nrmse


LOSSES = {"mse": mse, "percent_error": percent_error, "percent_error_plus_nmse": percent_error_plus_nmse}

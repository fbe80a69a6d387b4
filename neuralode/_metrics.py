"""Metrics of a learned model on held-out orbits (canonical units in, plain floats out)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._model import NeuralODE


def true_acceleration(y: np.ndarray) -> np.ndarray:
    """Two-body acceleration `-r / |r|^3` (mu = 1) for states `[..., 6]`."""
    r = y[..., :3]
    return -r / np.linalg.norm(r, axis=-1, keepdims=True) ** 3


def distribution_stats(x: np.ndarray) -> dict[str, float]:
    """Mean, median, std, skewness, Pearson's sk1 (mode from a histogram) and sk2, Bowley skewness."""
    x = np.asarray(x, np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return dict.fromkeys(("mean", "median", "std", "skewness", "pearson_sk1", "pearson_sk2", "bowley"), np.nan)
    mean, median, std = float(np.mean(x)), float(np.median(x)), float(np.std(x))
    counts, edges = np.histogram(x, bins="auto")
    mode = float(0.5 * (edges[np.argmax(counts)] + edges[np.argmax(counts) + 1]))
    q1, q3 = np.percentile(x, [25, 75])
    safe = std if std > 0 else np.nan
    return {
        "mean": mean,
        "median": median,
        "std": std,
        "skewness": float(np.mean((x - mean) ** 3) / safe**3),
        "pearson_sk1": (mean - mode) / safe,
        "pearson_sk2": 3 * (mean - median) / safe,
        "bowley": float((q3 + q1 - 2 * median) / (q3 - q1)) if q3 > q1 else np.nan,
    }


@eqx.filter_jit
def _predict(model: NeuralODE, t, y, max_steps: int):
    acc = jax.vmap(jax.vmap(model.field.acceleration))(y)
    ys, _ = jax.vmap(lambda ts, y0: model.solve(ts, y0, max_steps=max_steps))(t, y[:, 0])
    return acc, ys


def evaluate(model: NeuralODE, t: np.ndarray, y: np.ndarray, *, length_km: float = 1.0,
             max_steps: int = 16384) -> dict:
    """Compare `model` with the truth on orbits `t [n, points]`, `y [n, points, 6]`.

    Accelerations are compared at the true states; the trajectory is propagated from each
    orbit's initial state over the whole orbit. `length_km` converts the final position
    error into km.

    **Returns:** a dict of scalars (`accel_pct_*`, `angle_deg_*`, `radial_sign_error_pct`,
    `loglog_slope`, `final_position_error_km_*`, `propagation_failures`) and arrays
    (`accel_pct_error [n, points]`, `accel_pct_per_orbit [n]`, `angle_deg [n, points]`,
    `final_position_error_km [n]`, and, for the log-log figure, `radius [n, points]` and the
    predicted `accel_norm [n, points]` in canonical units).
    """
    dtype = model.field.mlp.layers[0].weight.dtype
    acc, ys = _predict(model, jnp.asarray(t, dtype), jnp.asarray(y, dtype), max_steps)
    acc, ys = np.asarray(acc, np.float64), np.asarray(ys, np.float64)
    a_true = true_acceleration(y)
    a_norm = np.linalg.norm(a_true, axis=-1)
    pct = np.linalg.norm(acc - a_true, axis=-1) / a_norm * 100
    cos = np.sum(acc * a_true, -1) / np.maximum(np.linalg.norm(acc, axis=-1) * a_norm, 1e-300)
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    r = np.linalg.norm(y[..., :3], axis=-1)
    outward = np.sum(acc * y[..., :3], -1) > 0
    acc_norm = np.linalg.norm(acc, axis=-1)
    log_a = np.log(np.maximum(acc_norm, 1e-300)).ravel()
    # undefined where every point has the same radius (circular orbits)
    slope = float(np.polyfit(np.log(r).ravel(), log_a, 1)[0]) if np.ptp(np.log(r)) > 1e-6 else np.nan
    final_err = np.linalg.norm(ys[:, -1, :3] - y[:, -1, :3], axis=-1) * length_km
    final_rel = final_err / (np.linalg.norm(y[:, -1, :3], axis=-1) * length_km)
    out = {f"accel_pct_{k}": v for k, v in distribution_stats(pct).items()}
    angle_stats = distribution_stats(angle)
    out.update({
        "angle_deg_mean": angle_stats["mean"],
        "angle_deg_median": angle_stats["median"],
        "angle_deg_max": float(np.max(angle)),
        "radial_sign_error_pct": float(100 * np.mean(outward)),
        "loglog_slope": slope,
        "final_position_error_km_mean": float(np.nanmean(final_err)) if np.isfinite(final_err).any() else np.nan,
        "final_position_error_rel_mean": float(np.nanmean(final_rel)) if np.isfinite(final_rel).any() else np.nan,
        "propagation_failures": int(np.sum(~np.isfinite(final_err))),
        "accel_pct_error": pct,
        "accel_pct_per_orbit": pct.mean(axis=1),
        "angle_deg": angle,
        "final_position_error_km": final_err,
        "radius": r,
        "accel_norm": acc_norm,
    })
    return out

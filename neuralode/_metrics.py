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


def critical_radius(
    radius: np.ndarray, accel_norm: np.ndarray, *, bins: int = 24, slope_above: float = -1.5, min_points: int = 10
) -> float:
    """Where a learned field stops falling as 1/r^2: the radius beyond which its local log-log
    slope stays above `slope_above` (the truth's is -2; a field that turns 1/r has -1).

    The points (`radius`, predicted `accel_norm`) are put in `bins` equal bins of log r; bins
    with fewer than `min_points` are left out. The local slope between neighbouring bins'
    median log|a| belongs to the geometric midpoint of their centres; the critical radius is
    the innermost midpoint of the outermost run of slopes above `slope_above`. `inf` when the
    outermost slope is below it (the field holds out to the largest radius), `nan` when fewer
    than two bins have points (circular orbits: one radius).
    """
    ok = np.isfinite(radius) & np.isfinite(accel_norm) & (radius > 0) & (accel_norm > 0)
    log_r, log_a = np.log(radius[ok]), np.log(accel_norm[ok])
    if log_r.size == 0 or np.ptp(log_r) < 1e-6:
        return float("nan")
    edges = np.linspace(log_r.min(), log_r.max() + 1e-12, bins + 1)
    index = np.digitize(log_r, edges) - 1
    centers, medians = [], []
    for b in range(bins):
        inside = log_a[index == b]
        if inside.size >= min_points:
            centers.append(0.5 * (edges[b] + edges[b + 1]))
            medians.append(np.median(inside))
    if len(centers) < 2:
        return float("nan")
    centers, medians = np.array(centers), np.array(medians)
    slopes = np.diff(medians) / np.diff(centers)
    midpoints = 0.5 * (centers[1:] + centers[:-1])
    holding = np.flatnonzero(slopes <= slope_above)
    if holding.size and holding[-1] == len(slopes) - 1:
        return float("inf")
    first = holding[-1] + 1 if holding.size else 0
    return float(np.exp(midpoints[first]))


@eqx.filter_jit
def _predict(model: NeuralODE, t, y, max_steps: int):
    accelerations = jax.vmap(jax.vmap(model.field.acceleration))
    ys, _ = jax.vmap(lambda ts, y0: model.solve(ts, y0, max_steps=max_steps))(t, y[:, 0])
    return accelerations(y), ys, accelerations(ys)


def _pct_error(acc: np.ndarray, a_true: np.ndarray) -> np.ndarray:
    return np.linalg.norm(acc - a_true, axis=-1) / np.linalg.norm(a_true, axis=-1) * 100


def loglog_slope(r: np.ndarray, acc_norm: np.ndarray) -> float:
    """The slope of log|a| fitted against log r (the truth's is -2); NaN where every point has
    the same radius (circular orbits)."""
    if not np.ptp(np.log(r)) > 1e-6:
        return np.nan
    return float(np.polyfit(np.log(r).ravel(), np.log(np.maximum(acc_norm, 1e-300)).ravel(), 1)[0])


def evaluate(model: NeuralODE, t: np.ndarray, y: np.ndarray, *, length_km: float = 1.0, max_steps: int = 16384) -> dict:
    """Compare `model` with the truth on orbits `t [n, points]`, `y [n, points, 6]`.

    Accelerations are compared at the true states (`accel_pct_*`). The trajectory is also
    propagated from each orbit's initial state over the whole orbit, and at every time step the
    model's acceleration at the state it reached is compared with the true law's at that state
    (`along_accel_pct_*`, the study's score: the field's error where the model actually goes;
    over the orbits whose propagation succeeded). How far the trajectory drifts from the true
    orbit is the final position error. `length_km` converts it into km. `critical_radius`
    (canonical units) is where the predicted |a| stops falling as 1/r^2 (see `critical_radius`).

    **Returns:** a dict of scalars (`accel_pct_*`, `along_accel_pct_mean`/`_median`,
    `angle_deg_*`, `radial_sign_error_pct`, `loglog_slope`, `critical_radius`,
    `final_position_error_km_*`, `propagation_failures`) and arrays (`accel_pct_error [n,
    points]`, `along_accel_pct_error [n, points]`, `accel_pct_per_orbit [n]`, `angle_deg [n,
    points]`, `final_position_error_km [n]`, and, for the log-log figure, `radius [n, points]`
    and the predicted `accel_norm [n, points]` in canonical units).
    """
    dtype = model.field.mlp.layers[0].weight.dtype
    acc, ys, acc_along = (
        np.asarray(x, np.float64) for x in _predict(model, jnp.asarray(t, dtype), jnp.asarray(y, dtype), max_steps)
    )
    a_true = true_acceleration(y)
    a_norm = np.linalg.norm(a_true, axis=-1)
    pct = _pct_error(acc, a_true)
    along = _pct_error(acc_along, true_acceleration(ys))
    along_stats = distribution_stats(along)
    cos = np.sum(acc * a_true, -1) / np.maximum(np.linalg.norm(acc, axis=-1) * a_norm, 1e-300)
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    r = np.linalg.norm(y[..., :3], axis=-1)
    outward = np.sum(acc * y[..., :3], -1) > 0
    acc_norm = np.linalg.norm(acc, axis=-1)
    final_err = np.linalg.norm(ys[:, -1, :3] - y[:, -1, :3], axis=-1) * length_km
    final_rel = final_err / (np.linalg.norm(y[:, -1, :3], axis=-1) * length_km)
    out = {f"accel_pct_{k}": v for k, v in distribution_stats(pct).items()}
    angle_stats = distribution_stats(angle)
    out.update(
        {
            "angle_deg_mean": angle_stats["mean"],
            "angle_deg_median": angle_stats["median"],
            "angle_deg_max": float(np.max(angle)),
            "radial_sign_error_pct": float(100 * np.mean(outward)),
            "loglog_slope": loglog_slope(r, acc_norm),
            "critical_radius": critical_radius(r, acc_norm),
            "along_accel_pct_mean": along_stats["mean"],
            "along_accel_pct_median": along_stats["median"],
            "final_position_error_km_mean": float(np.nanmean(final_err)) if np.isfinite(final_err).any() else np.nan,
            "final_position_error_rel_mean": float(np.nanmean(final_rel)) if np.isfinite(final_rel).any() else np.nan,
            "propagation_failures": int(np.sum(~np.isfinite(final_err))),
            "accel_pct_error": pct,
            "along_accel_pct_error": along,
            "accel_pct_per_orbit": pct.mean(axis=1),
            "angle_deg": angle,
            "final_position_error_km": final_err,
            "radius": r,
            "accel_norm": acc_norm,
        }
    )
    return out

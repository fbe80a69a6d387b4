"""The figures researchers draw from result files, with matplotlib (Agg).

Each takes `groups`, configuration label -> its runs' result files (best run first), in the
order to show them, and writes one PNG at `out`. Labels `#<rank> <parameters>` are shown as
`#<rank>` (the report's table says which configuration that is). They read only what `report` stores under
`metrics/<test set>/` and `datasets`, so they work on any result file of this package.
"""

import pathlib
import re

import h5py
import numpy as np


def _test_sets(f: h5py.File) -> list[str]:
    """The test sets of a result file (not its training set's metrics), fewest orbits first."""
    names = [n for n in f["metrics"] if "_test" in n] if "metrics" in f else []
    return sorted(names, key=lambda n: (int(m.group(1)) if (m := re.search(r"_(\d+)_test", n)) else 0, n))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loglog_figure(groups: dict[str, list], out, bins: int = 40) -> pathlib.Path:
    """log|a| against log r per configuration and test set: the median of the predicted |a|
    in radius bins (its best run), the truth (|a| = 1/r^2, slope -2), the fitted slope (mean
    over the configuration's runs) in the legend, a dashed line at the largest radius of the
    training set and a dotted one at the best run's critical radius (where the learned field
    stops falling as 1/r^2, `critical_radius`; none when it holds out to the last test point).
    The lower row shows |a| r^2 (1 for the truth): a learned field that turns 1/r beyond some
    radius rises there as r."""
    plt = _pyplot()
    data = _loglog_data(groups)
    sets = list(dict.fromkeys(s for d in data.values() for s in d if s != "_meta"))
    fig, axes = plt.subplots(
        2,
        len(sets),
        figsize=(4.6 * len(sets), 7),
        squeeze=False,
        sharex="col",
        gridspec_kw={"height_ratios": [2, 1]},
        layout="constrained",
    )
    for col, name in enumerate(sets):
        _loglog_column(axes[0, col], axes[1, col], name, data, bins)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return pathlib.Path(out)


def _loglog_data(groups: dict[str, list]) -> dict:
    """Per configuration label: per test set `(radius, predicted |a|, critical radius)` of its
    best run, and `_meta`: `(largest training radius, [each run's slope per test set])`."""
    data = {}
    for label, paths in groups.items():
        with h5py.File(paths[0], "r") as f:
            sets = [s for s in _test_sets(f) if "radius" in f["metrics"][s]]
            if not sets:
                continue
            data[label] = {
                s: (
                    f["metrics"][s]["radius"][()].ravel(),
                    f["metrics"][s]["accel_norm"][()].ravel(),
                    float(f["metrics"][s].attrs.get("critical_radius", np.nan)),
                )
                for s in sets
            }
            max_r = f["datasets"].attrs.get("train_max_radius", np.nan) if "datasets" in f else np.nan
        slopes = []
        for path in paths:
            with h5py.File(path, "r") as f:
                slopes.append({s: float(f["metrics"][s].attrs["loglog_slope"]) for s in _test_sets(f)})
        data[label]["_meta"] = (float(max_r), slopes)
    if not data:
        raise ValueError("no result file holds the predicted |a| at its test points (metrics/<set>/radius)")
    return data


def _loglog_column(top, bottom, name: str, data: dict, bins: int) -> None:
    """Test set `name`'s column: log|a| against log r above, |a| r^2 below, every configuration."""
    import matplotlib.ticker

    radii = np.concatenate([d[name][0] for d in data.values() if name in d])
    grid = np.geomspace(radii.min(), radii.max(), 50)
    top.loglog(grid, grid**-2.0, color="k", lw=1, ls="--", label="truth (slope -2)")
    bottom.axhline(1.0, color="k", lw=1, ls="--")
    for i, (label, d) in enumerate(data.items()):
        if name not in d:
            continue
        r, a, critical = d[name]
        centers, median = _binned_median(r, a, bins)
        slopes = np.array([s.get(name, np.nan) for s in d["_meta"][1]], float)
        slope = (
            f"{np.nanmean(slopes):.2f}" + (f" ± {np.nanstd(slopes, ddof=1):.2f}" if len(slopes) > 1 else "")
            if np.isfinite(slopes).any()
            else "n/a"
        )
        color = f"C{i % 10}"
        shown = f"{critical:.3g}" if np.isfinite(critical) else "beyond the data" if critical > 0 else "n/a"
        label = f"{_short(label)}: slope {slope}, r_c {shown}"
        top.loglog(centers, median, color=color, lw=1.3, marker=".", ms=3, label=label)
        bottom.semilogx(centers, median * centers**2, color=color, lw=1.3)
        lines = [(critical, ":", 1.2, 1.0), (d["_meta"][0], "--", 0.9, 0.8)]  # critical and training radius
        for at, style, width, alpha in lines:
            if np.isfinite(at):
                for ax in (top, bottom):
                    ax.axvline(at, color=color, ls=style, lw=width, alpha=alpha)
    ticks = [t for t in (1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64) if radii.min() / 1.1 <= t <= radii.max() * 1.1]
    for ax in (top, bottom):
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    top.set_title(name, fontsize=9)
    top.set_ylabel("|a| predicted (canonical)")
    bottom.set_ylabel("|a| r²  (truth: 1)")
    bottom.set_xlabel("r (Earth radii); dashed: largest training radius; dotted: critical radius")
    top.legend(fontsize=6.5, loc="lower left")


def test_set_figure(groups: dict[str, list], out) -> pathlib.Path:
    """The mean acceleration error (%) of each configuration on each test set: its own largest
    test set and every evaluation beside its runs (`<run id>.evals/<set>.h5`, `evaluate.py`),
    the mean over its runs with their spread, on a log scale: which models hold on data they
    were not trained on."""
    plt = _pyplot()
    errors = {label: _errors_per_set(paths) for label, paths in groups.items()}
    sets = sorted({name for per_set in errors.values() for name in per_set})
    if not sets:
        raise ValueError("no result file holds a test set's mean acceleration error (metrics/<set>)")
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(sets) + 2), 4.4), layout="constrained")
    width = 0.8 / max(len(errors), 1)
    for i, (label, per_set) in enumerate(errors.items()):
        at = [k for k, name in enumerate(sets) if name in per_set]
        values = [np.asarray(per_set[sets[k]], float) for k in at]
        x = np.array(at) - 0.4 + width * (i + 0.5)
        low = [v.mean() - v.min() for v in values]
        high = [v.max() - v.mean() for v in values]
        ax.errorbar(x, [v.mean() for v in values], yerr=[low, high], fmt="o", ms=4, capsize=2,
                    color=f"C{i % 10}", label=_short(label))  # fmt: skip
    ax.set_yscale("log")
    ax.set_xticks(range(len(sets)), [name.replace("_test", "").replace("complex_TBP_", "") for name in sets])
    ax.tick_params(axis="x", labelsize=7, labelrotation=15)
    ax.set_ylabel("acceleration error (%)")
    ax.set_title("mean over seeds; bars: min to max", fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=6.5, ncol=2)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return pathlib.Path(out)


def _errors_per_set(paths: list) -> dict[str, list[float]]:
    """Test set -> the runs' `accel_pct_mean`: each run's largest own test set, and its
    completed evaluations (which win for a set of the same name)."""
    per_set: dict[str, list[float]] = {}
    for path in paths:
        found = {}
        with h5py.File(path, "r") as f:
            own = _test_sets(f)
            if own:
                found[own[-1]] = float(f["metrics"][own[-1]].attrs["accel_pct_mean"])
        folder = pathlib.Path(path).with_suffix(".evals")
        for file in sorted(folder.glob("*.h5")) if folder.is_dir() else []:
            with h5py.File(file, "r") as f:
                if f.attrs.get("status") == "completed" and "metrics" in f:
                    found.update({name: float(g.attrs["accel_pct_mean"]) for name, g in f["metrics"].items()})
        for name, value in found.items():
            per_set.setdefault(name, []).append(value)
    return per_set


def _short(label: str) -> str:
    """A label's first word: the rank (`#3`) when labels are `#<rank> <parameters>`."""
    return label.split(" ")[0] if label.startswith("#") else label


def _binned_median(r: np.ndarray, a: np.ndarray, bins: int):
    ok = np.isfinite(r) & np.isfinite(a) & (r > 0) & (a > 0)
    r, a = r[ok], a[ok]
    if r.size == 0:
        return np.array([]), np.array([])
    if np.ptp(np.log(r)) < 1e-9:  # circular orbits: one radius
        return np.array([r.mean()]), np.array([np.median(a)])
    edges = np.geomspace(r.min(), r.max() * (1 + 1e-12), bins + 1)
    index = np.digitize(r, edges) - 1
    centers, medians = [], []
    for b in range(bins):
        inside = a[index == b]
        if inside.size:
            centers.append(np.sqrt(edges[b] * edges[b + 1]))
            medians.append(np.median(inside))
    return np.array(centers), np.array(medians)


def per_orbit_figure(groups: dict[str, list], out) -> pathlib.Path:
    """Box plots of the per-orbit mean acceleration error (%), one box per configuration (its
    runs' orbits pooled), one panel per test set."""
    plt = _pyplot()
    values: dict[str, dict[str, np.ndarray]] = {}
    for label, paths in groups.items():
        for path in paths:
            with h5py.File(path, "r") as f:
                for name in _test_sets(f):
                    x = f["metrics"][name]["accel_pct_per_orbit"][()]
                    values.setdefault(name, {}).setdefault(label, np.array([]))
                    values[name][label] = np.concatenate([values[name][label], x[np.isfinite(x)]])
    if not values:
        raise ValueError("no result file holds per-orbit errors (metrics/<set>/accel_pct_per_orbit)")
    labels = list(groups)
    fig, axes = plt.subplots(
        1,
        len(values),
        figsize=(max(4.5, 0.55 * len(labels) + 2) * len(values), 4.2),
        squeeze=False,
        layout="constrained",
    )
    for ax, (name, per_label) in zip(axes[0], values.items()):
        shown = [label for label in labels if per_label.get(label, np.array([])).size]
        ax.boxplot([per_label[label] for label in shown], showfliers=True, flierprops={"markersize": 2})
        ax.set_xticks(range(1, len(shown) + 1), [_short(label) for label in shown], fontsize=8)
        pooled = np.concatenate([per_label[label] for label in shown]) if shown else np.array([1.0])
        if pooled.min() > 0 and pooled.max() > 10 * pooled.min():
            ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("configuration (rank)")
        ax.set_ylabel("per-orbit mean acceleration error (%)")
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return pathlib.Path(out)

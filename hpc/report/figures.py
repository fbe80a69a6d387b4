"""The report's generic figures: heatmaps of a metric over two parameters, and histories."""

import math

import numpy as np

from ..sweep import Sweep
from .aggregate import Config, show
from .spec import Spec

MAX_PANELS = 24


def draw_heatmaps(path, configs: list[Config], metric: str, x: str, y: str | None, facets) -> None:
    """The mean of `metric` per configuration over `x` (columns) and `y` (rows), one panel per
    value of the `facets` (at most `MAX_PANELS`), one colour scale for all."""
    import matplotlib.colors
    import matplotlib.pyplot as plt

    cells: dict[tuple, list[float]] = {}
    for config in configs:
        mean = config.stats[metric]["mean"]
        if math.isfinite(mean):
            key = (
                tuple(show(config.params[f]) for f in facets),
                show(config.params[y]) if y else "",
                show(config.params[x]),
            )
            cells.setdefault(key, []).append(mean)
    all_params = [c.params for c in configs]
    xs = ordered({show(p[x]): p[x] for p in all_params})
    ys = ordered({show(p[y]): p[y] for p in all_params}) if y else [""]
    panels = sorted({k[0] for k in cells}) or [()]
    shown = panels[:MAX_PANELS]
    values = [float(np.mean(v)) for v in cells.values()]
    positive = values and min(values) > 0
    norm = (
        matplotlib.colors.LogNorm(min(values), max(values))
        if positive and max(values) > 10 * min(values)
        else matplotlib.colors.Normalize(min(values, default=0), max(values, default=1))
    )
    ncols = min(3, len(shown))
    nrows = math.ceil(len(shown) / ncols)
    width = max(3.0, 0.9 * len(xs) + 2.2)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, (0.5 * len(ys) + 1.6) * nrows), squeeze=False)
    for ax in axes.flat[len(shown) :]:
        ax.set_visible(False)
    image = None
    for n, (ax, panel) in enumerate(zip(axes.flat, shown)):
        grid = np.full((len(ys), len(xs)), np.nan)
        for (p, yv, xv), v in cells.items():
            if p == panel:
                grid[ys.index(yv), xs.index(xv)] = np.mean(v)
        bottom = ax.get_subplotspec().is_last_row() or len(shown) - n <= ncols  # no panel below it
        image = _heatmap_panel(ax, grid, norm, (xs, x, bottom), (ys, y))
        ax.set_title(" ".join(f"{f}={v}" for f, v in zip(facets, panel)) or metric, fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label=metric.split(".")[-1])
    if len(panels) > len(shown):
        fig.suptitle(f"the first {len(shown)} of {len(panels)} panels", fontsize=9)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def _heatmap_panel(ax, grid, norm, columns: tuple, rows: tuple):
    """One panel: `grid` (rows x columns, NaN where no configuration) in grey where empty, its
    values written in small grids; the column labels (`columns`: ticks, name, whether this
    panel is at the bottom) and the row labels (`rows`: ticks, name) where they belong."""
    import matplotlib

    (xs, x, bottom), (ys, y) = columns, rows
    cmap = matplotlib.colormaps["viridis"].copy()
    cmap.set_bad("#d0d0d0")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
    first_column = ax.get_subplotspec().is_first_col()
    ax.set_xticks(range(len(xs)), xs if bottom else [], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(ys)), ys if first_column else [], fontsize=8)
    if bottom:
        ax.set_xlabel(x)
    if y and first_column:
        ax.set_ylabel(y)
    if grid.size <= 100:
        for (i, j), v in np.ndenumerate(grid):
            if math.isfinite(v):
                color = "white" if norm(v) < 0.5 else "black"
                ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7, color=color)
    return image


def draw_histories(path, top: list[Config], sweep: Sweep, spec: Spec) -> None:
    import h5py
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(spec.curves), 1, figsize=(9, 3.2 * len(spec.curves)), squeeze=False, sharex=True)
    marks: set[int] = set()
    for i, config in enumerate(top):
        series = {c.path: [] for c in spec.curves}
        for row in config.runs:
            result = sweep.result_path(row["run_id"])
            try:
                with h5py.File(result, "r") as f:
                    for curve in spec.curves:
                        values = _read(f, curve.path)
                        if values is not None:
                            series[curve.path].append(np.asarray(values, float))
                    if spec.boundaries:
                        marks.update(int(s) for s in np.atleast_1d(_read(f, spec.boundaries, ())) if s > 0)
            except OSError:
                continue
        for ax, curve in zip(axes[:, 0], spec.curves):
            if not series[curve.path]:
                continue
            length = max(len(s) for s in series[curve.path])
            stack = np.full((len(series[curve.path]), length), np.nan)
            for j, s in enumerate(series[curve.path]):
                stack[j, : len(s)] = s
            steps = np.arange(length)
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    median, low, high = np.nanmedian(stack, 0), np.nanmin(stack, 0), np.nanmax(stack, 0)
            color = f"C{i % 10}"
            ax.plot(steps, median, color=color, lw=1.0, label=f"#{i + 1} (n={len(stack)})")
            if len(stack) > 1:
                ax.fill_between(steps, low, high, color=color, alpha=0.2, lw=0)
    for ax, curve in zip(axes[:, 0], spec.curves):
        for step in sorted(marks)[:50]:
            ax.axvline(step, color="0.5", ls=":", lw=0.8)
        if curve.log and any(line.get_ydata().size and np.nanmax(line.get_ydata()) > 0 for line in ax.lines):
            ax.set_yscale("log")
        ax.set_ylabel(curve.label)
    axes[0, 0].legend(fontsize=7, loc="upper right", ncols=2)
    axes[-1, 0].set_xlabel("step")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def _read(f, path: str, default=None):
    """The dataset at `path` in an open result file, or the attribute its last part names on
    the group before it (a short list is stored as an attribute); `default` if neither."""
    if path in f:
        return f[path][()]
    group, _, name = path.rpartition("/")
    if (group or "/") in f and name in f[group or "/"].attrs:
        return f[group or "/"].attrs[name]
    return default


def ordered(values: dict) -> list[str]:
    """Shown values, numbers in numeric order and the rest as text."""
    numbers = sorted((v, s) for s, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    rest = sorted(s for s, v in values.items() if not (isinstance(v, (int, float)) and not isinstance(v, bool)))
    return [s for _, s in numbers] + rest

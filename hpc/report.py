"""`hpc report`: a sweep as one static page, `report.html`, with its figures and data beside it.

    hpc report latest -o report/            # report/report.html, report/runs.csv, report/configs.csv

The page holds the status (failures with their reasons), the configurations ranked by a
metric with seeds aggregated (mean, std, n, best), heatmaps of the metric over two varying
parameters faceted by the rest, the histories (median over seeds, a band from min to max,
phase boundaries) and the application's own figures. It reads only what exists, so it works on
a sweep that is still running, or whose runs failed or were lost.

`hpc` knows scalar metrics, per-run histories and a registry of figures; what they are is the
application's: a `Spec` named by the sweep's entry module (`REPORT` in `train.py`). Without
one, the report ranks by the first `metrics.*` column and draws only the generic figures.
"""

import csv
import dataclasses
import fnmatch
import html
import importlib
import json
import math
import pathlib
import sys
from collections.abc import Callable

import numpy as np

from . import status
from .sweep import Sweep
from .table import goal_key, number, resolve_metric, rows

Groups = dict[str, list[pathlib.Path]]  # a configuration's label -> the result files of its runs, best first


@dataclasses.dataclass(frozen=True)
class Figure:
    """An application's figure: `draw(groups, out)` writes an image at `out` (a `.png` path)
    from the result files of the top configurations, `groups` (ranked, best first)."""

    name: str
    title: str
    draw: Callable[[Groups, pathlib.Path], object]
    caption: str = ""


@dataclasses.dataclass(frozen=True)
class Curve:
    """A per-step history to plot: the dataset (or array attribute) `path` in each result file."""

    path: str
    label: str
    log: bool = False


@dataclasses.dataclass(frozen=True)
class Spec:
    """What a report shows, given by the application.

    `metric`: the default ranking metric, a column or glob pattern (or several, tried in
    order, see `table.resolve_metric`); `columns`: glob patterns of the metric columns the
    table aggregates; `goals`: glob pattern -> `min`, `max` or a target value (the best is the
    closest), `min` by default; `seed`: the parameter aggregated over; `heatmap`: preferred
    heatmap axes; `curves`: histories; `boundaries`: a dataset or attribute of step indices marked on them;
    `figures`: the application's own."""

    metric: str | tuple[str, ...] = "metrics.*"
    columns: tuple[str, ...] = ("metrics.*", "training.*", "eval.*")
    goals: dict = dataclasses.field(default_factory=dict)
    seed: str = "seed"
    heatmap: tuple[str, ...] = ()
    curves: tuple[Curve, ...] = ()
    boundaries: str | None = None
    figures: tuple[Figure, ...] = ()

    def goal(self, column: str):
        return next((g for pattern, g in self.goals.items() if fnmatch.fnmatch(column, pattern)), "min")


def load_spec(sweep: Sweep, app: str | None = None) -> tuple[Spec, str]:
    """The `Spec` of `app` (`module`, `module:attribute` or a `.py` file; default: the sweep's
    entry module, found in the directory it was launched from, attribute `REPORT`), and where it
    came from. Falls back to the generic `Spec()` when the sweep names none."""
    target = app or sweep.entry.split(":")[0]
    module_name, _, attribute = target.partition(":")
    path = pathlib.Path(module_name)
    if module_name.endswith(".py"):
        sys.path.insert(0, str(path.resolve().parent))
        module_name = path.stem
    for folder in filter(None, [sweep.workdir, str(pathlib.Path.cwd())]):
        if folder not in sys.path:
            sys.path.append(folder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if app:
            raise ValueError(f"`--app {app}`: cannot import {module_name!r} ({exc}).") from exc
        return Spec(), f"generic (the sweep's entry module {module_name!r} does not import here: {exc})"
    spec = getattr(module, attribute or "REPORT", None)
    if not isinstance(spec, Spec):
        if app:
            raise ValueError(f"`--app {app}`: {module_name}.{attribute or 'REPORT'} is not an hpc.report.Spec.")
        return Spec(), f"generic ({module_name} defines no REPORT)"
    return spec, f"{module_name}.{attribute or 'REPORT'}"


# ---------------------------------------------------------------------------------------------
# Configurations: runs grouped by the parameters that vary, seeds aggregated


@dataclasses.dataclass
class Config:
    """One configuration: its varying parameters, its runs' rows, and per metric column
    `stats[column] = {"mean", "std", "n", "best", "best_run"}` over its completed runs."""

    params: dict
    runs: list[dict]
    stats: dict = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        return " ".join(f"{k}={_show(v)}" for k, v in self.params.items()) or "all runs"

    @property
    def completed(self) -> list[dict]:
        return [r for r in self.runs if r["state"] == "completed"]


def aggregate(table: list[dict], params: list[str], metrics: list[str], spec: Spec) -> list["Config"]:
    """Group the rows that have a config by the values of `params` (the `config.*` columns that
    vary, less the seed) and aggregate each metric over a group's completed runs: mean, sample
    std (NaN for one value), n (values that are numbers: infinities count, NaN does not) and
    best (under `spec.goal`)."""
    groups: dict[str, Config] = {}
    for row in table:
        if not any(k.startswith("config.") for k in row):
            continue  # no result file (yet): in the status, not in the table
        values = {p[len("config."):]: row.get(p) for p in params}
        key = json.dumps(values, sort_keys=True, default=str)
        groups.setdefault(key, Config(values, [])).runs.append(row)
    for config in groups.values():
        for column in metrics:
            goal = spec.goal(column)
            valued = [r for r in config.completed if number(r.get(column))]
            x = np.array([r[column] for r in valued], float)
            best = min(valued, key=lambda r: goal_key(r[column], goal), default=None)
            config.stats[column] = {
                "mean": float(x.mean()) if x.size else math.nan,
                "std": float(x.std(ddof=1)) if x.size > 1 and np.isfinite(x).all() else math.nan,
                "n": int(x.size),
                "best": best[column] if best else math.nan,
                "best_run": best["run_id"] if best else "",
            }
    return list(groups.values())


def independent(table: list[dict], params: list[str]) -> tuple[list[str], dict[str, str]]:
    """`params` less those that follow another: a parameter whose values split the runs exactly
    as another's do (`curriculum.phases` when its learning rate is `${lr}` and `lr` is swept)
    adds no configuration; of such, the one with the shortest values is kept.
    Returns the parameters kept and {dropped: the parameter it follows}."""
    keyed = [r for r in table if any(k.startswith("config.") for k in r)]

    def longest(p):  # the parameter with the shortest values is kept: `lr`, not `curriculum.phases`
        return max((len(_show(r.get(p))) for r in keyed), default=0)

    kept, follows, partitions = [], {}, {}
    for p in sorted(params, key=lambda p: (longest(p), params.index(p))):
        labels: dict[str, int] = {}
        partition = tuple(labels.setdefault(json.dumps(r.get(p), sort_keys=True, default=str), len(labels))
                          for r in keyed)
        if partition in partitions:
            follows[p] = partitions[partition]
            continue
        partitions[partition] = p
        kept.append(p)
    return [p for p in params if p in kept], {k[len("config."):]: v[len("config."):] for k, v in follows.items()}


def rank(configs: list[Config], metric: str, goal) -> list[Config]:
    """Best first by the mean of `metric`; configurations without a value last."""
    return sorted(configs, key=lambda c: goal_key(c.stats[metric]["mean"], goal))


# ---------------------------------------------------------------------------------------------
# The report


@dataclasses.dataclass(frozen=True)
class Options:
    """`hpc report`'s options (see its `--help`)."""

    metric: str | None = None
    x: str | None = None
    y: str | None = None
    facet: tuple[str, ...] | None = None
    top: int = 8
    app: str | None = None


def build(sweep: Sweep, out_dir, options: Options = Options()) -> dict:
    """Write the report of `sweep` into `out_dir`; returns what it wrote and what went wrong
    (`{"html", "figures", "errors", "configs", "runs"}`). Bad options raise `ValueError` before
    anything is written."""
    spec, spec_from = load_spec(sweep, options.app)
    table, columns = rows(sweep)
    seed = f"config.{spec.seed}"
    params, follows = independent(table, [c for c in columns if c.startswith("config.") and c != seed])
    names = [p[len("config."):] for p in params]
    metric_columns = [c for c in columns if any(fnmatch.fnmatch(c, p) for p in spec.columns)
                      and any(number(r.get(c)) for r in table)]
    have_results = any(r["state"] == "completed" for r in table)
    metric = resolve_metric(columns, options.metric or spec.metric) if (have_results or options.metric) else None
    if metric is not None:
        metric_columns = [metric] + [c for c in metric_columns if c != metric]
    x, y, facets = _heatmap_axes(names, options, spec)

    out_dir = pathlib.Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    configs = aggregate(table, params, metric_columns, spec)
    if metric is not None:
        configs = rank(configs, metric, spec.goal(metric))
    _write_csv(out_dir / "runs.csv", table, columns)
    _write_configs_csv(out_dir / "configs.csv", configs, names, metric_columns)

    import matplotlib

    matplotlib.use("Agg")
    errors: list[str] = []
    figures: list[tuple[str, str, str]] = []  # (title, file, caption)

    def attempt(title, name, caption, draw):
        path = out_dir / "figures" / f"{name}.png"
        path.unlink(missing_ok=True)  # an earlier report's figure is not shown as this one's
        try:
            draw(path)
        except Exception as exc:  # a figure that cannot be drawn is named on the page, not fatal
            errors.append(f"{title}: {type(exc).__name__}: {exc}")
            return
        if path.exists():
            figures.append((title, f"figures/{path.name}", caption))

    top = [c for c in configs if c.completed][: options.top]
    if metric is not None and x is not None:
        title = f"Heatmap of {_short(metric)} over {x}" + (f" and {y}" if y else "")
        attempt(title, "heatmap", _heatmap_caption(facets, spec, metric),
                lambda path: _draw_heatmaps(path, configs, metric, x, y, facets))
    if spec.curves and top:
        attempt("Histories", "histories", "Median over seeds (line) and min-max (band); dotted lines mark "
                f"{spec.boundaries or 'nothing'}.",
                lambda path: _draw_histories(path, top, sweep, spec))
    groups = {f"#{i + 1} {c.label}": _ranked_paths(c, sweep, metric, spec) for i, c in enumerate(top)}
    for figure in spec.figures if groups else ():
        attempt(figure.title, figure.name, figure.caption, lambda path, f=figure: f.draw(groups, path))

    page = _page(sweep, table, configs, names, follows, metric_columns, metric, spec, spec_from, figures, errors,
                 len(top))
    (out_dir / "report.html").write_text(page)
    return {"html": out_dir / "report.html", "figures": [out_dir / f for _, f, _ in figures], "errors": errors,
            "configs": configs, "runs": table}


def _ranked_paths(config: Config, sweep: Sweep, metric: str | None, spec: Spec) -> list[pathlib.Path]:
    """The result files of a configuration's completed runs, its best run first."""
    done = config.completed
    if metric is not None:
        done = sorted(done, key=lambda r: goal_key(r.get(metric), spec.goal(metric)))
    return [sweep.result_path(r["run_id"]) for r in done]


def _heatmap_axes(names: list[str], options: Options, spec: Spec):
    for flag, value in (("--x", options.x), ("--y", options.y)) + tuple(("--facet", f) for f in options.facet or ()):
        if value is not None and value not in names:
            raise ValueError(f"`{flag} {value}` is not a parameter that varies in this sweep; those that vary "
                             f"are: {', '.join(names) or 'none (every run has the same parameters)'}.")
    chosen = [v for v in (options.x, options.y, *(options.facet or ())) if v is not None]
    if len(set(chosen)) < len(chosen):
        raise ValueError(f"`--x`, `--y` and `--facet` must name different parameters, got {', '.join(chosen)}.")
    preferred = [n for n in spec.heatmap if n in names] + [n for n in names if n not in spec.heatmap]
    x = options.x or next((n for n in preferred if n != options.y), None)
    y = options.y or next((n for n in preferred if n not in (x,)), None)
    facets = tuple(options.facet) if options.facet is not None else tuple(n for n in names if n not in (x, y))
    return x, y, facets


def _heatmap_caption(facets, spec: Spec, metric: str) -> str:
    over = f"one panel per {', '.join(facets)}; " if facets else ""
    return (f"The mean over seeds of {metric} (goal: {spec.goal(metric)}); {over}grey: no completed run. "
            "Parameters neither on an axis nor faceted are averaged over.")


MAX_PANELS = 24


def _draw_heatmaps(path, configs: list[Config], metric: str, x: str, y: str | None, facets) -> None:
    import matplotlib.colors
    import matplotlib.pyplot as plt

    cells: dict[tuple, list[float]] = {}
    for config in configs:
        mean = config.stats[metric]["mean"]
        if math.isfinite(mean):
            key = (tuple(_show(config.params[f]) for f in facets), _show(config.params[y]) if y else "",
                   _show(config.params[x]))
            cells.setdefault(key, []).append(mean)
    all_params = [c.params for c in configs]
    xs = _ordered({_show(p[x]): p[x] for p in all_params})
    ys = _ordered({_show(p[y]): p[y] for p in all_params}) if y else [""]
    panels = sorted({k[0] for k in cells}) or [()]
    shown = panels[:MAX_PANELS]
    values = [float(np.mean(v)) for v in cells.values()]
    positive = values and min(values) > 0
    norm = (matplotlib.colors.LogNorm(min(values), max(values)) if positive and max(values) > 10 * min(values)
            else matplotlib.colors.Normalize(min(values, default=0), max(values, default=1)))
    ncols = min(3, len(shown))
    nrows = math.ceil(len(shown) / ncols)
    width = max(3.0, 0.9 * len(xs) + 2.2)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, (0.5 * len(ys) + 1.6) * nrows), squeeze=False)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    image = None
    for ax, panel in zip(axes.flat, shown):
        grid = np.full((len(ys), len(xs)), np.nan)
        for (p, yv, xv), v in cells.items():
            if p == panel:
                grid[ys.index(yv), xs.index(xv)] = np.mean(v)
        cmap = matplotlib.colormaps["viridis"].copy()
        cmap.set_bad("#d0d0d0")
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
        first_column, last_row = ax.get_subplotspec().is_first_col(), ax.get_subplotspec().is_last_row()
        ax.set_xticks(range(len(xs)), xs if last_row or len(shown) - shown.index(panel) <= ncols else [],
                      rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(ys)), ys if first_column else [], fontsize=8)
        if last_row or len(shown) - shown.index(panel) <= ncols:
            ax.set_xlabel(x)
        if y and first_column:
            ax.set_ylabel(y)
        ax.set_title(" ".join(f"{f}={v}" for f, v in zip(facets, panel)) or metric, fontsize=9)
        if grid.size <= 100:
            for (i, j), v in np.ndenumerate(grid):
                if math.isfinite(v):
                    ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7,
                            color="white" if norm(v) < 0.5 else "black")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label=metric.split(".")[-1])
    if len(panels) > len(shown):
        fig.suptitle(f"the first {len(shown)} of {len(panels)} panels", fontsize=9)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def _draw_histories(path, top: list[Config], sweep: Sweep, spec: Spec) -> None:
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


# ---------------------------------------------------------------------------------------------
# Files


def _write_csv(path, table, columns) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(table)


def _write_configs_csv(path, configs, names, metrics) -> None:
    header = ["rank", *names, "runs", "completed"]
    for m in metrics:
        header += [f"{m}:mean", f"{m}:std", f"{m}:n", f"{m}:best", f"{m}:best_run"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, c in enumerate(configs):
            line = [i + 1, *(json.dumps(c.params[n]) if isinstance(c.params[n], (list, dict)) else c.params[n]
                             for n in names), len(c.runs), len(c.completed)]
            for m in metrics:
                s = c.stats[m]
                line += [s["mean"], s["std"], s["n"], s["best"], s["best_run"]]
            writer.writerow(line)


MAX_ROWS = 500  # configurations shown on the page; configs.csv has all


def _page(sweep, table, configs, names, follows, metrics, metric, spec, spec_from, figures, errors, n_top) -> str:
    e = html.escape
    counts: dict[str, int] = {}
    for row in table:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    active = sum(counts.get(s, 0) for s in status.ACTIVE_STATES + ("planned", "deferred", "unknown"))
    bad = [r for r in table if r["state"] not in ("completed",) + status.ACTIVE_STATES + ("planned", "deferred")]
    parts = [f"<h1>Sweep {e(sweep.sweep_id)}</h1>",
             f"<p class=meta>{e(str(sweep.path))} &middot; experiment {e(sweep.experiment)} &middot; created "
             f"{e(sweep.created)} &middot; figures from {e(spec_from)}</p>",
             "<h2>Status</h2>",
             "<table class=counts><tr>" + "".join(f"<th>{e(k)}</th>" for k in counts) + "<th>total</th></tr><tr>"
             + "".join(f"<td>{v}</td>" for v in counts.values()) + f"<td>{len(table)}</td></tr></table>"]
    if active:
        parts.append(f"<p class=note>{active} run{' has' if active == 1 else 's have'} not finished (or "
                     "their state is unknown): this report "
                     "shows the results that exist now.</p>")
    if bad:
        parts.append(f"<h3>Runs that did not complete ({len(bad)})</h3><table id=failures><tr><th>run</th>"
                     "<th>state</th><th>reason</th><th>overrides</th></tr>")
        for r in bad:
            overrides = " ".join(sweep.runs.get(r["run_id"], {}).get("overrides", []))
            parts.append(f"<tr><td><code>{e(r['run_id'])}</code></td><td>{e(r['state'])}</td>"
                         f"<td>{e(str(r['reason']))}</td><td><code>{e(overrides)}</code></td></tr>")
        parts.append("</table>")
    parts.append("<h2>Configurations</h2>")
    if metric is None:
        parts.append("<p>No run has completed yet: nothing to rank.</p>")
    else:
        varying = (", ".join(names) if names else "none") + "".join(
            f"; {k} follows {v}" for k, v in follows.items())
        parts.append(f"<p>Ranked by the mean of <code>{e(metric)}</code> (goal: {e(str(spec.goal(metric)))}). "
                     f"Parameters that vary: {e(varying)}; aggregated over <code>{e(spec.seed)}</code>: mean, "
                     "sample std, n (runs with a value) and best. All rows and full precision: "
                     "<a href=configs.csv>configs.csv</a>; one row per run: <a href=runs.csv>runs.csv</a>.</p>")
        head1 = ("<tr><th rowspan=2>#</th>" + "".join(f"<th rowspan=2>{e(n)}</th>" for n in names)
                 + "<th rowspan=2>runs</th>"
                 + "".join(f"<th colspan=4 title='{e(m)}'>{e(_short(m))}</th>" for m in metrics) + "</tr>")
        head2 = "<tr>" + "<th>mean</th><th>std</th><th>n</th><th>best</th>" * len(metrics) + "</tr>"
        body = []
        for i, c in enumerate(configs[:MAX_ROWS]):
            cells = "".join(f"<td>{e(_show(c.params[n]))}</td>" for n in names)
            stats = "".join(f"<td>{_num(c.stats[m]['mean'])}</td><td>{_num(c.stats[m]['std'])}</td>"
                            f"<td>{c.stats[m]['n']}</td><td title='{e(c.stats[m]['best_run'])}'>"
                            f"{_num(c.stats[m]['best'])}</td>" for m in metrics)
            body.append(f"<tr><td>{i + 1}</td>{cells}<td>{len(c.completed)}/{len(c.runs)}</td>{stats}</tr>")
        parts.append(f"<div class=wide><table id=configs>{head1}{head2}{''.join(body)}</table></div>")
        if len(configs) > MAX_ROWS:
            parts.append(f"<p class=note>The first {MAX_ROWS} of {len(configs)} configurations; "
                         "configs.csv has all.</p>")
    if figures or errors:
        parts.append(f"<h2>Figures</h2><p>Histories and the application's figures show the top {n_top} "
                     "configurations (<code>--top</code>), numbered by rank.</p>")
    if figures and n_top:
        parts.append("<p id=legend>" + "<br>".join(f"#{i + 1}: {e(c.label)}" for i, c in
                                                    enumerate([c for c in configs if c.completed][:n_top])) + "</p>")
    for title, file, caption in figures:
        parts.append(f"<figure><h3>{e(title)}</h3><img src='{e(file)}' alt='{e(title)}'>"
                     f"<figcaption>{e(caption)}</figcaption></figure>")
    for error in errors:
        parts.append(f"<p class=error>Figure not drawn: {e(error)}</p>")
    return _HTML.format(title=e(f"Sweep {sweep.sweep_id}"), body="\n".join(parts))


def _short(column: str) -> str:
    return column.replace("metrics.", "").replace("training.", "")


def _num(value) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "&infin;" if value > 0 else "&minus;&infin;"
    if isinstance(value, float) and math.isnan(value):
        return "&ndash;"
    return f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))


def _show(value) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) or value is None else str(value)


def _ordered(values: dict) -> list[str]:
    """Shown values, numbers in numeric order and the rest as text."""
    numbers = sorted((v, s) for s, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    rest = sorted(s for s, v in values.items() if not (isinstance(v, (int, float)) and not isinstance(v, bool)))
    return [s for _, s in numbers] + rest


_HTML = """<!DOCTYPE html>
<html lang=en><head><meta charset=utf-8><title>{title}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222 }}
table {{ border-collapse: collapse; margin: .5em 0; font-size: 13px }}
th, td {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right }}
th {{ background: #f2f2f2 }}
td:nth-child(-n+2) {{ text-align: left }}
.wide {{ overflow: auto; max-height: 70vh }}
.meta, .note {{ color: #555 }}
.error {{ color: #a00 }}
figure {{ margin: 1.5em 0 }}
img {{ max-width: 100% }}
</style></head>
<body>
{body}
</body></html>
"""

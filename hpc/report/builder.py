"""`hpc report`'s one call, `build`: the options checked, the table aggregated, figures drawn,
the page and its files written."""

import dataclasses
import fnmatch
import pathlib

from ..sweep import Sweep
from ..table import resolve_metric, rows
from .aggregate import Config, aggregate, goal_key, independent, number, rank
from .figures import draw_heatmaps, draw_histories
from .page import Page, page_html, short, write_configs_csv, write_csv
from .spec import Spec


def load_spec(sweep: Sweep, app: str | None = None) -> tuple[Spec, str]:
    """The report `Spec` of `app` (`module[:attribute]` or a `.py` file naming an `hpc.App`, or
    a `Spec` itself; default: the sweep's application, imported from the directory it was
    launched in), and where it came from. Falls back to the generic `Spec()` when the sweep's
    application does not import here."""
    from ..app import App, load_app

    reference = app or sweep.entry
    try:
        found = load_app(reference, sweep.workdir, kinds=(App, Spec))
    except ValueError as exc:
        if app:
            raise ValueError(f"`--app {app}`: {exc}") from None
        return Spec(), f"generic ({exc})"
    return (found.report if isinstance(found, App) else found), reference


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
    names = [p[len("config.") :] for p in params]
    metric_columns = [
        c for c in columns if any(fnmatch.fnmatch(c, p) for p in spec.columns) and any(number(r.get(c)) for r in table)
    ]
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
    write_csv(out_dir / "runs.csv", table, columns)
    write_configs_csv(out_dir / "configs.csv", configs, names, metric_columns)

    top = [c for c in configs if c.completed][: options.top]
    figures = _Figures(out_dir / "figures")
    if metric is not None and x is not None:
        title = f"Heatmap of {short(metric)} over {x}" + (f" and {y}" if y else "")
        figures.attempt(
            title,
            "heatmap",
            _heatmap_caption(facets, spec, metric),
            lambda path: draw_heatmaps(path, configs, metric, x, y, facets),
            [r for c in configs for r in c.completed],
        )
    _draw_top(figures, top, sweep, spec, metric)
    errors, drawn, figures = figures.errors, figures.drawn, figures.shown
    page = Page(
        sweep, table, configs, names, follows, metric_columns, metric, spec, spec_from, figures, errors, len(top)
    )
    (out_dir / "report.html").write_text(page_html(page))
    if drawn:
        from ..catalog import record_figures

        record_figures(sweep.results_root, drawn, made_by=f"hpc report {sweep.sweep_id}")
    return {
        "html": out_dir / "report.html",
        "figures": [out_dir / f for _, f, _ in figures],
        "errors": errors,
        "configs": configs,
        "runs": table,
    }


class _Figures:
    """The report's figures as they are attempted: those drawn, what each shows, and those
    that could not be drawn (named on the page, not fatal)."""

    def __init__(self, folder: pathlib.Path):
        import matplotlib

        matplotlib.use("Agg")
        self.folder = folder
        self.errors: list[str] = []
        self.shown: list[tuple[str, str, str]] = []  # (title, file, caption)
        self.drawn: list[dict] = []  # what `hpc.catalog.record_figures` keeps: each figure and its runs

    def attempt(self, title: str, name: str, caption: str, draw, used: list[dict]) -> None:
        path = self.folder / f"{name}.png"
        path.unlink(missing_ok=True)  # an earlier report's figure is not shown as this one's
        try:
            draw(path)
        except Exception as exc:  # a figure that cannot be drawn is named on the page, not fatal
            self.errors.append(f"{title}: {type(exc).__name__}: {exc}")
            return
        if path.exists():
            self.shown.append((title, f"figures/{path.name}", caption))
            self.drawn.append({"path": str(path.resolve()), "title": title, "runs": [r["run_id"] for r in used]})


def _draw_top(figures: _Figures, top: list[Config], sweep: Sweep, spec: Spec, metric: str | None) -> None:
    """The figures of the top configurations: their histories, and the application's own."""
    if spec.curves and top:
        figures.attempt(
            "Histories",
            "histories",
            f"Median over seeds (line) and min-max (band); dotted lines mark {spec.boundaries or 'nothing'}.",
            lambda path: draw_histories(path, top, sweep, spec),
            [r for c in top for r in c.completed],
        )
    groups = {f"#{i + 1} {c.label}": _ranked_paths(c, sweep, metric, spec) for i, c in enumerate(top)}
    for figure in spec.figures if groups else ():
        used = [r for c in top for r in c.completed]
        figures.attempt(figure.title, figure.name, figure.caption, lambda path, f=figure: f.draw(groups, path), used)


def _ranked_paths(config: Config, sweep: Sweep, metric: str | None, spec: Spec) -> list[pathlib.Path]:
    """The result files of a configuration's completed runs, its best run first."""
    done = config.completed
    if metric is not None:
        done = sorted(done, key=lambda r: goal_key(r.get(metric), spec.goal(metric)))
    return [sweep.result_path(r["run_id"]) for r in done]


def _heatmap_axes(names: list[str], options: Options, spec: Spec):
    for flag, value in (("--x", options.x), ("--y", options.y)) + tuple(("--facet", f) for f in options.facet or ()):
        if value is not None and value not in names:
            raise ValueError(
                f"`{flag} {value}` is not a parameter that varies in this sweep; those that vary "
                f"are: {', '.join(names) or 'none (every run has the same parameters)'}."
            )
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
    return (
        f"The mean over seeds of {metric} (goal: {spec.goal(metric)}); {over}grey: no completed run. "
        "Parameters neither on an axis nor faceted are averaged over."
    )

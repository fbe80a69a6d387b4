"""The report's files: `report.html` (from one `Page`), `runs.csv` and `configs.csv`."""

import csv
import dataclasses
import html
import json
import math

from .. import status
from ..sweep import Sweep
from .aggregate import Config, show
from .spec import Spec


def write_csv(path, table, columns) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(table)


def write_configs_csv(path, configs, names, metrics) -> None:
    header = ["rank", *names, "runs", "completed"]
    for m in metrics:
        header += [f"{m}:mean", f"{m}:std", f"{m}:n", f"{m}:best", f"{m}:best_run"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, c in enumerate(configs):
            line = [
                i + 1,
                *(json.dumps(c.params[n]) if isinstance(c.params[n], (list, dict)) else c.params[n] for n in names),
                len(c.runs),
                len(c.completed),
            ]
            for m in metrics:
                s = c.stats[m]
                line += [s["mean"], s["std"], s["n"], s["best"], s["best_run"]]
            writer.writerow(line)


MAX_ROWS = 500  # configurations shown on the page; configs.csv has all


@dataclasses.dataclass(frozen=True)
class Page:
    """Everything `report.html` shows."""

    sweep: Sweep
    table: list[dict]  # one row per run (`hpc.table.rows`)
    configs: list[Config]  # ranked
    names: list[str]  # the parameters that vary
    follows: dict[str, str]  # a parameter that only follows another -> that one
    metrics: list[str]  # the aggregated metric columns
    metric: str | None  # the ranking metric; None before any run has completed
    spec: Spec
    spec_from: str  # where the spec came from
    figures: list[tuple[str, str, str]]  # (title, file, caption)
    errors: list[str]  # figures that could not be drawn
    n_top: int  # configurations in the histories and figures


def page_html(page: Page) -> str:
    """The page as HTML: inline CSS, no script, nothing from the network."""
    parts = _status_html(page) + _configs_html(page) + _figures_html(page)
    return _HTML.format(title=html.escape(f"Sweep {page.sweep.sweep_id}"), body="\n".join(parts))


def _status_html(page: Page) -> list[str]:
    """The sweep, its counts per state, and the runs that did not complete."""
    sweep, table, e = page.sweep, page.table, html.escape
    counts: dict[str, int] = {}
    for row in table:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    active = sum(counts.get(s, 0) for s in status.NOT_FINISHED)
    bad = [r for r in table if r["state"] in status.ENDED_BADLY]  # unknown is not finished, not failed
    parts = [
        f"<h1>Sweep {e(sweep.sweep_id)}</h1>",
        f"<p class=meta>{e(str(sweep.path))} &middot; experiment {e(sweep.experiment)} &middot; created "
        f"{e(sweep.created)} &middot; figures from {e(page.spec_from)}</p>",
        "<h2>Status</h2>",
        "<table class=counts><tr>"
        + "".join(f"<th>{e(k)}</th>" for k in counts)
        + "<th>total</th></tr><tr>"
        + "".join(f"<td>{v}</td>" for v in counts.values())
        + f"<td>{len(table)}</td></tr></table>",
    ]
    if active:
        parts.append(
            f"<p class=note>{active} run{' has' if active == 1 else 's have'} not finished (or "
            "their state is unknown): this report "
            "shows the results that exist now.</p>"
        )
    if bad:
        parts.append(
            f"<h3>Runs that did not complete ({len(bad)})</h3><table id=failures><tr><th>run</th>"
            "<th>state</th><th>reason</th><th>overrides</th></tr>"
        )
        for r in bad:
            overrides = " ".join(sweep.runs.get(r["run_id"], {}).get("overrides", []))
            parts.append(
                f"<tr><td><code>{e(r['run_id'])}</code></td><td>{e(r['state'])}</td>"
                f"<td>{e(str(r['reason']))}</td><td><code>{e(overrides)}</code></td></tr>"
            )
        parts.append("</table>")
    return parts


def _configs_html(page: Page) -> list[str]:
    """The configurations, ranked by the metric, with their statistics over seeds."""
    configs, names, metrics, metric, e = page.configs, page.names, page.metrics, page.metric, html.escape
    parts = ["<h2>Configurations</h2>"]
    if metric is None:
        return parts + ["<p>No run has completed yet: nothing to rank.</p>"]
    varying = (", ".join(names) if names else "none") + "".join(f"; {k} follows {v}" for k, v in page.follows.items())
    parts.append(
        f"<p>Ranked by the mean of <code>{e(metric)}</code> (goal: {e(str(page.spec.goal(metric)))}). "
        f"Parameters that vary: {e(varying)}; aggregated over <code>{e(page.spec.seed)}</code>: mean, "
        "sample std, n (runs with a value) and best. All rows and full precision: "
        "<a href=configs.csv>configs.csv</a>; one row per run: <a href=runs.csv>runs.csv</a>.</p>"
    )
    head1 = (
        "<tr><th rowspan=2>#</th>"
        + "".join(f"<th rowspan=2>{e(n)}</th>" for n in names)
        + "<th rowspan=2>runs</th>"
        + "".join(f"<th colspan=4 title='{e(m)}'>{e(short(m))}</th>" for m in metrics)
        + "</tr>"
    )
    head2 = "<tr>" + "<th>mean</th><th>std</th><th>n</th><th>best</th>" * len(metrics) + "</tr>"
    body = []
    for i, c in enumerate(configs[:MAX_ROWS]):
        cells = "".join(f"<td>{e(show(c.params[n]))}</td>" for n in names)
        stats = "".join(
            f"<td>{num(c.stats[m]['mean'])}</td><td>{num(c.stats[m]['std'])}</td>"
            f"<td>{c.stats[m]['n']}</td><td title='{e(c.stats[m]['best_run'])}'>"
            f"{num(c.stats[m]['best'])}</td>"
            for m in metrics
        )
        body.append(f"<tr><td>{i + 1}</td>{cells}<td>{len(c.completed)}/{len(c.runs)}</td>{stats}</tr>")
    parts.append(f"<div class=wide><table id=configs>{head1}{head2}{''.join(body)}</table></div>")
    if len(configs) > MAX_ROWS:
        parts.append(f"<p class=note>The first {MAX_ROWS} of {len(configs)} configurations; configs.csv has all.</p>")
    return parts


def _figures_html(page: Page) -> list[str]:
    """The figures, with the legend of the configurations they number, and those not drawn."""
    figures, errors, n_top, e = page.figures, page.errors, page.n_top, html.escape
    parts = []
    if figures or errors:
        parts.append(
            f"<h2>Figures</h2><p>Histories and the application's figures show the top {n_top} "
            "configurations (<code>--top</code>), numbered by rank.</p>"
        )
    if figures and n_top:
        ranked = [c for c in page.configs if c.completed][:n_top]
        parts.append("<p id=legend>" + "<br>".join(f"#{i + 1}: {e(c.label)}" for i, c in enumerate(ranked)) + "</p>")
    for title, file, caption in figures:
        parts.append(
            f"<figure><h3>{e(title)}</h3><img src='{e(file)}' alt='{e(title)}'>"
            f"<figcaption>{e(caption)}</figcaption></figure>"
        )
    for error in errors:
        parts.append(f"<p class=error>Figure not drawn: {e(error)}</p>")
    return parts


def short(column: str) -> str:
    return column.replace("metrics.", "").replace("training.", "")


def num(value) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "&infin;" if value > 0 else "&minus;&infin;"
    if isinstance(value, float) and math.isnan(value):
        return "&ndash;"
    return f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))


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

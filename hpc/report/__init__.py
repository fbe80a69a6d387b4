"""`hpc report`: a sweep as one static page, `report.html`, with its figures and data beside it.

    hpc report latest -o report/            # report/report.html, report/runs.csv, report/configs.csv

The page holds the status (failures with their reasons), the configurations ranked by a
metric with seeds aggregated (mean, std, n, best), heatmaps of the metric over two varying
parameters faceted by the rest, the histories (median over seeds, a band from min to max,
phase boundaries) and the application's own figures. It reads only what exists, so it works on
a sweep that is still running, or whose runs failed or were lost.

`hpc` knows scalar metrics, per-run histories and a registry of figures; what they are is the
application's: the `Spec` of the sweep's `hpc.App` (`APP.report` in `train.py`). Without
one, the report ranks by the first `metrics.*` column and draws only the generic figures.
"""

from .aggregate import Config as Config
from .aggregate import aggregate as aggregate
from .aggregate import best_runs as best_runs
from .aggregate import goal_key as goal_key
from .aggregate import independent as independent
from .aggregate import number as number
from .aggregate import rank as rank
from .spec import Curve as Curve
from .spec import Figure as Figure
from .spec import Groups as Groups
from .spec import Spec as Spec


def __getattr__(name: str):  # the build (sweeps, tables, status) loads when a report is built, not with a Spec
    if name in ("Options", "build", "load_spec"):
        from . import builder as module

        return getattr(module, name)
    raise AttributeError(f"module 'hpc.report' has no attribute {name!r}")

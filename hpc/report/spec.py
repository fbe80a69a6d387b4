"""What an application's report shows (`Spec`, its `Curve`s and `Figure`s): the one part of
the report a node imports, with the application, so it imports nothing heavy."""

import dataclasses
import fnmatch
import pathlib
from collections.abc import Callable

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
    columns: tuple[str, ...] = ("metrics.*", "eval.*")
    goals: dict = dataclasses.field(default_factory=dict)
    seed: str = "seed"
    heatmap: tuple[str, ...] = ()
    curves: tuple[Curve, ...] = ()
    boundaries: str | None = None
    figures: tuple[Figure, ...] = ()

    def goal(self, column: str):
        return next((g for pattern, g in self.goals.items() if fnmatch.fnmatch(column, pattern)), "min")

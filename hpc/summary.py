"""What a run says when it ends: a few lines on the terminal and in its log, read back from the
result file it has just written (so they are the file's numbers).

    Run 3d907088ea69 completed in 2 min 14 s.
      <the application's lines (`App.describe`)>
      Result: scratch/default/3d907088ea69.h5

A run whose config says `progress: off` (the modes of `hpc.Progress`) gets one line; a run
that did not complete always gets one line, with the reason.
"""

import pathlib

from .store import read_summary


def duration(seconds) -> str:
    """`2 min 14 s`, `1 h 05 min`, `12.3 s` (`?` when unknown)."""
    if not isinstance(seconds, (int, float)) or seconds != seconds:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def lines(path, values: dict, app=None) -> list[str]:
    """The summary of the result file at `path`, whose `read_summary` is `values`; `app` (an
    `hpc.App`) adds its own lines through `App.describe(values) -> (headline, lines)`."""
    status, run_id = values.get("status", "?"), values.get("run_id", pathlib.Path(path).stem)
    wall = duration(values.get("meta.wall_time_s"))
    if status != "completed":
        why = values.get("message") or "no reason recorded"
        return [f"Run {run_id} {status} after {wall}: {why} (result: {path})"]
    headline, details = app.describe(values) if app is not None and app.describe is not None else ("", [])
    if values.get("config.progress") == "off":
        return [f"Run {run_id} completed in {wall}{': ' + headline if headline else ''} (result: {path})"]
    return [
        f"Run {run_id} completed in {wall}{': ' + headline if headline else '.'}",
        *(f"  {line}" for line in details),
        f"  Result: {path}",
    ]


def print_summary(path, app=None) -> None:
    """Print `lines` for the result file at `path`; a file that does not read prints nothing."""
    try:
        values = read_summary(path)
    except (OSError, KeyError, ValueError):
        return
    print("\n".join(lines(path, values, app)), flush=True)

"""`hpc`: watch, collect, compare and resubmit sweeps. Commands parse, call the library, print."""

import argparse
import csv
import json
import os
import pathlib
import signal
import sys
import time

from . import launch, layout, scheduler, status
from .ids import diff
from .store import read_summary
from .sweep import Sweep, find_result, find_sweep


def _sweep(args) -> Sweep:
    """The sweep the command names; a damaged record gives what can be read of it, and says so."""
    sweep = Sweep.load(find_sweep(args.sweep, args.root), damaged_ok=True)
    if sweep.damaged:
        print(
            f"hpc: {sweep.damaged}. Read instead: {len(sweep.runs)} runs (their configs), "
            f"{len(sweep.submissions)} submissions it still holds whole, and the result files.",
            file=sys.stderr,
        )
    return sweep


def _print_states(states) -> None:
    for s in states:
        print(f"{s.run_id}  {s.status:<9}  {s.job or '-':<12}  {s.reason}")


def cmd_status(args) -> int:
    sweep = _sweep(args)
    states = status.run_states(sweep)
    if args.runs:
        _print_states(states)
    counts = status.totals(states)
    print(
        f"sweep {sweep.sweep_id} ({sweep.path}): {len(states)} runs  "
        + "  ".join(f"{k} {v}" for k, v in counts.items())
    )
    unknown = [s for s in states if s.status == "unknown"]
    if unknown and not sweep.damaged:
        print(f"{unknown[0].reason}: runs without a result are unknown (not lost); ask again later.")
    return 0


def cmd_wait(args) -> int:
    sweep = _sweep(args)
    states = status.wait_for(sweep, args.interval, args.timeout)
    counts = status.totals(states)
    print(f"sweep {sweep.sweep_id}: " + "  ".join(f"{k} {v}" for k, v in counts.items()))
    return 0 if counts["completed"] == len(states) else 1


def cmd_failed(args) -> int:
    """Every run that did not complete and is not active, with its reason; exit 1 if any."""
    sweep = _sweep(args)
    bad = [s for s in status.run_states(sweep) if s.status in status.NOT_COMPLETED and s.status not in status.ACTIVE]
    for s in bad:
        overrides = " ".join(sweep.runs[s.run_id]["overrides"])
        print(f"{s.run_id}  {s.status:<9}  {s.job or '-':<12}  {s.reason}\n    overrides: {overrides}")
    print(f"{len(bad)} of {len(sweep.runs)} runs did not complete")
    return 1 if bad else 0


def cmd_resubmit(args) -> int:
    launch.resubmit(find_sweep(args.sweep, args.root), args.set or [])
    return 0


def cmd_collect(args) -> int:
    from .table import rows as table_rows

    rows, fields = table_rows(_sweep(args), args.all_config)
    out = pathlib.Path(args.output)
    _write_rows(out, rows, fields, "collect")
    print(f"{len(rows)} runs -> {out}")
    return 0


def _write_rows(out: pathlib.Path, rows: list[dict], fields: list[str], command: str) -> None:
    """`rows` as `out`, a .csv or .parquet file (text columns as text)."""
    if out.suffix == ".parquet":
        import pandas as pd

        frame = pd.DataFrame(rows, columns=fields)
        texts = {c: str for c in fields if frame[c].map(lambda v: isinstance(v, (str, list, dict))).any()}
        frame.astype(texts).to_parquet(out)
    elif out.suffix == ".csv":
        with open(out, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise SystemExit(f"hpc {command}: `-o` must end in .csv or .parquet, got {out.name!r}.")


def cmd_report(args) -> int:
    from . import report

    sweep = _sweep(args)
    out = pathlib.Path(args.output) if args.output else sweep.path / "report"
    options = report.Options(
        metric=args.metric,
        x=args.x,
        y=args.y,
        facet=tuple(args.facet) if args.facet else None,
        top=args.top,
        app=args.app,
    )
    done = report.build(sweep, out, options)
    for error in done["errors"]:
        print(f"hpc report: figure not drawn: {error}", file=sys.stderr)
    print(
        f"{len(done['runs'])} runs, {len(done['configs'])} configurations, {len(done['figures'])} figures "
        f"-> {done['html']}"
    )
    return 1 if done["errors"] else 0


def _run_config(name: str, root) -> dict:
    try:
        path = find_result(name, root)
    except FileNotFoundError as exc:
        raise SystemExit(f"hpc diff: {exc}")
    try:
        summary = read_summary(path)
    except (OSError, KeyError) as exc:
        raise SystemExit(f"hpc diff: {path} is not a readable result file ({type(exc).__name__}: {exc}).")
    return {k[len("config.") :]: v for k, v in summary.items() if k.startswith("config.")}


def cmd_diff(args) -> int:
    configs = [_run_config(name, args.root) for name in args.runs]
    differing = diff(configs)
    if not differing:
        print("These runs have identical parameters.")
    width = max((len(k) for k in differing), default=0)
    for key, values in differing.items():
        print(f"{key:<{width}}  " + "  ".join(json.dumps(v) for v in values))
    return 0


def cmd_pack(args) -> int:
    from .envpack import pack

    path, packed = pack(args.root if args.root is not None else layout.results_root())
    print(
        f"{'Packed' if packed else 'Reusing'} {path}\nUse it with: cluster.environment.kind=packed "
        f"cluster.environment.tarball={path}"
    )
    return 0


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def cmd_runs(args) -> int:
    from . import catalog

    roots = catalog.roots(args.root)
    if args.paths and len(roots) != 1:
        raise ValueError(
            f"--paths lists files relative to one results root, and {len(roots)} are known: give --root "
            f"({', '.join(map(str, roots))})."
        )
    found = catalog.Catalog(roots, rebuild=args.rebuild, verify=args.verify)
    if args.sql:
        frame = found.sql(args.sql)
        if args.output:
            _write_rows(pathlib.Path(args.output), found.records(frame), list(frame.columns), "runs")
        print(frame.to_string(index=False) if len(frame) else "(no rows)")
        return 0
    frame, asked = found.select(args.filters, args.where or (), args.sort, args.best_of)
    chosen = found.records(frame)
    if args.paths:  # for `rsync --files-from`: each run's result file and its evaluations
        for row in chosen:
            for path in catalog.files_of(row):
                print(path.relative_to(roots[0]))
        return 0
    if args.output:
        _write_rows(pathlib.Path(args.output), chosen, sorted({k for row in chosen for k in row}), "runs")
    columns = catalog.columns_to_show(chosen, asked)
    cells = [columns] + [[_shown(row.get(c, "")) for c in columns] for row in chosen]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for line in cells:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip())
    total = found.sql("SELECT count(*) AS n FROM runs").n[0]
    print(f"{len(chosen)} of {total} runs" + (f" -> {args.output}" if args.output else ""))
    shown = set(frame.path)
    unread = [p for p in found.sql("SELECT path FROM runs WHERE status = 'corrupt'").path if p not in shown]
    if unread:  # a filter cannot match what does not read: never left out without a word
        print(
            f"{len(unread)} result file(s) do not read and match no filter (`hpc runs status=corrupt` lists them): "
            + ", ".join(unread[:3])
            + (" ..." if len(unread) > 3 else ""),
            file=sys.stderr,
        )
    return 0


def cmd_db(args) -> int:
    from . import catalog

    written = catalog.export(args.out, args.root)
    print(f"Wrote {', '.join(str(p) for p in written)}")
    return 0


def cmd_export(args) -> int:
    from . import catalog
    from .export import export

    if args.target == "runs":
        found = catalog.Catalog(catalog.roots(args.root))
        frame, _ = found.select(args.filters, args.where or ())
        chosen = found.records(frame)
    else:  # a sweep: its runs, wherever its root
        sweep = Sweep.load(find_sweep(args.target, args.root))
        found = catalog.Catalog([sweep.results_root])
        frame, _ = found.select(args.filters, args.where or ())
        chosen = [row for row in found.records(frame) if row["run_id"] in sweep.runs]
    if not chosen:
        raise ValueError(f"no run of {args.target!r} matches: nothing to export.")
    to, out = args.to
    tic = time.perf_counter()
    written = export(chosen, to, out, project=args.project, workers=args.workers)
    rate = len(written) / max(time.perf_counter() - tic, 1e-9)
    follow = f"tensorboard --logdir {out}" if to == "tensorboard" else f"wandb sync {out}/wandb/offline-run-*"
    print(f"Exported {len(written)} runs to {out} ({to}, {rate:.2g} runs/s). Next: {follow}")
    return 0


def cmd_plan(args) -> int:
    import subprocess

    cmd = [sys.executable, args.script, "-m", *args.overrides, "hydra/launcher=manifest"]
    return subprocess.run(cmd).returncode


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="hpc", description=__doc__)
    top.add_argument(
        "--root", default=None, help="results root to search (default: every sweep you created, wherever its root)"
    )
    sub = top.add_subparsers(dest="command", required=True)

    def add(name, fn, help_text, sweep=True):
        p = sub.add_parser(name, help=help_text)
        # --root after the command too (`hpc runs --root R ...`); absent there, the one before stands
        p.add_argument("--root", default=argparse.SUPPRESS, help="results root to search (as before the command)")
        if sweep:
            p.add_argument("sweep", help="sweep directory, sweep id (or its start), or `latest`")
        p.set_defaults(fn=fn)
        return p

    _sweep_commands(add)
    _report_command(add)
    _root_commands(add)
    return top


def _sweep_commands(add) -> None:
    """The commands about one sweep's runs: status, wait, failed, resubmit, collect."""
    add(
        "status", cmd_status, "counts per state (pending, running, completed, failed, timeout, unknown ...)"
    ).add_argument("--runs", action="store_true", help="one line per run as well")
    w = add("wait", cmd_wait, "block until no run is pending or running")
    w.add_argument(
        "--interval", type=float, default=10.0, help="the longest pause between polls, s (they start 1 s apart)"
    )
    w.add_argument("--timeout", type=float, default=None)
    add("failed", cmd_failed, "each run that did not complete, with its reason (exit 1 if any)")
    add("resubmit", cmd_resubmit, "one new array job of the runs that failed or never finished").add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="change the cluster profile, e.g. --set time_min=240"
    )
    c = add("collect", cmd_collect, "one row per run: state, the parameters that vary, metrics")
    c.add_argument("-o", "--output", required=True, help="runs.csv or runs.parquet")
    c.add_argument("--all-config", action="store_true", help="every config and metadata column")


def _report_command(add) -> None:
    r = add("report", cmd_report, "a static HTML page: status, ranked configurations over seeds, figures")
    r.add_argument("-o", "--output", default=None, help="directory for report.html (default: <sweep>/report)")
    r.add_argument("--metric", default=None, help="rank by this column or glob (default: the application's)")
    r.add_argument("--x", default=None, help="heatmap columns: a parameter that varies")
    r.add_argument("--y", default=None, help="heatmap rows: a parameter that varies")
    r.add_argument(
        "--facet",
        action="append",
        default=None,
        help="one heatmap panel per value (repeatable); default: every other parameter that varies",
    )
    r.add_argument("--top", type=int, default=8, help="configurations in the histories and figures (default 8)")
    r.add_argument(
        "--app",
        default=None,
        help="module[:attribute] or file.py naming an hpc.App or hpc.Spec (default: the sweep's application)",
    )


def _root_commands(add) -> None:
    """The commands about every run of the results root(s), and the tools around sweeps."""
    q = add("runs", cmd_runs, "every run of the results root(s), across sweeps: filter, sort, best of", sweep=False)
    q.add_argument(
        "filters", nargs="*", metavar="KEY=VALUE", help="width=64, output_head=signed,simple, status=completed"
    )
    q.add_argument("--where", action="append", help='a condition, e.g. "metrics.*_100_test.accel_pct_mean < 5"')
    q.add_argument("--sort", default=None, help="a column or glob: M ascending, -M descending, M~-2 closest to -2")
    q.add_argument("--best-of", default=None, help="the best run (by --sort) of each value of this parameter")
    q.add_argument("-o", "--output", default=None, help="also write every column to runs.csv or runs.parquet")
    q.add_argument(
        "--paths",
        action="store_true",
        help="only the files of the runs (result, evaluations), relative to the root: for rsync --files-from",
    )
    q.add_argument("--sql", default=None, help='SQL over the tables runs, evals, eval_models: "SELECT ... FROM runs"')
    q.add_argument("--verify", action="store_true", help="check every file's identity, not only each folder's")
    q.add_argument("--rebuild", action="store_true", help="read every result file again (the index is rebuilt)")
    db = add("db", cmd_db, "the tables (runs, evals, eval_models) as CSV files: a backup", sweep=False)
    db.add_argument("action", choices=["export"], help="export: each table as <out>/<table>.csv.gz")
    db.add_argument("out", help="directory for the CSV files")
    e = add("export", cmd_export, "result files -> TensorBoard event files or W&B offline runs", sweep=False)
    e.add_argument("target", help="a sweep (directory, id or `latest`), or `runs`: every run of the root(s)")
    e.add_argument("filters", nargs="*", metavar="KEY=VALUE", help="as for `hpc runs`")
    e.add_argument("--where", action="append", help="as for `hpc runs`")
    e.add_argument(
        "--to", required=True, nargs=2, metavar=("FORMAT", "DIR"), help="tensorboard DIR or wandb DIR: where they go"
    )
    e.add_argument("--project", default="hpc", help="W&B project of the offline runs (default: hpc)")
    e.add_argument("--workers", type=int, default=None, help="W&B: processes writing runs (default: the usable CPUs)")
    add(
        "pack",
        cmd_pack,
        "pack the active conda env or venv into <root>/envs/ for compute nodes "
        "(default root: $SCRATCH/hpc, or ./scratch)",
        sweep=False,
    )
    p = add("plan", cmd_plan, "write a manifest and sbatch array scripts for a grid (no submission)", sweep=False)
    p.add_argument("--script", default="train.py", help="the Hydra app to run (default: train.py)")
    p.add_argument("overrides", nargs="*", help="sweep overrides, as for `python train.py -m`")
    d = add("diff", cmd_diff, "the parameters that differ between runs", sweep=False)
    d.add_argument("runs", nargs="+", help="run ids or result file paths")


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except (FileNotFoundError, ValueError, scheduler.Unreachable) as exc:
        print(f"hpc {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `hpc status --runs | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())

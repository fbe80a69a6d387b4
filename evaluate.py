"""Test finished runs on other data: each evaluation goes into a file of its own beside the run,
`<run id>.evals/<test set>.h5`; the result file is not touched. `hpc collect` and `hpc report`
show the metrics as `eval.<test set>.<metric>`.

    python evaluate.py 5e0faf228d94 dataset=complex_3d n_orbits=100      # one run (id or file)
    python evaluate.py latest --best-of output_head dataset=complex_3d   # the best run per output head
    python evaluate.py latest --all n_orbits=50                          # every completed run
    python evaluate.py runs --filter width=64 --where "metrics.*_100_test.accel_pct_mean < 5" \
        --best-of output_head dataset=complex_3d   # across every sweep: the query of `hpc runs`

A sweep's runs are ranked by `--metric` (default: the report's, the 100-orbit test set's mean
acceleration error). The overrides compose the test set as for `train.py`: `dataset=<name>`,
`dataset.<key>=...` (`dataset.test_seed`, element ranges), `n_orbits` (the test set's orbits;
default 100) and `metrics.max_steps`.
"""

import argparse
import datetime
import os
import pathlib
import socket
import sys

import yaml

import hpc

os.environ.setdefault("EQX_ON_ERROR", "nan")  # before `neuralode` (equinox) is imported

from train import APP  # noqa: E402  (the application: its configs, result format, packages and report)

READS = ("dataset", "n_orbits", "metrics")  # the config keys an evaluation reads


def test_config(overrides: list[str]) -> dict:
    """`dataset`, `n_orbits` (default 100) and `metrics` composed from `conf/` with `overrides`."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if "=" not in item or key.split(".")[0] not in READS:
            raise ValueError(
                f"`{item}`: evaluate.py takes overrides of {', '.join(READS)} only "
                "(e.g. dataset=complex_3d n_orbits=100 dataset.test_seed=7)."
            )
    with initialize_config_dir(str(APP.conf_dir), version_base="1.3"):
        cfg = compose("config", overrides=["n_orbits=100", *overrides])
    config = OmegaConf.to_container(cfg, resolve=True)
    return {k: config[k] for k in READS}


def queried_runs(root, query: dict, best_of: list[str], every: bool, metric: str | None) -> list[pathlib.Path]:
    """The result files `hpc runs` would list for `query` (`filters`, `where`) across every
    sweep of the root(s): the best completed run by `metric` (per value of the `best_of`
    parameters), or `every` completed one."""
    from hpc import catalog

    found = catalog.Catalog(catalog.roots(root))
    if every:
        frame, _ = found.select([*query["filters"], "status=completed"], query["where"])
        return [pathlib.Path(p) for p in frame.path]
    pattern = hpc.resolve_metric(found.columns, metric or APP.report.metric)  # as for a sweep: one column
    goal = APP.report.goal(pattern)
    sort = f"-{pattern}" if goal == "max" else f"{pattern}~{goal}" if not isinstance(goal, str) else pattern
    # best of each run id: every completed run with a finite metric, best first
    frame, _ = found.select(query["filters"], query["where"], sort, best_of or ["run_id"])
    chosen = found.records(frame)
    if not best_of:
        chosen = chosen[:1]
    if not chosen:
        raise ValueError(f"no completed run matches this query with a finite {pattern}.")
    for row in chosen:
        value = catalog.value_of(row, pattern)
        which = " ".join(f"{n}={catalog.value_of(row, n)}" for n in best_of)
        print(f"best by {pattern}{' for ' + which if which else ''}: {row['run_id']} ({value:.4g}) in {row['path']}")
    return [pathlib.Path(row["path"]) for row in chosen]


def chosen_runs(target: str, root, best_of: list[str], every: bool, metric: str | None) -> list[pathlib.Path]:
    """The result files to evaluate: one run (a file or run id), or from a sweep the best
    completed run (per value of the `best_of` parameters), or `every` completed run."""
    try:
        return [hpc.find_result(target, root)]
    except FileNotFoundError as not_a_run:
        try:
            sweep = hpc.Sweep.load(hpc.find_sweep(target, root))
        except FileNotFoundError:
            raise ValueError(f"{target!r} is neither a run ({not_a_run}) nor a sweep.") from None
    table, columns = hpc.rows(sweep, all_config=True)
    if every:
        return [sweep.result_path(r["run_id"]) for r in table if r["state"] == "completed"]
    for name in best_of:
        if f"config.{name}" not in columns:
            known = sorted(c[len("config.") :] for c in columns if c.startswith("config.") and "." not in c[7:])
            raise ValueError(
                f"`--best-of {name}` is not a parameter of this sweep; its parameters are: {', '.join(known)}."
            )
    column = hpc.resolve_metric(columns, metric or APP.report.metric)
    best = hpc.best_runs(table, column, [f"config.{n}" for n in best_of], APP.report.goal(column))
    if not best:
        raise ValueError(f"sweep {sweep.sweep_id} has no completed run with a finite {column}.")
    for key, row in best.items():
        print(
            f"best by {column}{' for ' + ' '.join(f'{n}={v}' for n, v in zip(best_of, key)) if best_of else ''}: "
            f"{row['run_id']} ({row[column]:.4g})"
        )
    return [sweep.result_path(row["run_id"]) for row in best.values()]


def evaluate_run(path: pathlib.Path, test: dict) -> pathlib.Path:
    """Evaluate the model in result file `path` on the test set `test` describes; returns the
    evaluation file."""
    import neuralode

    run = yaml.safe_load(hpc.read_config_yaml(path))
    root = path.parent.parent  # <results root>/<experiment>/<run id>.h5: the dataset cache's root
    neuralode.configure_from_config(run, root)
    test_set, label = neuralode.test_set_from_config(test["dataset"], test["n_orbits"], root)
    model = neuralode.load_model(path)
    tree = neuralode.evaluation(model, [test_set], max_steps=test["metrics"]["max_steps"])
    # by its label, unique per parameter set: another seed or range of a family's set is another column
    tree["metrics"] = {label: tree["metrics"][test_set.name]}
    config = {"evaluated_run": path.stem, **test}
    metadata = {
        "host": socket.gethostname(),
        "created": datetime.datetime.now().astimezone().isoformat(),
        "result_file": str(path),
        "versions": hpc.versions(APP.packages),
    }
    return hpc.write_evaluation(
        path,
        label,
        status="completed",
        config=config,
        config_yaml=yaml.safe_dump(config),
        run_id=path.stem,
        metadata=metadata,
        tree=tree,
        file_format=APP.file_format,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="evaluate.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("target", help="a run id (or its start), a result file, a sweep id or `latest`")
    parser.add_argument(
        "overrides", nargs="*", help="dataset=..., dataset.<key>=..., n_orbits=..., metrics.max_steps=..."
    )
    parser.add_argument(
        "--best-of",
        action="append",
        default=[],
        metavar="PARAM",
        help="in a sweep: the best run for each value of PARAM (repeatable: for each combination); "
        "default: the one best run",
    )
    parser.add_argument("--all", action="store_true", help="in a sweep: every completed run")
    parser.add_argument("--metric", default=None, help="rank a sweep's runs by this column or glob")
    parser.add_argument("--root", default=None, help="results root to search (default: as for `hpc`)")
    parser.add_argument(
        "--filter", action="append", default=[], metavar="KEY=VALUE", help="target `runs`: as `hpc runs KEY=VALUE`"
    )
    parser.add_argument("--where", action="append", default=[], help="target `runs`: as `hpc runs --where`")
    args = parser.parse_intermixed_args(argv)
    with hpc.user_errors():
        test = test_config(args.overrides)
        if args.target == "runs":
            query = {"filters": args.filter, "where": args.where}
            paths = queried_runs(args.root, query, args.best_of, args.all, args.metric)
        elif args.filter or args.where:
            raise ValueError("--filter and --where pick runs across sweeps: use them with the target `runs`.")
        else:
            paths = chosen_runs(args.target, args.root, args.best_of, args.all, args.metric)
    failures = 0
    for path in paths:
        try:
            out = evaluate_run(path, test)
        except Exception as exc:  # one run that cannot be evaluated does not stop the others
            failures += 1
            print(f"{path.stem}: not evaluated: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        print(f"{path.stem}: {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Train a neural ODE on two-body orbits and write one HDF5 result file.

    python train.py                                   # the default run
    python train.py output_head=signed activation=tanh curriculum=hifi
    python train.py -m width=32,64                    # a sweep

The only glue between `neuralode` (the science) and `hpc` (the run's lifecycle, sweeps).
"""

import os
import pathlib
import sys
import typing

import hydra
from omegaconf import DictConfig, OmegaConf

import hpc

os.environ.setdefault("EQX_ON_ERROR", "nan")  # before `neuralode` (equinox) is imported: see its docstring

# `neuralode` is imported inside the functions that train, evaluate or draw, not here. Importing it
# loads JAX, equinox, diffrax and optax: `import train` takes 0.31 s and `import train, neuralode`
# 1.96 s (medians, 2-core development machine, `python bench/startup.py`). `hpc status`, `report`,
# `failed` and `diff` load this file for its `APP` and never train; and a plain-sbatch task must
# set its thread and temporary-directory variables (`hpc.prepare_batch_task`, in `main`) before
# JAX is imported.

CONF_DIR = pathlib.Path(__file__).resolve().parent / "conf"
SHORT_NAMES = (
    "width",
    "depth",
    "activation",
    "feature_layer",
    "output_head",
    "loss",
    "lr",
    "batch_size",
    "segment_length",
    "n_orbits",
    "seed",
    "rtol",
    "atol",
    "clip",
    "planar_constraint",
)
GROUPS = ("dataset", "model", "curriculum", "loss", "cluster", "sweep")
HOW_NOT_WHAT = ("progress", "jax_cache")  # keys that do not change what a run computes


class Place(typing.NamedTuple):
    """Where a run's result goes."""

    run_id: str
    root: pathlib.Path  # the results root: `results_root`, the cluster's, or `APP.results_root()`
    path: pathlib.Path  # the result file


def place(config: dict) -> Place:
    """The run's id, results root and result file."""
    root = APP.results_root(config.get("results_root") or (config.get("cluster") or {}).get("results_root"))
    rid = hpc.run_id(config, exclude=hpc.NOT_IDENTITY + HOW_NOT_WHAT)
    return Place(rid, root, hpc.result_path(root, config["experiment"], rid))


def canonical(config: dict) -> dict:
    """The config as a run records it: the study's `mlp_4D_*` head names made the registry's (one run id)."""
    import neuralode

    return neuralode.canonical_config(config)


def prepare(config: dict, overrides=()) -> tuple[str, pathlib.Path]:
    """Check one resolved config (composed with `overrides`) before submission: its run id and
    results root, or a `ValueError` naming the bad field."""
    import neuralode

    overridden = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    neuralode.check_config(config, overridden=overridden)
    where = place(canonical(config))
    return where.run_id, where.root


def _work(config: dict, checkpoint: hpc.Checkpoint) -> hpc.Outcome:
    """Train one run: an ensemble of one (`_work_many`)."""
    got = _work_many([config], [(0, checkpoint)])[0]
    if isinstance(got, BaseException):
        raise got
    return got


def _outcome(result, tree) -> hpc.Outcome:
    import neuralode

    return hpc.Outcome(
        result.status,
        tree,
        result.message,
        metadata={
            "steps_per_s": result.steps_per_s,
            "first_step_s": result.first_step_s,
            "device": neuralode.device_used(),
        },
        extra=lambda f: neuralode.save_model(f.create_group("model"), result.model),
        summary=neuralode.scalars(tree),
    )


def _work_many(configs: list[dict], joined: list) -> dict:
    """Train the runs `joined` (`(index, checkpoint)` each) of `configs` together: an ensemble."""
    import neuralode

    chosen = [configs[i] for i, _ in joined]
    root = place(chosen[0]).root
    neuralode.configure_from_config(chosen[0], root)
    checkpoints = [c for _, c in joined]
    resumes = []
    for config, checkpoint in zip(chosen, checkpoints):
        resumes.append(checkpoint.load())
        if resumes[-1] is not None:
            rid = place(config).run_id
            print(f"Resuming run {rid} from its checkpoint at step {checkpoint.saved_step}.", flush=True)
    bars = [
        hpc.Progress(
            sum(p.steps for p in neuralode.phases_from_config(c)), desc=f"train {place(c).run_id}", mode=c["progress"]
        )
        for c in chosen
    ]
    try:
        trained = neuralode.train_many_from_config(
            chosen,
            root,
            checkpoints=checkpoints,
            resumes=resumes,
            callbacks=[lambda step, phase, loss, _, bar=bar: bar.update(step, loss=loss, phase=phase) for bar in bars],
        )
    except neuralode.CheckpointMismatch as exc:  # every member's checkpoint is set aside: a rerun starts over
        raise hpc.UnusableCheckpoint(str(exc)) from exc
    for bar in bars:
        bar.close()
    return {i: got if isinstance(got, BaseException) else _outcome(*got) for (i, _), got in zip(joined, trained)}


def train_many(cfgs: list) -> list[dict]:
    """Run several configurations together (`cluster.ensemble`): those that share every shape
    train as one ensemble (`neuralode.train_many_from_config`), each with its own claim,
    checkpoint and result file (`hpc.execute_many`). **Returns:** what `train` would, per config."""
    configs = [canonical(OmegaConf.to_container(cfg, resolve=True)) for cfg in cfgs]
    return hpc.execute_many(
        [dict(_execution(config), path=place(config).path) for config in configs],
        lambda joined: _work_many(configs, joined),
        app=APP,
        source_dir=CONF_DIR.parent,
    )


def _execution(config: dict) -> dict:
    """The arguments of `hpc.execute` that are this run's own."""
    return {
        "run_id": place(config).run_id,
        "config": config,
        "config_yaml": OmegaConf.to_yaml(OmegaConf.create(config)),
        "force": bool(config.get("force")),
        "lifeline": hpc.Lifeline.from_cluster(config["cluster"]),
    }


def train(cfg: DictConfig) -> dict:
    """Run one configuration end to end and write its result file (`hpc.execute`). **Returns:**
    `status`, `run_id`, `path`, and the scalar metrics; `skipped` when a completed result exists."""
    config = canonical(OmegaConf.to_container(cfg, resolve=True))
    return hpc.execute(
        place(config).path,
        lambda checkpoint: _work(config, checkpoint),
        app=APP,
        source_dir=CONF_DIR.parent,
        **_execution(config),
    )


def _figure(name: str):
    """The `neuralode` figure `name`, imported when a figure is drawn, not when `hpc report` starts."""

    def draw(groups, out):
        import neuralode

        return getattr(neuralode, name)(groups, out)

    return draw


def _describe(summary: dict) -> tuple[str, list[str]]:
    """What a run says when it ends: a headline and lines (`neuralode.describe`)."""
    import neuralode

    return neuralode.describe(summary)


APP = hpc.App(
    name="neuralode-hpc",
    entry=train,
    ensemble=train_many,
    describe=_describe,
    prepare=prepare,
    file_format="neuralode-hpc-result/1",
    conf_dir=CONF_DIR,
    packages=("jax", "jaxlib", "equinox", "diffrax", "optax", "h5py", "numpy", "hydra-core", "omegaconf"),
    failures=("non_finite", "stalled"),
    columns=("training.",),
    report=hpc.Spec(  # what `hpc report` shows of a sweep
        metric=("metrics.*_100_test.accel_pct_mean", "metrics.*_test.accel_pct_mean"),  # the 100-orbit test set's
        columns=(
            "metrics.*.accel_pct_mean",
            "metrics.*_test.along_accel_pct_mean",
            "metrics.*_test.loglog_slope",
            "metrics.*_test.critical_radius",
            "training.final_loss",
            "eval.*.accel_pct_mean",
            "eval.*.loglog_slope",
            "eval.*.critical_radius",
        ),
        # the truth's slope is -2 (the best is the closest); a field that holds 1/r^2 further out is better
        goals={"*.loglog_slope": -2.0, "*.critical_radius": "max"},
        heatmap=("output_head", "feature_layer"),
        curves=(hpc.Curve("history/loss", "loss", log=True), hpc.Curve("history/failed_segments", "failed segments")),
        boundaries="history/phase_starts",
        figures=(
            hpc.Figure(
                "loglog",
                "log|a| against log r",
                _figure("loglog_figure"),
                "The best run of each configuration: median predicted |a| in radius bins against the "
                "truth 1/r², the fitted slope (mean ± std over seeds), dashed: the largest training radius.",
            ),
            hpc.Figure(
                "test_sets",
                "Error per test set",
                _figure("test_set_figure"),
                "Each configuration's mean acceleration error on its own largest test set and on every "
                "set `evaluate.py` tested it on (mean over seeds, bars min-max): which models hold on "
                "data they were not trained on.",
            ),
            hpc.Figure(
                "per_orbit",
                "Per-orbit acceleration error",
                _figure("per_orbit_figure"),
                "Each orbit's mean acceleration error (%), all seeds of a configuration pooled.",
            ),
        ),
    ),
)


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    hpc.prepare_batch_task(OmegaConf.to_container(cfg.cluster, resolve=True), os.getcwd())  # before JAX is imported
    with hpc.user_errors():
        prepare(OmegaConf.to_container(cfg, resolve=True), HydraConfig.get().overrides.task)  # bad input: no file
        status = train(cfg)["status"]  # a failure in training: one line, the traceback is in the result file
    if status not in hpc.TASK_OK:  # requeued: the task comes back
        sys.exit(3)


if __name__ == "__main__":
    hpc.hydra_cli(main, CONF_DIR, SHORT_NAMES, GROUPS)

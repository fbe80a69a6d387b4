"""Train a neural ODE on two-body orbits and write one HDF5 result file.

    python train.py                                   # the default run
    python train.py output_head=signed activation=tanh curriculum=hifi
    python train.py -m width=32,64                    # a sweep

The only glue between `neuralode` (the science) and `hpc` (the run's lifecycle, sweeps).
"""

import os
import pathlib
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

import hpc

os.environ.setdefault("EQX_ON_ERROR", "nan")  # before `neuralode` (equinox) is imported: see its docstring

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


def place(config: dict) -> tuple[str, pathlib.Path, pathlib.Path]:
    """The run id, results root (`results_root`, the cluster's, or `APP.results_root()`) and result file."""
    root = APP.results_root(config.get("results_root") or (config.get("cluster") or {}).get("results_root"))
    rid = hpc.run_id(config, exclude=hpc.NOT_IDENTITY + HOW_NOT_WHAT)
    return rid, root, hpc.result_path(root, config["experiment"], rid)


def canonical(config: dict) -> dict:
    """The config as a run records it: the study's `mlp_4D_*` head names made the registry's (one run id)."""
    return __import__("neuralode").canonical_config(config)


def prepare(config: dict, overrides=()) -> tuple[str, pathlib.Path]:
    """Check one resolved config (composed with `overrides`) before submission: its run id and
    results root, or a `ValueError` naming the bad field."""
    overridden = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    __import__("neuralode").check_config(config, overridden=overridden)
    return place(canonical(config))[:2]


def _work(config: dict, checkpoint: hpc.Checkpoint) -> hpc.Outcome:
    import neuralode

    rid, root, _ = place(config)
    neuralode.configure_jax(config["solver"]["dtype"] == "float64", config["jax_cache"] or root / "jax-cache")
    steps = sum(p.steps for p in neuralode.phases_from_config(config))
    progress = hpc.Progress(steps, desc=f"train {rid}", mode=config["progress"])
    resume = checkpoint.load()
    if resume is not None:
        print(f"Resuming run {rid} from its checkpoint at step {checkpoint.saved_step}.", flush=True)
    try:
        result, tree = neuralode.train_from_config(
            config,
            root,
            checkpoint=checkpoint,
            resume=resume,
            callback=lambda step, phase, loss, model: progress.update(step, loss=loss, phase=phase),
        )
    except neuralode.CheckpointMismatch as exc:
        raise hpc.UnusableCheckpoint(str(exc)) from exc
    progress.close()
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


def train(cfg: DictConfig) -> dict:
    """Run one configuration end to end and write its result file (`hpc.execute`). **Returns:**
    `status`, `run_id`, `path`, and the scalar metrics; `skipped` when a completed result exists."""
    config = canonical(OmegaConf.to_container(cfg, resolve=True))
    rid, _, path = place(config)
    return hpc.execute(
        path,
        lambda checkpoint: _work(config, checkpoint),
        app=APP,
        run_id=rid,
        config=config,
        config_yaml=OmegaConf.to_yaml(OmegaConf.create(config)),
        source_dir=CONF_DIR.parent,
        force=bool(config.get("force")),
        lifeline=hpc.Lifeline.from_cluster(config["cluster"]),
    )


def _figure(name: str):  # neuralode (JAX) loads when a figure is drawn, not when `hpc report` starts
    return lambda groups, out: getattr(__import__("neuralode"), name)(groups, out)


APP = hpc.App(
    name="neuralode-hpc",
    entry=train,
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

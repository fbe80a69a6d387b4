"""Train a neural ODE on two-body orbits and write one HDF5 result file.

    python train.py                                   # the default run
    python train.py output_head=signed activation=tanh curriculum=hifi
    python train.py -m width=32,64                    # a sweep

This file is the only glue between `neuralode` (the science) and `hpc` (the toolkit): it maps
the composed config onto both. The run's lifecycle is `hpc.execute`; the science `neuralode`.
"""

import os
import pathlib
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

import hpc
from hpc.hints import hint, known_keys, unknown_keys
from hpc.ids import NOT_IDENTITY
from hpc.progress import Progress
from hpc.slurmenv import slurm_info

CONF_DIR = pathlib.Path(__file__).resolve().parent / "conf"
SHORT_NAMES = ("width", "depth", "activation", "feature_layer", "output_head", "loss", "lr",
               "batch_size", "segment_length", "n_orbits", "seed", "rtol", "atol", "clip",
               "planar_constraint")
GROUPS = ("dataset", "model", "curriculum", "loss", "cluster")
PACKAGES = ("jax", "jaxlib", "equinox", "diffrax", "optax", "h5py", "numpy", "hydra-core", "omegaconf")
RANGE_KEYS = ("a", "e", "inclination", "raan", "argp", "nu0")


def results_root(config: dict) -> pathlib.Path:
    """`results_root`, else the cluster profile's, else `$SCRATCH/neuralode-hpc` or `./scratch`."""
    return hpc.results_root(config.get("results_root") or (config.get("cluster") or {}).get("results_root"))


def result_path(config: dict) -> tuple[str, pathlib.Path]:
    """The run id (`progress` does not change what a run computes) and the result file path."""
    rid = hpc.run_id(config, exclude=NOT_IDENTITY + ("progress",))
    return rid, hpc.result_path(results_root(config), config["experiment"], rid)


def prepare(cfg: DictConfig) -> tuple[str, pathlib.Path]:
    """Check one run's config without training, as the launcher does before submitting. Returns
    its run id and results root; raises `ValueError` naming the bad field."""
    import neuralode

    config = OmegaConf.to_container(cfg, resolve=True)
    _model_spec(config)
    neuralode.optimizer(config["clip"])
    data = config["dataset"]
    neuralode.family_ranges(data["family"], data["planar"], **{k: data.get(k) for k in RANGE_KEYS})
    for phase in _phases(config):
        neuralode.check_segment_length(phase.segment_length)
    return result_path(config)[0], results_root(config)


def _phases(config: dict):
    from neuralode import Phase

    return [Phase(steps=int(p["steps"]), lr=float(p["lr"]), segment_length=int(p["segment_length"]),
                  length=tuple(float(x) for x in p.get("length", (1.0, 1.0))),
                  lr_end=None if p.get("lr_end") is None else float(p["lr_end"]))
            for p in config["curriculum"]["phases"]]


def _model_spec(config: dict):
    from neuralode import ModelSpec

    solver = config["solver"]
    if config["planar_constraint"] and not config["dataset"]["planar"]:
        raise ValueError(f"`planar_constraint`=true needs a planar dataset, got dataset "
                         f"{config['dataset']['family']} with planar=false: set planar_constraint=false.")
    return ModelSpec(width=config["width"], depth=config["depth"], activation=config["activation"],
                     feature_layer=config["feature_layer"], output_head=config["output_head"],
                     solver=solver["name"], rtol=float(config["rtol"]), atol=float(config["atol"]),
                     pcoeff=float(solver["pcoeff"]), icoeff=float(solver["icoeff"]),
                     max_steps=solver["max_steps"], adjoint=solver["adjoint"], dtype=solver["dtype"],
                     planar_constraint=config["planar_constraint"])


def _setup_jax(config: dict, root: pathlib.Path) -> None:
    import jax

    if config["solver"]["dtype"] == "float64":
        jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_compilation_cache_dir", os.environ.get("JAX_COMPILATION_CACHE_DIR", str(root / "jax-cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _work(config: dict) -> hpc.Outcome:
    root = results_root(config)
    _setup_jax(config, root)
    import jax

    import neuralode

    spec, phases, data, units = _model_spec(config), _phases(config), config["dataset"], neuralode.CanonicalUnits()
    ranges = neuralode.family_ranges(data["family"], data["planar"], **{k: data.get(k) for k in RANGE_KEYS})
    sets = [neuralode.load_or_generate(root, data["family"], data["planar"], n, seed, split, ranges)
            for n, seed, split in [(config["n_orbits"], data["train_seed"], "train")]
            + [(n, data["test_seed"], "test") for n in data["test_sizes"]]]
    t, y = units.to_canonical(sets[0].t, sets[0].y)
    init_key, train_key = jax.random.split(jax.random.PRNGKey(config["seed"]))
    progress = Progress(sum(p.steps for p in phases), desc=f"train {result_path(config)[0]}", mode=config["progress"])
    result = neuralode.train(
        neuralode.NeuralODE(spec, key=init_key), t, y, phases, loss=config["loss"]["name"],
        batch_size=config["batch_size"], key=train_key, nmse_weight=config["loss"]["nmse_weight"],
        chunk_size=config["solver"]["chunk_size"], clip=config["clip"],
        callback=lambda step, phase, loss, model: progress.update(step, loss=loss, phase=phase))
    progress.close()
    metrics = {test.name: neuralode.evaluate(result.model, *units.to_canonical(test.t, test.y),
                                             length_km=units.length_km, max_steps=config["metrics"]["max_steps"])
               for test in sets[1:]}
    tree = {**result.tree(), "metrics": metrics, "units": units.as_attrs(),
            "datasets": {"train": sets[0].name, "test": [d.name for d in sets[1:]]}}
    scalars = {f"{name}.{k}": v for name, m in metrics.items() for k, v in m.items() if isinstance(v, (int, float))}
    return hpc.Outcome(result.status, tree, result.message,
                       metadata={"steps_per_s": result.steps_per_s, "first_step_s": result.first_step_s},
                       extra=lambda f: neuralode.save_model(f.create_group("model"), result.model),
                       summary={"final_loss": tree["training"]["final_loss"], **scalars})


def train(cfg: DictConfig) -> dict:
    """Run one configuration end to end and write its result file (`hpc.execute`).

    **Returns:** `status`, `run_id`, `path`, `final_loss` and the scalar metrics; `status` is
    `skipped` (and nothing else is given) when a completed result exists and `force` is false.
    """
    config = OmegaConf.to_container(cfg, resolve=True)
    rid, path = result_path(config)
    return hpc.execute(path, lambda: _work(config), run_id=rid, config=config,
                       config_yaml=OmegaConf.to_yaml(cfg, resolve=True), packages=PACKAGES,
                       source_dir=CONF_DIR.parent, force=bool(config.get("force")))


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    if slurm_info():  # a plain sbatch task: thread and temp-dir hygiene before JAX is imported
        from hpc.launch import task_settings
        from hpc.task import prepare_environment

        config = OmegaConf.to_container(cfg, resolve=True)
        prepare_environment(task_settings(results_root(config), config["cluster"], os.getcwd()))
    if train(cfg)["status"] not in ("completed", "skipped"):
        sys.exit(3)


def cli() -> None:
    try:
        main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            known = known_keys(CONF_DIR)
            for key in unknown_keys(sys.argv[1:], known | set(SHORT_NAMES)):
                print(hint(key, known | set(SHORT_NAMES), SHORT_NAMES, GROUPS), file=sys.stderr)
        raise


if __name__ == "__main__":
    cli()

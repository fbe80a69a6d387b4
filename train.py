"""Train a neural ODE on two-body orbits and write one HDF5 result file.

    python train.py                                   # the default run
    python train.py output_head=signed activation=tanh curriculum=hifi
    python train.py -m width=32,64                    # a sweep

This file is the only glue between `neuralode` (the science) and `hpc` (the toolkit).
"""

import datetime
import difflib
import os
import pathlib
import platform
import socket
import subprocess
import sys
import time
import traceback
from importlib import metadata as importlib_metadata

import hydra
from omegaconf import DictConfig, OmegaConf

import hpc
from hpc.progress import Progress
from hpc.slurmenv import slurm_info

CONF_DIR = pathlib.Path(__file__).resolve().parent / "conf"
SHORT_NAMES = ("width", "depth", "activation", "feature_layer", "output_head", "loss", "lr",
               "batch_size", "segment_length", "n_orbits", "seed", "rtol", "atol", "clip",
               "planar_constraint")
PACKAGES = ("jax", "jaxlib", "equinox", "diffrax", "optax", "h5py", "numpy", "hydra-core", "omegaconf")


def results_root(config: dict) -> pathlib.Path:
    """`results_root`, else the cluster profile's, else `$SCRATCH/neuralode-hpc` or `./scratch`."""
    return hpc.results_root(config.get("results_root") or (config.get("cluster") or {}).get("results_root"))


def result_path(config: dict) -> tuple[str, pathlib.Path]:
    """The run id and the result file path of a resolved config."""
    rid = hpc.run_id(config)
    return rid, results_root(config) / config["experiment"] / f"{rid}.h5"


def prepare(cfg: DictConfig) -> tuple[str, pathlib.Path]:
    """Check one run's config without training (as the launcher does before submitting):
    model and curriculum choices, dataset ranges and segment lengths. Returns its run id and
    result path; raises `ValueError` naming the bad field."""
    import neuralode

    config = OmegaConf.to_container(cfg, resolve=True)
    _model_spec(config)
    neuralode.optimizer(config["clip"])
    data = config["dataset"]
    neuralode.family_ranges(data["family"], data["planar"],
                            **{k: data.get(k) for k in ("a", "e", "inclination", "raan", "argp", "nu0")})
    longest = neuralode.POINTS_PER_ORBIT
    for phase in _phases(config):
        if not 2 <= phase.segment_length <= longest:
            raise ValueError(f"`segment_length`={phase.segment_length} yields no usable segment: it must be "
                             f"between 2 and {longest} (the points in one orbit).")
    return result_path(config)


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _git_commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=CONF_DIR.parent,
                              capture_output=True, text=True, timeout=5)
        return done.stdout.strip() if done.returncode == 0 else "none"
    except (OSError, subprocess.SubprocessError):
        return "none"


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


def _datasets(config: dict, root: pathlib.Path):
    import neuralode

    data = config["dataset"]
    overrides = {k: data.get(k) for k in ("a", "e", "inclination", "raan", "argp", "nu0")}
    ranges = neuralode.family_ranges(data["family"], data["planar"], **overrides)
    train = neuralode.load_or_generate(root, data["family"], data["planar"], config["n_orbits"],
                                       data["train_seed"], "train", ranges)
    tests = [neuralode.load_or_generate(root, data["family"], data["planar"], n, data["test_seed"],
                                        "test", ranges) for n in data["test_sizes"]]
    return train, tests


def _setup_jax(config: dict, root: pathlib.Path) -> None:
    import jax

    if config["solver"]["dtype"] == "float64":
        jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_compilation_cache_dir", os.environ.get("JAX_COMPILATION_CACHE_DIR", str(root / "jax-cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def train(cfg: DictConfig) -> dict:
    """Run one configuration end to end and write its result file.

    **Returns:** a dict with `status`, `run_id`, `path`, `final_loss` and the scalar metrics;
    `status` is `skipped` (and nothing else is given) when a completed result already exists
    and `force` is false.
    """
    config = OmegaConf.to_container(cfg, resolve=True)
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    rid, path = result_path(config)
    if path.exists() and not config.get("force") and hpc.read_summary(path).get("status") == "completed":
        print(f"Skipping run {rid}: a completed result exists at {path} (force=true reruns it).")
        return {"status": "skipped", "run_id": rid, "path": str(path)}

    started, tic = datetime.datetime.now().astimezone(), time.monotonic()
    meta = {"versions": _versions(), "git_commit": _git_commit(), "host": socket.gethostname(),
            "python_executable": sys.executable, "python_prefix": sys.prefix,
            "start_time": started.isoformat(), "slurm": slurm_info(), "argv": " ".join(sys.argv)}

    def finish(status, tree, message="", extra=None):
        meta.update(end_time=datetime.datetime.now().astimezone().isoformat(),
                    wall_time_s=time.monotonic() - tic)
        hpc.write_result(path, status=status, config=config, config_yaml=config_yaml, run_id=rid,
                         metadata=meta, tree=tree, message=message, extra=extra)
        print(f"Result ({status}) written to {path}")

    try:
        root = results_root(config)
        _setup_jax(config, root)
        import jax

        import neuralode

        spec, phases = _model_spec(config), _phases(config)
        units = neuralode.CanonicalUnits()
        train_set, test_sets = _datasets(config, root)
        t, y = units.to_canonical(train_set.t, train_set.y)
        init_key, train_key = jax.random.split(jax.random.PRNGKey(config["seed"]))
        model = neuralode.NeuralODE(spec, key=init_key)
        progress = Progress(sum(p.steps for p in phases), desc=f"train {rid}", mode=config["progress"])
        result = neuralode.train(
            model, t, y, phases, loss=config["loss"]["name"], batch_size=config["batch_size"],
            key=train_key, nmse_weight=config["loss"]["nmse_weight"],
            chunk_size=config["solver"]["chunk_size"], clip=config["clip"],
            callback=lambda step, phase, loss, model: progress.update(step, loss=loss, phase=phase),
        )
        progress.close()
        meta.update(steps_per_s=result.steps_per_s, first_step_s=result.first_step_s)
        metrics = {}
        for test in test_sets:
            tt, ty = units.to_canonical(test.t, test.y)
            metrics[test.name] = neuralode.evaluate(result.model, tt, ty, length_km=units.length_km,
                                                    max_steps=config["metrics"]["max_steps"])
        boundaries = [int(i) for i in range(len(result.phases)) if i == 0 or result.phases[i] != result.phases[i - 1]]
        tree = {
            "history": {"loss": result.losses, "phase": result.phases, **result.health,
                        "phase_starts": boundaries, "steps": len(result.losses)},
            "training": {"status": result.status, "bad_step": result.bad_step,
                         "first_step_s": result.first_step_s, "steps_per_s": result.steps_per_s,
                         "final_loss": float(result.losses[-1]) if len(result.losses) else float("nan")},
            "metrics": metrics,
            "units": units.as_attrs(),
            "datasets": {"train": train_set.name, "test": [d.name for d in test_sets]},
        }
        finish(result.status, tree, result.message,
               extra=lambda f: neuralode.save_model(f.create_group("model"), result.model))
    except Exception as exc:
        finish("failed", {"error": {"type": type(exc).__name__, "traceback": traceback.format_exc()}},
               message=f"{type(exc).__name__}: {exc}")
        raise
    scalars = {f"{name}.{k}": v for name, m in metrics.items() for k, v in m.items() if isinstance(v, (int, float))}
    return {"status": result.status, "run_id": rid, "path": str(path), "final_loss": tree["training"]["final_loss"],
            **scalars}


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    if slurm_info():  # a plain sbatch task: thread and temp-dir hygiene before JAX is imported
        from hpc.launch import task_settings
        from hpc.task import prepare_environment

        config = OmegaConf.to_container(cfg, resolve=True)
        prepare_environment(task_settings(results_root(config), config["cluster"], os.getcwd()))
    out = train(cfg)
    if out["status"] not in ("completed", "skipped"):
        sys.exit(3)


def known_keys() -> set[str]:
    """Top-level names an override may start with."""
    groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()}
    top = set(OmegaConf.load(CONF_DIR / "config.yaml"))
    for model in (CONF_DIR / "model").glob("*.yaml"):
        top |= set(OmegaConf.load(model))
    return (top | groups | set(SHORT_NAMES) | {"hydra"}) - {"defaults"}


def unknown_overrides(args: list[str]) -> list[str]:
    """The override keys in `args` whose top-level name no config defines."""
    known = known_keys()
    bad = []
    for arg in args:
        if arg.startswith("-") or "=" not in arg or arg.startswith(("+", "~")):
            continue
        key = arg.split("=", 1)[0]
        if key.split("@")[0].split(".")[0] not in known:
            bad.append(key)
    return bad


def cli() -> None:
    try:
        main()
    except SystemExit as exc:
        bad = unknown_overrides(sys.argv[1:]) if exc.code not in (0, None) else []
        for key in bad:
            close = difflib.get_close_matches(key.split(".")[0], sorted(known_keys()), n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            print(f"Unknown key `{key}`.{hint}\nValid short names: {', '.join(SHORT_NAMES)}.\n"
                  f"Config groups: dataset, model, curriculum, loss, cluster.", file=sys.stderr)
        raise


if __name__ == "__main__":
    cli()

"""Member-steps per second of ensembles of K models against one model alone.

    python bench/ensemble_speed.py                          # K = 1, 2, 4, 8, 16; prints JSON
    python bench/ensemble_speed.py --ks 1 8 --steps 20 width=32

The config is composed by Hydra from `conf/` exactly as `python train.py <overrides>` would
(`curriculum=study` unless another is given: width 64, batch 256, segments of 18), and the
training solves use the tolerances `solver.train_rtol` gives halfway through training. An ensemble
of K trains K reference models (seeds 0..K-1) on the same training orbits in one program, as
`cluster.ensemble=K` does; K = 1 is one model alone (a single run is an ensemble of one).
Every K is compiled and warmed up first; the timed steps then alternate between the Ks, one
step each in turn, so that all see the same machine load. `ratio` is the member-steps per
second at K over the steps per second of the model alone: above 1, an ensemble trains more
runs per core-hour than the same runs one after the other. `runs_per_hour` is what that rate
gives for training runs of `--run-steps` steps (training alone: no start-up, no evaluation):
runs per core-hour on one CPU core, runs per GPU-hour on a GPU (`bench/gpu_check.sh`).
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

START = time.perf_counter()
os.environ.setdefault("EQX_ON_ERROR", "nan")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for train.py")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="ensemble sizes (1: alone)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per K")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per K after compiling")
    parser.add_argument("--root", default=None, help="datasets and compilation cache (default: a temp dir)")
    parser.add_argument("--run-steps", type=int, default=2000, help="steps of the run `runs_per_hour` counts")
    # Hydra overrides (`key=value`) may come anywhere, also after a list option such as --ks
    argv = sys.argv[1:]
    args = parser.parse_args([a for a in argv if a.startswith("-") or "=" not in a])
    args.overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    ks = sorted(set(args.ks) | {1})

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    chosen = any(o.startswith("curriculum=") for o in args.overrides)
    overrides = args.overrides if chosen else ["curriculum=study", *args.overrides]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        config = OmegaConf.to_container(compose("config", overrides), resolve=True)
    root = pathlib.Path(args.root or tempfile.mkdtemp(prefix="bench-ens-"))

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    import neuralode

    neuralode.configure_jax(config["solver"]["dtype"] == "float64", root / "jax-cache")
    spec = neuralode.spec_from_config(config)
    phase = neuralode.phases_from_config(config)[0]
    options = neuralode.train_options(config)
    train_set = neuralode.train_and_test_sets(root, n_train=config["n_orbits"], **config["dataset"])[0]
    seg = neuralode.segment(*neuralode.CanonicalUnits().to_canonical(train_set.t, train_set.y), phase.segment_length)
    dtype = jnp.float64 if spec.dtype == "float64" else jnp.float32
    optim = neuralode.optimizer(options["clip"])
    step = neuralode.make_step(
        options["loss"], optim, options["batch_size"], options["chunk_size"], options["nmse_weight"]
    )
    n_used = jnp.asarray(phase.points_used(0))
    total = sum(p.steps for p in neuralode.phases_from_config(config))
    tol = neuralode.tolerance_at(options["train_rtol"], spec, total // 2, total)  # `solver.train_rtol` halfway
    tol = None if tol is None else tuple(jnp.asarray(v, dtype) for v in tol)

    state, compile_s = {}, {}
    for k in ks:
        models = neuralode.stack([neuralode.NeuralODE(spec, key=jax.random.PRNGKey(seed)) for seed in range(k)])
        state[k] = {
            "models": models,
            "opt": jax.vmap(optim.init)(eqx.filter(models, eqx.is_array)),
            "t": jnp.asarray(np.broadcast_to(seg.t, (k, *seg.t.shape)), dtype),
            "y": jnp.asarray(np.broadcast_to(seg.y, (k, *seg.y.shape)), dtype),
            "effort": jnp.zeros((k, seg.count), jnp.int32),
            "keys": jax.random.split(jax.random.PRNGKey(1), k),
            "spent": 0.0,
            "solver_steps": [],
        }

    def run(k):
        s = state[k]
        pairs = jax.vmap(jax.random.split)(s["keys"])
        s["keys"], subs = pairs[:, 0], pairs[:, 1]
        s["opt"].hyperparams["learning_rate"] = jnp.full(k, phase.lr_at(0), dtype)  # as the loop sets it
        tic = time.perf_counter()
        values, health, s["models"], s["opt"], s["effort"] = step(
            s["models"], s["opt"], s["t"], s["y"], s["effort"], n_used, subs, tol, jnp.ones(k, bool)
        )
        values = np.asarray(values)
        spent = time.perf_counter() - tic
        s["solver_steps"].append(float(np.mean(np.asarray(health["solver_steps"]))))
        return spent, values

    for k in ks:
        compile_s[k] = run(k)[0]
        for _ in range(args.warmup):
            run(k)
        state[k]["solver_steps"].clear()
    for _ in range(args.steps):
        for k in ks:
            state[k]["spent"] += run(k)[0]
    alone = args.steps / state[1]["spent"]
    by_k = {}
    for k in ks:
        rate = k * args.steps / state[k]["spent"]
        by_k[str(k)] = {
            "member_steps_per_s": rate,
            "ratio": rate / alone,
            "steps_per_s": args.steps / state[k]["spent"],
            "runs_per_hour": rate * 3600 / args.run_steps,
            "first_step_s": compile_s[k],
            "mean_solver_steps_per_segment": float(np.mean(state[k]["solver_steps"])),
        }
    print(
        json.dumps(
            {
                "overrides": overrides,
                "width": spec.width,
                "depth": spec.depth,
                "batch_size": options["batch_size"],
                "segments": seg.count,
                "chunk_size": options["chunk_size"],
                "steps_timed": args.steps,
                "run_steps": args.run_steps,
                "device": neuralode.device_used(),
                "alone_steps_per_s": alone,
                "by_k": by_k,
                "wall_s": time.perf_counter() - START,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

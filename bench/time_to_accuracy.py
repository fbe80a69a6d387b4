"""Minutes to a usable model: wall time for the reference configuration to first reach a
given acceleration error on held-out test orbits.

    python bench/time_to_accuracy.py                          # curriculum=study unless given; prints JSON
    python bench/time_to_accuracy.py curriculum=quick --every 25
    python bench/time_to_accuracy.py output_head=signed --targets 10 5

The config is composed by Hydra from `conf/` exactly as `python train.py <overrides>` would,
so the bench measures what a user runs. Every `--every` steps the model is scored on a
held-out subset (`--subset` orbits, drawn once) of the 100-orbit test set: the mean
acceleration percent error at the true states, the metric `/metrics/<test set>` reports as
`accel_pct_mean`. Times are counted from the start of the process (imports, data and
compilation included) and from the first training step; the scoring itself is excluded.
Training stops once the last target is reached or the curriculum ends. At the end the model is
scored on all 100 orbits.
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


class _Reached(Exception):
    """Raised from the training callback once every target is met."""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for train.py")
    parser.add_argument(
        "--targets",
        type=float,
        nargs="+",
        default=[10.0, 5.0],
        help="acceleration errors (percent) to time, largest first",
    )
    parser.add_argument("--every", type=int, default=50, help="score the model every this many steps")
    parser.add_argument("--subset", type=int, default=25, help="held-out test orbits scored during training")
    parser.add_argument("--root", default=None, help="datasets and compilation cache (default: a temp dir)")
    # Hydra overrides (`key=value`) may come anywhere, also after a list option such as --targets
    argv = sys.argv[1:]
    args = parser.parse_args([a for a in argv if a.startswith("-") or "=" not in a])
    args.overrides = [a for a in argv if "=" in a and not a.startswith("-")]

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    chosen = any(o.startswith("curriculum=") for o in args.overrides)
    overrides = args.overrides if chosen else ["curriculum=study", *args.overrides]
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides)
    config = OmegaConf.to_container(cfg, resolve=True)
    root = pathlib.Path(args.root or tempfile.mkdtemp(prefix="bench-tta-"))
    import equinox as eqx
    import jax
    import numpy as np

    import neuralode

    neuralode.configure_jax(config["solver"]["dtype"] == "float64", root / "jax-cache")

    spec, phases = neuralode.spec_from_config(config), neuralode.phases_from_config(config)
    units = neuralode.CanonicalUnits()
    train_set, (test_set,) = neuralode.train_and_test_sets(
        root, n_train=config["n_orbits"], **{**config["dataset"], "test_sizes": [100]}
    )
    t, y = units.to_canonical(train_set.t, train_set.y)
    tt, ty = units.to_canonical(test_set.t, test_set.y)
    held = np.random.default_rng(0).choice(len(ty), size=min(args.subset, len(ty)), replace=False)
    a_true = neuralode.true_acceleration(ty)
    accel = eqx.filter_jit(jax.vmap(jax.vmap(lambda m, s: m.field.acceleration(s), (None, 0)), (None, 0)))

    def error(model, idx):
        a = np.asarray(accel(model, ty[idx]), np.float64)
        return float(np.mean(np.linalg.norm(a - a_true[idx], axis=-1) / np.linalg.norm(a_true[idx], axis=-1) * 100))

    targets = sorted(args.targets, reverse=True)
    reached: dict[str, dict] = {}
    trace = []
    clock = {"train_start": None, "scoring_s": 0.0}

    def callback(step, phase, loss, model):
        now = time.perf_counter()
        if clock["train_start"] is None:
            clock["train_start"] = now
        if step % args.every:
            return
        err = error(model, held)
        clock["scoring_s"] += time.perf_counter() - now
        since_start = now - START - clock["scoring_s"]
        since_train = now - clock["train_start"] - clock["scoring_s"]
        trace.append(
            {"step": step, "wall_s_from_process_start": since_start, "loss": loss, "accel_pct_mean_subset": err}
        )
        for target in targets:
            if err <= target and str(target) not in reached:
                reached[str(target)] = {
                    "step": step,
                    "wall_s_from_process_start": since_start,
                    "wall_s_from_first_step": since_train,
                }
        if len(reached) == len(targets):
            clock["model"] = model
            raise _Reached

    init_key, train_key = jax.random.split(jax.random.PRNGKey(config["seed"]))
    model = neuralode.NeuralODE(spec, key=init_key)
    try:
        result = neuralode.train(
            model, t, y, phases, key=train_key, callback=callback, **neuralode.train_options(config)
        )
        final, status = result.model, result.status
    except _Reached:
        final, status = clock["model"], "targets reached"
    print(
        json.dumps(
            {
                "overrides": overrides,
                "targets_pct": targets,
                "reached": {t: reached.get(str(t)) for t in targets},
                "stopped": status,
                "steps": trace[-1]["step"] if trace else 0,
                "final_accel_pct_mean_100_orbits": error(final, np.arange(len(ty))),
                "score_every": args.every,
                "subset_orbits": len(held),
                "trace": trace,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

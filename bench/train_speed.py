"""Training speed of the reference configuration, ours against the straightforward formulation.

    python bench/train_speed.py                    # float64 (the default), prints JSON
    python bench/train_speed.py --dtype float32 --steps 20

Both formulations start from the same weights, see the same batches and use the same solver
and per-segment error control: every segment has its own step size, and every accepted step
has its own error estimate within rtol/atol. "Straightforward" is what a typical user writes:
one `diffeqsolve` per segment, `jax.vmap` over the whole batch, one `eqx.filter_jit` step,
diffrax's default I step-size controller, differentiated through diffrax's loop (recursive
checkpointing). Ours (`neuralode.make_step` on the reference configuration) uses the PI
controller (pcoeff 0.2, icoeff 0.3; `--pcoeff 0 --icoeff 1` for diffrax's default) and the
`replay` adjoint: it solves forward without derivatives and differentiates only the accepted
steps, `--chunk-size` segments in flight (see `neuralode/_replay.py`). The timed steps
alternate between the two so both see the same machine load. The first-step times are taken
in fresh subprocesses, with a cold and then a warm persistent compilation cache.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("EQX_ON_ERROR", "nan")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


def setup(dtype: str, root: str, pcoeff: float = 0.2, icoeff: float = 0.3, adjoint: str = "replay"):
    """The reference model (initial weights of seed 0) and its training segments, from the
    config `python train.py` composes, with the solver settings given."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    overrides = [
        f"solver.dtype={dtype}",
        f"solver.pcoeff={pcoeff}",
        f"solver.icoeff={icoeff}",
        f"solver.adjoint={adjoint}",
    ]
    with initialize_config_dir(os.path.join(ROOT, "conf"), version_base="1.3"):
        config = OmegaConf.to_container(compose("config", overrides), resolve=True)
    import jax
    import jax.numpy as jnp

    import neuralode

    neuralode.configure_jax(dtype == "float64")
    data = neuralode.train_and_test_sets(root, n_train=config["n_orbits"], **{**config["dataset"], "test_sizes": []})[0]
    t, y = neuralode.CanonicalUnits().to_canonical(data.t, data.y)
    seg = neuralode.segment(t, y, config["segment_length"])
    model = neuralode.NeuralODE(neuralode.spec_from_config(config), key=jax.random.PRNGKey(0))
    return model, jnp.asarray(seg.t, dtype), jnp.asarray(seg.y, dtype)


def with_spec(model, **changes):
    """The same weights (in the new `dtype`, if `changes` sets one) under `model.spec` with
    `changes`: another step-size controller, adjoint or precision."""
    import dataclasses

    import equinox as eqx
    import jax

    import neuralode

    spec = dataclasses.replace(model.spec, **changes)
    field = jax.tree_util.tree_map(lambda a: a.astype(spec.dtype) if eqx.is_inexact_array(a) else a, model.field)
    return eqx.tree_at(lambda m: m.field, neuralode.NeuralODE(spec, key=jax.random.PRNGKey(0)), field)


def with_default_controller(model):
    """The same weights, solved with diffrax's default (I) step-size controller and
    differentiated through `diffeqsolve` (recursive checkpointing, diffrax's default)."""
    return with_spec(model, pcoeff=0.0, icoeff=1.0, adjoint="recursive_checkpoint")


def straightforward_step(optim, batch_size):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from neuralode import LOSSES

    def loss_fn(model, t, y):
        ys, _ = jax.vmap(model.solve)(t, y[:, 0])
        return jnp.mean(jax.vmap(LOSSES["percent_error"], (0, 0, None))(y, ys, t.shape[1]))

    @eqx.filter_jit
    def step(model, opt_state, t_all, y_all, key):
        count = t_all.shape[0]  # the batch ours takes: all segments once when there are no more
        idx = jnp.arange(count) if batch_size >= count else jax.random.permutation(key, count)[:batch_size]
        value, grads = eqx.filter_value_and_grad(loss_fn)(model, t_all[idx], y_all[idx])
        updates, opt_state = optim.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return value, eqx.apply_updates(model, updates), opt_state

    return step


def ours_step(optim, chunk_size):
    """`neuralode.make_step` for one model (an ensemble of one): `(model, opt_state, t, y,
    effort, key) -> (loss, health, model, opt_state, effort)`, at the model's own tolerances."""
    import jax
    import jax.numpy as jnp

    import neuralode

    step = neuralode.make_step("percent_error", optim, 256, chunk_size)
    first = lambda tree: neuralode.member(tree, 0)  # noqa: E731

    def one(model, opt_state, t, y, effort, key):
        states = jax.tree_util.tree_map(lambda a: a[None], opt_state)
        states.hyperparams["learning_rate"] = jnp.asarray(states.hyperparams["learning_rate"], t.dtype)
        value, health, models, states, effort = step(
            neuralode.stack([model]), states, t[None], y[None], effort[None], jnp.asarray(t.shape[1]),
            key[None], None, jnp.ones(1, bool),
        )  # fmt: skip
        return value[0], first(health), first(models), first(states), effort[0]

    return one


def time_interleaved(runs, steps):
    """Time `runs[name](i)` for i < steps, alternating between the formulations so that both
    see the same machine load. Returns {name: (first step s, later steps per s, last value)}."""
    first, value, spent = {}, {}, dict.fromkeys(runs, 0.0)
    for i in range(steps):
        for name, run in runs.items():
            tic = time.perf_counter()
            value[name] = run(i)
            if i == 0:
                first[name] = time.perf_counter() - tic
            else:
                spent[name] += time.perf_counter() - tic
    return {name: (first[name], (steps - 1) / spent[name], value[name]) for name in runs}


def accuracy(model, plain_model, t, y, lanes):
    """Largest relative error of one batch's solutions against a float64 rtol=1e-12 reference."""
    import diffrax
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    import neuralode

    ref_model = jax.tree_util.tree_map(lambda x: x.astype(jnp.float64) if eqx.is_array(x) else x, model)

    @jax.jit
    def reference(t, y0):
        def one(ts, y):
            sol = diffrax.diffeqsolve(
                diffrax.ODETerm(ref_model.field),
                diffrax.Dopri8(),
                ts[0],
                ts[-1],
                None,
                y,
                saveat=diffrax.SaveAt(ts=ts),
                max_steps=100_000,
                throw=False,
                stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-14),
            )
            return sol.ys

        return jax.vmap(one)(t, y0)

    with jax.enable_x64(True):
        ref = np.asarray(reference(jnp.asarray(t, jnp.float64), jnp.asarray(y[:, 0], jnp.float64)))

    def rel(ys):
        ys = np.asarray(ys, np.float64)
        err = np.linalg.norm(ys - ref, axis=-1) / np.linalg.norm(ref, axis=-1)
        return float(np.nanmax(err)), int(np.sum(~np.isfinite(err).all(axis=1)))

    plain, _ = eqx.filter_jit(lambda m, t, y0: jax.vmap(m.solve)(t, y0))(plain_model, t, y[:, 0])
    ours = eqx.filter_jit(lambda m, t, y0: neuralode.solve_batch(m, t, y0, t[:, -1], chunk_size=lanes)[0])(
        model, t, y[:, 0]
    )
    (p_err, p_fail), (o_err, o_fail) = rel(plain), rel(ours)
    return {
        "straightforward_max_rel_error": p_err,
        "straightforward_failed": p_fail,
        "ours_max_rel_error": o_err,
        "ours_failed": o_fail,
    }


def first_step(args, root, cache):
    """Time the first training step of ours (as `args` configure it) in a fresh process with
    `cache` as compilation cache."""
    settings = (args.dtype, root, cache, args.chunk_size, args.pcoeff, args.icoeff, args.adjoint)
    code = "import sys; sys.argv=['x']; import bench.train_speed as b; b.first_step_child(*%r)" % (settings,)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def first_step_child(dtype, root, cache, chunk_size, pcoeff, icoeff, adjoint):
    tic = time.perf_counter()
    import jax

    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    import equinox as eqx
    import jax.numpy as jnp
    import optax

    model, t, y = setup(dtype, root, pcoeff, icoeff, adjoint)
    optim = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
    step = ours_step(optim, chunk_size)
    state, effort = optim.init(eqx.filter(model, eqx.is_array)), jnp.zeros(t.shape[0], jnp.int32)
    imported = time.perf_counter() - tic
    tic = time.perf_counter()
    float(step(model, state, t, y, effort, jax.random.PRNGKey(0))[0])
    print(json.dumps({"import_and_setup_s": imported, "first_step_s": time.perf_counter() - tic}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per formulation")
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=0,
        help="train ours this many steps first; both formulations then start from that model",
    )
    parser.add_argument("--chunk-size", type=int, default=128, help="ours: segments in flight together")
    parser.add_argument("--pcoeff", type=float, default=0.2, help="ours: step-size controller (the reference's PI)")
    parser.add_argument("--icoeff", type=float, default=0.3)
    parser.add_argument("--adjoint", default="replay", help="ours: replay, recursive_checkpoint, ...")
    parser.add_argument("--skip-first-step", action="store_true", help="skip the fresh-process timings")
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="bench-")
    out = {"dtype": args.dtype, "steps": args.steps, "batch_size": 256, "chunk_size": args.chunk_size}
    if not args.skip_first_step:
        cache = os.path.join(root, "jax-cache")
        out["fresh_process_cold_cache"] = first_step(args, root, cache)
        out["fresh_process_warm_cache"] = first_step(args, root, cache)

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    model, t, y = setup(args.dtype, root, args.pcoeff, args.icoeff, args.adjoint)
    optim = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
    ours = ours_step(optim, args.chunk_size)
    effort, state = jnp.zeros(t.shape[0], jnp.int32), optim.init(eqx.filter(model, eqx.is_array))
    key = jax.random.PRNGKey(1)
    for i in range(args.warmup_steps):
        _, _, model, state, effort = ours(model, state, t, y, effort, jax.random.fold_in(key, i))
    keys = [jax.random.fold_in(jax.random.PRNGKey(2), i) for i in range(args.steps)]
    out["accuracy_fixed_weights"] = accuracy(model, with_default_controller(model), t[:256], y[:256], args.chunk_size)

    plain = straightforward_step(optim, 256)
    carry = {"m": model, "s": optim.init(eqx.filter(model, eqx.is_array)), "d": effort, "failed": 0}
    plain_model = with_default_controller(model)
    plain_carry = {"m": plain_model, "s": optim.init(eqx.filter(plain_model, eqx.is_array))}

    def run_ours(i):
        value, health, carry["m"], carry["s"], carry["d"] = ours(carry["m"], carry["s"], t, y, carry["d"], keys[i])
        carry["failed"] += int(health["failed_segments"])
        return float(value)

    def run_plain(i):
        value, plain_carry["m"], plain_carry["s"] = plain(plain_carry["m"], plain_carry["s"], t, y, keys[i])
        return float(value)

    timed = time_interleaved({"ours": run_ours, "straightforward": run_plain}, args.steps)
    for name, (first, rate, loss) in timed.items():
        out[name] = {"first_step_s": first, "steps_per_s": rate, "final_loss": loss}
    out["ours"].update(
        segments_left_out=carry["failed"],
        mean_solver_steps=float(jnp.mean(carry["d"])),
        max_solver_steps=int(jnp.max(carry["d"])),
    )
    out["peak_rss_mb_both"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["speedup"] = out["ours"]["steps_per_s"] / out["straightforward"]["steps_per_s"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

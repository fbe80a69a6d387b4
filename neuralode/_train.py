"""Curriculum training of a `NeuralODE` on orbit segments."""

import dataclasses
import time
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._curriculum import Phase
from ._losses import LOSSES
from ._model import NeuralODE
from ._registry import lookup
from ._replay import _divisor, map_in_groups, solve_batch
from ._segments import Segments, segment


@dataclasses.dataclass
class TrainResult:
    """What training produced: the model (the last one with a finite loss), the loss per step,
    the phase of each step, how many segments of each step's batch failed to solve, and
    `status` (`completed` or `non_finite` at `non_finite_step`)."""

    model: NeuralODE
    losses: np.ndarray
    phases: np.ndarray
    failed_segments: np.ndarray
    status: str
    non_finite_step: int | None
    first_step_s: float
    steps_per_s: float


def make_step(loss: str, optim, batch_size: int, chunk_size: int, nmse_weight: float = 1.0):
    """A jitted training step `(model, opt_state, t, y, difficulty, n_used, key) ->
    (loss, failed, model, opt_state, difficulty)`; `failed` counts the segments whose solve
    failed and were left out of the step; the loss is NaN when every one failed or the
    gradient is not finite.

    `difficulty` holds each segment's solver step count when it was last seen. With the
    model's default `replay` adjoint the batch goes through `solve_batch` (`chunk_size` lanes).
    Other adjoints differentiate `diffeqsolve` itself, in chunks of `chunk_size` segments
    (rounded down to a divisor of `batch_size`) ordered by difficulty (`map_in_groups`); a
    chunk whose gradient is not finite (a failed solve can leak NaN into it) is dropped whole.
    """
    loss_fn = lookup(LOSSES, loss, "loss")
    chunk_size = _divisor(batch_size, chunk_size)

    def segment_loss(y, ys, ok, n_used):
        # Substituting the truth for a failed solve keeps NaN out of the value.
        return jnp.where(ok, loss_fn(y, jnp.where(ok, ys, y), n_used, nmse_weight), 0.0)

    batch_loss = jax.vmap(segment_loss, (0, 0, 0, None))

    def replay_grads(model, t, y, difficulty, n_used):
        def total(model):
            ys, ok, _, attempted = solve_batch(model, t, y[:, 0], t[:, n_used - 1], lanes=chunk_size,
                                               effort=difficulty)
            return jnp.sum(batch_loss(y, ys, ok, n_used)), (jnp.sum(ok), attempted)

        (value, (n_good, attempted)), grads = eqx.filter_value_and_grad(total, has_aux=True)(model)
        return value, n_good, grads, attempted

    def chunked_grads(model, t, y, difficulty, n_used):
        params, static = eqx.partition(model, eqx.is_array)

        def chunk_loss(params, t, y):
            ys, stats = jax.vmap(eqx.combine(params, static).solve)(t, y[:, 0], t[:, n_used - 1])
            ok = jnp.all(jnp.isfinite(ys), axis=(1, 2))
            return jnp.sum(batch_loss(y, ys, ok, n_used)), (jnp.sum(ok), stats["num_steps"])

        def chunk(args):
            (value, (n_good, steps)), grads = jax.value_and_grad(chunk_loss, has_aux=True)(params, *args)
            finite = _all_finite(grads)
            grads = jax.tree_util.tree_map(lambda g: jnp.where(finite, g, 0), grads)
            return jnp.where(finite, value, 0.0), jnp.where(finite, n_good, 0), grads, steps

        (values, n_good, grads, steps), ungroup = map_in_groups(chunk, (t, y), difficulty, chunk_size)
        grads = jax.tree_util.tree_map(lambda g: jnp.sum(g, 0), grads)
        return jnp.sum(values), jnp.sum(n_good), grads, ungroup(steps)

    @eqx.filter_jit
    def step(model, opt_state, t_all, y_all, difficulty, n_used, key):
        count = t_all.shape[0]
        if batch_size <= count:
            idx = jax.random.permutation(key, count)[:batch_size]
        else:
            idx = jax.random.randint(key, (batch_size,), 0, count)
        grads_of = replay_grads if model.spec.adjoint == "replay" else chunked_grads
        total, n_good, grads, steps = grads_of(model, t_all[idx], y_all[idx], difficulty[idx], n_used)
        finite = _all_finite(grads)
        scale = 1.0 / jnp.maximum(n_good, 1)
        value = jnp.where((n_good > 0) & finite, total * scale, jnp.nan)
        grads = jax.tree_util.tree_map(lambda g: jnp.where(finite, g * scale, 0), grads)
        updates, opt_state = optim.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        model = eqx.apply_updates(model, updates)
        return value, batch_size - n_good, model, opt_state, difficulty.at[idx].set(steps)

    return step


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(tree)]))


def train(
    model: NeuralODE,
    t: np.ndarray,
    y: np.ndarray,
    curriculum: list[Phase],
    *,
    loss: str,
    batch_size: int,
    key,
    nmse_weight: float = 1.0,
    chunk_size: int = 128,
    callback: Callable[[int, int, float], None] | None = None,
) -> TrainResult:
    """Train `model` on orbits `t [n, points]`, `y [n, points, 6]` (canonical units).

    Every phase's segment length is checked before the first step. The optimizer (Adam) is
    re-initialised at each phase. `callback(step, phase, loss)` is called after every step.
    """
    lookup(LOSSES, loss, "loss")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    dtype = model.field.mlp.layers[0].weight.dtype
    segments: dict[int, Segments] = {}
    for phase in curriculum:
        if phase.segment_length not in segments:
            segments[phase.segment_length] = segment(t, y, phase.segment_length)
    optim = optax.inject_hyperparams(optax.adam)(learning_rate=curriculum[0].lr)
    step = make_step(loss, optim, batch_size, chunk_size, nmse_weight)

    losses, phases, failures = [], [], []
    status, bad_step, first_step_s = "completed", None, 0.0
    start = None
    done = 0
    for p, phase in enumerate(curriculum):
        seg = segments[phase.segment_length]
        t_all, y_all = jnp.asarray(seg.t, dtype), jnp.asarray(seg.y, dtype)
        difficulty = jnp.zeros(seg.count, jnp.int32)
        opt_state = optim.init(eqx.filter(model, eqx.is_array))
        opt_state.hyperparams["learning_rate"] = jnp.asarray(phase.lr, dtype)
        for s in range(phase.steps):
            key, sub = jax.random.split(key)
            tic = time.perf_counter()
            value, failed, new_model, new_state, new_difficulty = step(
                model, opt_state, t_all, y_all, difficulty, jnp.asarray(phase.points_used(s)), sub
            )
            value = float(value)
            if start is None:
                first_step_s = time.perf_counter() - tic
                start = time.perf_counter()
            if not np.isfinite(value):
                status, bad_step = "non_finite", len(losses)
                break
            model, opt_state, difficulty = new_model, new_state, new_difficulty
            losses.append(value)
            phases.append(p)
            failures.append(int(failed))
            done += 1
            if callback is not None:
                callback(len(losses), p, value)
        if status != "completed":
            break
    elapsed = time.perf_counter() - start if start is not None else 0.0
    rate = (done - 1) / elapsed if done > 1 and elapsed > 0 else float("nan")
    return TrainResult(model, np.asarray(losses), np.asarray(phases, np.int32),
                       np.asarray(failures, np.int32), status, bad_step,
                       first_step_s, rate)

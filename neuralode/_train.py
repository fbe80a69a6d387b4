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


def _chunk_size(batch_size: int, wanted: int) -> int:
    size = max(1, min(wanted, batch_size))
    while batch_size % size:
        size -= 1
    return size


def make_step(loss: str, optim, batch_size: int, chunk_size: int, nmse_weight: float = 1.0):
    """A jitted training step `(model, opt_state, t, y, difficulty, n_used, key) ->
    (loss, failed, model, opt_state, difficulty)`; `failed` counts the segments whose solve
    failed (or whose gradient was not finite) and were left out of the step; the loss is NaN
    only when every one failed.

    The batch is solved in chunks of `chunk_size` segments (rounded down to a divisor of
    `batch_size`), ordered by `difficulty` (each
    segment's solver step count when it was last seen). A vmapped adaptive solve runs every
    member for as many steps as its slowest one, so grouping like with like removes most of
    that waste while every segment keeps its own step size and error control.
    """
    loss_fn = lookup(LOSSES, loss, "loss")
    chunk_size = _chunk_size(batch_size, chunk_size)
    chunks = batch_size // chunk_size

    def segment_loss(model, t, y, n_used):
        ys, stats = model.solve(t, y[0], t1=t[n_used - 1])
        ok = jnp.all(jnp.isfinite(ys))
        # Substituting the truth for a failed solve keeps NaN out of the value (its gradient
        # is zero, or NaN from a non-finite intermediate: see `chunk_grads`).
        return jnp.where(ok, loss_fn(y, jnp.where(ok, ys, y), n_used, nmse_weight), 0.0), (ok, stats["num_steps"])

    def chunk_loss(model, t, y, n_used):
        values, (ok, steps) = jax.vmap(segment_loss, (None, 0, 0, None))(model, t, y, n_used)
        return jnp.sum(values), (ok, steps)

    def chunk_grads(params, static, t, y, n_used):
        # Segments are sorted by effort, so the ones whose solve fails share the last chunks;
        # a chunk whose gradient is not finite is dropped whole, at no per-segment cost.
        (total, (ok, steps)), grads = eqx.filter_value_and_grad(chunk_loss, has_aux=True)(
            eqx.combine(params, static), t, y, n_used)
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)]))
        grads = jax.tree_util.tree_map(lambda g: jnp.where(finite, g, 0), grads)
        return jnp.where(finite, total, 0.0), jnp.where(finite, jnp.sum(ok), 0), grads, steps

    @eqx.filter_jit
    def step(model, opt_state, t_all, y_all, difficulty, n_used, key):
        count = t_all.shape[0]
        if batch_size <= count:
            idx = jax.random.permutation(key, count)[:batch_size]
        else:
            idx = jax.random.randint(key, (batch_size,), 0, count)
        idx = idx[jnp.argsort(difficulty[idx])]
        t = t_all[idx].reshape(chunks, chunk_size, *t_all.shape[1:])
        y = y_all[idx].reshape(chunks, chunk_size, *y_all.shape[1:])
        params, static = eqx.partition(model, eqx.is_array)
        values, n_good, grads, steps = jax.lax.map(
            lambda args: chunk_grads(params, static, *args, n_used), (t, y))
        n_good = jnp.sum(n_good)
        scale = 1.0 / jnp.maximum(n_good, 1)
        value = jnp.where(n_good > 0, jnp.sum(values) * scale, jnp.nan)
        grads = jax.tree_util.tree_map(lambda g: jnp.sum(g, 0) * scale, grads)
        updates, opt_state = optim.update(grads, opt_state, params)
        model = eqx.apply_updates(model, updates)
        return value, batch_size - n_good, model, opt_state, difficulty.at[idx].set(steps.reshape(-1))

    return step


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
    chunk_size: int = 64,
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

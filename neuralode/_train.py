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


class CheckpointMismatch(ValueError):
    """`train(resume=...)` was handed a state saved by another model, optimizer or version."""


# Per-step training health, recorded in `TrainResult.health` (and a result file's /history).
HEALTH = ("grad_norm", "update_norm", "failed_segments", "solver_steps", "moment_max")


@dataclasses.dataclass(frozen=True)
class StallRule:
    """When a run counts as stalled: Adam's update RMS stays below `ratio` times the learning
    rate for `steps` consecutive steps, or its second moments stop being finite.

    A healthy Adam update moves each weight by about `lr * m / sqrt(v)`, a sizeable fraction of
    `lr` (0.012-1 of it, measured over every step of 19 runs, see the README). After one huge, finite
    gradient `v` is so large that every later update is ~0 and the model freezes, yet the loss
    stays finite: only the update size shows it."""

    ratio: float = 1e-3
    steps: int = 50


class StallWatch:
    """Applies a `StallRule` step by step, within one phase, to a model of `n_params` weights."""

    def __init__(self, rule: StallRule, n_params: int):
        self.rule = rule
        self.scale = np.sqrt(n_params)  # global norm -> RMS per weight
        self.small = 0  # consecutive steps so far whose update was below the limit

    def stalled(self, update_norm: float, moment_max: float, lr: float) -> bool:
        """Record one step taken at learning rate `lr`; True once the updates have collapsed."""
        self.small = self.small + 1 if update_norm / self.scale < self.rule.ratio * lr else 0
        return self.small >= self.rule.steps or not np.isfinite(moment_max)


@dataclasses.dataclass
class TrainResult:
    """What training produced: the model (the last one with a finite loss), the loss per step,
    the phase of each step, the per-step `health` (`HEALTH`: the gradient's global norm before
    clipping, the update's global norm, segments whose solve failed and were left out, mean
    solver steps per segment, the largest Adam second moment), and `status`: `completed`,
    `non_finite` (at `bad_step`, no finite loss), `stalled` (updates collapsed from
    `bad_step` on, see `StallRule`; training stopped there) or `interrupted` (asked to stop by
    its checkpoint after `bad_step` steps)."""

    model: NeuralODE
    losses: np.ndarray
    phases: np.ndarray
    health: dict[str, np.ndarray]
    status: str
    bad_step: int | None
    first_step_s: float
    steps_per_s: float

    def tree(self) -> dict:
        """The `/history` (per step) and `/training` groups of a result file."""
        starts = [i for i in range(len(self.phases)) if i == 0 or self.phases[i] != self.phases[i - 1]]
        final = float(self.losses[-1]) if len(self.losses) else float("nan")
        return {
            "history": {
                "loss": self.losses,
                "phase": self.phases,
                **self.health,
                "phase_starts": starts,
                "steps": len(self.losses),
            },
            "training": {
                "status": self.status,
                "bad_step": self.bad_step,
                "first_step_s": self.first_step_s,
                "steps_per_s": self.steps_per_s,
                "final_loss": final,
                "failed_segments": int(np.sum(self.health["failed_segments"])),
            },
        }

    @property
    def failed_segments(self) -> np.ndarray:
        return self.health["failed_segments"]

    @property
    def message(self) -> str:
        """Why the run did not complete, naming the step ("" when it did)."""
        if self.status == "non_finite":
            return f"non-finite loss or gradient at step {self.bad_step}"
        if self.status == "interrupted":
            return f"interrupted after step {self.bad_step}; the checkpoint holds the state to resume from"
        if self.status == "stalled":
            grads = self.health["grad_norm"][: self.bad_step + 1]
            spike = int(np.argmax(grads))
            return (
                f"training stalled at step {self.bad_step}: the optimizer's updates collapsed (gradient "
                f"norm {grads[-1]:.3g} there, {grads[spike]:.3g} at step {spike}: Adam's second moment "
                f"still remembers the larger one; a smaller clip=<norm> bounds that)"
            )
        return ""


def optimizer(clip: float | None):
    """Adam whose learning rate is a hyperparameter (`opt_state.hyperparams["learning_rate"]`),
    behind gradient clipping to global norm `clip` (`None`: no clipping)."""
    if clip is not None and not (isinstance(clip, (int, float)) and not isinstance(clip, bool) and clip > 0):
        raise ValueError(f"`clip` must be > 0 or null (no clipping), got {clip!r}.")

    def adam(learning_rate):
        if clip is None:
            return optax.adam(learning_rate)
        return optax.chain(optax.clip_by_global_norm(clip), optax.adam(learning_rate))

    return optax.inject_hyperparams(adam)(learning_rate=1e-3)


def make_step(loss: str, optim, batch_size: int, chunk_size: int, nmse_weight: float = 1.0):
    """A jitted training step `(model, opt_state, t, y, effort, n_used, key) ->
    (loss, health, model, opt_state, effort)`; `health` maps each name of `HEALTH` to a
    scalar (`failed_segments` counts the segments whose solve failed and were left out of the
    step); the loss is NaN when every one failed or the gradient is not finite.

    `effort` holds each segment's solver step count when it was last seen. With the
    model's default `replay` adjoint the batch goes through `solve_batch` (`chunk_size` lanes).
    Other adjoints differentiate `diffeqsolve` itself, in chunks of `chunk_size` segments
    (rounded down to a divisor of `batch_size`) ordered by effort (`map_in_groups`); a
    chunk whose gradient is not finite (a failed solve can leak NaN into it) is dropped whole.
    """
    batch_loss = _batch_loss(loss, nmse_weight)
    chunk_size = _divisor(batch_size, chunk_size)

    def replay_grads(model, t, y, effort, n_used):
        def total(model):
            ys, ok, _, attempted = solve_batch(
                model, t, y[:, 0], t[:, n_used - 1], chunk_size=chunk_size, effort=effort
            )
            return jnp.sum(batch_loss(y, ys, ok, n_used)), (jnp.sum(ok), attempted)

        (value, (n_good, attempted)), grads = eqx.filter_value_and_grad(total, has_aux=True)(model)
        return value, n_good, grads, attempted

    def chunked_grads(model, t, y, effort, n_used):
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

        (values, n_good, grads, steps), ungroup = map_in_groups(chunk, (t, y), effort, chunk_size)
        grads = jax.tree_util.tree_map(lambda g: jnp.sum(g, 0), grads)
        return jnp.sum(values), jnp.sum(n_good), grads, ungroup(steps)

    @eqx.filter_jit
    def step(model, opt_state, t_all, y_all, effort, n_used, key):
        idx = _sample(key, t_all.shape[0], batch_size)
        grads_of = replay_grads if model.spec.adjoint == "replay" else chunked_grads
        total, n_good, grads, steps = grads_of(model, t_all[idx], y_all[idx], effort[idx], n_used)
        value, health, updates, opt_state = _update(optim, batch_size, total, n_good, grads, steps, opt_state, model)
        return value, health, eqx.apply_updates(model, updates), opt_state, effort.at[idx].set(steps)

    return step


def _batch_loss(loss: str, nmse_weight: float):
    """`(y [B, L, 6], ys, ok [B], n_used) -> [B]`: each segment's loss, 0 where its solve failed."""
    loss_fn = lookup(LOSSES, loss, "loss")

    def segment_loss(y, ys, ok, n_used):
        # Substituting the truth for a failed solve keeps NaN out of the value.
        return jnp.where(ok, loss_fn(y, jnp.where(ok, ys, y), n_used, nmse_weight), 0.0)

    return jax.vmap(segment_loss, (0, 0, 0, None))


def _sample(key, count: int, batch_size: int) -> jax.Array:
    """The indices of one step's batch of segments: without replacement when there are enough."""
    if batch_size <= count:
        return jax.random.permutation(key, count)[:batch_size]
    return jax.random.randint(key, (batch_size,), 0, count)


def _update(optim, batch_size: int, total, n_good, grads, steps, opt_state, model):
    """One optimizer step from a batch's summed loss `total` and gradient over its `n_good`
    segments that solved: `(loss, health, updates, opt_state)`; the loss is NaN and the gradient
    0 when none solved or the gradient is not finite."""
    finite = _all_finite(grads)
    scale = 1.0 / jnp.maximum(n_good, 1)
    value = jnp.where((n_good > 0) & finite, total * scale, jnp.nan)
    grads = jax.tree_util.tree_map(lambda g: jnp.where(finite, g * scale, 0), grads)
    updates, opt_state = optim.update(grads, opt_state, eqx.filter(model, eqx.is_array))
    health = {
        "grad_norm": optax.tree.norm(grads),
        "update_norm": optax.tree.norm(updates),
        "failed_segments": batch_size - n_good,
        "solver_steps": jnp.mean(steps),
        "moment_max": _moment_max(opt_state),
    }
    return value, health, updates, opt_state


def _state_arrays(state, phase: int, step: int, losses, phases, health, stall_small: int) -> dict:
    """The training state as named numpy arrays (what `train(resume=...)` takes back)."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(state, eqx.is_array))
    out = {f"state/{i:05d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    out.update(
        {
            "phase": np.asarray(phase),
            "step": np.asarray(step),
            "stall_small": np.asarray(stall_small),
            "losses": np.asarray(losses, np.float64),
            "phases": np.asarray(phases, np.int32),
        }
    )
    out.update({f"health/{name}": np.asarray(health[name], np.float64) for name in HEALTH})
    return out


def _restore(arrays: dict, like):
    """`like` (model, optimizer state, effort, key) with its arrays replaced by the saved ones."""
    params, static = eqx.partition(like, eqx.is_array)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    saved = sorted(k for k in arrays if k.startswith("state/"))
    if len(saved) != len(leaves) or any(np.shape(arrays[k]) != leaf.shape for k, leaf in zip(saved, leaves)):
        raise CheckpointMismatch(
            "the checkpoint does not match this model and optimizer (another config, or another version of the code?)"
        )
    new = [jnp.asarray(arrays[k], leaf.dtype) for k, leaf in zip(saved, leaves)]
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, new), static)


def _moment_max(opt_state) -> jax.Array:
    """The largest Adam second moment (`inf`/NaN when one is not finite)."""
    nu = jax.tree_util.tree_leaves(optax.tree.get(opt_state, "nu"))
    return jnp.max(jnp.stack([jnp.max(jnp.where(jnp.isnan(v), jnp.inf, v)) for v in nu]))


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
    clip: float | None = 1.0,
    stall: StallRule | None = StallRule(),
    callback: Callable[[int, int, float, NeuralODE], None] | None = None,
    checkpoint=None,
    resume: dict | None = None,
) -> TrainResult:
    """Train `model` on orbits `t [n, points]`, `y [n, points, 6]` (canonical units).

    Every phase's segment length is checked before the first step. The optimizer (Adam behind
    clipping to global norm `clip`, see `optimizer`) is re-initialised at each phase. Training
    stops early with status `non_finite` when a loss cannot be computed, and `stalled` when
    `stall` (a `StallRule`; `None` never stops) sees the updates collapse.
    `callback(step, phase, loss, model)` is called after every step.

    `checkpoint`, if given, is asked after every step: when `checkpoint.due(step)`, the whole
    training state (weights, optimizer state, RNG key, phase and step, history so far) is
    handed to `checkpoint.save(arrays, step)` as a dict of arrays; if `checkpoint.stop` is then true,
    training ends there with status `interrupted`. `resume` (such arrays) continues from where
    they were saved: `model` must be built as it was for the saved run, and where the
    computation is deterministic the losses equal those of an uninterrupted run, step for step.
    """
    lookup(LOSSES, loss, "loss")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    dtype = model.field.mlp.layers[0].weight.dtype
    segments: dict[int, Segments] = {}
    for phase in curriculum:
        if phase.segment_length not in segments:
            segments[phase.segment_length] = segment(t, y, phase.segment_length)
    optim = optimizer(clip)
    step = make_step(loss, optim, batch_size, chunk_size, nmse_weight)
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array)))

    losses, phases, health = [], [], {name: [] for name in HEALTH}
    status, bad_step, first_step_s = "completed", None, 0.0
    start = None
    at, saved = (0, 0), None  # where training (re)starts: phase, step within it
    if resume is not None:
        missing = [
            k
            for k in ("phase", "step", "stall_small", "losses", "phases", *(f"health/{n}" for n in HEALTH))
            if k not in resume
        ]
        if missing:
            raise CheckpointMismatch(f"the checkpoint does not match this training (it lacks {', '.join(missing[:3])})")
        at, saved = (int(resume["phase"]), int(resume["step"])), resume
        losses, phases = list(resume["losses"]), list(resume["phases"])
        health = {name: list(resume[f"health/{name}"]) for name in HEALTH}
    for p, phase in enumerate(curriculum):
        if p < at[0]:
            continue
        seg = segments[phase.segment_length]
        t_all, y_all = jnp.asarray(seg.t, dtype), jnp.asarray(seg.y, dtype)
        effort = jnp.zeros(seg.count, jnp.int32)
        opt_state = optim.init(eqx.filter(model, eqx.is_array))
        watch = StallWatch(stall, n_params) if stall is not None else None
        first = 0
        if saved is not None:  # the phase a checkpoint was taken in
            model, opt_state, effort, key = _restore(saved, (model, opt_state, effort, key))
            first, saved = at[1], None
            if watch is not None:
                watch.small = int(resume["stall_small"])
        for s in range(first, phase.steps):
            key, sub = jax.random.split(key)
            lr = phase.lr_at(s)
            opt_state.hyperparams["learning_rate"] = jnp.asarray(lr, dtype)
            tic = time.perf_counter()
            value, stats, new_model, new_state, new_effort = step(
                model, opt_state, t_all, y_all, effort, jnp.asarray(phase.points_used(s)), sub
            )
            value = float(value)
            if start is None:
                first_step_s = time.perf_counter() - tic
                start = time.perf_counter()
            if not np.isfinite(value):
                status, bad_step = "non_finite", len(losses)
                break
            model, opt_state, effort = new_model, new_state, new_effort
            losses.append(value)
            phases.append(p)
            stats = jax.device_get(stats)  # one transfer for all five scalars
            for name in HEALTH:
                health[name].append(float(stats[name]))
            if callback is not None:
                callback(len(losses), p, value, model)
            if watch is not None and watch.stalled(health["update_norm"][-1], health["moment_max"][-1], lr):
                status, bad_step = "stalled", len(losses) - max(watch.small, 1)
                break
            if checkpoint is not None and checkpoint.due(len(losses)):
                state = (model, opt_state, effort, key)
                checkpoint.save(
                    _state_arrays(state, p, s + 1, losses, phases, health, watch.small if watch is not None else 0),
                    step=len(losses),
                )
                if checkpoint.stop:
                    status, bad_step = "interrupted", len(losses)
                    break
        if status != "completed":
            break
    done = len(losses)
    elapsed = time.perf_counter() - start if start is not None else 0.0
    rate = (done - 1) / elapsed if done > 1 and elapsed > 0 else float("nan")
    history = {name: np.asarray(v, np.int32 if name == "failed_segments" else np.float64) for name, v in health.items()}
    return TrainResult(
        model, np.asarray(losses), np.asarray(phases, np.int32), history, status, bad_step, first_step_s, rate
    )

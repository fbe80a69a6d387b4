"""Curriculum training of a `NeuralODE` on orbit segments."""

import dataclasses
import functools
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
from ._segments import segment


class CheckpointMismatch(ValueError):
    """`train(resume=...)` was handed a state saved by another model, optimizer or version."""


# Per-step training health, recorded in `TrainResult.health` (and a result file's /history).
HEALTH = ("grad_norm", "update_norm", "failed_segments", "solver_steps", "moment_max")


@dataclasses.dataclass(frozen=True)
class StallRule:
    """When a run counts as stalled: Adam's update RMS stays below `ratio` times the learning
    rate for `steps` consecutive steps, or its second moments stop being finite.

    A healthy Adam update moves each weight by about `lr * m / sqrt(v)`, a sizeable fraction of
    `lr` (0.0062-0.95 of it over every step of 45 completed runs: bench/update_health.py). After one huge, finite
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
    """A jitted training step of `M` models whose arrays are stacked on a leading axis of
    members (an ensemble; a single run is an ensemble of one): `(models, opt_states, t_all,
    y_all, effort, n_used, keys, tol, adopt) -> (loss, health, models, opt_states, effort)`,
    every argument and output but `n_used` and `tol` with that leading axis. `health` maps each
    name of `HEALTH` to a value per member (`failed_segments` counts the segments whose solve
    failed and were left out of the step); a member's loss is NaN when every one failed or its
    gradient is not finite. A member not in `adopt`, or whose loss is not finite, keeps its
    weights, optimizer state and effort.

    Each member's step is vmapped over the members, so every member keeps its own pool of
    lanes and every layer is one batched matrix product per member. `effort` holds each
    segment's solver step count when it was last seen. With the model's default `replay`
    adjoint the batch goes through `solve_batch` (`chunk_size` lanes) with the tolerances `tol`
    (`(rtol, atol)`; `None`: the model's). Other adjoints differentiate `diffeqsolve` itself,
    with the model's tolerances, in chunks of `chunk_size` segments (rounded down to a divisor
    of the batch) ordered by effort (`map_in_groups`); a chunk whose gradient is not finite (a
    failed solve can leak NaN into it) is dropped whole.
    """
    batch_loss = _batch_loss(loss, nmse_weight)

    def one(model, opt_state, t_all, y_all, effort, n_used, key, tol):
        idx = _sample(key, t_all.shape[0], batch_size)
        grads_of = _replay_grads if model.spec.adjoint == "replay" else _chunked_grads
        got = grads_of(batch_loss, chunk_size, model, t_all[idx], y_all[idx], effort[idx], n_used, tol)
        total, n_good, grads, steps = got
        value, health, updates, opt_state = _update(optim, idx.shape[0], total, n_good, grads, steps, opt_state, model)
        return value, health, eqx.apply_updates(model, updates), opt_state, effort.at[idx].set(steps)

    mapped = eqx.if_array(0)
    members = eqx.filter_vmap(one, in_axes=(mapped, mapped, 0, 0, 0, None, 0, None))

    @eqx.filter_jit
    def step(models, opt_states, t_all, y_all, effort, n_used, keys, tol, adopt):
        values, health, new_models, new_states, new_effort = members(
            models, opt_states, t_all, y_all, effort, n_used, keys, tol
        )
        keep = adopt & jnp.isfinite(values)
        pick = functools.partial(_pick, keep)
        return values, health, pick(new_models, models), pick(new_states, opt_states), pick(new_effort, effort)

    return step


def _pick(keep, new, old):
    """`new` for the members in `keep`, `old` for the others, leaf by leaf (non-arrays: `new`)."""

    def choose(new, old):
        if not eqx.is_array(new):
            return new
        return jnp.where(keep.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)

    return jax.tree_util.tree_map(choose, new, old)


def _replay_grads(batch_loss, chunk_size, model, t, y, effort, n_used, tol):
    """The `replay` adjoint's step: the batch's loss, its count of good solves, the gradient and
    each segment's attempted steps, solved in one pool (`solve_batch`)."""

    def total(model):
        ys, ok, _, attempted = solve_batch(
            model, t, y[:, 0], t[:, n_used - 1], chunk_size=chunk_size, effort=effort, tol=tol
        )
        return jnp.sum(batch_loss(y, ys, ok, n_used)), (jnp.sum(ok), attempted)

    (value, (n_good, attempted)), grads = eqx.filter_value_and_grad(total, has_aux=True)(model)
    return value, n_good, grads, attempted


def _chunked_grads(batch_loss, chunk_size, model, t, y, effort, n_used, tol):
    """The other adjoints' step, as `_replay_grads` returns it: `diffeqsolve` differentiated in
    chunks ordered by effort (the model's own tolerances; `tol` is not read); a chunk whose
    gradient is not finite is dropped whole."""
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

    groups = _divisor(t.shape[0], chunk_size)
    (values, n_good, grads, steps), ungroup = map_in_groups(chunk, (t, y), effort, groups)
    grads = jax.tree_util.tree_map(lambda g: jnp.sum(g, 0), grads)
    return jnp.sum(values), jnp.sum(n_good), grads, ungroup(steps)


def _batch_loss(loss: str, nmse_weight: float):
    """`(y [B, L, 6], ys, ok [B], n_used) -> [B]`: each segment's loss, 0 where its solve failed."""
    loss_fn = lookup(LOSSES, loss, "loss")

    def segment_loss(y, ys, ok, n_used):
        # Substituting the truth for a failed solve keeps NaN out of the value.
        return jnp.where(ok, loss_fn(y, jnp.where(ok, ys, y), n_used, nmse_weight), 0.0)

    return jax.vmap(segment_loss, (0, 0, 0, None))


def _sample(key, count: int, batch_size: int) -> jax.Array:
    """The indices of one step's batch of `count` segments: `batch_size` of them drawn without
    replacement, or every segment once (the full batch) when there are no more than
    `batch_size`: a batch never solves a segment twice."""
    if batch_size >= count:
        return jnp.arange(count)
    return jax.random.permutation(key, count)[:batch_size]


def _update(optim, batch_size: int, total, n_good, grads, steps, opt_state, model):
    """One optimizer step from the summed loss `total` and gradient over the `n_good` segments
    of a batch of `batch_size` that solved: `(loss, health, updates, opt_state)`; the loss is NaN and the gradient
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
    callback: Callable[[int, int, float, NeuralODE], None] | None = None,
    checkpoint=None,
    resume: dict | None = None,
    **options,
) -> TrainResult:
    """Train `model` on orbits `t [n, points]`, `y [n, points, 6]` (canonical units): an
    ensemble of one (`train_ensemble`, whose `options` it takes: `nmse_weight`, `chunk_size`,
    `clip`, `stall`, `train_rtol`).

    Every phase's segment length is checked before the first step. The optimizer (Adam behind
    clipping to global norm `clip`, see `optimizer`) is re-initialised at each phase. Training
    stops early with status `non_finite` when a loss cannot be computed, and `stalled` when
    `stall` (a `StallRule`; `None` never stops) sees the updates collapse.
    `callback(step, phase, loss, model)` is called after every step.

    `checkpoint`, if given, is asked after every step: when `checkpoint.due(step)`, the whole
    training state (weights, optimizer state, RNG key, phase and step, history so far) is
    handed to `checkpoint.save(arrays, step)` as a dict of arrays; if `checkpoint.stop` is then true,
    training ends there with status `interrupted`. A completed run's final state is handed to
    `checkpoint.offer(arrays, step)`, where the checkpoint has one (a function giving the arrays:
    saved only should the result not be written). `resume` (such arrays) continues from where
    they were saved: `model` must be built as it was for the saved run, and where the
    computation is deterministic the losses equal those of an uninterrupted run, step for step.
    """
    return train_ensemble(
        [model],
        [(t, y)],
        [curriculum],
        loss=loss,
        batch_size=batch_size,
        keys=[key],
        callbacks=[callback],
        checkpoints=[checkpoint],
        resumes=[resume],
        **options,
    )[0]


def tolerance_at(train_rtol: tuple[float, float] | None, spec, step: int, steps: int) -> tuple[float, float] | None:
    """The `(rtol, atol)` training solves with at step `step` of `steps` (counted over the whole
    curriculum): `train_rtol = (first, last)` moves geometrically from `first` to `last`, and
    `atol` keeps its ratio to `rtol` in the model's spec; `None`: the model's own."""
    if train_rtol is None:
        return None
    first, last = train_rtol
    rtol = first * (last / first) ** (step / max(steps - 1, 1))
    return rtol, spec.atol * rtol / spec.rtol


def check_train_rtol(train_rtol) -> None:
    """Raise `ValueError` naming `solver.train_rtol` unless it is null or `[first, last]` with
    both > 0."""
    if train_rtol is None:
        return
    if (
        not isinstance(train_rtol, (list, tuple))
        or len(train_rtol) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in train_rtol)
    ):
        raise ValueError(
            f"`solver.train_rtol` must be null (the model's rtol throughout) or [first, last], two "
            f"numbers > 0, got {train_rtol!r}."
        )


def stack(trees):
    """One tree whose arrays stack those of `trees` (one per member) on a leading axis: the
    models and optimizer states `make_step` takes."""
    arrays = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *[eqx.filter(t, eqx.is_array) for t in trees])
    return eqx.combine(arrays, eqx.partition(trees[0], eqx.is_array)[1])


def member(tree, m: int):
    """Member `m`'s tree of a `stack`."""
    return jax.tree_util.tree_map(lambda leaf: leaf[m] if eqx.is_array(leaf) else leaf, tree)


def _shape(phases: list[Phase]) -> list[tuple]:
    return [(p.steps, p.segment_length, tuple(p.length)) for p in phases]


def _check_ensemble(models, data, curricula, keys, loss, batch_size, train_rtol) -> None:
    """Raise `ValueError` naming what an ensemble's members do not share, or a bad setting."""
    lookup(LOSSES, loss, "loss")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    check_train_rtol(train_rtol)
    if len({model.spec for model in models}) != 1:
        raise ValueError("the members of an ensemble must share one model spec (width, depth, head, solver, ...).")
    if any(_shape(c) != _shape(curricula[0]) for c in curricula):
        raise ValueError("the members of an ensemble must share their curriculum's steps, segment lengths and lengths.")
    if not (len(data) == len(curricula) == len(keys) == len(models)):
        raise ValueError("an ensemble needs one dataset, curriculum and key per member.")


def _resumed_at(resumes: list) -> tuple[int, int] | None:
    """The (phase, step) every member resumes at (`None`: none resumes). Raises
    `CheckpointMismatch` for a checkpoint of another training, `ValueError` when the members
    were saved at different steps."""
    for resume in resumes:
        missing = [
            k
            for k in ("phase", "step", "stall_small", "losses", "phases", *(f"health/{n}" for n in HEALTH))
            if resume is not None and k not in resume
        ]
        if missing:
            raise CheckpointMismatch(f"the checkpoint does not match this training (it lacks {', '.join(missing[:3])})")
    where = {(int(r["phase"]), int(r["step"])) if r is not None else None for r in resumes}
    if len(where) != 1:
        raise ValueError("the members of an ensemble resume together: their checkpoints must be at one step.")
    return where.pop()


def _record(m: int, value, stats, p: int, history: tuple, status, bad_step, active, watch, lr: float) -> bool:
    """Member `m`'s step: its loss, phase and health appended to `history` (losses, phases,
    health); a loss that is not finite, or a stall (`watch`), stops the member with that status.
    **Returns:** whether the step was recorded (its loss is finite)."""
    losses, phases, health = history
    if not np.isfinite(value):
        status[m], bad_step[m], active[m] = "non_finite", len(losses[m]), False
        return False
    losses[m].append(float(value))
    phases[m].append(p)
    for name in HEALTH:
        health[m][name].append(float(stats[name][m]))
    if watch is not None and watch.stalled(health[m]["update_norm"][-1], health[m]["moment_max"][-1], lr):
        status[m], bad_step[m], active[m] = "stalled", len(losses[m]) - max(watch.small, 1), False
    return True


def _offer(checkpoint, state, last: tuple[int, int], losses, phases, health, small: int) -> None:
    """Offer a completed member's final state to its checkpoint (`Checkpoint.offer`), written
    only should the result not fit: a rerun then resumes at the end."""
    offer = getattr(checkpoint, "offer", None)
    if offer is not None:
        offer(lambda: _state_arrays(state, *last, losses, phases, health, small), len(losses))


def _result(model, losses, phases, health, status, bad_step, first_step_s, timed) -> TrainResult:
    """A member's `TrainResult`; `timed`: (steps this process took, seconds after the first)."""
    taken, elapsed = timed
    rate = (taken - 1) / elapsed if taken > 1 and elapsed > 0 else float("nan")
    history = {name: np.asarray(v, np.int32 if name == "failed_segments" else np.float64) for name, v in health.items()}
    return TrainResult(
        model,
        np.asarray(losses),
        np.asarray(phases, np.int32),
        history,
        status,
        bad_step,
        first_step_s,
        rate,
    )


def train_ensemble(
    models: list[NeuralODE],
    data: list[tuple[np.ndarray, np.ndarray]],
    curricula: list[list[Phase]],
    *,
    loss: str,
    batch_size: int,
    keys: list,
    nmse_weight: float = 1.0,
    chunk_size: int = 128,
    clip: float | None = 1.0,
    stall: StallRule | None = StallRule(),
    train_rtol: tuple[float, float] | None = None,
    callbacks: list | None = None,
    checkpoints: list | None = None,
    resumes: list | None = None,
) -> list[TrainResult]:
    """The training loop: `models[m]` on `data[m]` (`t`, `y` as `train` takes them) with
    `curricula[m]` and RNG key `keys[m]`, all members in one program (`make_step`). A single run
    is an ensemble of one (`train`); member `m`'s `TrainResult` is the one that run alone gives,
    to rounding (a batched matrix product may round otherwise than a plain one).

    The members must share every shape: one `ModelSpec`, curricula that differ only in their
    learning rates, and as many segments per phase; a `ValueError` says which differs.
    `callbacks[m]`, `checkpoints[m]` and `resumes[m]` are member `m`'s, as for `train`. A
    member whose loss is not finite, or that stalls, stops there with that status and its
    weights stay as they were; the others go on. A stop asked of any member's checkpoint stops
    them all (each saves its own checkpoint); resumed members must all have been saved at the
    same step. `train_rtol` (`(first, last)`, see `tolerance_at`) sets the tolerances training
    solves with; the models keep their own for everything else.
    """
    _check_ensemble(models, data, curricula, keys, loss, batch_size, train_rtol)
    run = _Ensemble(models, data, curricula, keys, stall, callbacks, checkpoints, resumes)
    optim = optimizer(clip)
    step = make_step(loss, optim, batch_size, chunk_size, nmse_weight)
    done_before = 0  # steps of the phases before this one
    for p, phase in enumerate(curricula[0]):
        if p >= run.at[0] and run.active.any():
            run.train_phase(p, step, optim, train_rtol, done_before)
        done_before += phase.steps
    return run.results()


class _Ensemble:
    """The state of one `train_ensemble` call: the members stacked, their optimizer states,
    efforts and keys; each member's histories, status and stall watch; where it resumes."""

    def __init__(self, models, data, curricula, keys, stall, callbacks, checkpoints, resumes):
        count = self.count = len(models)
        self.curricula, self.stall = curricula, stall
        self.callbacks = callbacks or [None] * count
        self.checkpoints = checkpoints or [None] * count
        self.resumes = resumes or [None] * count
        self.at = _resumed_at(self.resumes) or (0, 0)
        self.saved = self.resumes if self.resumes[0] is not None else None  # until its phase restores it
        self.spec = models[0].spec
        self.dtype = models[0].field.mlp.layers[0].weight.dtype
        self.segments = {}
        for length in dict.fromkeys(p.segment_length for p in curricula[0]):
            self.segments[length] = [segment(t, y, length) for t, y in data]
            if len({s.count for s in self.segments[length]}) != 1:
                raise ValueError(f"the members' datasets give different numbers of segments of length {length}.")
        self.n_params = sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(models[0], eqx.is_array)))
        self.total_steps = sum(p.steps for p in curricula[0])
        self.losses, self.phases = [[] for _ in range(count)], [[] for _ in range(count)]
        self.health = [{name: [] for name in HEALTH} for _ in range(count)]
        self.status, self.bad_step = ["completed"] * count, [None] * count
        for m, resume in enumerate(self.saved or ()):
            self.losses[m], self.phases[m] = list(resume["losses"]), list(resume["phases"])
            self.health[m] = {name: list(resume[f"health/{name}"]) for name in HEALTH}
        self.resumed_at = [len(history) for history in self.losses]  # a resumed run's speed counts its own steps
        self.active = np.ones(count, bool)
        self.keys = list(keys)
        self.start, self.first_step_s = None, 0.0
        self.stacked = stack(models)
        self.opt_states = self.effort = None
        self.watches = [None] * count

    def train_phase(self, p: int, step, optim, train_rtol, done_before: int) -> None:
        """Phase `p`'s steps (from the checkpoint's step in the phase it was taken in), until
        every member has stopped; `done_before`: the steps of the phases before it."""
        phase = self.curricula[0][p]
        t_all = jnp.asarray(np.stack([s.t for s in self.segments[phase.segment_length]]), self.dtype)
        y_all = jnp.asarray(np.stack([s.y for s in self.segments[phase.segment_length]]), self.dtype)
        self.effort = jnp.zeros(t_all.shape[:2], jnp.int32)
        self.opt_states = jax.vmap(optim.init)(eqx.filter(self.stacked, eqx.is_array))
        stall = self.stall
        self.watches = [StallWatch(stall, self.n_params) if stall is not None else None for _ in range(self.count)]
        first = 0
        if self.saved is not None:  # the phase the checkpoints were taken in
            self._restore_saved()
            first = self.at[1]
        for s in range(first, phase.steps):
            tol = tolerance_at(train_rtol, self.spec, done_before + s, self.total_steps)
            self._step(step, p, s, t_all, y_all, tol)
            if not self.active.any():
                break

    def _restore_saved(self) -> None:
        """Every member's model, optimizer state, effort and key from its checkpoint."""
        restored = [_restore(self.saved[m], self._state(m)) for m in range(self.count)]
        self.stacked, self.opt_states, self.effort = (stack([r[i] for r in restored]) for i in range(3))
        self.keys = [r[3] for r in restored]
        self.saved = None
        for m, watch in enumerate(self.watches):
            if watch is not None:
                watch.small = int(self.resumes[m]["stall_small"])

    def _state(self, m: int) -> tuple:
        """Member `m`'s model, optimizer state, effort and key."""
        return member(self.stacked, m), member(self.opt_states, m), self.effort[m], self.keys[m]

    def _small(self, m: int) -> int:
        return self.watches[m].small if self.watches[m] is not None else 0

    def _step(self, step, p: int, s: int, t_all, y_all, tol) -> None:
        """Step `s` of phase `p` for every member at once, then each member's record and checkpoint."""
        self.keys, subs = (list(k) for k in zip(*(jax.random.split(k) for k in self.keys)))
        learning_rates = [c[p].lr_at(s) for c in self.curricula]
        self.opt_states.hyperparams["learning_rate"] = jnp.asarray(learning_rates, self.dtype)
        tic = time.perf_counter()
        values, stats, self.stacked, self.opt_states, self.effort = step(
            self.stacked,
            self.opt_states,
            t_all,
            y_all,
            self.effort,
            jnp.asarray(self.curricula[0][p].points_used(s)),
            jnp.stack(subs),
            None if tol is None else tuple(jnp.asarray(v, self.dtype) for v in tol),
            jnp.asarray(self.active),
        )
        values, stats = np.asarray(values), jax.device_get(stats)  # one transfer for all
        if self.start is None:
            self.first_step_s, self.start = time.perf_counter() - tic, time.perf_counter()
        history = (self.losses, self.phases, self.health)
        for m in np.flatnonzero(self.active):
            lr = self.curricula[m][p].lr_at(s)
            watch = self.watches[m]
            if _record(m, values[m], stats, p, history, self.status, self.bad_step, self.active, watch, lr):
                if self.callbacks[m]:
                    self.callbacks[m](len(self.losses[m]), p, float(values[m]), member(self.stacked, m))
        self._save_checkpoints(p, s)

    def _save_checkpoints(self, p: int, s: int) -> None:
        """Each active member's checkpoint when due; a stop asked of any stops them all."""
        cause = next((c.stop for c in self.checkpoints if c is not None and c.stop), None)
        for m in np.flatnonzero(self.active):
            checkpoint = self.checkpoints[m]
            if checkpoint is None:
                continue
            checkpoint.stop = checkpoint.stop or cause
            if checkpoint.due(len(self.losses[m])):
                arrays = _state_arrays(
                    self._state(m), p, s + 1, self.losses[m], self.phases[m], self.health[m], self._small(m)
                )
                checkpoint.save(arrays, len(self.losses[m]))
        if cause:
            for m in np.flatnonzero(self.active):
                self.status[m], self.bad_step[m], self.active[m] = "interrupted", len(self.losses[m]), False

    def results(self) -> list[TrainResult]:
        """Each member's `TrainResult`; a completed member's final state is offered to its
        checkpoint (should the result not fit on disk, a rerun resumes at the end)."""
        last = (len(self.curricula[0]) - 1, self.curricula[0][-1].steps)
        for m in range(self.count):
            if self.status[m] == "completed":
                history = (self.losses[m], self.phases[m], self.health[m])
                _offer(self.checkpoints[m], self._state(m), last, *history, self._small(m))
        elapsed = time.perf_counter() - self.start if self.start is not None else 0.0
        return [
            _result(member(self.stacked, m), self.losses[m], self.phases[m], self.health[m], self.status[m],
                    self.bad_step[m], self.first_step_s, (len(self.losses[m]) - self.resumed_at[m], elapsed))
            for m in range(self.count)
        ]  # fmt: skip

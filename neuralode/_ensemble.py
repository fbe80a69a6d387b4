"""Several models that share every shape, trained together in one program: an ensemble.

The members differ in values only: their initial weights and RNG streams (`seed`), learning
rates, datasets of the same size. One jitted step trains them all: every member draws its own
batch, the segments of all members go through one `solve_batch` pool (each lane with its own
member's weights and its own step-size control), and each member has its own Adam state.
Each member's history equals that of the same run trained alone by `train`, to rounding: the
arithmetic is the same, but sums over lanes are taken in another order.

A member whose loss is not finite, or whose updates stall, stops there with that status and its
weights stay as they were; the others go on.
"""

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._curriculum import Phase
from ._model import NeuralODE
from ._replay import solve_batch
from ._segments import segment
from ._train import (
    HEALTH,
    CheckpointMismatch,
    StallRule,
    StallWatch,
    TrainResult,
    _batch_loss,
    _restore,
    _sample,
    _state_arrays,
    _update,
    optimizer,
)


def _stack(trees):
    """One tree whose arrays stack those of `trees` (one per member) on a leading axis."""
    arrays = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *[eqx.filter(t, eqx.is_array) for t in trees])
    return eqx.combine(arrays, eqx.partition(trees[0], eqx.is_array)[1])


def _member(tree, m: int):
    return jax.tree_util.tree_map(lambda leaf: leaf[m] if eqx.is_array(leaf) else leaf, tree)


def make_ensemble_step(loss: str, optim, batch_size: int, chunk_size: int, nmse_weight: float = 1.0):
    """A jitted step of an ensemble: `make_step`'s arguments and outputs with a leading axis of
    members (the model's arrays, optimizer states, segments `[M, count, ...]`, effort, keys),
    plus `adopt [M]`: a member not adopted keeps its weights, state and effort. A member's new
    weights are also kept only where its loss is finite."""
    batch_loss = _batch_loss(loss, nmse_weight)

    @eqx.filter_jit
    def step(models, opt_states, t_all, y_all, effort, n_used, keys, adopt):
        members = t_all.shape[0]
        idx = jax.vmap(lambda key: _sample(key, t_all.shape[1], batch_size))(keys)
        take = jax.vmap(lambda a, i: a[i])
        t, y, seen = take(t_all, idx), take(y_all, idx), take(effort, idx)
        flat = lambda a: a.reshape((-1,) + a.shape[2:])  # noqa: E731
        member = jnp.repeat(jnp.arange(members), batch_size)

        def total(models):
            ys, ok, _, attempted = solve_batch(
                models,
                flat(t),
                flat(y)[:, 0],
                flat(t)[:, n_used - 1],
                chunk_size=chunk_size,
                effort=flat(seen),
                member=member,
            )
            per = batch_loss(flat(y), ys, ok, n_used).reshape(members, batch_size)
            good = jnp.sum(ok.reshape(members, batch_size), 1)
            return jnp.sum(per), (jnp.sum(per, 1), good, attempted.reshape(members, batch_size))

        (_, (totals, n_good, steps)), grads = eqx.filter_value_and_grad(total, has_aux=True)(models)
        params, static = eqx.partition(models, eqx.is_array)

        def one(total, n_good, grads, steps, opt_state, params):
            return _update(optim, batch_size, total, n_good, grads, steps, opt_state, eqx.combine(params, static))

        values, health, updates, new_states = jax.vmap(one)(totals, n_good, grads, steps, opt_states, params)
        keep = adopt & jnp.isfinite(values)

        def choose(new, old):
            return jnp.where(keep.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)

        new_params = jax.tree_util.tree_map(lambda p, u: choose(p + u, p), params, eqx.filter(updates, eqx.is_array))
        new_states = jax.tree_util.tree_map(choose, new_states, opt_states)
        new_effort = choose(effort.at[jnp.arange(members)[:, None], idx].set(steps), effort)
        return values, health, eqx.combine(new_params, static), new_states, new_effort

    return step


def _shape(phases: list[Phase]) -> list[tuple]:
    return [(p.steps, p.segment_length, tuple(p.length)) for p in phases]


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
    callbacks: list | None = None,
    checkpoints: list | None = None,
    resumes: list | None = None,
) -> list[TrainResult]:
    """Train `models[m]` on `data[m]` (`t`, `y` as `train` takes them) with `curricula[m]` and
    RNG key `keys[m]`, all members in one program; each member's `TrainResult` is the one
    `train(models[m], *data[m], curricula[m], key=keys[m], ...)` would give, to rounding.

    The members must share every shape: one `ModelSpec` (with the `replay` adjoint), curricula
    that differ only in their learning rates, and as many segments per phase; a `ValueError`
    says which differs. `callbacks[m]`, `checkpoints[m]` and `resumes[m]` are member `m`'s, as
    for `train`. A stop asked of any member's checkpoint stops them all (each saves its own
    checkpoint); resumed members must all have been saved at the same step.
    """
    count = len(models)
    specs = {model.spec for model in models}
    if len(specs) != 1:
        raise ValueError("the members of an ensemble must share one model spec (width, depth, head, solver, ...).")
    if models[0].spec.adjoint != "replay":
        raise ValueError(f"an ensemble trains with the `replay` adjoint, not {models[0].spec.adjoint!r}.")
    if any(_shape(c) != _shape(curricula[0]) for c in curricula):
        raise ValueError("the members of an ensemble must share their curriculum's steps, segment lengths and lengths.")
    if not (len(data) == len(curricula) == len(keys) == count):
        raise ValueError("an ensemble needs one dataset, curriculum and key per member.")
    callbacks = callbacks or [None] * count
    checkpoints = checkpoints or [None] * count
    resumes = resumes or [None] * count
    where = {(int(r["phase"]), int(r["step"])) if r is not None else None for r in resumes}
    if len(where) != 1:
        raise ValueError("the members of an ensemble resume together: their checkpoints must be at one step.")
    at = where.pop() or (0, 0)
    saved = resumes if resumes[0] is not None else None
    dtype = models[0].field.mlp.layers[0].weight.dtype
    segments = {}
    for length in {p.segment_length for p in curricula[0]}:
        segments[length] = [segment(t, y, length) for t, y in data]
        if len({s.count for s in segments[length]}) != 1:
            raise ValueError(f"the members' datasets give different numbers of segments of length {length}.")
    optim = optimizer(clip)
    step = make_ensemble_step(loss, optim, batch_size, chunk_size, nmse_weight)
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(models[0], eqx.is_array)))

    losses = [[] for _ in range(count)]
    phases = [[] for _ in range(count)]
    health = [{name: [] for name in HEALTH} for _ in range(count)]
    status, bad_step = ["completed"] * count, [None] * count
    if saved is not None:
        for m, resume in enumerate(saved):
            missing = [
                k for k in ("stall_small", "losses", "phases", *(f"health/{n}" for n in HEALTH)) if k not in resume
            ]
            if missing:
                raise CheckpointMismatch(f"the checkpoint does not match this training (it lacks {missing[0]})")
            losses[m], phases[m] = list(resume["losses"]), list(resume["phases"])
            health[m] = {name: list(resume[f"health/{name}"]) for name in HEALTH}
    active = np.ones(count, bool)
    keys = list(keys)
    start, first_step_s = None, 0.0
    stacked = _stack(models)
    for p in range(len(curricula[0])):
        if p < at[0]:
            continue
        length = curricula[0][p].segment_length
        t_all = jnp.asarray(np.stack([s.t for s in segments[length]]), dtype)
        y_all = jnp.asarray(np.stack([s.y for s in segments[length]]), dtype)
        effort = jnp.zeros(t_all.shape[:2], jnp.int32)
        opt_states = jax.vmap(optim.init)(eqx.filter(stacked, eqx.is_array))
        watches = [StallWatch(stall, n_params) if stall is not None else None for _ in range(count)]
        first = 0
        if saved is not None:  # the phase the checkpoints were taken in
            restored = [
                _restore(saved[m], (_member(stacked, m), _member(opt_states, m), effort[m], keys[m]))
                for m in range(count)
            ]
            stacked, opt_states, effort = (_stack([r[i] for r in restored]) for i in range(3))
            keys = [r[3] for r in restored]
            first, saved = at[1], None
            for m, watch in enumerate(watches):
                if watch is not None:
                    watch.small = int(resumes[m]["stall_small"])
        for s in range(first, curricula[0][p].steps):
            keys, subs = zip(*(jax.random.split(k) for k in keys))
            opt_states.hyperparams["learning_rate"] = jnp.asarray([c[p].lr_at(s) for c in curricula], dtype)
            tic = time.perf_counter()
            values, stats, stacked, opt_states, effort = step(
                stacked,
                opt_states,
                t_all,
                y_all,
                effort,
                jnp.asarray(curricula[0][p].points_used(s)),
                jnp.stack(subs),
                jnp.asarray(active),
            )
            values, stats = np.asarray(values), jax.device_get(stats)
            if start is None:
                first_step_s, start = time.perf_counter() - tic, time.perf_counter()
            for m in np.flatnonzero(active):
                if not np.isfinite(values[m]):
                    status[m], bad_step[m], active[m] = "non_finite", len(losses[m]), False
                    continue
                losses[m].append(float(values[m]))
                phases[m].append(p)
                for name in HEALTH:
                    health[m][name].append(float(stats[name][m]))
                if callbacks[m] is not None:
                    callbacks[m](len(losses[m]), p, float(values[m]), None)
                watch = watches[m]
                lr = curricula[m][p].lr_at(s)
                if watch is not None and watch.stalled(health[m]["update_norm"][-1], health[m]["moment_max"][-1], lr):
                    status[m], bad_step[m], active[m] = "stalled", len(losses[m]) - max(watch.small, 1), False
            cause = next((c.stop for c in checkpoints if c is not None and c.stop), None)
            for m in np.flatnonzero(active):
                checkpoint = checkpoints[m]
                if checkpoint is None:
                    continue
                checkpoint.stop = checkpoint.stop or cause
                if checkpoint.due(len(losses[m])):
                    state = (_member(stacked, m), _member(opt_states, m), effort[m], keys[m])
                    small = watches[m].small if watches[m] is not None else 0
                    checkpoint.save(
                        _state_arrays(state, p, s + 1, losses[m], phases[m], health[m], small), len(losses[m])
                    )
            if cause:
                for m in np.flatnonzero(active):
                    status[m], bad_step[m], active[m] = "interrupted", len(losses[m]), False
            if not active.any():
                break
        if not active.any():
            break
    elapsed = time.perf_counter() - start if start is not None else 0.0
    results = []
    for m in range(count):
        done = len(losses[m])
        rate = (done - 1) / elapsed if done > 1 and elapsed > 0 else float("nan")
        history = {
            name: np.asarray(v, np.int32 if name == "failed_segments" else np.float64) for name, v in health[m].items()
        }
        results.append(
            TrainResult(
                _member(stacked, m),
                np.asarray(losses[m]),
                np.asarray(phases[m], np.int32),
                history,
                status[m],
                bad_step[m],
                first_step_s,
                rate,
            )
        )
    return results

"""A batch of adaptive solves whose gradient replays only the accepted steps.

Differentiating diffrax's adaptive loop directly (its recursive-checkpoint adjoint) walks back
through every attempted step, rejected ones included, and under `jax.vmap` every segment of the
batch runs for as many iterations as the slowest one. Yet the gradient only depends on the
accepted steps: diffrax stops gradients through its step-size controller, so the derivative of
an adaptive solve is the derivative of a fixed-step solve on the step grid it chose.

`solve_batch` therefore
1. solves forward with diffrax, without derivatives, every segment with its own step-size
   controller (the same error control as any `diffeqsolve`), keeping each segment's accepted
   step times and states;
2. in the reverse pass walks those steps backwards, taking `jax.vjp` of one solver step (and of
   the dense-output interpolation that produced the saved points inside it) at a time.

The reverse pass keeps `chunk_size` segments in flight, one per lane. A lane that reaches the
start of its segment takes the next one from a queue ordered longest first, so lanes do not
idle while a few long segments finish: the number of iterations is about the total accepted
steps over `chunk_size` rather than the longest segment's count. The forward solves run in
groups of `chunk_size` segments ordered by `effort` (their step counts when last seen), for
the same reason.

Values and gradients equal those of differentiating `diffeqsolve` itself (to rounding).

An ensemble (`member=`) puts the segments of several models, which share every shape, in this
one pool: each lane gathers its own member's weights, so the MLP stays one batched product
over the lanes, every segment keeps its own step-size control, and the lanes are shared by all
members (one long segment of one member does not hold the others back).
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp


def _divisor(total: int, chunk_size: int) -> int:
    """The largest divisor of `total` that is at most `chunk_size`."""
    chunk = max(1, min(chunk_size, total))
    while total % chunk:
        chunk -= 1
    return chunk


def map_in_groups(fn, arrays, effort, chunk_size):
    """`jax.lax.map` `fn` over groups of `chunk_size` segments (a divisor of the batch), the segments
    ordered by `effort` so that like goes with like: a vmapped adaptive solve runs every member
    for as many steps as its slowest one. Returns `fn`'s outputs, stacked per group, and
    `ungroup`, which puts a per-segment output `[groups, chunk_size, ...]` back in batch order."""
    order = jnp.argsort(effort)
    outputs = jax.lax.map(fn, tuple(a[order].reshape((-1, chunk_size) + a.shape[1:]) for a in arrays))
    back = jnp.argsort(order)
    return outputs, lambda a: a.reshape((-1,) + a.shape[2:])[back]


def _lanes(params, member):
    """The weights each lane uses: shared by every lane (`member` None), or member `member[b]`'s
    (the arrays of `params` carry a leading axis of members)."""
    if member is None:
        return params, None
    return jax.tree_util.tree_map(lambda a: a[member], params), 0


def solve_batch(model, ts, y0, t1, *, chunk_size: int = 128, effort=None, member=None):
    """Integrate `B` segments from `y0 [B, n]` at `ts[:, 0]` to `t1 [B]`, saving at
    `min(ts, t1)` (`ts [B, L]`).

    Returns `(ys [B, L, n], ok [B], accepted [B], attempted [B])`. `ys` is differentiable with
    respect to the model's arrays (see the module docstring). A segment whose solve failed
    (`max_steps` reached, or a non-finite value) has `ok` False, NaN in `ys` and contributes
    nothing to the gradient. `effort [B]` orders the forward groups; `chunk_size` is rounded down
    to a divisor of `B` for the forward groups.

    `member [B]` (an ensemble): `model`'s arrays carry a leading axis of members, and segment
    `b` is solved by member `member[b]`; the gradient has that axis too.
    """
    params, static = eqx.partition(model, eqx.is_array)
    batch = ts.shape[0]
    save = jnp.minimum(ts, t1[:, None])
    frozen = jax.lax.stop_gradient(params)
    lane = jnp.zeros(batch, jnp.int32) if member is None else member

    def forward(args):
        weights, axis = _lanes(frozen, None if member is None else args[0])
        solve = lambda w, *a: eqx.combine(w, static).solve_steps(*a)  # noqa: E731
        return jax.vmap(solve, (axis, 0, 0, 0))(weights, *args[1:])

    grouped, ungroup = map_in_groups(
        forward,
        (lane, save, y0, t1),
        jnp.zeros(batch, jnp.int32) if effort is None else effort,
        _divisor(batch, chunk_size),
    )
    ys, step_t, step_y, accepted, attempted, success = map(ungroup, grouped)
    ok = success & jnp.all(jnp.isfinite(ys), axis=(1, 2))
    accepted = jnp.where(ok, accepted, 0)
    ys = jnp.where(ok[:, None, None], ys, jnp.nan)

    # Step k of segment b goes from grid[b, k] to grid[b, k + 1], starting at starts[b, k].
    max_steps = step_t.shape[1]
    t0 = save[:, :1]
    grid = jnp.concatenate([t0, step_t], 1)
    grid = jnp.where(jnp.arange(max_steps + 1) <= accepted[:, None], grid, t1[:, None])
    starts = jnp.concatenate([y0[:, None], step_y[:, :-1]], 1)
    starts = jnp.where((jnp.arange(max_steps) < accepted[:, None])[..., None], starts, y0[:, None])
    # diffrax evaluates a save time in the first step that ends at or after it.
    step_of_save = jax.vmap(
        lambda g, s, n: jnp.clip(jnp.searchsorted(g[1:], s, side="left"), 0, jnp.maximum(n - 1, 0))
    )(grid, save, accepted)
    replay = _replay_vjp(static, min(chunk_size, batch), member is not None)
    return replay(params, ys, (grid, starts, save, step_of_save, accepted, lane)), ok, accepted, attempted


def _replay_vjp(static, chunk_size, ensemble=False):
    def one_step(params, y, ta, tb, save):
        model = eqx.combine(params, static)
        term, solver = diffrax.ODETerm(model.field), model.solver()
        state = solver.init(term, ta, tb, y, None)
        y1, _, dense, _, _ = solver.step(term, ta, tb, y, None, state, False)
        interpolation = solver.interpolation_cls(t0=ta, t1=tb, **dense)
        return y1, jax.vmap(interpolation.evaluate)(save)

    steps = jax.vmap(one_step, (0 if ensemble else None, 0, 0, 0, 0))

    @jax.custom_vjp
    def replay(params, ys, record):
        return ys

    def forward(params, ys, record):
        return ys, (params, record)

    def backward(residuals, cotangent):
        params, (grid, starts, save, step_of_save, accepted, lane) = residuals
        batch = accepted.shape[0]
        queue = jnp.argsort(-accepted)  # longest first; failed segments (0 steps) last
        pending = jnp.sum(accepted > 0)

        def take(slot):
            seg = jnp.where(slot < pending, queue[jnp.minimum(slot, batch - 1)], -1)
            return seg, jnp.where(seg >= 0, accepted[jnp.maximum(seg, 0)] - 1, -1)

        def body(carry):
            seg, k, next_slot, cot_y, grads = carry
            active = k >= 0
            b, kk = jnp.maximum(seg, 0), jnp.maximum(k, 0)
            ta, tb = grid[b, kk], grid[b, kk + 1]
            weights = _lanes(params, lane[b] if ensemble else None)[0]
            _, vjp = jax.vjp(lambda p, y: steps(p, y, ta, tb, save[b]), weights, starts[b, kk])
            here = (step_of_save[b] == kk[:, None]) & active[:, None]
            step_grads, cot_start = vjp(
                (jnp.where(active[:, None], cot_y, 0.0), jnp.where(here[..., None], cotangent[b], 0.0))
            )
            if ensemble:  # each lane's gradient goes to its member's (an idle lane's is 0)
                add = lambda total, g: total.at[lane[b]].add(g)  # noqa: E731
            else:
                add = jnp.add
            grads = jax.tree_util.tree_map(add, grads, step_grads)
            done = active & (k == 0)
            new_seg, new_k = take(next_slot + jnp.cumsum(done) - 1)
            seg, k = jnp.where(done, new_seg, seg), jnp.where(done, new_k, k - 1)
            cot_y = jnp.where((active & ~done)[:, None], cot_start, 0.0)
            return seg, k, next_slot + jnp.sum(done), cot_y, grads

        seg, k = take(jnp.arange(chunk_size))
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        cot = jnp.zeros((chunk_size,) + starts.shape[2:], starts.dtype)
        carry = (seg, k, jnp.minimum(pending, chunk_size), cot, zeros)
        grads = jax.lax.while_loop(lambda c: jnp.any(c[1] >= 0), body, carry)[-1]
        return grads, None, None

    replay.defvjp(forward, backward)
    return replay

"""A batch of adaptive solves in a lane pool, whose gradient replays only the accepted steps.

Differentiating diffrax's adaptive loop directly (its recursive-checkpoint adjoint) walks back
through every attempted step, rejected ones included, and under `jax.vmap` every segment of the
batch runs for as many iterations as the slowest one. Yet the gradient only depends on the
accepted steps: diffrax stops gradients through its step-size controller, so the derivative of
an adaptive solve is the derivative of a fixed-step solve on the step grid it chose.

`solve_batch` therefore
1. solves forward without derivatives, every segment with its own step-size controller
   (diffrax's PID controller and dense output, in the order `diffeqsolve` applies them, and
   the solver's Runge-Kutta step written out in diffrax's arithmetic: the same steps, tested),
   keeping each segment's accepted step times and states;
2. in the reverse pass walks those steps backwards, taking `jax.vjp` of one solver step (and of
   the dense-output interpolation that produced the saved points inside it) at a time.

Both passes keep `chunk_size` segments in flight, one per lane. A lane that finishes its segment
takes the next one from a queue ordered longest first (forward: by `effort`, the step counts when
last seen; reverse: by the accepted steps just taken), so lanes do not idle while a few long
segments finish: the number of iterations is about the total steps over `chunk_size` rather
than the longest segment's count times the number of groups.

Values and gradients equal those of differentiating `diffeqsolve` itself (to rounding).

An ensemble vmaps a member's whole training step over the members (`make_step`): each member
keeps its own pool of lanes, so every layer of the MLP is one batched matrix product per
member, `[members, lanes, width]`, and the weight gradient one product per member.
"""

import diffrax
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np


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


FIRST_STEP = 0.01  # the first step size diffeqsolve (diffrax 0.7) takes here, see `_forward`


def solve_batch(model, ts, y0, t1, *, chunk_size: int = 128, effort=None, tol=None):
    """Integrate `B` segments from `y0 [B, n]` at `ts[:, 0]` to `t1 [B]`, saving at
    `min(ts, t1)` (`ts [B, L]`).

    Returns `(ys [B, L, n], ok [B], accepted [B], attempted [B])`. `ys` is differentiable with
    respect to the model's arrays (see the module docstring). A segment whose solve failed
    (`max_steps` reached, or a non-finite value) has `ok` False, NaN in `ys` and contributes
    nothing to the gradient. `effort [B]` (each segment's step count when last seen) orders the
    forward queue, longest first. `tol = (rtol, atol)` (values that may change between calls
    without compiling again) replaces the model's tolerances for this solve.
    """
    params, static = eqx.partition(model, eqx.is_array)
    batch = ts.shape[0]
    lanes = max(1, min(chunk_size, batch))
    save = jnp.minimum(ts, t1[:, None])
    queue = jnp.arange(batch) if effort is None else jnp.argsort(-effort, stable=True)
    ys, step_t, step_y, accepted, attempted, success = _forward(
        jax.lax.stop_gradient(params), static, save, y0, t1, queue, lanes, tol
    )
    ok = success & jnp.all(jnp.isfinite(ys), axis=(1, 2))
    accepted = jnp.where(ok, accepted, 0)
    ys = jnp.where(ok[:, None, None], ys, jnp.nan)

    # Step k of segment b goes from grid[b, k] to grid[b, k + 1], starting at starts[b, k].
    max_steps = step_t.shape[1]
    grid = jnp.concatenate([save[:, :1], step_t], 1)
    grid = jnp.where(jnp.arange(max_steps + 1) <= accepted[:, None], grid, t1[:, None])
    starts = jnp.concatenate([y0[:, None], step_y[:, :-1]], 1)
    starts = jnp.where((jnp.arange(max_steps) < accepted[:, None])[..., None], starts, y0[:, None])
    # diffrax evaluates a save time in the first step that ends at or after it.
    step_of_save = jax.vmap(
        lambda g, s, n: jnp.clip(jnp.searchsorted(g[1:], s, side="left"), 0, jnp.maximum(n - 1, 0))
    )(grid, save, accepted)
    replay = _replay_vjp(static, lanes)
    return replay(params, ys, (grid, starts, save, step_of_save, accepted)), ok, accepted, attempted


def _forward(params, static, save, y0, t1, queue, lanes, tol):
    """The forward pool: `(ys [B, L, n], step_t [B, max_steps], step_y [B, max_steps, n],
    accepted [B], attempted [B], success [B])`, each segment solved as `diffeqsolve` solves it
    (its PID controller, its first step size, every save time interpolated in the first
    accepted step that ends at or after it)."""
    pool = _Pool(eqx.combine(params, static), save, y0, t1, queue, tol)
    n = y0.shape[-1]
    batch, points = save.shape
    max_steps = pool.max_steps
    out = {
        "ys": jnp.zeros((batch, points, n), y0.dtype),
        "step_t": jnp.zeros((batch, max_steps), save.dtype),
        "step_y": jnp.zeros((batch, max_steps, n), y0.dtype),
        "accepted": jnp.zeros(batch, jnp.int32),
        "attempted": jnp.zeros(batch, jnp.int32),
        "success": jnp.zeros(batch, bool),
    }
    carry = (pool.lane_start(queue[:lanes]), out, jnp.asarray(lanes, jnp.int32))
    out = jax.lax.while_loop(lambda c: _any_member(c[0]["seg"] >= 0), pool.body, carry)[1]
    return out["ys"], out["step_t"], out["step_y"], out["accepted"], out["attempted"], out["success"]


class _Pool:
    """The parts of `_forward`'s loop: each lane solves one segment at a time, as diffrax's
    loop does, and takes the next queued segment when its own ends."""

    def __init__(self, model, save, y0, t1, queue, tol):
        spec = model.spec
        rtol, atol = (spec.rtol, spec.atol) if tol is None else tol
        self.field, self.solver = model.field, model.solver()
        self.term = diffrax.ODETerm(model.field)
        self.controller = diffrax.PIDController(rtol=rtol, atol=atol, pcoeff=spec.pcoeff, icoeff=spec.icoeff)
        self.order = self.solver.error_order(self.term)
        self.save, self.y0, self.t1, self.queue = save, y0, t1, queue
        self.batch, self.points = save.shape
        self.max_steps = spec.max_steps
        self.begun = jax.vmap(self.begin)(save[:, 0], t1, y0)

    def begin(self, t0, t1, y0):
        """What diffeqsolve does before its first step."""
        # diffeqsolve wraps its terms, and for a wrapped term diffrax's initial step selection
        # falls back to a first step of 0.01: so does this pool, step for step the same solve.
        solver = self.solver
        tnext, cstate = self.controller.init(self.term, t0, t1, y0, FIRST_STEP, None, solver.func, self.order)
        cstate = jax.tree_util.tree_map(jnp.asarray, cstate)
        floor = t1  # diffrax rounds a step that ends within 100 ULPs of t1 to t1
        for _ in range(100):
            floor = jnp.nextafter(floor, -jnp.inf)
        # The first stage of the first step, evaluated here once per segment, for all segments
        # in one batch; in the pool a lane starts from it as from a FSAL stage.
        return jnp.minimum(tnext, t1), cstate, solver.func(self.term, t0, y0, None), floor

    def lane_start(self, seg):
        """Lanes that start segments `seg` (-1: an idle lane)."""
        seg = seg.astype(jnp.int32)
        b = jnp.maximum(seg, 0)
        tnext, cstate, f0, floor = jax.tree_util.tree_map(lambda a: a[b], self.begun)
        zero = jnp.zeros_like(seg)
        return {
            "seg": seg,
            "tprev": self.save[b, 0],
            "tnext": tnext,
            "y": self.y0[b],
            "f0": f0,
            "cstate": cstate,
            "t1": self.t1[b],
            "floor": floor,
            "steps": zero,
            "accepted": zero,
            "saved": zero,
        }

    def advance(self, lane, save_at):
        """One attempted step of one lane, as diffrax's loop body makes it."""
        tableau, controller = self.solver.tableau, self.controller
        tprev, tnext, y = lane["tprev"], lane["tnext"], lane["y"]
        y1, error, ks, f_last = _rk_step(self.field, tableau, tprev, tnext, y, lane["f0"] if tableau.fsal else None)
        f1 = f_last if tableau.fsal else lane["f0"]
        error = jnp.where(jnp.isnan(error), jnp.inf, error)
        keep, next_prev, next_next, _, cstate, _ = controller.adapt_step_size(
            tprev, tnext, y, y1, None, error, self.order, lane["cstate"]
        )
        next_prev = jnp.minimum(next_prev, lane["t1"])
        clipped = jnp.where(keep, lane["t1"], next_prev + 0.5 * (lane["t1"] - next_prev))
        next_next = jnp.where(next_next > lane["floor"], clipped, next_next)
        dense_out = self.solver.interpolation_cls(t0=tprev, t1=tnext, y0=y, y1=y1, k=ks)
        values = jax.vmap(dense_out.evaluate)(save_at)
        due = keep & (jnp.arange(self.points) >= lane["saved"]) & (save_at <= tnext)
        return keep, next_prev, next_next, jnp.where(keep, y1, y), jnp.where(keep, f1, lane["f0"]), cstate, values, due

    def body(self, carry):
        """One attempted step of every lane: its saves and accepted step written, a lane whose
        segment ended recorded and refilled from the queue."""
        lane, out, next_slot = carry
        batch = self.batch
        active = lane["seg"] >= 0
        b = jnp.where(active, lane["seg"], batch)  # an idle lane writes nowhere (index out of range)
        save_at = self.save[jnp.minimum(b, batch - 1)]
        keep, tprev, tnext, y, f0, cstate, values, due = jax.vmap(self.advance)(lane, save_at)
        keep = keep & active
        ys = out["ys"].at[b].get(mode="fill", fill_value=0)
        out["ys"] = out["ys"].at[b].set(jnp.where((due & active[:, None])[..., None], values, ys), mode="drop")
        recorded = jnp.where(keep, b, batch)
        out["step_t"] = out["step_t"].at[recorded, lane["accepted"]].set(tprev, mode="drop")
        out["step_y"] = out["step_y"].at[recorded, lane["accepted"]].set(y, mode="drop")
        lane = {
            **lane,
            "tprev": tprev,
            "tnext": tnext,
            "y": y,
            "f0": f0,
            "cstate": cstate,
            "steps": lane["steps"] + active,
            "accepted": lane["accepted"] + keep,
            "saved": lane["saved"] + jnp.sum(due, 1, dtype=jnp.int32),
        }
        done = active & ((tprev >= lane["t1"]) | (lane["steps"] >= self.max_steps))
        return self.refill(lane, out, next_slot, b, done)

    def refill(self, lane, out, next_slot, b, done):
        """Record the segments that ended (`done`) and start the next queued ones in their lanes."""
        batch = self.batch
        finished = jnp.where(done, b, batch)
        out["accepted"] = out["accepted"].at[finished].set(lane["accepted"], mode="drop")
        out["attempted"] = out["attempted"].at[finished].set(lane["steps"], mode="drop")
        out["success"] = out["success"].at[finished].set(lane["tprev"] >= lane["t1"], mode="drop")
        slot = next_slot + jnp.cumsum(done, dtype=jnp.int32) - 1
        fresh = self.lane_start(jnp.where(slot < batch, self.queue[jnp.minimum(slot, batch - 1)], -1))
        lane = jax.tree_util.tree_map(
            lambda new, old: jnp.where(done.reshape((-1,) + (1,) * (new.ndim - 1)), new, old), fresh, lane
        )
        return lane, out, next_slot + jnp.sum(done, dtype=jnp.int32)


def _any_member(busy):
    """Whether any lane is busy, of this pool or, under the `vmap` over an ensemble's members,
    of any member's. A pool whose lanes are all idle goes round as a no-op (it writes nowhere),
    and the loop's condition stays one value: with a condition per member, `vmap` would select
    every iteration between the old and the new carry, copying the whole output buffers."""
    return eqxi.unvmap_any(jnp.any(busy))


def _rk_step(field, tableau, ta, tb, y, f0=None):
    """One explicit Runge-Kutta step of `tableau` from `y` at `ta` to `tb`, written out stage by
    stage: `(y1, y_error, ks, f_last)`, `ks [stages, n]` the stage increments `h f_i` as diffrax's
    dense output takes them and `f_last` the last stage's vector field (for a FSAL tableau, the
    next step's first stage). `f0`, if given, is the first stage's vector field at `(ta, y)`.
    The same step as diffrax's `solver.step`, to rounding; without diffrax's stage loop (a
    checkpointed while loop), whose reverse pass costs several times as much, and more again
    under `vmap`."""
    h = tb - ta
    stages = len(tableau.c) + 1
    f = field(ta + float(tableau.c1) * h, y, None) if f0 is None else f0
    ks = jnp.zeros((stages,) + y.shape, y.dtype).at[0].set(h * f)
    for i, (c, row) in enumerate(zip(tableau.c, tableau.a_lower), start=1):
        # diffrax's arithmetic: each sum over all stages (later ones still 0), in one dot
        stage = y + _dot(np.pad(row, (0, stages - len(row))), ks)
        f = field(ta + float(c) * h, stage, None)
        ks = ks.at[i].set(h * f)
    return y + _dot(tableau.b_sol, ks), _dot(tableau.b_error, ks), ks, f


def _dot(coefficients, ks):
    return jnp.tensordot(jnp.asarray(coefficients, ks.dtype), ks, axes=1, precision=jax.lax.Precision.HIGHEST)


def _replay_vjp(static, chunk_size):
    def one_step(params, y, ta, tb, save):
        model = eqx.combine(params, static)
        solver = model.solver()
        y1, _, ks, _ = _rk_step(model.field, solver.tableau, ta, tb, y)
        interpolation = solver.interpolation_cls(t0=ta, t1=tb, y0=y, y1=y1, k=ks)
        return y1, jax.vmap(interpolation.evaluate)(save)

    steps = jax.vmap(one_step, (None, 0, 0, 0, 0))

    @jax.custom_vjp
    def replay(params, ys, record):
        return ys

    def forward(params, ys, record):
        return ys, (params, record)

    def backward(residuals, cotangent):
        params, (grid, starts, save, step_of_save, accepted) = residuals
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
            _, vjp = jax.vjp(lambda p, y: steps(p, y, ta, tb, save[b]), params, starts[b, kk])
            here = (step_of_save[b] == kk[:, None]) & active[:, None]
            step_grads, cot_start = vjp(
                (jnp.where(active[:, None], cot_y, 0.0), jnp.where(here[..., None], cotangent[b], 0.0))
            )
            grads = jax.tree_util.tree_map(jnp.add, grads, step_grads)
            done = active & (k == 0)
            new_seg, new_k = take(next_slot + jnp.cumsum(done) - 1)
            seg, k = jnp.where(done, new_seg, seg), jnp.where(done, new_k, k - 1)
            cot_y = jnp.where((active & ~done)[:, None], cot_start, 0.0)
            return seg, k, next_slot + jnp.sum(done), cot_y, grads

        seg, k = take(jnp.arange(chunk_size))
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        cot = jnp.zeros((chunk_size,) + starts.shape[2:], starts.dtype)
        carry = (seg, k, jnp.minimum(pending, chunk_size), cot, zeros)
        grads = jax.lax.while_loop(lambda c: _any_member(c[1] >= 0), body, carry)[-1]
        return grads, None, None

    replay.defvjp(forward, backward)
    return replay

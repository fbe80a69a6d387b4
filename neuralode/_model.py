"""The neural ODE: feature layer -> MLP -> output head -> dy/dt = [v, a]."""

import dataclasses

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from ._features import FEATURE_LAYERS
from ._heads import HEAD_ALIASES, OUTPUT_HEADS
from ._registry import FieldError, canonical, lookup

ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": jax.nn.leaky_relu,
    "gelu": jax.nn.gelu,
    "elu": jax.nn.elu,
    "softplus": jax.nn.softplus,
}
SOLVERS = {
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
    "bosh3": diffrax.Bosh3,
}
# "replay" (see `solve_batch`) is how training differentiates a batch of segments; a lone
# `NeuralODE.solve` under `jax.grad` then uses recursive checkpointing.
ADJOINTS = {
    "replay": diffrax.RecursiveCheckpointAdjoint,
    "recursive_checkpoint": diffrax.RecursiveCheckpointAdjoint,
    "backsolve": diffrax.BacksolveAdjoint,
    "direct": diffrax.DirectAdjoint,
}
DTYPES = {"float32": jnp.float32, "float64": jnp.float64}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Every hyperparameter needed to rebuild a `NeuralODE`; stored beside its weights. The
    defaults are the reference model, `conf/model/reference.yaml` (a test holds them equal)."""

    width: int = 64
    depth: int = 2
    activation: str = "leaky_relu"
    feature_layer: str = "sph_4D_rinv_vel"
    output_head: str = "logmag_unit_exp"
    solver: str = "tsit5"
    rtol: float = 1e-6
    atol: float = 1e-8
    pcoeff: float = 0.2  # PI step-size controller; diffrax's default is the I controller (0, 1)
    icoeff: float = 0.3
    max_steps: int = 512
    adjoint: str = "replay"
    dtype: str = "float64"  # needs JAX's 64-bit mode: `configure_jax(x64=True)`
    planar_constraint: bool = False  # z acceleration is 0: orbits in the x-y plane stay there exactly

    def __post_init__(self):
        lookup(ACTIVATIONS, self.activation, "activation")
        lookup(FEATURE_LAYERS, self.feature_layer, "feature_layer")
        # the study's head names are accepted; the spec keeps one name per head
        object.__setattr__(self, "output_head", canonical(OUTPUT_HEADS, HEAD_ALIASES, self.output_head, "output_head"))
        lookup(SOLVERS, self.solver, "solver")
        lookup(ADJOINTS, self.adjoint, "adjoint")
        lookup(DTYPES, self.dtype, "dtype")
        for name in ("width", "depth", "max_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "depth" else 1):
                raise FieldError(name, f"{{field}} must be a positive integer, got {value!r}.")
        if not 0 <= self.pcoeff:
            raise FieldError("pcoeff", f"{{field}} must be >= 0, got {self.pcoeff!r}.")
        if not 0 < self.icoeff:
            raise FieldError("icoeff", f"{{field}} must be > 0, got {self.icoeff!r}.")
        for name in ("rtol", "atol"):
            if not getattr(self, name) > 0:
                raise FieldError(name, f"{{field}} must be > 0, got {getattr(self, name)!r}.")
        if not isinstance(self.planar_constraint, bool):
            raise FieldError("planar_constraint", f"{{field}} must be true or false, got {self.planar_constraint!r}.")


class VectorField(eqx.Module):
    """dy/dt for a state `y = [r, v]`: `[v, head(mlp(features(y)), y)]`."""

    mlp: eqx.nn.MLP
    feature_layer: str = eqx.field(static=True)
    output_head: str = eqx.field(static=True)
    planar: bool = eqx.field(static=True)

    def __init__(self, spec: ModelSpec, *, key):
        _, in_size = FEATURE_LAYERS[spec.feature_layer]
        _, out_size = OUTPUT_HEADS[spec.output_head]
        self.mlp = eqx.nn.MLP(
            in_size,
            out_size,
            spec.width,
            spec.depth,
            activation=ACTIVATIONS[spec.activation],
            dtype=DTYPES[spec.dtype],
            key=key,
        )
        self.feature_layer = spec.feature_layer
        self.output_head = spec.output_head
        self.planar = spec.planar_constraint

    def acceleration(self, y):
        features, _ = FEATURE_LAYERS[self.feature_layer]
        head, _ = OUTPUT_HEADS[self.output_head]
        a = head(self.mlp(features(y)), y)
        # The planar constraint: no out-of-plane acceleration, so z and vz stay exactly 0.
        return a.at[2].set(0.0) if self.planar else a

    def __call__(self, t, y, args):
        return jnp.concatenate([y[3:], self.acceleration(y)])


class NeuralODE(eqx.Module):
    """A learned two-body vector field and the adaptive solver that integrates it."""

    field: VectorField
    spec: ModelSpec = eqx.field(static=True)

    def __init__(self, spec: ModelSpec, *, key):
        if spec.dtype == "float64" and not jax.config.jax_enable_x64:
            raise ValueError(
                "`dtype`='float64' needs JAX's 64-bit mode: call `neuralode.configure_jax(x64=True)` first."
            )
        self.field = VectorField(spec, key=key)
        self.spec = spec

    def solver(self):
        return SOLVERS[self.spec.solver]()

    def _diffeqsolve(self, t0, t1, y0, saveat, max_steps=None, adjoint=None):
        spec = self.spec
        return diffrax.diffeqsolve(
            diffrax.ODETerm(self.field),
            self.solver(),
            t0,
            t1,
            None,
            y0,
            saveat=saveat,
            stepsize_controller=diffrax.PIDController(
                rtol=spec.rtol, atol=spec.atol, pcoeff=spec.pcoeff, icoeff=spec.icoeff
            ),
            adjoint=ADJOINTS[spec.adjoint]() if adjoint is None else adjoint,
            max_steps=spec.max_steps if max_steps is None else max_steps,
            throw=False,
        )

    def solve(self, ts, y0, t1=None, max_steps=None):
        """Integrate from `y0` at `ts[0]` and return `(ys, stats)` at `ts`.

        `t1` (default `ts[-1]`) may stop the solve early: points past it repeat the state at
        `t1`, so one compiled function serves every curriculum length.
        """
        t1 = ts[-1] if t1 is None else t1
        sol = self._diffeqsolve(ts[0], t1, y0, diffrax.SaveAt(ts=jnp.minimum(ts, t1)), max_steps)
        ys = jnp.where(sol.result == diffrax.RESULTS.successful, sol.ys, jnp.nan)
        return ys, sol.stats

    def solve_steps(self, save, y0, t1):
        """Like `solve` (saving at `save`, which must lie in `[save[0], t1]`), also returning every
        accepted step: `(ys, step_t [max_steps], step_y [max_steps, n], accepted, attempted,
        success)`; `step_t[k]`, `step_y[k]` are the time and state where step `k` ends: what
        `solve_batch`'s forward pool must reproduce, segment by segment (the tests hold them equal)."""
        saveat = diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=save), diffrax.SubSaveAt(steps=True)])
        sol = self._diffeqsolve(save[0], t1, y0, saveat, adjoint=diffrax.RecursiveCheckpointAdjoint())
        (ys, step_y), step_t = sol.ys, sol.ts[1]
        return (
            ys,
            step_t,
            step_y,
            sol.stats["num_accepted_steps"],
            sol.stats["num_steps"],
            sol.result == diffrax.RESULTS.successful,
        )

"""Solver steps per training segment: the PI step-size controller against diffrax's default I
controller, in float64 and float32, on the reference configuration's 200 training segments.

    python bench/solver_steps.py                                  # the initial model (seed 0)
    python bench/solver_steps.py --result scratch/default/9003c8c7d41e.h5   # and a trained one

Each segment is solved over its whole length at the model's tolerances (Tsit5, rtol 1e-6,
atol 1e-8), as `python train.py` composes the reference configuration; the figures are means
over the segments that were solved: accepted and rejected steps, the rejected share, and the
segments that failed (`solver.max_steps`, 512, reached). Prints JSON. The counts move by
about 1 % when the solve is compiled differently: XLA's fusion changes the rounding, and with
it a few step-size decisions.
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.train_speed import setup, with_spec  # noqa: E402

CONTROLLERS = {"PI 0.2/0.3 (ours)": (0.2, 0.3), "I 0/1 (diffrax's default)": (0.0, 1.0)}


def steps_per_segment(model, t, y, dtype: str, pcoeff: float, icoeff: float) -> dict:
    """`model`'s weights in `dtype`, solved with the controller `pcoeff`/`icoeff` over every
    segment of `(t, y)`."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    this = with_spec(model, dtype=dtype, pcoeff=pcoeff, icoeff=icoeff)
    solve_all = eqx.filter_jit(lambda m, ts, y0s: jax.vmap(m.solve)(ts, y0s))
    ys, stats = solve_all(this, t.astype(dtype), y[:, 0].astype(dtype))
    solved = jnp.all(jnp.isfinite(ys), axis=(1, 2))
    accepted = stats["num_accepted_steps"][solved]
    rejected = stats["num_rejected_steps"][solved]
    return {
        "accepted_per_segment": round(float(accepted.mean()), 2),
        "rejected_per_segment": round(float(rejected.mean()), 2),
        "rejected_share": round(float(rejected.sum() / (accepted.sum() + rejected.sum())), 3),
        "failed_segments": int((~solved).sum()),
        "segments": int(solved.size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--result", help="a result file: its trained model is measured too")
    args = parser.parse_args()
    import neuralode

    model, t, y = setup("float64", tempfile.mkdtemp(prefix="solver-steps-"))
    models = {"initial (seed 0)": model}
    if args.result:
        models[f"trained ({os.path.basename(args.result)})"] = neuralode.load_model(args.result)
    out = {
        name: {
            f"{dtype}, {label}": steps_per_segment(m, t, y, dtype, *coeffs)
            for dtype in ("float64", "float32")
            for label, coeffs in CONTROLLERS.items()
        }
        for name, m in models.items()
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

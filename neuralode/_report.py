"""What a trained run reports: its training record and metrics, as a result-file tree."""

import numpy as np

from ._datasets import OrbitDataset
from ._metrics import evaluate
from ._train import TrainResult
from ._units import CanonicalUnits


def report(
    result: TrainResult,
    train_set: OrbitDataset,
    test_sets: list[OrbitDataset],
    *,
    max_steps: int = 16384,
    units: CanonicalUnits = CanonicalUnits(),
) -> dict:
    """The tree of a run's result file: `history` and `training` (`TrainResult.tree`),
    `metrics/<set>` (`evaluate` on each test set and on the training set itself, propagating
    with at most `max_steps` solver steps), `units` and the `datasets` used, with the training
    set's smallest and largest radius (canonical units: where the learned field was taught)."""
    tree = {**result.tree(), **evaluation(result.model, [train_set, *test_sets], max_steps=max_steps, units=units)}
    radius = np.linalg.norm(units.to_canonical(train_set.t, train_set.y)[1][..., :3], axis=-1)
    tree["datasets"].update(
        train=train_set.name,
        test=[d.name for d in test_sets],
        train_min_radius=float(radius.min()),
        train_max_radius=float(radius.max()),
    )
    return tree


def evaluation(
    model, test_sets: list[OrbitDataset], *, max_steps: int = 16384, units: CanonicalUnits = CanonicalUnits()
) -> dict:
    """`metrics/<test set>` (`evaluate` on each), `units` and the test `datasets`: the tree of
    an evaluation file (a trained model tested on other data)."""
    metrics = {
        test.name: evaluate(model, *units.to_canonical(test.t, test.y), length_km=units.length_km, max_steps=max_steps)
        for test in test_sets
    }
    return {"metrics": metrics, "units": units.as_attrs(), "datasets": {"test": [d.name for d in test_sets]}}


def scalars(tree: dict) -> dict:
    """`final_loss` and every scalar metric of a `report` tree, as `<test set>.<metric>`."""
    out = {"final_loss": tree["training"]["final_loss"]}
    out.update(
        {
            f"{name}.{k}": v
            for name, m in tree.get("metrics", {}).items()
            for k, v in m.items()
            if isinstance(v, (int, float))
        }
    )
    return out


def _size(name: str) -> tuple:
    """A test set's name sorted by its number of orbits (`complex_TBP_planar_100_test`: 100)."""
    digits = [int(part) for part in name.split("_") if part.isdigit()]
    return (digits[-1] if digits else 0, name)


def describe(values: dict) -> tuple[str, list[str]]:
    """What a completed run says when it ends, from its result file's summary (`values`, as
    `hpc.read_summary` gives it): a headline (final loss; the 100-orbit test set's mean
    acceleration error and log-log slope, else the first test set's) and a table of every
    test set, the failed segments and the commands to look further."""
    found = [k[len("metrics.") : -len(".accel_pct_mean")] for k in values if k.endswith(".accel_pct_mean")]
    sets = sorted((s for s in found if s.endswith("_test")), key=_size)
    main = next((s for s in sets if s.endswith("_100_test")), sets[0] if sets else None)
    get = lambda s, k: values.get(f"metrics.{s}.{k}", float("nan"))  # noqa: E731
    headline = f"final loss {values.get('training.final_loss', float('nan')):.4g}"
    if main is not None:
        headline += (
            f", acceleration error {get(main, 'accel_pct_mean'):.3g} % (mean, {main}), "
            f"log-log slope {get(main, 'loglog_slope'):.3f} (truth -2)"
        )
    width = max([len(s) for s in sets] + [8])
    table = [f"{'test set':<{width}}  accel % mean  median  angle deg  slope   radial sign err %"]
    for s in sets:
        table.append(
            f"{s:<{width}}  {get(s, 'accel_pct_mean'):12.3g}  {get(s, 'accel_pct_median'):6.3g}  "
            f"{get(s, 'angle_deg_mean'):9.3g}  {get(s, 'loglog_slope'):6.3f}  {get(s, 'radial_sign_error_pct'):17.3g}"
        )
    failed = values.get("training.failed_segments")
    steps = values.get("history.steps")
    table.append(f"failed segments: {failed if failed is not None else '?'} over {steps} steps")
    run = values.get("run_id", "<run id>")
    table.append(f"look further: python evaluate.py {run} dataset=complex_3d  |  hpc runs run_id={run}")
    return headline, table

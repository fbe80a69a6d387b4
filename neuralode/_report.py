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

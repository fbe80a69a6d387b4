"""What a trained run reports: its training record and metrics, as a result-file tree."""

from ._datasets import OrbitDataset
from ._metrics import evaluate
from ._train import TrainResult
from ._units import CanonicalUnits


def report(result: TrainResult, train_set: OrbitDataset, test_sets: list[OrbitDataset], *,
           max_steps: int = 16384, units: CanonicalUnits = CanonicalUnits()) -> dict:
    """The tree of a run's result file: `history` and `training` (`TrainResult.tree`),
    `metrics/<test set>` (`evaluate` on each, propagating with at most `max_steps` solver
    steps), `units` and the `datasets` used."""
    metrics = {test.name: evaluate(result.model, *units.to_canonical(test.t, test.y), length_km=units.length_km,
                                   max_steps=max_steps)
               for test in test_sets}
    return {**result.tree(), "metrics": metrics, "units": units.as_attrs(),
            "datasets": {"train": train_set.name, "test": [d.name for d in test_sets]}}


def scalars(tree: dict) -> dict:
    """`final_loss` and every scalar metric of a `report` tree, as `<test set>.<metric>`."""
    out = {"final_loss": tree["training"]["final_loss"]}
    out.update({f"{name}.{k}": v for name, m in tree.get("metrics", {}).items() for k, v in m.items()
                if isinstance(v, (int, float))})
    return out

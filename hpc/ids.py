"""Run identity: flatten a config to dotted keys and hash what defines the run.

>>> flatten({"model": {"width": 64, "act": "tanh"}, "seed": 0})
{'model.width': 64, 'model.act': 'tanh', 'seed': 0}
>>> run_id({"b": 1, "a": 2}) == run_id({"a": 2, "b": 1})
True
>>> diff([{"a": 1, "b": 2}, {"a": 1, "b": 3}])
{'b': [2, 3]}
"""

import hashlib
import json

# Where and how a run executes, not what it computes: excluded from its id. These are the
# keys the launcher itself reads; a workload adds its own (`exclude=NOT_IDENTITY + (...)`).
NOT_IDENTITY = ("cluster", "results_root", "force", "hydra", "experiment")


def flatten(tree: dict, prefix: str = "") -> dict:
    """Nested dicts -> one dict with dotted keys; lists stay values."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def identity(config: dict, exclude=NOT_IDENTITY) -> dict:
    """The part of `config` that defines what a run computes."""
    return {k: v for k, v in config.items() if k not in exclude}


def run_id(config: dict, exclude=NOT_IDENTITY, length: int = 12) -> str:
    """Hash of the sorted-key JSON of `identity(config)`: same parameters, same id."""
    text = json.dumps(identity(config, exclude), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def diff(configs: list[dict]) -> dict:
    """The dotted keys whose values differ between `configs`, each with its list of values
    (`None` where a config lacks the key)."""
    flats = [flatten(c) for c in configs]
    keys = sorted(set().union(*flats))
    return {
        k: [f.get(k) for f in flats]
        for k in keys
        if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flats}) > 1
    }

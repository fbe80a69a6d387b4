"""A run's composed config (a plain dict, as `train.py` and the benches compose it from
`conf/`) -> the objects that train it. The one place where config keys meet code: a key is
read here or nowhere."""

import functools
import json
import pathlib

import jax

from ._curriculum import STRATEGIES, Phase, phases_from_strategy
from ._datasets import OrbitDataset, dataset_path, family_ranges, load_or_generate, train_and_test_sets
from ._heads import HEAD_ALIASES
from ._model import ModelSpec, NeuralODE
from ._registry import FieldError
from ._report import report
from ._segments import check_segment_length, segment
from ._setup import configure_jax
from ._train import TrainResult, check_train_rtol, optimizer, train_ensemble
from ._units import CanonicalUnits

# Top-level keys that are `ModelSpec` fields; the `solver` group gives the rest.
MODEL_KEYS = ("width", "depth", "activation", "feature_layer", "output_head", "rtol", "atol", "planar_constraint")
# Dataset keys that are not element ranges.
DATASET_KEYS = ("family", "planar", "rotated", "train_seed", "test_seed", "test_sizes")
SIZES = ("batch_size", "n_orbits")
# `solver` keys that are training's (`train_options`), not the model's.
TRAINING_KEYS = ("chunk_size", "train_rtol")


def canonical_config(config: dict) -> dict:
    """`config` with one name per head: an `output_head` given by the study's name
    (`mlp_4D_logmag_unit_exp`) becomes the registry's (`logmag_unit_exp`), so both give one run
    id and `hpc diff` and reports show one name. Unknown names are left for `check_config`."""
    head = config.get("output_head")
    if head in HEAD_ALIASES:
        return {**config, "output_head": HEAD_ALIASES[head]}
    return config


def spec_from_config(config: dict) -> ModelSpec:
    """The model's `ModelSpec` (`solver.name` is its `solver`; `solver.chunk_size` is training's)."""
    if config["planar_constraint"] and not config["dataset"]["planar"]:
        raise ValueError("`planar_constraint`=true needs a planar dataset: set planar_constraint=false.")
    solver = {("solver" if k == "name" else k): v for k, v in config["solver"].items() if k not in TRAINING_KEYS}
    try:
        return ModelSpec(**{k: config[k] for k in MODEL_KEYS}, **solver)
    except FieldError as exc:  # the config path the user typed: `solver.dtype`, not the spec's `dtype`
        if exc.field in solver:
            raise exc.at("solver.name" if exc.field == "solver" else f"solver.{exc.field}") from None
        raise


def phases_from_config(config: dict) -> list[Phase]:
    """The curriculum's phases: `curriculum.phases`, or built from the study's `*_strategy` lists
    (`phases_from_strategy`)."""
    curriculum = config["curriculum"]
    if set(curriculum) == {"phases"}:
        phases = []
        for i, phase in enumerate(curriculum["phases"]):
            try:
                phases.append(Phase(**phase))
            except FieldError as exc:  # which phase: `curriculum.phases.1.steps`
                raise exc.at(f"curriculum.phases.{i}.{exc.field}") from None
        return phases
    if set(curriculum) == set(STRATEGIES):
        return phases_from_strategy(**curriculum)
    raise ValueError(
        f"`curriculum` must hold either `phases` or the lists {', '.join(STRATEGIES)}; "
        f"it holds {', '.join(sorted(curriculum)) or 'nothing'}."
    )


# Keys no check reads: a grid over them (seeds) is checked once per distinct rest.
UNCHECKED = ("seed", "experiment", "cluster", "results_root", "jax_cache", "progress", "force", "metrics")


def check_config(config: dict, overridden=()) -> None:
    """Everything about a run that can be checked without data or training: raises
    `ValueError` naming the bad field and what it allows. `overridden`: the keys the user set
    (a `segment_length` the curriculum does not read is an error, not a silent no-op).
    A config that passed once is not checked again."""
    seed = config["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"`seed` must be an integer >= 0, got {seed!r}.")
    checked = {k: v for k, v in config.items() if k not in UNCHECKED}
    _check_once(json.dumps([checked, sorted({"segment_length", "lr"} & set(overridden))], sort_keys=True))


@functools.cache  # one check per distinct checked part: a 10,000-run grid over seeds checks once
def _check_once(checked: str) -> None:
    """`_check` of a config's checked part, given as JSON (a failed check is not cached: it raises)."""
    _check(*json.loads(checked))


def _check(config: dict, overridden) -> None:
    for name in SIZES:
        value = config[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    spec_from_config(config)
    optimizer(config["clip"])
    check_train_rtol(config["solver"]["train_rtol"])
    data = config["dataset"]
    family_ranges(**{k: v for k, v in data.items() if k not in DATASET_KEYS[3:]})
    sizes = data["test_sizes"]
    if not sizes or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in sizes):
        raise ValueError(f"`dataset.test_sizes` must be a list of positive integers, got {sizes!r}.")
    phases = phases_from_config(config)
    for phase in phases:
        check_segment_length(phase.segment_length)
    for name in ("segment_length", "lr"):  # a short name the curriculum never reads would change nothing
        if name in overridden and all(getattr(p, name) != config[name] for p in phases):
            raise ValueError(
                f"`{name}`={config[name]} is not used by this curriculum: its phases set their own "
                f"({sorted({getattr(p, name) for p in phases})}). Choose a curriculum that reads it "
                f"(curriculum=lofi or hifi) or set it in the curriculum (curriculum.phases.<n>.{name})."
            )


def ensemble_key(config: dict) -> str:
    """What the runs that may train together in one ensemble (`train_many_from_config`) share:
    the model spec, the training options and the curriculum's shape. They may differ in
    `seed`, learning rates and datasets of one size."""
    shape = [(p.steps, p.segment_length, tuple(p.length)) for p in phases_from_config(config)]
    return json.dumps([repr(spec_from_config(config)), train_options(config), shape, config["n_orbits"]])


def train_many_from_config(configs: list[dict], data_root, *, callbacks=None, checkpoints=None, resumes=None) -> list:
    """Load (or generate under `data_root`) each run's datasets, train from its seed's initial
    model (or from `resumes[i]`, see `train`) and evaluate it on its test sets. The runs that
    share an `ensemble_key`, a number of segments and a checkpoint step train together as one
    ensemble (`train_ensemble`), the others alone (an ensemble of one). Returns, per config,
    `(TrainResult, report tree)` (an `interrupted` run is not evaluated: its tree has no
    metrics), or the exception that its evaluation raised (one member's failure is its own)."""
    count = len(configs)
    callbacks, checkpoints = callbacks or [None] * count, checkpoints or [None] * count
    resumes = resumes or [None] * count
    units = CanonicalUnits()
    members = []
    for config in configs:
        train_set, test_sets = train_and_test_sets(data_root, n_train=config["n_orbits"], **config["dataset"])
        init_key, train_key = jax.random.split(jax.random.PRNGKey(config["seed"]))
        model = NeuralODE(spec_from_config(config), key=init_key)
        members.append((train_set, test_sets, units.to_canonical(train_set.t, train_set.y), model, train_key))
    groups: dict = {}
    for i, (config, resume) in enumerate(zip(configs, resumes)):
        # where it resumes (a checkpoint that lacks it is refused by `train_ensemble`)
        at = None if resume is None else tuple(int(resume[k]) if k in resume else None for k in ("phase", "step"))
        lengths = sorted({p.segment_length for p in phases_from_config(config)})
        counts = tuple(segment(*members[i][2], n).count for n in lengths)  # datasets of one size may differ
        groups.setdefault((ensemble_key(config), at, counts), []).append(i)
    results: list = [None] * count
    for chosen in groups.values():
        trained = train_ensemble(
            [members[i][3] for i in chosen],
            [members[i][2] for i in chosen],
            [phases_from_config(configs[i]) for i in chosen],
            keys=[members[i][4] for i in chosen],
            callbacks=[callbacks[i] for i in chosen],
            checkpoints=[checkpoints[i] for i in chosen],
            resumes=[resumes[i] for i in chosen],
            **train_options(configs[chosen[0]]),
        )
        for i, result in zip(chosen, trained):
            try:
                results[i] = (result, _report(result, members[i][0], members[i][1], configs[i], units))
            except Exception as exc:  # noqa: BLE001 - this member's failure, reported as its own
                results[i] = exc
    return results


def _report(result: TrainResult, train_set, test_sets, config: dict, units: CanonicalUnits) -> dict:
    """A result's tree; an `interrupted` run is not evaluated (its tree has no metrics)."""
    if result.status == "interrupted":
        return result.tree()
    return report(result, train_set, test_sets, max_steps=config["metrics"]["max_steps"], units=units)


def configure_from_config(config: dict, data_root) -> None:
    """Set JAX's process-wide options for a run (`configure_jax`): 64-bit mode when
    `solver.dtype` is float64, and the persistent compilation cache at `jax_cache`, or
    `<data_root>/jax-cache` when that is unset."""
    cache = config.get("jax_cache") or pathlib.Path(data_root) / "jax-cache"
    configure_jax(config["solver"]["dtype"] == "float64", cache)


def train_options(config: dict) -> dict:
    """The keyword arguments of `neuralode.train` that the config sets."""
    return {
        "loss": config["loss"]["name"],
        "nmse_weight": config["loss"]["nmse_weight"],
        "batch_size": config["batch_size"],
        "chunk_size": config["solver"]["chunk_size"],
        "clip": config["clip"],
        "train_rtol": config["solver"]["train_rtol"],
    }


def test_set_from_config(dataset: dict, n_orbits: int, data_root) -> tuple[OrbitDataset, str]:
    """A test set of `n_orbits` orbits drawn like the `dataset` group's test sets (its family,
    element ranges and `test_seed`), loaded from the cache under `data_root` or generated
    once; and its label (the cache file's stem, unique per parameter set)."""
    family, planar = dataset["family"], dataset["planar"]
    ranges = family_ranges(
        family, planar, dataset["rotated"], **{k: v for k, v in dataset.items() if k not in DATASET_KEYS}
    )
    test = load_or_generate(data_root, family, planar, n_orbits, dataset["test_seed"], "test", ranges)
    return test, dataset_path(data_root, family, planar, n_orbits, dataset["test_seed"], "test", ranges).stem

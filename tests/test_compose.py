"""The fast sweep composer gives exactly what a full Hydra compose gives: configs and run ids."""

import itertools
import json
import random

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import OmegaConf

import train
from hpc.compose import SweepComposer, config_text

GRID = {
    "curriculum": ["curriculum=smoke", "curriculum=quick", "curriculum=study", "curriculum=lofi"],
    "loss": [None, "loss=mse", "loss=percent_error_plus_nmse"],
    "dataset": [None, "dataset=complex_3d", "dataset=simple_planar"],
    "cluster": [None, "cluster=local", "cluster=zaratan"],
    "values": [
        ["seed=0"],
        ["seed=7", "width=32"],
        ["lr=3e-4", "segment_length=12"],
        ["cluster.time_min=5", "dataset.test_sizes=[1,2]"],
        ["clip=null", "planar_constraint=false"],
        ["rtol=1e-5", "solver.dtype=float32", "activation=tanh"],
        ["seed=123456789012", "width=8"],  # a seed after the first: an int literal, parsed from a template
    ],
}
ODD = [  # what the fast path hands to Hydra: an added key, string interpolation, an interpolation value
    ["+extra=1", "seed=3"],
    ["experiment=run_${seed}", "seed=4"],
    ["segment_length=${n_orbits}", "curriculum=lofi"],
    ["cluster.setup=[module load python]"],
    ["dataset.a=[7000,9000]"],
]


@pytest.fixture(scope="module")
def composer():
    with initialize_config_dir(str(train.CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", overrides=[], run_mode=RunMode.MULTIRUN)
        yield SweepComposer(loader, master, loader.list_groups(""))


def _grid_sample(n: int, seed: int = 0):
    combos = list(itertools.product(*GRID.values()))
    for combo in random.Random(seed).sample(combos, n):
        yield [o for part in combo for o in ([part] if isinstance(part, str) else part or [])]


@pytest.mark.parametrize("overrides", list(_grid_sample(30)) + ODD, ids=" ".join)
def test_fast_path_equals_a_full_compose(composer, overrides):
    fast = composer.resolved(overrides)
    full = OmegaConf.to_container(composer.full_compose(overrides), resolve=True)
    assert json.dumps(fast, sort_keys=False) == json.dumps(full, sort_keys=False)  # order too: byte-identical
    assert train.place(fast)[0] == train.place(full)[0]
    # and what the node reads back is the same config
    assert OmegaConf.to_container(OmegaConf.create(config_text(fast))) == full


def test_groups_are_composed_once_and_bad_keys_raise_as_hydra_does(composer):
    before = composer.full
    for seed in range(50):
        composer.resolved(["curriculum=hifi", f"seed={seed}", f"width={8 + seed}"])
    assert composer.full - before <= 1  # one base for the 50 runs
    with pytest.raises(ConfigCompositionException, match="widht"):
        composer.resolved(["widht=3"])


def test_config_text_falls_back_to_yaml_for_what_json_cannot_say():
    text = config_text({"clip": float("inf"), "a": 1e-6})
    assert OmegaConf.to_container(OmegaConf.create(text)) == {"clip": float("inf"), "a": 1e-6}


def test_int_overrides_after_the_first_are_what_hydras_parser_gives(composer):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hydra = OverridesParser.create()
    lines = ["seed=1", "seed=0", "seed=42", "seed=007", "seed=-3", "seed=1_000", "seed=3.0", "width=64", "seed=99"]
    lines += [f"seed={n}" for n in range(100, 130)]
    for line in lines:
        assert composer._parse(line) == hydra.parse_override(line), line

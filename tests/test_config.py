"""Every config group option composes and maps onto the code."""

import pathlib
import re

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import neuralode
import train
from neuralode._train import tolerance_at

CONF = pathlib.Path(train.__file__).parent / "conf"
RUN_ID = "9003c8c7d41e"  # the default run's


def _compose(*overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)


@pytest.mark.parametrize("group", ["dataset", "model", "curriculum", "loss", "cluster", "sweep"])
def test_every_option_composes(group):
    options = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    assert options
    for option in options:
        config = _compose(f"{group}={option}")
        neuralode.check_config(config)


def test_short_names_reach_the_code():
    config = _compose("width=32", "lr=3e-4", "segment_length=12", "rtol=1e-5", "curriculum=hifi")
    spec, phases = neuralode.spec_from_config(config), neuralode.phases_from_config(config)
    assert spec.width == 32 and spec.rtol == 1e-5
    assert len(phases) == 10 and all(p.lr == 3e-4 and p.segment_length == 12 for p in phases)
    assert phases[0].length == (0.1, 0.1) and phases[-1].length == (1.0, 1.0)


def test_defaults_are_the_reference_configuration():
    config = _compose()
    assert (config["width"], config["depth"], config["activation"]) == (64, 2, "leaky_relu")
    assert (config["feature_layer"], config["output_head"]) == ("sph_4D_rinv_vel", "logmag_unit_exp")
    assert (config["segment_length"], config["batch_size"], config["lr"]) == (18, 256, 1e-2)
    assert config["loss"]["name"] == "percent_error" and config["dataset"]["family"] == "complex"
    assert config["clip"] == 1.0 and config["planar_constraint"] is True
    assert [(p.steps, p.lr, p.lr_end) for p in neuralode.phases_from_config(config)] == [(2000, 1e-2, 1e-5)]
    # `ModelSpec`'s defaults are this model (planar data: constrained)
    assert neuralode.spec_from_config(config) == neuralode.ModelSpec(planar_constraint=True)


def test_training_tightens_its_tolerance_to_the_models():
    # loose early, the model's own rtol at the last step (the spec keeps it: evaluation uses it)
    options = neuralode.train_options(_compose())
    assert options["train_rtol"] == [1e-4, 1e-6] and neuralode.spec_from_config(_compose()).rtol == 1e-6
    assert neuralode.train_options(_compose("rtol=1e-7"))["train_rtol"] == [1e-4, 1e-7]
    assert neuralode.train_options(_compose("solver.train_rtol=null"))["train_rtol"] is None
    spec = neuralode.spec_from_config(_compose())
    assert tolerance_at([1e-4, 1e-6], spec, 0, 2000) == pytest.approx((1e-4, 1e-6))
    assert tolerance_at([1e-4, 1e-6], spec, 1999, 2000) == pytest.approx((1e-6, 1e-8))
    assert tolerance_at([1e-4, 1e-6], spec, 1000, 2001) == pytest.approx((1e-5, 1e-7))
    assert tolerance_at(None, spec, 5, 10) is None


def test_study_curriculum_is_the_published_recipe():
    config = _compose("curriculum=study")
    (phase,) = neuralode.phases_from_config(config)
    assert (phase.steps, phase.segment_length, phase.lr, phase.lr_end) == (2000, 18, 1e-2, 1e-5)
    assert config["loss"]["name"] == "percent_error_plus_nmse" and config["loss"]["nmse_weight"] == 1.0
    # the command line still wins over what the curriculum picks
    config = _compose("curriculum=study", "loss=mse", "lr=3e-3")
    assert config["loss"]["name"] == "mse" and neuralode.phases_from_config(config)[0].lr == 3e-3
    assert _compose("curriculum=lofi")["lr"] == 1e-3


def test_clip_and_planar_constraint_reach_the_code():
    assert _compose("clip=null")["clip"] is None and _compose("clip=0.5")["clip"] == 0.5
    assert neuralode.spec_from_config(_compose()).planar_constraint
    assert not neuralode.spec_from_config(_compose("dataset=complex_3d")).planar_constraint
    assert not neuralode.spec_from_config(_compose("planar_constraint=false")).planar_constraint
    for bad in ("clip=0", "clip=abc"):  # checked before anything is submitted
        with pytest.raises(ValueError, match="`clip` must be > 0 or null"):
            train.prepare(_compose(bad))
    with pytest.raises(ValueError, match="`planar_constraint`=true needs a planar dataset"):
        neuralode.spec_from_config(_compose("dataset=complex_3d", "planar_constraint=true"))


def test_run_id_ignores_where_it_ran():
    a = _compose()
    b = _compose("results_root=/elsewhere", "progress=off", "experiment=x", "jax_cache=/c", "cluster=zaratan")
    c = _compose("width=32")
    assert train.place(a)[0] == train.place(b)[0] != train.place(c)[0]


def test_run_ids_stay_stable():
    # Results are found by id: a change here orphans every existing result file. (It changed
    # from be720b71c5a4 when the planar data took the study's orientation, and from 3d907088ea69
    # when training took its full batch, lane pools and tolerance schedule: README.)
    assert train.place(_compose())[0] == RUN_ID


def test_the_studys_head_names_give_the_same_run():
    alias = train.canonical(_compose("output_head=mlp_4D_logmag_unit_exp"))
    assert alias["output_head"] == "logmag_unit_exp" and train.place(alias)[0] == RUN_ID
    assert train.prepare(_compose("output_head=mlp_4D_logmag_unit_exp"))[0] == RUN_ID
    assert train.prepare(_compose("output_head=mlp_4D"))[0] == train.prepare(_compose("output_head=mag_dir"))[0]


def test_datasets_are_oriented_as_the_studys_unless_rotated():
    assert _compose()["dataset"]["rotated"] is False
    assert _compose("dataset=complex_planar_rotated")["dataset"]["rotated"] is True
    assert _compose("dataset=complex_3d")["dataset"]["rotated"] is True
    assert train.place(_compose("dataset=complex_planar_rotated"))[0] != RUN_ID
    with pytest.raises(ValueError, match="`dataset.rotated`=false needs a planar dataset"):
        train.prepare(_compose("dataset=complex_3d", "dataset.rotated=false"))


def test_a_strategy_curriculum_is_its_explicit_phases():
    lists = _compose("curriculum=strategy", "curriculum.segment_length_strategy=[10]")
    explicit = _compose(
        "curriculum=lofi",
        "curriculum.phases=[{steps: 1000, lr: 1e-3, segment_length: 10, "
        "length: [0, 0.1]}, {steps: 1000, lr: 1e-3, segment_length: 10, length: [0, 1]}, "
        "{steps: 1000, lr: 1e-4, segment_length: 10, length: [0, 1]}]",
    )
    phases = neuralode.phases_from_config(lists)
    assert phases == neuralode.phases_from_config(explicit)
    assert [(p.steps, p.lr, p.segment_length, p.length) for p in phases] == [
        (1000, 1e-3, 10, (0, 0.1)),
        (1000, 1e-3, 10, (0, 1)),
        (1000, 1e-4, 10, (0, 1)),
    ]
    assert phases[0].points_used(0) == 2 and phases[1].points_used(999) == 10
    # the short names reach it: segment_length and lr feed its lists
    by_name = neuralode.phases_from_config(_compose("curriculum=strategy", "segment_length=4", "lr=3e-3"))
    assert [(p.segment_length, p.lr) for p in by_name] == [(4, 3e-3), (4, 3e-3), (4, 1e-4)]
    assert lists["loss"]["name"] == "percent_error_plus_nmse"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["curriculum.lr_strategy=[1e-3,1e-4]"],
            r"`curriculum.lr_strategy` has 2 entries; each strategy list needs "
            r"one per phase \(3\) or one for all",
        ),
        (["curriculum.steps_strategy=[]"], r"`curriculum.steps_strategy` must be a non-empty list"),
        (["+curriculum.phases=[]"], r"`curriculum` must hold either `phases` or the lists"),
        (["curriculum.segment_length_strategy=[1]"], r"`segment_length`=1 yields no usable segment"),
    ],
)
def test_bad_strategy_lists_are_rejected_before_submission(overrides, message):
    with pytest.raises(ValueError, match=message):
        train.prepare(_compose("curriculum=strategy", *overrides))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["curriculum=hifi", "curriculum.phases.3.steps=0"],
            r"^`curriculum.phases.3.steps` must be a positive integer",
        ),
        (["solver.dtype=float16"], r"^Unknown `solver.dtype` 'float16'; known values:"),
        (["solver.name=euler9"], r"^Unknown `solver.name` 'euler9'; known values:"),
        (["width=0"], r"^`width` must be a positive integer, got 0"),
        (["solver.train_rtol=[1e-4]"], r"^`solver.train_rtol` must be null .* or \[first, last\], two numbers > 0"),
        (["solver.train_rtol=[1e-4,0]"], r"^`solver.train_rtol` must be null"),
        (["solver.icoeff=0"], r"^`solver.icoeff` must be > 0, got 0"),
        (["solver.max_steps=0"], r"^`solver.max_steps` must be a positive integer, got 0"),
    ],
)
def test_errors_name_the_config_path_the_user_typed(overrides, message):
    with pytest.raises(ValueError, match=message):
        train.prepare(_compose(*overrides))


def test_a_learning_rate_the_curriculum_ignores_is_rejected():
    with pytest.raises(ValueError, match=r"`lr`=0.003 is not used by this curriculum"):
        train.prepare(_compose("curriculum=lofi", "curriculum.phases.0.lr=1e-3", "lr=3e-3"), ["lr=3e-3"])
    train.prepare(_compose("curriculum=strategy", "lr=3e-3"), ["lr=3e-3"])  # its first two phases read it


@pytest.mark.parametrize(
    "override, message",
    [
        ("batch_size=0", "`batch_size` must be a positive integer, got 0"),
        ("n_orbits=0", "`n_orbits` must be a positive integer, got 0"),
        ("dataset.test_sizes=[]", "`dataset.test_sizes` must be a list of positive integers"),
        ("segment_length=1", "`segment_length`=1 yields no usable segment"),
    ],
)
def test_bad_sizes_are_rejected_before_submission(override, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        train.prepare(_compose(override))


def test_a_segment_length_the_curriculum_ignores_is_rejected():
    ignored = _compose("curriculum=smoke", "segment_length=12")
    read = _compose("curriculum=lofi", "segment_length=12")
    with pytest.raises(ValueError, match=r"`segment_length`=12 is not used by this curriculum: .*\[8\]"):
        train.prepare(ignored, ["curriculum=smoke", "segment_length=12"])
    train.prepare(ignored, ["curriculum=smoke"])  # not asked for: the curriculum's own length stands
    train.prepare(read, ["curriculum=lofi", "segment_length=12"])


def test_a_field_error_is_named_by_the_path_it_is_given_not_by_rewriting_its_text():
    from neuralode import FieldError, ModelSpec, Phase

    with pytest.raises(FieldError) as raised:
        ModelSpec(dtype="float16")
    assert raised.value.field == "dtype" and str(raised.value).startswith("Unknown `dtype` 'float16'")
    moved = raised.value.at("solver.dtype")
    assert str(moved).startswith("Unknown `solver.dtype` 'float16'") and moved.field == "solver.dtype"
    with pytest.raises(FieldError) as raised:  # a phase names its field as a phase's until placed
        Phase(steps=1, lr=1e-3, segment_length=4, length=(0.5, 2.0))
    assert str(raised.value).startswith("phase `length` [0.5, 2.0] must be fractions")
    assert str(raised.value.at("curriculum.phases.2.length")).startswith("`curriculum.phases.2.length` [0.5, 2.0]")

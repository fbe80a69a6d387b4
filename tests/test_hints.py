"""Unknown override keys get a "did you mean" and the app's short names."""

import pathlib

import train
from hpc.hints import hint, known_keys, unknown_keys

CONF = pathlib.Path(train.__file__).parent / "conf"


def test_known_keys_cover_groups_and_global_options():
    known = known_keys(CONF)
    assert {"dataset", "model", "curriculum", "cluster", "seed", "width", "solver", "lr"} <= known
    assert "defaults" not in known


def test_unknown_keys_and_hint():
    known = known_keys(CONF) | set(train.SHORT_NAMES)
    args = ["widht=3", "width=3", "+x=1", "~seed", "dataset.a=[1,2]", "-m", "dataset@foo=complex_3d"]
    args += ["+cluster.hold=true", "hydra/launcher=manifest", "hydra.verbose=true"]
    assert unknown_keys(args, known) == ["widht", "x"]  # `+x`: a key the app would never read
    text = hint(["widht", "nosuchkey"], known, train.SHORT_NAMES, train.GROUPS)
    assert "\n" not in text and text.startswith("unknown keys `widht` (closest: width")
    assert "Short names: width, depth" in text and "config groups: dataset, model" in text

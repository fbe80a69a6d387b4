"""Curricula: phases, the study's strategy lists, and errors that say which phase."""

import pytest

from neuralode._config import phases_from_config
from neuralode._curriculum import Phase, phases_from_strategy


def test_a_phase_decays_along_a_cosine_and_ramps_its_length():
    phase = Phase(steps=11, lr=1e-2, segment_length=10, length=[0.1, 1.0], lr_end=1e-4)
    assert phase.lr_at(0) == pytest.approx(1e-2) and phase.lr_at(10) == pytest.approx(1e-4)
    assert phase.lr_at(5) == pytest.approx(1e-4 + 0.5 * (1e-2 - 1e-4))
    assert [phase.points_used(s) for s in (0, 10)] == [2, 10] and phase.length == (0.1, 1.0)


def test_strategy_lists_broadcast_and_name_what_does_not_fit():
    phases = phases_from_strategy([100, 200], [1e-3], [4, 10], [[0, 1]])
    assert [(p.steps, p.lr, p.segment_length) for p in phases] == [(100, 1e-3, 4), (200, 1e-3, 10)]
    with pytest.raises(ValueError, match="`curriculum.lr_strategy` has 2 entries"):
        phases_from_strategy([1, 2, 3], [1e-3, 1e-4], [4], [[0, 1]])
    with pytest.raises(ValueError, match=r"entry 1 of the curriculum's strategy lists \(phase 1\): phase `steps`"):
        phases_from_strategy([10, 0], [1e-3], [4], [[0, 1]])


def test_a_length_strategy_that_is_one_pair_ramps_every_phase():
    # the notebook's second "EXHAUSTIVE LENGTH STRATEGY" value, [0.0, 1.0]: one [start, end] entry
    phases = phases_from_strategy([10, 10, 10], [1e-3, 1e-3, 1e-4], [4], [0.0, 1.0])
    assert [p.length for p in phases] == [(0.0, 1.0)] * 3
    assert phases == phases_from_strategy([10, 10, 10], [1e-3, 1e-3, 1e-4], [4], [[0.0, 1.0]])
    with pytest.raises(ValueError, match="`curriculum.length_strategy` has 2 entries"):
        phases_from_strategy([10, 10, 10], [1e-3], [4], [[0.0, 0.1], [0.0, 1.0]])


def test_a_bad_phase_is_named_by_its_config_path():
    good = {"steps": 5, "lr": 1e-3, "segment_length": 4}
    with pytest.raises(ValueError, match=r"^`curriculum.phases.1.lr_end` must be a number > 0 or null"):
        phases_from_config({"curriculum": {"phases": [good, {**good, "lr_end": -1}]}})
    assert len(phases_from_config({"curriculum": {"phases": [good, good]}})) == 2

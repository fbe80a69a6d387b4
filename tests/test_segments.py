import numpy as np
import pytest

from neuralode import segment


def _orbits(n=2, points=360):
    t = np.tile(np.arange(points, dtype=float), (n, 1))
    y = np.random.default_rng(0).normal(size=(n, points, 6))
    return t, y


def test_consecutive_non_overlapping_segments():
    t, y = _orbits()
    s = segment(t, y, 18)
    assert s.count == 2 * 20 and s.length == 18
    np.testing.assert_array_equal(s.t[1], np.arange(18, 36))
    np.testing.assert_array_equal(s.y[20], y[1, :18])


def test_too_long_names_value_and_largest_valid():
    t, y = _orbits()
    with pytest.raises(ValueError, match=r"`segment_length`=400 .* between 2 and 360"):
        segment(t, y, 400)
    with pytest.raises(ValueError, match="`segment_length`=1"):
        segment(t, y, 1)


def test_nan_padding_drops_segments_and_can_leave_none():
    t, y = _orbits()
    y[:, 100:] = np.nan
    s = segment(t, y, 50)
    assert s.count == 2 * 2
    with pytest.raises(ValueError, match=r"`segment_length`=150 .* 100"):
        segment(t, y, 150)

"""Canonical units (`neuralode._units`): mu = 1, and the mappings are inverse."""

import numpy as np

from neuralode._orbits import MU_EARTH, R_EARTH
from neuralode._units import CanonicalUnits


def test_a_circular_orbit_of_radius_one_has_speed_one():
    units = CanonicalUnits()
    circular_speed_km_s = np.sqrt(MU_EARTH / R_EARTH)  # v = sqrt(mu / r) at r = one Earth radius
    _, y = units.to_canonical(0.0, np.array([R_EARTH, 0, 0, 0, circular_speed_km_s, 0]))
    np.testing.assert_allclose(y, [1, 0, 0, 0, 1, 0], rtol=1e-12)
    # one time unit is 1/(2 pi) of that orbit's period
    period_s = 2 * np.pi * np.sqrt(R_EARTH**3 / MU_EARTH)
    np.testing.assert_allclose(units.to_canonical(period_s, np.zeros(6))[0], 2 * np.pi, rtol=1e-12)


def test_to_physical_inverts_to_canonical():
    units = CanonicalUnits(length_km=7000.0)
    rng = np.random.default_rng(0)
    t, y = rng.uniform(0, 1e4, 5), rng.normal(size=(5, 6)) * np.array([7000.0] * 3 + [7.5] * 3)
    back_t, back_y = units.to_physical(*units.to_canonical(t, y))
    np.testing.assert_allclose(back_t, t, rtol=1e-12)
    np.testing.assert_allclose(back_y, y, rtol=1e-12, atol=1e-9)
    assert units.as_attrs() == {"length_km": 7000.0, "time_s": units.time_s, "mu_km3_s2": MU_EARTH}

import numpy as np
import pytest

import neuralode
from neuralode import R_EARTH, ElementRanges, angular_momentum, generate_orbits, solve_kepler, specific_energy
from neuralode._orbits import MIN_ALTITUDE


@pytest.mark.parametrize(
    "family,planar", [("complex", True), ("complex", False), ("circular", False), ("simple", True)]
)
def test_energy_and_angular_momentum_conserved(family, planar):
    t, y, _ = generate_orbits(20, seed=3, ranges=neuralode.family_ranges(family, planar, rotated=not planar))
    energy = specific_energy(y)
    h = angular_momentum(y)
    assert np.max(np.abs(energy / energy[:, :1] - 1)) < 1e-9
    assert np.max(np.linalg.norm(h - h[:, :1], axis=-1) / np.linalg.norm(h[:, :1], axis=-1)) < 1e-9


def test_periapsis_constraint_and_shapes():
    t, y, el = generate_orbits(200, seed=0, ranges=neuralode.family_ranges("complex", True))
    assert t.shape == (200, 360) and y.shape == (200, 360, 6)
    assert np.all(el["a"] * (1 - el["e"]) >= R_EARTH + MIN_ALTITUDE)
    assert np.all(np.linalg.norm(y[..., :3], axis=-1) >= R_EARTH + MIN_ALTITUDE - 1e-6)
    assert el["e"].max() > 0.5  # the complex family really reaches high eccentricity


def test_sampling_is_one_degree_of_mean_anomaly_over_one_period():
    t, y, el = generate_orbits(3, seed=1, ranges=neuralode.family_ranges("circular", True))
    period = 2 * np.pi * np.sqrt(el["a"] ** 3 / neuralode.MU_EARTH)
    np.testing.assert_allclose(t[:, 1], period / 360)
    np.testing.assert_allclose(t[:, -1] + t[:, 1], period)
    # a circular orbit advances 1 degree of true anomaly per point
    cos = np.sum(y[:, 0, :3] * y[:, 1, :3], -1) / np.linalg.norm(y[:, 0, :3], axis=-1) ** 2
    np.testing.assert_allclose(np.degrees(np.arccos(cos)), 1.0, rtol=1e-6)


def test_planar_orbits_stay_in_plane_and_3d_do_not():
    _, y, _ = generate_orbits(5, seed=0, ranges=neuralode.family_ranges("complex", True))
    assert np.all(y[..., 2] == 0) and np.all(y[..., 5] == 0)
    _, y3, _ = generate_orbits(5, seed=0, ranges=neuralode.family_ranges("complex", False, rotated=True))
    assert np.any(np.abs(y3[..., 2]) > 1.0)


def _periapsis_angle(y):
    """The direction of each orbit's eccentricity vector (toward its periapsis), degrees from +x."""
    r, v = y[:, 0, :3], y[:, 0, 3:]
    e_vec = np.cross(v, np.cross(r, v)) / neuralode.MU_EARTH - r / np.linalg.norm(r, axis=-1, keepdims=True)
    return np.degrees(np.arctan2(e_vec[:, 1], e_vec[:, 0])), np.linalg.norm(e_vec, axis=-1)


def test_planar_periapses_lie_on_plus_x_as_the_studys_and_rotated_ones_do_not():
    _, y, el = generate_orbits(200, seed=0, ranges=neuralode.family_ranges("complex", True))
    angle, e = _periapsis_angle(y)
    np.testing.assert_allclose(e, el["e"], atol=1e-9)
    eccentric = e > 1e-3  # a circular orbit's periapsis is undefined
    np.testing.assert_allclose(angle[eccentric], 0.0, atol=1e-6)
    assert np.all(el["argp"] == 0) and np.all(el["raan"] == 0)
    _, y_rot, el_rot = generate_orbits(200, seed=0, ranges=neuralode.family_ranges("complex", True, rotated=True))
    angle_rot, _ = _periapsis_angle(y_rot)
    assert np.ptp(angle_rot[eccentric]) > 300  # every direction
    np.testing.assert_allclose(np.radians(angle_rot[eccentric]) % (2 * np.pi), el_rot["argp"][eccentric], atol=1e-6)
    # the same draws, turned about z: shapes and phases are the aligned set's
    np.testing.assert_array_equal(el_rot["a"], el["a"])
    np.testing.assert_allclose(np.linalg.norm(y_rot[..., :3], axis=-1), np.linalg.norm(y[..., :3], axis=-1))
    assert np.all(y_rot[..., 2] == 0)


def test_3d_orbits_are_always_randomly_oriented():
    with pytest.raises(ValueError, match="`dataset.rotated`=false needs a planar dataset"):
        neuralode.family_ranges("complex", False, rotated=False)
    assert neuralode.family_ranges("complex", False, rotated=True).argp == (0.0, 2 * np.pi)


def test_reproducible_by_seed():
    ranges = neuralode.family_ranges("complex", False, rotated=True)
    a = generate_orbits(4, seed=7, ranges=ranges)[1]
    b = generate_orbits(4, seed=7, ranges=ranges)[1]
    c = generate_orbits(4, seed=8, ranges=ranges)[1]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fixed_initial_true_anomaly():
    ranges = ElementRanges(e=(0.3, 0.3), inclination=(0, 0), raan=(0, 0), argp=(0, 0), nu0=0.0)
    _, y, el = generate_orbits(2, seed=0, ranges=ranges)
    # nu0 = 0 with argp = 0: starts at periapsis on the +x axis
    np.testing.assert_allclose(y[:, 0, 0], el["a"] * 0.7)
    np.testing.assert_allclose(y[:, 0, 1], 0, atol=1e-6)


def test_kepler_solution():
    m = np.linspace(0, 2 * np.pi, 50)
    for e in (0.0, 0.5, 0.99):
        big_e = solve_kepler(m, e)
        np.testing.assert_allclose(big_e - e * np.sin(big_e), m, atol=1e-12)


def test_bad_ranges_are_rejected():
    with pytest.raises(ValueError, match="`e`"):
        ElementRanges(e=(0.0, 1.0))
    with pytest.raises(ValueError, match="`a`"):
        ElementRanges(a=(7000.0, 6000.0))
    with pytest.raises(ValueError, match="dataset.family.*circular, complex, simple"):
        neuralode.family_ranges("elliptic", True)

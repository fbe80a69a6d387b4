"""Two-body (Keplerian) Earth orbits from classical elements, sampled in mean anomaly."""

import dataclasses

import numpy as np

MU_EARTH = 398600.4418  # km^3 / s^2
R_EARTH = 6378.1363  # km
GEO_A = 42164.0  # km
MIN_ALTITUDE = 200.0  # km: periapsis below R_EARTH + this is rejected
POINTS_PER_ORBIT = 360  # one degree of mean anomaly apart


@dataclasses.dataclass(frozen=True)
class ElementRanges:
    """Closed ranges `[low, high]` for the classical elements (km and radians).

    `inclination=(0, 0)` gives planar orbits. `nu0=None` draws the initial true anomaly
    uniformly; a number fixes it for every orbit.
    """

    a: tuple[float, float] = (R_EARTH + MIN_ALTITUDE, GEO_A)
    e: tuple[float, float] = (0.0, 0.99)
    inclination: tuple[float, float] = (0.0, np.pi)
    raan: tuple[float, float] = (0.0, 2 * np.pi)
    argp: tuple[float, float] = (0.0, 2 * np.pi)
    nu0: float | None = None

    def __post_init__(self):
        for name in ("a", "e", "inclination", "raan", "argp"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"`{name}` range [{low}, {high}] has low > high.")
        if not (0 <= self.e[0] and self.e[1] < 1):
            raise ValueError(f"`e` range {list(self.e)} must lie in [0, 1) for closed orbits.")
        if self.a[1] * (1 - self.e[0]) < R_EARTH + MIN_ALTITUDE:
            raise ValueError(
                f"`a` {list(self.a)} and `e` {list(self.e)} admit no orbit with periapsis "
                f"above {R_EARTH + MIN_ALTITUDE} km."
            )


def _planar(r: ElementRanges, rotated: bool) -> ElementRanges:
    """The study's planar orbits: i = 0 and no rotation of the orbital plane, so RAAN and the
    argument of periapsis are 0 (undefined for i = 0) and every periapsis lies on +x.
    `rotated` turns each orbit by a random angle about z: periapses in every direction."""
    return dataclasses.replace(
        r, inclination=(0.0, 0.0), raan=(0.0, 0.0), argp=(0.0, 2 * np.pi) if rotated else (0.0, 0.0)
    )


_COMPLEX = ElementRanges()
_CIRCULAR = ElementRanges(e=(0.0, 0.0))
_SIMPLE = ElementRanges(a=(7000.0, 8000.0), e=(0.0, 0.1), inclination=(0.0, np.pi / 6))

# (family, planar, rotated) -> ranges; 3D orbits are always randomly oriented (rotated).
FAMILIES: dict[tuple[str, bool, bool], ElementRanges] = {}
for _name, _ranges in (("complex", _COMPLEX), ("circular", _CIRCULAR), ("simple", _SIMPLE)):
    FAMILIES[(_name, False, True)] = _ranges
    FAMILIES[(_name, True, False)] = _planar(_ranges, rotated=False)
    FAMILIES[(_name, True, True)] = _planar(_ranges, rotated=True)


def solve_kepler(mean_anomaly: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Eccentric anomaly `E` with `E - e sin E = M`, by Newton's method to machine precision."""
    mean_anomaly = np.asarray(mean_anomaly, dtype=np.float64)
    e = np.broadcast_to(np.asarray(e, dtype=np.float64), mean_anomaly.shape)
    big_e = np.where(e < 0.8, mean_anomaly, np.pi * np.ones_like(mean_anomaly))
    for _ in range(60):
        delta = (big_e - e * np.sin(big_e) - mean_anomaly) / (1 - e * np.cos(big_e))
        big_e = big_e - delta
        if np.all(np.abs(delta) < 1e-15):
            break
    return big_e


def _rotation(inclination, raan, argp) -> np.ndarray:
    """Perifocal -> inertial rotation matrices, shape `[n, 3, 3]`."""
    ci, si = np.cos(inclination), np.sin(inclination)
    co, so = np.cos(raan), np.sin(raan)
    cw, sw = np.cos(argp), np.sin(argp)
    return np.stack(
        [
            np.stack([co * cw - so * sw * ci, -co * sw - so * cw * ci, so * si], -1),
            np.stack([so * cw + co * sw * ci, -so * sw + co * cw * ci, -co * si], -1),
            np.stack([sw * si, cw * si, ci], -1),
        ],
        -2,
    )


def sample_elements(rng: np.random.Generator, n: int, ranges: ElementRanges) -> dict[str, np.ndarray]:
    """Draw `n` orbits' elements uniformly within `ranges`, rejecting low periapses."""
    rp_min = R_EARTH + MIN_ALTITUDE
    a, e = np.empty(0), np.empty(0)
    while a.size < n:
        a_try = rng.uniform(*ranges.a, size=n)
        e_try = rng.uniform(*ranges.e, size=n)
        keep = a_try * (1 - e_try) >= rp_min
        a, e = np.concatenate([a, a_try[keep]]), np.concatenate([e, e_try[keep]])
    a, e = a[:n], e[:n]
    nu0 = rng.uniform(0, 2 * np.pi, size=n) if ranges.nu0 is None else np.full(n, float(ranges.nu0))
    return {
        "a": a,
        "e": e,
        "inclination": rng.uniform(*ranges.inclination, size=n),
        "raan": rng.uniform(*ranges.raan, size=n),
        "argp": rng.uniform(*ranges.argp, size=n),
        "nu0": nu0,
    }


def propagate_elements(elements: dict[str, np.ndarray], n_points: int = POINTS_PER_ORBIT, mu: float = MU_EARTH):
    """Sample each orbit at `n_points` equal steps of mean anomaly over one period.

    **Returns:** `(t, y)`: times in s, shape `[n, n_points]`, starting at 0; states
    `[x, y, z, vx, vy, vz]` in km and km/s, shape `[n, n_points, 6]`.
    """
    a, e, nu0 = elements["a"][:, None], elements["e"][:, None], elements["nu0"][:, None]
    e0 = 2 * np.arctan2(np.sqrt(1 - e) * np.sin(nu0 / 2), np.sqrt(1 + e) * np.cos(nu0 / 2))
    m0 = e0 - e * np.sin(e0)
    period = 2 * np.pi * np.sqrt(a**3 / mu)
    k = np.arange(n_points)[None, :]
    t = period * k / n_points
    big_e = solve_kepler(m0 + 2 * np.pi * k / n_points, e)
    radius = a * (1 - e * np.cos(big_e))
    root = np.sqrt(1 - e**2)
    pos = np.stack([a * (np.cos(big_e) - e), a * root * np.sin(big_e), np.zeros_like(big_e)], -1)
    vel_scale = np.sqrt(mu * a) / radius
    vel = np.stack([-vel_scale * np.sin(big_e), vel_scale * root * np.cos(big_e), np.zeros_like(big_e)], -1)
    rot = _rotation(elements["inclination"], elements["raan"], elements["argp"])
    pos = np.einsum("nij,nkj->nki", rot, pos)
    vel = np.einsum("nij,nkj->nki", rot, vel)
    return t, np.concatenate([pos, vel], -1)


def generate_orbits(n: int, seed: int, ranges: ElementRanges, n_points: int = POINTS_PER_ORBIT):
    """`n` random orbits: `(t [n, n_points] s, y [n, n_points, 6] km, km/s, elements)`."""
    elements = sample_elements(np.random.default_rng(seed), n, ranges)
    t, y = propagate_elements(elements, n_points)
    return t, y, elements


def specific_energy(y: np.ndarray, mu: float = MU_EARTH) -> np.ndarray:
    """v^2/2 - mu/r for states `[..., 6]`."""
    r = np.linalg.norm(y[..., :3], axis=-1)
    return 0.5 * np.sum(y[..., 3:] ** 2, -1) - mu / r


def angular_momentum(y: np.ndarray) -> np.ndarray:
    """r x v for states `[..., 6]`."""
    return np.cross(y[..., :3], y[..., 3:])

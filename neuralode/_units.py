"""Canonical units: one Earth radius, and the time unit that makes mu = 1."""

import dataclasses

import numpy as np

from ._orbits import MU_EARTH, R_EARTH


@dataclasses.dataclass(frozen=True)
class CanonicalUnits:
    """Length unit `length_km` (default one Earth radius) and time unit
    `time_s = sqrt(length_km^3 / mu)`, so that mu = 1 and a circular orbit of radius 1 has
    speed 1. States map to canonical units by dividing positions by `length_km` and
    velocities by `length_km / time_s`."""

    length_km: float = R_EARTH
    mu: float = MU_EARTH

    @property
    def time_s(self) -> float:
        return float(np.sqrt(self.length_km**3 / self.mu))

    @property
    def speed_km_s(self) -> float:
        return self.length_km / self.time_s

    def _scale(self) -> np.ndarray:
        return np.array([self.length_km] * 3 + [self.speed_km_s] * 3)

    def to_canonical(self, t_s: np.ndarray, y_km: np.ndarray):
        """`(t, y)` in s and km, km/s -> canonical units."""
        return np.asarray(t_s) / self.time_s, np.asarray(y_km) / self._scale()

    def to_physical(self, t: np.ndarray, y: np.ndarray):
        """`(t, y)` in canonical units -> s and km, km/s."""
        return np.asarray(t) * self.time_s, np.asarray(y) * self._scale()

    def as_attrs(self) -> dict:
        return {"length_km": self.length_km, "time_s": self.time_s, "mu_km3_s2": self.mu}

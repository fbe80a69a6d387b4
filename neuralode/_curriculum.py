"""Curricula: lists of training phases."""

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase: `steps` optimizer steps on segments of `segment_length` points, of which the
    fraction `length[0]` -> `length[1]` (ramped linearly over the phase) is integrated and
    scored. The learning rate is `lr`, or, with `lr_end`, decays from `lr` to `lr_end` along
    a cosine over the phase."""

    steps: int
    lr: float
    segment_length: int
    length: tuple[float, float] = (1.0, 1.0)
    lr_end: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "length", tuple(self.length))  # a config gives a list
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"phase `steps` must be a positive integer, got {self.steps!r}.")
        if not self.lr > 0:
            raise ValueError(f"phase `lr` must be > 0, got {self.lr!r}.")
        if self.lr_end is not None and not self.lr_end > 0:
            raise ValueError(f"phase `lr_end` must be > 0 or null (a constant `lr`), got {self.lr_end!r}.")
        low, high = self.length
        if not (0 < low <= 1 and 0 < high <= 1):
            raise ValueError(f"phase `length` {list(self.length)} must be fractions in (0, 1].")

    def points_used(self, step: int) -> int:
        """How many leading points of each segment step `step` of this phase uses (at least 2)."""
        low, high = self.length
        frac = low + (high - low) * (step / max(self.steps - 1, 1))
        return max(2, min(self.segment_length, round(frac * self.segment_length)))

    def lr_at(self, step: int) -> float:
        """The learning rate of step `step` of this phase."""
        if self.lr_end is None:
            return self.lr
        frac = step / max(self.steps - 1, 1)
        return self.lr_end + 0.5 * (self.lr - self.lr_end) * (1 + math.cos(math.pi * frac))

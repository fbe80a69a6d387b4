"""Curricula: lists of training phases."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase: `steps` optimizer steps at learning rate `lr` on segments of
    `segment_length` points, of which the fraction `length[0]` -> `length[1]` (ramped
    linearly over the phase) is integrated and scored."""

    steps: int
    lr: float
    segment_length: int
    length: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self):
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"phase `steps` must be a positive integer, got {self.steps!r}.")
        if not self.lr > 0:
            raise ValueError(f"phase `lr` must be > 0, got {self.lr!r}.")
        low, high = self.length
        if not (0 < low <= 1 and 0 < high <= 1):
            raise ValueError(f"phase `length` {list(self.length)} must be fractions in (0, 1].")

    def points_used(self, step: int) -> int:
        """How many leading points of each segment step `step` of this phase uses (at least 2)."""
        low, high = self.length
        frac = low + (high - low) * (step / max(self.steps - 1, 1))
        return max(2, min(self.segment_length, round(frac * self.segment_length)))

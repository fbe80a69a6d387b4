"""Curricula: lists of training phases, given as such or as the study's parallel strategy lists."""

import dataclasses
import math

from ._registry import FieldError


def _error(field: str, message: str) -> FieldError:
    """A phase's bad field, named `phase `<field>`` until the caller gives its config path."""
    return FieldError(field, message, label="phase `{}`")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
        if not isinstance(self.length, (list, tuple)) or len(self.length) != 2 or not all(map(_number, self.length)):
            raise _error("length", f"{{field}} must be [start, end] fractions, got {self.length!r}.")
        object.__setattr__(self, "length", tuple(self.length))  # a config gives a list
        if not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 1:
            raise _error("steps", f"{{field}} must be a positive integer, got {self.steps!r}.")
        if not (_number(self.lr) and self.lr > 0):
            raise _error(
                "lr", f"{{field}} (the `lr` short name, or the curriculum's) must be a number > 0, got {self.lr!r}."
            )
        if self.lr_end is not None and not (_number(self.lr_end) and self.lr_end > 0):
            raise _error("lr_end", f"{{field}} must be a number > 0 or null (a constant `lr`), got {self.lr_end!r}.")
        low, high = self.length
        if not (0 <= low <= 1 and 0 < high <= 1):
            raise _error("length", f"{{field}} {list(self.length)} must be fractions: start in [0, 1], end in (0, 1].")

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


STRATEGIES = ("steps_strategy", "lr_strategy", "segment_length_strategy", "length_strategy")


def phases_from_strategy(steps_strategy, lr_strategy, segment_length_strategy, length_strategy) -> list[Phase]:
    """The phases of a curriculum written as the study wrote it (and the diffrax neural-ODE
    example does): parallel lists with one entry per phase, zipped. A list of one entry applies
    to every phase. `length_strategy` entries are `[start, end]` fractions, as `Phase.length`;
    a `length_strategy` that is itself one such pair (`[0.0, 1.0]`, as the notebook's sweep
    writes its second value) is that one entry, for every phase. Raises `ValueError` naming the
    list whose length does not fit."""
    if isinstance(length_strategy, (list, tuple)) and length_strategy and all(map(_number, length_strategy)):
        length_strategy = [length_strategy]
    lists = dict(zip(STRATEGIES, (steps_strategy, lr_strategy, segment_length_strategy, length_strategy)))
    for name, value in lists.items():
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"`curriculum.{name}` must be a non-empty list (one entry per phase), got {value!r}.")
    count = max(len(v) for v in lists.values())
    for name, value in lists.items():
        if len(value) not in (1, count):
            lengths = ", ".join(f"{k} {len(v)}" for k, v in lists.items())
            raise ValueError(
                f"`curriculum.{name}` has {len(value)} entries; each strategy list needs one per "
                f"phase ({count}) or one for all ({lengths})."
            )
    at = {name: (value * count if len(value) == 1 else value) for name, value in lists.items()}
    phases = []
    for i, (steps, lr, length, fraction) in enumerate(zip(*(at[name] for name in STRATEGIES))):
        try:
            phases.append(Phase(steps=steps, lr=lr, segment_length=length, length=fraction))
        except ValueError as exc:  # which entry of which list
            raise ValueError(f"entry {i} of the curriculum's strategy lists (phase {i}): {exc}") from None
    return phases

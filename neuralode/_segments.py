"""Cut orbits into consecutive fixed-length segments for training."""

import dataclasses

import numpy as np

from ._orbits import POINTS_PER_ORBIT


@dataclasses.dataclass(frozen=True)
class Segments:
    """`t [n, length]` and `y [n, length, 6]`, each segment a run of consecutive points."""

    t: np.ndarray
    y: np.ndarray

    @property
    def count(self) -> int:
        return self.t.shape[0]

    @property
    def length(self) -> int:
        return self.t.shape[1]


def longest_finite_run(t: np.ndarray, y: np.ndarray) -> int:
    """The longest run of consecutive finite points in any orbit: the largest usable length."""
    finite = np.isfinite(t) & np.all(np.isfinite(y), axis=-1)
    best = 0
    for row in finite:
        run = 0
        for ok in row:
            run = run + 1 if ok else 0
            best = max(best, run)
    return best


def check_segment_length(segment_length, largest: int = POINTS_PER_ORBIT) -> None:
    """Raise `ValueError` naming `segment_length` and the valid range `[2, largest]` (`largest`:
    the longest run of finite points in one orbit; a generated orbit has `POINTS_PER_ORBIT`)."""
    if not isinstance(segment_length, (int, np.integer)) or isinstance(segment_length, bool):
        raise ValueError(f"`segment_length` must be an integer, got {segment_length!r}.")
    if segment_length < 2 or segment_length > largest:
        raise ValueError(
            f"`segment_length`={segment_length} yields no usable segment: it must be between 2 "
            f"and {largest} (the longest run of finite points in one orbit)."
        )


def segment(t: np.ndarray, y: np.ndarray, segment_length: int) -> Segments:
    """Split each orbit (`t [n, points]`, `y [n, points, 6]`) into non-overlapping segments
    of `segment_length` points; segments that touch NaN padding are dropped.

    Raises `ValueError` naming `segment_length` and the largest valid value when no usable
    segment remains, so a bad sweep value fails before training rather than mid-sweep.
    """
    largest = longest_finite_run(t, y)
    check_segment_length(segment_length, largest)
    n, points = t.shape
    per_orbit = points // segment_length
    cut = per_orbit * segment_length
    t_seg = t[:, :cut].reshape(n * per_orbit, segment_length)
    y_seg = y[:, :cut].reshape(n * per_orbit, segment_length, y.shape[-1])
    keep = np.isfinite(t_seg).all(1) & np.isfinite(y_seg).all((1, 2))
    if not keep.any():
        raise ValueError(
            f"`segment_length`={segment_length} yields no usable segment: every segment hits "
            f"padding or NaN; the largest valid value is {largest}."
        )
    return Segments(t_seg[keep], y_seg[keep])

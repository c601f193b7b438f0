"""Frame intervals, inclusive at both ends, with the overlap measures spotting needs.

``Interval`` is a stretch of frames; ``Spot`` is an interval a detector spotted, with its score.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True, slots=True)
class Interval:
    """Frames ``start..end`` inclusive (``Interval(3, 5)`` holds frames 3, 4 and 5)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"interval end {self.end} is before its start {self.start}")

    @property
    def length(self) -> int:
        """Number of frames in the interval."""
        return self.end - self.start + 1

    def intersection(self, other: Interval) -> int:
        """Number of frames in both intervals (0 when they do not overlap)."""
        return max(0, min(self.end, other.end) - max(self.start, other.start) + 1)

    def coverage_of(self, other: Interval) -> float:
        """Fraction of ``other``'s frames inside this interval: |self ∩ other| / |other|."""
        return self.intersection(other) / other.length

    def iou(self, other: Interval) -> float:
        """Intersection over union of the two frame sets."""
        inter = self.intersection(other)
        return inter / (self.length + other.length - inter)

    def contains(self, frame: int) -> bool:
        return self.start <= frame <= self.end

    def seconds(self, fps: float) -> tuple[float, float]:
        """(start, end) in seconds, taking frame ``i`` to be at ``i / fps``."""
        return self.start / fps, self.end / fps


@dataclass(frozen=True, order=True, slots=True)
class Spot(Interval):
    """A spotted interval, frames ``start..end`` inclusive, with its detector score.

    Spots order by (start, end, score). ``spot.interval`` is the bare Interval.
    """

    score: float

    @property
    def interval(self) -> Interval:
        return Interval(self.start, self.end)

"""A model's spotting threshold, chosen from its held-out scores: the lowest at which it
spots at most ``per_minute`` intervals a minute on quiet footage.

Window scores are not probabilities one can trust across corpora: a model trained with
balanced class weights puts many quiet windows above 0.5. What a user of spotted
intervals feels is how often the spotter fires where nothing happens, so the threshold is
set on that: over the LOSO folds' held-out scores (scores of subjects the model did not
see), *quiet* frames are those more than ``margin_s`` from every annotated movement (of
any kind), a spot counts against the quiet footage when at least half of its frames are
quiet, and the threshold is the lowest of ``grid`` whose spots (greedy NMS, as
``pipeline.core.spotting``) come at most ``per_minute`` times per quiet minute. When
none does, the grid's highest is taken and the rate it reaches is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from pipeline.core.intervals import Interval
from pipeline.core.spotting import spot_intervals

#: Thresholds tried, lowest first.
GRID = tuple(round(0.5 + 0.01 * k, 2) for k in range(50))


@dataclass(frozen=True)
class HeldOut:
    """One video's held-out window scores and its annotated movements (every kind)."""

    starts: np.ndarray  # (N,) int frames
    ends: np.ndarray  # (N,) int frames, inclusive
    scores: np.ndarray  # (N,) float
    movements: Sequence[Interval]
    n_frames: int
    fps: float


@dataclass(frozen=True)
class Calibration:
    """The chosen threshold and what it does on the held-out quiet footage."""

    threshold: float
    per_minute: float  # the target
    spots_per_minute: float  # reached at ``threshold`` (<= per_minute unless none could)
    quiet_minutes: float
    margin_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def quiet_mask(n_frames: int, movements: Sequence[Interval], margin: int) -> np.ndarray:
    """(n_frames,) bool: frames more than ``margin`` frames from every movement."""
    quiet = np.ones(n_frames, bool)
    for m in movements:
        quiet[max(0, m.start - margin) : min(n_frames, m.end + margin + 1)] = False
    return quiet


def quiet_spots(video: HeldOut, threshold: float, quiet: np.ndarray) -> int:
    """Spots at ``threshold`` with at least half of their frames quiet."""
    spots = spot_intervals(video.starts, video.ends, video.scores, threshold)
    return sum(1 for s in spots if quiet[s.start : s.end + 1].mean() >= 0.5)


def calibrate(
    videos: Sequence[HeldOut],
    per_minute: float = 1.0,
    margin_s: float = 0.5,
    grid: Sequence[float] = GRID,
) -> Calibration:
    """The lowest threshold of ``grid`` spotting <= ``per_minute`` a quiet minute (above).

    Raises ValueError when the videos hold no quiet footage at all.
    """
    masks = [quiet_mask(v.n_frames, v.movements, round(margin_s * v.fps)) for v in videos]
    minutes = sum(m.sum() / v.fps for m, v in zip(masks, videos, strict=True)) / 60
    if minutes <= 0:
        raise ValueError("no quiet footage (every frame is near a movement): cannot calibrate")
    rate = float("inf")
    for t in sorted(grid):
        count = sum(quiet_spots(v, t, m) for v, m in zip(videos, masks, strict=True))
        rate = count / minutes
        if rate <= per_minute:
            return Calibration(float(t), per_minute, rate, float(minutes), margin_s)
    return Calibration(float(max(grid)), per_minute, rate, float(minutes), margin_s)

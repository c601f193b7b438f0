"""One spotting threshold learnt on training videos: the F1-best one.

A detector's scores are spotted at a threshold: windows by greedy NMS
(pipeline.core.spotting), or, for a model with an extent head, runs of its per-frame
profile (pipeline.core.extents.profile_spots). A probability's
0.5 is not the best one: the LSTM is trained with balanced class weights, which lift the
rare positive class's probabilities, and a handcrafted score has no natural scale at all.
So the threshold is learnt where labels are known and the scores are honest: the
out-of-fold scores of the training subjects (each scored by a model that never saw it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.core.extents import EXTENTS, ExtentRule, profile_spots
from pipeline.core.intervals import Interval, Spot
from pipeline.core.metrics import Counts, match
from pipeline.core.spotting import spot_intervals


@dataclass(frozen=True)
class ScoredVideo:
    """One video's windows (frames, inclusive), their scores and its ground truth; with a
    ``profile`` (pipeline.core.extents.frame_profile) and its ``fps``, the video is spotted
    by runs of the profile instead of by its window scores."""

    starts: np.ndarray
    ends: np.ndarray
    scores: np.ndarray
    truth: list[Interval]
    profile: np.ndarray | None = None
    fps: float = 0.0

    def spots(
        self, threshold: float, rule: ExtentRule = EXTENTS, *, split: bool = False
    ) -> list[Spot]:
        """Micro spots at ``threshold``: runs of the profile when there is one (``split``:
        long ones split, for a review budget), else the windows greedy NMS keeps."""
        if self.profile is not None:
            return profile_spots(self.profile, threshold, rule, self.fps, split=split)
        return spot_intervals(self.starts, self.ends, self.scores, threshold)

    def values(self) -> np.ndarray:
        """What the threshold is compared with: the profile's frames, or window scores."""
        v = self.scores if self.profile is None else self.profile
        v = np.asarray(v, np.float64)
        return v[np.isfinite(v)]


def pooled_counts(videos: Sequence[ScoredVideo], threshold: float) -> Counts:
    """Coverage-rule counts, pooled over ``videos``, of their spots at ``threshold``."""
    total = Counts()
    for v in videos:
        total = total + match(v.spots(threshold), v.truth, "coverage")
    return total


def best_threshold(videos: Sequence[ScoredVideo], n_candidates: int = 100) -> float:
    """The one threshold that gives the best pooled F1 (coverage rule) on ``videos``
    spotted by ``ScoredVideo.spots``.

    Candidates are ``n_candidates`` quantiles (50% to 99.9%) of all the videos' values
    (window scores, or profile frames); ties go to the higher threshold (fewer spots).
    ValueError without any window.
    """
    pooled = np.concatenate([v.values() for v in videos] or [[]])
    if pooled.size == 0:
        raise ValueError("no windows to choose a threshold on")
    candidates = np.unique(np.quantile(pooled, np.linspace(0.5, 0.999, n_candidates)))
    best, best_f1 = float(candidates[-1]), -1.0
    for thr in candidates[::-1]:  # high to low: a tie keeps the higher one
        f1 = pooled_counts(videos, float(thr)).f1
        if f1 > best_f1:
            best, best_f1 = float(thr), f1
    return best

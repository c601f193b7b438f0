"""The F1-best threshold learnt on labelled scores (pipeline.core.thresholds)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.intervals import Interval
from pipeline.core.spotting import spot_intervals
from pipeline.core.thresholds import ScoredVideo, best_threshold, pooled_counts


def test_best_threshold_is_the_one_that_spots_the_training_movements():
    # Two videos of windows 10 frames long every 10 frames (no overlaps). Movements sit in
    # windows scoring 5 and 6; noise windows score 1-4, one distractor in video b scores 7.
    #
    #   video a  scores  1  5  2  3  1  6  2     truth: frames 10..19 and 50..59
    #   video b  scores  2  1  7  4  6  1  3     truth: frames 40..49
    #
    # Threshold 5 spots every movement and the distractor: F1 = 2*3/(2*3+1) = 0.857. Above 5
    # a movement is lost; 4 adds a false spot (F1 0.75). So 5 wins, within the candidates.
    starts = np.arange(0, 70, 10)
    ends = starts + 9
    a = ScoredVideo(
        starts, ends, np.array([1, 5, 2, 3, 1, 6, 2.0]), [Interval(10, 19), Interval(50, 59)]
    )
    b = ScoredVideo(starts, ends, np.array([2, 1, 7, 4, 6, 1, 3.0]), [Interval(40, 49)])
    thr = best_threshold([a, b], n_candidates=200)
    assert 4 < thr <= 5
    spotted = [spot_intervals(v.starts, v.ends, v.scores, thr) for v in (a, b)]
    assert [[(s.start, s.end) for s in found] for found in spotted] == [
        [(10, 19), (50, 59)],
        [(20, 29), (40, 49)],
    ]
    with pytest.raises(ValueError, match="no windows"):
        best_threshold([])
    # pooled_counts gives the counts the choice was made by: 3 found, 1 false spot.
    c = pooled_counts([a, b], thr)
    assert (c.tp, c.fp, c.fn) == (3, 1, 0)

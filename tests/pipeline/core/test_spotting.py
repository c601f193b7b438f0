"""Greedy suppression and runs of detections on timelines with known answers.

Most tests use seven windows of 10 frames at stride 4 (like the paper's 0.5 s windows at
0.2 s stride: each overlaps the next two, not the third):

    frames:  0    5    10   15   20   25   30
    W0       [========]                          0..9
    W1           [========]                      4..13
    W2               [========]                  8..17
    W3                   [========]              12..21
    W4                       [========]          16..25
    W5                           [========]      20..29
    W6                               [========]  24..33
"""

import numpy as np
import pytest

from pipeline.core.intervals import Interval, Spot
from pipeline.core.spotting import merge_detections, spot_intervals

STARTS = np.arange(0, 25, 4)
ENDS = STARTS + 9


def spots(scores, threshold=0.5, starts=STARTS, ends=ENDS):
    return spot_intervals(starts, ends, np.asarray(scores, dtype=float), threshold)


def test_spot_type():
    s = Spot(3, 12, 0.7)
    assert s.interval == Interval(3, 12)
    assert sorted([Spot(5, 6, 0.9), Spot(1, 9, 0.1)])[0].start == 1
    with pytest.raises(ValueError, match="before its start"):
        Spot(5, 4, 0.5)


#  scores:  W0 .1  W1 .6  W2 .9  W3 .7  W4 .2 ...   threshold .5
#  detections W1, W2, W3 all overlap W2 (W1 shares 8..13, W3 shares 12..17) -> keep W2
def test_a_run_of_consecutive_detections_keeps_its_maximum():
    assert spots([0.1, 0.6, 0.9, 0.7, 0.2, 0.1, 0.1]) == [Spot(8, 17, 0.9)]


#  scores:  W0 .8  W1 .6  W2-W4 .1  W5 .7  W6 .9
#  run A = W0 W1 -> W0;  run B = W5 W6 -> W6;  the runs do not overlap -> two spots
def test_two_separate_runs_keep_two():
    assert spots([0.8, 0.6, 0.1, 0.1, 0.1, 0.7, 0.9]) == [Spot(0, 9, 0.8), Spot(24, 33, 0.9)]


#  scores:  W0 .9  W1 .8  W2 .7  W3 .6  W4 .55     all detections
#  W0 suppresses W1, W2 (overlap) but not W3 (12..21 starts after 9);
#  W3 is then the best left and suppresses W4 -> W0 and W3
def test_a_long_run_keeps_a_member_that_does_not_overlap_its_maximum():
    assert spots([0.9, 0.8, 0.7, 0.6, 0.55, 0.1, 0.1]) == [Spot(0, 9, 0.9), Spot(12, 21, 0.6)]


#  scores:  W1 .9  W2 .9 (tie) -> the earlier, W1; W3 overlaps W1 at 12..13 -> suppressed
def test_ties_keep_the_earliest():
    assert spots([0.1, 0.9, 0.9, 0.8, 0.1, 0.1, 0.1]) == [Spot(4, 13, 0.9)]
    # The tie is broken by start, not by input order.
    order = [3, 2, 1, 0, 4, 5, 6]
    got = spots(
        np.array([0.1, 0.9, 0.9, 0.8, 0.1, 0.1, 0.1])[order], 0.5, STARTS[order], ENDS[order]
    )
    assert got == [Spot(4, 13, 0.9)]


#  scores:  W0 .5 (== threshold: a detection)  W3 .49 (below: not)  W6 .8
def test_threshold_is_inclusive_and_filters():
    scores = [0.5, 0.1, 0.1, 0.49, 0.1, 0.1, 0.8]
    assert spots(scores) == [Spot(0, 9, 0.5), Spot(24, 33, 0.8)]
    assert spots(scores, threshold=0.81) == []
    assert len(spots(scores, threshold=0.0)) == 3  # every window: W0, W3, W6 kept


#  frames:  0    5    10
#  A        [===]           0..4   .9
#  B             [===]      5..9   .8   adjacent, no shared frame -> both kept
#  C            [===]       4..8   .8   shares frame 4 with A -> suppressed
def test_adjacent_windows_are_not_suppressed_touching_ones_are():
    assert spot_intervals([0, 5], [4, 9], [0.9, 0.8], 0.5) == [Spot(0, 4, 0.9), Spot(5, 9, 0.8)]
    assert spot_intervals([0, 4], [4, 8], [0.9, 0.8], 0.5) == [Spot(0, 4, 0.9)]


def test_empty_and_bad_input():
    assert spot_intervals([], [], [], 0.5) == []
    assert spot_intervals(np.array([], dtype=int), np.array([], dtype=int), [], 0.5) == []
    with pytest.raises(ValueError, match="same length"):
        spot_intervals([0, 4], [9], [0.1, 0.2], 0.5)
    with pytest.raises(ValueError, match="1-D"):
        spot_intervals([[0]], [[9]], [[0.1]], 0.5)
    with pytest.raises(ValueError, match="before it starts"):
        spot_intervals([0, 9], [9, 4], [0.1, 0.2], 0.5)
    with pytest.raises(ValueError, match="finite"):
        spot_intervals([0], [9], [np.nan], 0.5)
    with pytest.raises(ValueError, match="integer"):
        spot_intervals([0.5], [9.0], [0.7], 0.5)


def test_merge_detections_joins_runs_of_windows_into_one_interval_each():
    # Windows of 10 frames every 5 (frames a..a+9); scores along the timeline:
    #
    #   window   0    1    2    3    4    5    6    7    8
    #   start    0    5   10   15   20   25   30   35   40
    #   score   .1   .6   .9   .7   .2   .1   .8   .3   .6
    #                |==== run A ====|         |B|       |C|
    #
    # A: windows 1-3, frames 5..24, best .9. B: window 6, frames 30..39, apart from A
    # (window 5 at .1 between). C: window 8, frames 40..49: it touches B (39 | 40) without
    # sharing a frame, and window 7 between them scores .3, so it is a movement of its own.
    starts = np.arange(0, 45, 5)
    ends = starts + 9
    scores = np.array([0.1, 0.6, 0.9, 0.7, 0.2, 0.1, 0.8, 0.3, 0.6])
    got = merge_detections(starts, ends, scores, 0.5)
    assert got == [Spot(5, 24, 0.9), Spot(30, 39, 0.8), Spot(40, 49, 0.6)]
    # With window 7 (35..44), which shares frames with both, a detection too, B and C are
    # one run.
    scores[7] = 0.55
    assert merge_detections(starts, ends, scores, 0.5)[1:] == [Spot(30, 49, 0.8)]
    scores[7] = 0.3
    # Input order does not matter; nothing at or above the threshold gives no spots.
    order = np.random.default_rng(0).permutation(len(starts))
    assert merge_detections(starts[order], ends[order], scores[order], 0.5) == got
    assert merge_detections(starts, ends, scores, 0.95) == []
    # The threshold is inclusive, as for spot_intervals.
    assert merge_detections([0], [9], [0.5], 0.5) == [Spot(0, 9, 0.5)]


def test_a_budget_takes_spots_best_first_while_their_frames_fit():
    from pipeline.core.spotting import within_budget

    found = [Spot(0, 9, 0.6), Spot(20, 29, 0.9), Spot(40, 44, 0.8), Spot(60, 69, 0.7)]
    # 100 frames: 25 fit in 0.25 -> 0.9 (10 frames) and 0.8 (5); then 0.7 (10) would make 25
    assert within_budget(found, 100, 0.25) == [
        Spot(20, 29, 0.9),
        Spot(40, 44, 0.8),
        Spot(60, 69, 0.7),
    ]
    assert within_budget(found, 100, 0.24) == [Spot(20, 29, 0.9), Spot(40, 44, 0.8)]
    assert within_budget(found, 100, 1.0) == sorted(found)
    # the first spot that does not fit ends the list, even if a worse, shorter one would fit
    assert within_budget([Spot(0, 29, 0.9), Spot(50, 51, 0.5)], 100, 0.2) == []
    # overlapping spots count their shared frames once
    assert within_budget([Spot(0, 9, 0.9), Spot(5, 14, 0.8)], 100, 0.15) == [
        Spot(0, 9, 0.9),
        Spot(5, 14, 0.8),
    ]
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="budget"):
            within_budget(found, 100, bad)


def test_a_budget_draws_from_the_review_floor_unless_a_threshold_is_given():
    from pipeline.core.spotting import REVIEW_FLOOR, review_threshold

    assert review_threshold(None, 0.1) == REVIEW_FLOOR
    assert review_threshold(0.4, 0.1) == 0.4
    assert review_threshold(None, None) is None  # the model's own, or learnt on the folds
    assert review_threshold(0.4, None) == 0.4

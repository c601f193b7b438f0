"""The review queue: pools, shares, no overlaps, reasons; on a timeline drawn by hand."""

import pytest

from pipeline.core.review_queue import (
    Candidate,
    choose,
    low_peaks,
    review_order,
    video_candidates,
)
from pipeline.core.verdicts import IntervalKey


def key(start: int, end: int, video: str = "v") -> IntervalKey:
    return IntervalKey("d", "s", video, start, end)


def spotted(start, end, score, video="v"):
    return Candidate(key(start, end, video), score, True)


def low(start, end, score, video="v"):
    return Candidate(key(start, end, video), score, False)


#   frames   0   20   40   60   80  100  120  140  160  180  200
#   spotted  [0.95]    [0.9]     [0.6]     [0.8]
#   low                     (0.45)    (0.3)     (0.1)     (0.05)
CANDIDATES = [
    spotted(0, 19, 0.95),
    spotted(40, 59, 0.9),
    spotted(80, 99, 0.6),
    spotted(120, 139, 0.8),
    low(60, 79, 0.45),
    low(100, 119, 0.3),
    low(140, 159, 0.1),
    low(180, 199, 0.05),
]


def test_top_is_the_plain_score_order_of_spotted_intervals():
    got = choose(CANDIDATES, [], 3, threshold=0.5, strategy="top")
    assert [p.key.start for p in got] == [0, 40, 120]
    assert all(p.pool == "top" for p in got)
    # only spotted intervals: five asked, four there
    assert [p.key.start for p in choose(CANDIDATES, [], 5, 0.5, "top")] == [0, 40, 120, 80]


def test_mixed_draws_half_top_a_quarter_uncertain_a_quarter_low():
    got = choose(CANDIDATES, [], 4, threshold=0.5)
    # top: 0.95, 0.9; uncertain: the closest to 0.5 of all, the low peak 0.45 (0.6, spotted,
    # is further); low: the best low peak left, 0.3.
    assert [(p.key.start, p.pool) for p in got] == [
        (0, "top"),
        (40, "top"),
        (60, "uncertain"),
        (100, "low"),
    ]
    assert "0.45" in got[2].reason and "threshold 0.50" in got[2].reason
    assert "would not spot" in got[3].reason


def test_nothing_overlapping_a_judged_interval_or_another_pick():
    # judged: a verdict on 5..24 (a retrained model's version of 0..19) and on 95..105
    judged = [key(5, 24), key(95, 105)]
    got = choose(CANDIDATES, judged, 8, threshold=0.5)
    starts = [p.key.start for p in got]
    assert 0 not in starts and 80 not in starts and 100 not in starts
    assert sorted(starts) == [40, 60, 120, 140, 180]  # all that is left, nothing twice
    # a judged interval in another video hides nothing here
    other = choose(CANDIDATES, [key(0, 200, "w")], 8, threshold=0.5)
    assert len(other) == len(CANDIDATES)
    # overlapping candidates: only the first drawn of them
    twins = [spotted(0, 19, 0.9), spotted(10, 29, 0.8), spotted(30, 49, 0.7)]
    assert [p.key.start for p in choose(twins, [], 3, 0.5, "top")] == [0, 30]


def test_a_dry_pool_leaves_its_share_to_the_others():
    only_spotted = [c for c in CANDIDATES if c.spotted]
    got = choose(only_spotted, [], 4, threshold=0.5)
    assert sorted(p.key.start for p in got) == [0, 40, 80, 120]
    assert [p.pool for p in got].count("low") == 0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="k must be"):
        choose(CANDIDATES, [], 0, 0.5)
    with pytest.raises(ValueError, match="strategy"):
        choose(CANDIDATES, [], 3, 0.5, strategy="random")


def test_low_peaks_are_the_nms_peaks_under_the_threshold():
    # windows of 10 frames every 5; scores rise to 0.9 at 20 and to 0.3 at 60
    starts = list(range(0, 91, 5))
    scores = [0.1, 0.2, 0.5, 0.6, 0.9, 0.6, 0.2, 0.1, 0.05, 0.1, 0.2, 0.3, 0.25, 0.1, 0.05]
    scores += [0.02, 0.01, 0.04, 0.03]
    ends = [s + 9 for s in starts]
    got = low_peaks(starts, ends, scores, threshold=0.5)
    # peaks: 20 (0.9, above the threshold: not low), 55 (0.3, between 0.2 and 0.25) and
    # 85 (0.04, between 0.01 and 0.03). 30 (0.2) is a shoulder of the 0.9 peak, not a peak.
    assert got == [(55, 64, 0.3), (85, 94, 0.04)]
    # a bump with a flat top: both top windows are peaks, they overlap, NMS keeps the
    # earliest; windows in any order. A flat stretch is no peak at all.
    top = low_peaks([10, 0, 5, 15], [19, 9, 14, 24], [0.2, 0.1, 0.2, 0.1], threshold=0.5)
    assert top == [(5, 14, 0.2)]
    assert low_peaks([0, 5, 10], [9, 14, 19], [0.2, 0.2, 0.2], threshold=0.5) == []
    with pytest.raises(ValueError, match="length"):
        low_peaks([0], [9, 19], [0.1], 0.5)


def test_video_candidates_leave_out_low_peaks_on_spotted_intervals():
    # windows of 10 frames every 10 (apart): peaks at 20 (0.3) and 60 (0.4) below 0.5
    starts = list(range(0, 100, 10))
    ends = [s + 9 for s in starts]
    scores = [0.1, 0.2, 0.3, 0.2, 0.1, 0.2, 0.4, 0.2, 0.1, 0.05]
    got = video_candidates(("d", "s", "v"), [(55, 70, 0.8)], (starts, ends, scores), 0.5)
    assert [(c.key.start, c.score, c.spotted) for c in got] == [(55, 0.8, True), (20, 0.3, False)]
    assert video_candidates(("d", "s", "v"), [(55, 70, 0.8)], None, 0.5) == got[:1]


def test_review_order_interleaves_the_pools_and_keeps_every_candidate_once():
    order = review_order(CANDIDATES, threshold=0.5, batch=4)
    assert sorted(p.key.start for p in order) == sorted(c.key.start for c in CANDIDATES)
    # batch 1: top 0.95, 0.9; uncertain 0.45; low 0.3. Batch 2, from what is left: top
    # 0.8, 0.6; uncertain 0.1 (nearer to 0.5 than 0.05); low 0.05.
    assert [(p.key.start, p.pool) for p in order[:4]] == [
        (0, "top"),
        (40, "top"),
        (60, "uncertain"),
        (100, "low"),
    ]
    assert [p.pool for p in order[4:]] == ["top", "top", "uncertain", "low"]
    top = review_order(CANDIDATES, threshold=0.5, strategy="top")
    assert [p.key.start for p in top] == [0, 40, 120, 80]  # spotted only, by score
    with pytest.raises(ValueError, match="strategy"):
        review_order(CANDIDATES, 0.5, strategy="random")

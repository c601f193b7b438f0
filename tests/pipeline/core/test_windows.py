"""Windows and labels at 200 and 30 fps, and the interval type."""

import pytest

from pipeline.core.intervals import Interval
from pipeline.core.labels import window_labels
from pipeline.core.windows import WindowGrid


def test_interval_measures():
    a, b = Interval(10, 19), Interval(15, 24)  # 10 frames each, 5 shared
    assert a.length == 10 and a.intersection(b) == 5
    assert a.coverage_of(b) == 0.5
    assert a.iou(b) == pytest.approx(5 / 15)
    assert Interval(0, 4).intersection(Interval(4, 9)) == 1  # touching at one frame
    assert Interval(0, 4).intersection(Interval(5, 9)) == 0
    assert sorted([Interval(5, 6), Interval(1, 9), Interval(1, 2)])[0] == Interval(1, 2)
    with pytest.raises(ValueError, match="before its start"):
        Interval(5, 4)


def test_grid_at_200_fps_matches_the_paper():
    g = WindowGrid.from_seconds(200)
    assert (g.step, g.timesteps, g.stride, g.span) == (4, 25, 40, 100)
    ws = g.windows(1000)
    # starts 0, 40, ..., 880 (880 + 100 = 980 <= 999), then a tail window ending at 999.
    assert [w.start for w in ws[:3]] == [0, 40, 80]
    assert ws[-2].start == 880 and (ws[-1].start, ws[-1].end) == (899, 999)
    assert len(ws) == 24
    w = ws[1]
    assert list(w.sample_frames()) == list(range(40, 141, 4)) and w.timesteps == 25
    assert g.to_seconds(w.end) - g.to_seconds(w.start) == pytest.approx(0.5)


def test_grid_at_30_fps():
    g = WindowGrid.from_seconds(30)
    assert (g.step, g.timesteps, g.stride, g.span) == (1, 15, 6, 15)
    ws = g.windows(40)
    # starts 0, 6, 12, 18, 24 (24 + 15 = 39 is the last frame): no tail window needed.
    assert [(w.start, w.end) for w in ws] == [(0, 15), (6, 21), (12, 27), (18, 33), (24, 39)]
    ws = g.windows(42)
    assert (ws[-1].start, ws[-1].end) == (26, 41)


def test_short_and_exact_videos():
    g = WindowGrid.from_seconds(200)
    assert g.windows(100) == []  # frames 0..99: one window needs 101
    assert [(w.start, w.end) for w in g.windows(101)] == [(0, 100)]
    assert g.windows(0) == []


def test_bad_parameters():
    with pytest.raises(ValueError, match="fps"):
        WindowGrid.from_seconds(0)
    with pytest.raises(ValueError, match="overlap"):
        WindowGrid.from_seconds(200, window_s=0.5, overlap_s=0.5)


def test_labels_at_200_fps():
    #  frames:   0        40       80      120      160      200
    #  win 0:    [=========100=========]
    #  win 1:             [=========100=========]
    #  win 2:                      [=========100=========]
    #  truth:                  [60 ....... 139]               (80 frames)
    #  win 0 covers 60..100 = 41/80; win 1 covers 60..139 = 80/80; win 2 80..139 = 60/80
    g = WindowGrid.from_seconds(200)
    ws = g.windows(400)
    labels = window_labels(ws, [Interval(60, 139)])
    assert labels[:4] == [False, True, False, False]


def test_label_threshold_is_inclusive_at_80_percent():
    g = WindowGrid.from_seconds(200)
    ws = g.windows(400)
    # truth 81..105 (25 frames); window 0 (0..100) covers 81..100 = 20/25 = 0.8 exactly.
    assert window_labels(ws, [Interval(81, 105)])[0] is True
    # truth 82..106: window 0 covers 19/25 < 0.8; window 1 (40..140) covers all of it.
    assert window_labels(ws, [Interval(82, 106)])[:2] == [False, True]


def test_labels_at_30_fps():
    g = WindowGrid.from_seconds(30)
    ws = g.windows(60)  # windows 0..15, 6..21, 12..27, ...
    labels = window_labels(ws, [Interval(14, 23)])  # 10 frames
    # win 0 covers 14,15 = 2/10; win 1 covers 14..21 = 8/10; win 2 covers 14..23 = 10/10
    assert labels[:4] == [False, True, True, False]


@pytest.mark.parametrize("fps", [200.0, 30.0, 25.0, 23.976])
def test_every_movement_up_to_half_a_second_has_a_positive_window(fps):
    # The paper's guarantee (eq. 1): with W 0.5 s and overlap 0.3 s some window covers
    # >= 80% of any interval no longer than W.
    g = WindowGrid.from_seconds(fps)
    ws = g.windows(int(fps * 4))
    longest = g.span + 1
    for length in range(1, longest + 1):
        for start in range(0, int(fps * 2)):
            assert any(window_labels(ws, [Interval(start, start + length - 1)])), (length, start)

"""Windows and labels at 200 and 30 fps, and the interval type."""

import numpy as np
import pytest

from pipeline.core.intervals import Interval
from pipeline.core.labels import MACRO, MICRO, NONE, class_labels, inside, window_labels
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


PAPER = {"flow_step_s": 1 / 50}  # the paper's 200 fps setting: T = 25 flows of 4 frames


def test_grid_at_200_fps_matches_the_paper():
    g = WindowGrid.from_seconds(200, **PAPER)
    assert (g.timesteps, g.stride, g.span) == (25, 40, 100)
    ws = g.windows(1000)
    # starts 0, 40, ..., 880 (880 + 100 = 980 <= 999), then a tail window ending at 999.
    assert [w.start for w in ws[:3]] == [0, 40, 80]
    assert ws[-2].start == 880 and (ws[-1].start, ws[-1].end) == (899, 999)
    assert len(ws) == 24
    w = ws[1]
    assert list(w.sample_frames()) == list(range(40, 141, 4)) and w.timesteps == 25
    assert w.gaps_s == pytest.approx([0.02] * 25)
    assert g.to_seconds(w.end) - g.to_seconds(w.start) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "fps, step_frames", [(200, 8), (100, 4), (50, 2), (25, 1)], ids=lambda v: str(v)
)
def test_default_grid_is_exact_at_multiples_of_25_fps(fps, step_frames):
    g = WindowGrid.from_seconds(fps)
    assert g.timesteps == 13  # ceil(0.5 / 0.04), at every rate
    assert g.offsets == tuple(range(0, 13 * step_frames + 1, step_frames))
    w = g.windows(fps * 2)[1]
    assert w.start == g.stride == fps // 5  # windows start every 0.2 s
    assert w.gaps_s == pytest.approx([0.04] * 13)


def test_grid_at_30_fps_takes_the_nearest_frames():
    g = WindowGrid.from_seconds(30)
    # Times k * 40 ms are frames k * 1.2: 0, 1.2, 2.4, 3.6, ... -> nearest 0, 1, 2, 4, ...
    assert g.offsets == (0, 1, 2, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 16)
    assert (g.timesteps, g.stride, g.span) == (13, 6, 16)
    w = g.windows(40)[1]
    assert w.frames[:4] == (6, 7, 8, 10)
    assert w.gaps_s[:3] == pytest.approx([1 / 30, 1 / 30, 2 / 30])
    ws = g.windows(40)
    # starts 0, 6, ..., 18 (18 + 16 = 34 < 39), then a tail window ending at 39.
    assert [(w.start, w.end) for w in ws] == [(0, 16), (6, 22), (12, 28), (18, 34), (23, 39)]


def test_grid_refuses_a_frame_rate_too_low_for_the_step():
    # Film rate: 0.96 frames per step; times 11.51 and 12.47 both round to frame 12, so
    # the last takes frame 13 (the window spans 13 / 23.976 = 0.542 s, within 5% of 0.52).
    assert WindowGrid.from_seconds(23.976).offsets[-3:] == (11, 12, 13)
    with pytest.raises(ValueError, match=r"20 fps is too low for a flow step of 0\.04 s"):
        WindowGrid.from_seconds(20)
    with pytest.raises(ValueError, match="30 fps is too low"):
        WindowGrid.from_seconds(30, **PAPER)


def test_variable_rate_windows_follow_the_frame_times():
    # Evenly timed frames give exactly the constant-rate windows.
    g = WindowGrid.from_seconds(25)
    timed = g.windows(60, times=np.arange(60) / 25)
    assert [w.frames for w in timed] == [w.frames for w in g.windows(60)]
    assert timed[0].gaps_s == pytest.approx(g.windows(60)[0].gaps_s)
    # 30 fps with frame 5 dropped: times jump from 4/30 to 6/30 after index 4.
    times = np.delete(np.arange(61) / 30, 5)
    w = WindowGrid.from_seconds(30).windows(60, times=times)[0]
    # Wanted 0, 40, 80, 120, 160 ms: frames at 0, 33, 67, 100, 133, (167 gone), 200 ms.
    assert w.frames[:5] == (0, 1, 2, 4, 5)
    assert times[list(w.frames[:5])] == pytest.approx([0, 1 / 30, 2 / 30, 4 / 30, 6 / 30])
    assert w.gaps_s[3] == pytest.approx(2 / 30)  # frame 4 (133 ms) to frame 5 (200 ms)


def test_short_and_exact_videos():
    g = WindowGrid.from_seconds(200, **PAPER)
    assert g.windows(100) == []  # frames 0..99: one window needs 101
    assert [(w.start, w.end) for w in g.windows(101)] == [(0, 100)]
    assert g.windows(0) == []


def test_bad_parameters():
    with pytest.raises(ValueError, match="fps"):
        WindowGrid.from_seconds(0)
    with pytest.raises(ValueError, match="overlap"):
        WindowGrid.from_seconds(200, window_s=0.5, overlap_s=0.5)


SPAN_S = 0.52  # the default grid's label span: 13 timesteps of 40 ms


def test_labels_at_200_fps():
    #  frames:   0        40       80      120      160      200
    #  win 0:    [=========100========)
    #  win 1:             [=========100========)
    #  win 2:                      [=========100========)
    #  truth:                  [60 ....... 139]               (80 frames)
    # The paper's grid: 25 timesteps of 20 ms, so a window stands for 0.5 s = 100 frames.
    # win 0 covers 60..99 = 40/80; win 1 covers 60..139 = 80/80; win 2 80..139 = 60/80
    g = WindowGrid.from_seconds(200, **PAPER)
    ws = g.windows(400)
    labels = window_labels(ws, [Interval(60, 139)], span_s=0.5)
    assert labels[:4] == [False, True, False, False]


def test_label_threshold_is_inclusive_at_80_percent():
    g = WindowGrid.from_seconds(200, **PAPER)
    ws = g.windows(400)
    # truth 80..104 (25 frames); window 0 (frames 0..99 of time) covers 80..99 = 20/25 = 0.8.
    assert window_labels(ws, [Interval(80, 104)], span_s=0.5)[0] is True
    # truth 81..105: window 0 covers 19/25 < 0.8; window 1 (40..139) covers all of it.
    assert window_labels(ws, [Interval(81, 105)], span_s=0.5)[:2] == [False, True]


def test_labels_at_30_fps():
    g = WindowGrid.from_seconds(30)
    ws = g.windows(60)  # windows start at frames 0, 6, 12, 18 and stand for 15.6 frames
    labels = window_labels(ws, [Interval(15, 24)], SPAN_S)  # 10 frames, [15, 25)
    # win 0 [0, 15.6) covers 0.6/10; win 1 [6, 21.6) 6.6/10; win 2 [12, 27.6) 10/10;
    # win 3 [18, 33.6) 7/10. Counting whole frames (win 1 = frames 6..22) made win 1
    # positive (8/10): a window read as 17 frames, 0.567 s, instead of the 0.52 s it samples.
    assert labels[:4] == [False, False, True, False]


@pytest.mark.parametrize(
    ("onset_s", "offset_s", "positive_s"),
    [(1.0, 1.4, [0.8, 1.0]), (1.0, 1.3, [0.8, 1.0]), (2.2, 2.4, [2.0, 2.2])],
)
def test_a_movement_is_positive_in_the_same_windows_at_every_rate(onset_s, offset_s, positive_s):
    # The movement fills [onset_s, offset_s); windows start every 0.2 s at these rates and
    # stand for [t, t + 0.52). 1.0-1.4 s: t = 0.8 covers exactly 0.32 / 0.4 = 80%.
    for fps in (100.0, 30.0, 25.0, 50.0):
        if abs(offset_s * fps - round(offset_s * fps)) > 1e-9:
            continue  # 1.3 s is not a frame boundary at 25 fps
        truth = Interval(round(onset_s * fps), round(offset_s * fps) - 1)
        ws = WindowGrid.from_seconds(fps).windows(int(4 * fps))
        labels = window_labels(ws, [truth], SPAN_S)
        assert [round(w.start_s, 6) for w, y in zip(ws, labels, strict=True) if y] == positive_s


@pytest.mark.parametrize("fps", [200.0, 30.0, 25.0, 23.976])
def test_every_movement_up_to_half_a_second_has_a_positive_window(fps):
    # The paper's guarantee (eq. 1): with W 0.5 s and overlap 0.3 s some window covers
    # >= 80% of any interval no longer than a window (0.52 s on the default time grid).
    g = WindowGrid.from_seconds(fps)
    ws = g.windows(int(fps * 4))
    longest = int(SPAN_S * fps)
    for length in range(1, longest + 1):
        for start in range(0, int(fps * 2)):
            truth = [Interval(start, start + length - 1)]
            assert any(window_labels(ws, truth, SPAN_S)), (length, start)


def test_a_window_is_macro_when_half_its_span_lies_in_a_macro_expression():
    # Label spans of 10 frames every 5, and one macro-expression over frames 12..41:
    #
    #   frames     0    5   10   15   20   25   30   35   40   45
    #   macro                |=============================|          12..41
    #   span 0    |---------|                                          0/10 inside
    #   span 1         |---------|                                     3/10 (12-14)
    #   span 2              |---------|                                8/10 (12-19)
    #   span 6                                  |---------|            10/10
    #   span 7                                       |---------|       7/10 (35-41)
    #   span 8                                            |---------|  2/10 (40-41)
    starts = np.arange(0, 45, 5)
    ends = starts + 9
    macro = [Interval(12, 41)]
    got = inside(starts, ends, macro)
    assert got.tolist() == [False, False, True, True, True, True, True, True, False]
    assert inside(starts, ends, macro, min_fraction=0.8).tolist()[:3] == [False, False, True]
    # Exactly half is inside (inclusive): frames 0..9 with a macro over 5..20.
    assert inside([0], [9], [Interval(5, 20)]).tolist() == [True]
    # Classes: micro wins over macro, unlabelled windows stay unlabelled.
    micro = np.array([0, 1, 1, 0, -1, 0, 0, 0, 0], np.int8)
    classes = class_labels(micro, got)
    assert classes.dtype == np.int8
    assert classes.tolist() == [NONE, MICRO, MICRO, MACRO, -1, MACRO, MACRO, MACRO, NONE]
    with pytest.raises(ValueError, match="shape"):
        class_labels(micro, got[:3])

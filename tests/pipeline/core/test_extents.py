"""Micro spots from timestep scores: bounds, labels, the per-frame profile, its runs."""

import itertools

import numpy as np
import pytest

from pipeline.core.extents import (
    ExtentRule,
    frame_profile,
    profile_spots,
    split_spot,
    step_bounds,
    step_labels,
)
from pipeline.core.intervals import Interval, Spot


def test_step_bounds_on_the_grid_and_off_it():
    # 100 fps, 13 steps of 40 ms: the window's own frames, 4 apart
    np.testing.assert_array_equal(step_bounds(100, 152, 13), 100 + 4 * np.arange(14))
    # 30 fps (16 frames for 13 steps): first and last are the window's, steps 1 or 2 frames
    b = step_bounds(0, 16, 13)
    assert b[0] == 0 and b[-1] == 16 and set(np.diff(b)) == {1, 2}
    with pytest.raises(ValueError, match="n_steps >= 1"):
        step_bounds(5, 4, 3)


def test_step_labels_mark_the_timesteps_whose_middle_is_inside():
    # window 0..12, 4 steps of 3 frames: middles 1.5, 4.5, 7.5, 10.5
    #   frames   0 1 2 3 4 5 6 7 8 9 10 11 12
    #   truth              [4 . . . 8]
    got = step_labels([0, 20], [12, 32], 4, [Interval(4, 8)])
    np.testing.assert_array_equal(got, [[0, 1, 1, 0], [0, 0, 0, 0]])
    assert got.dtype == np.int8
    np.testing.assert_array_equal(step_labels([0], [12], 4, []), [[0, 0, 0, 0]])
    with pytest.raises(ValueError, match="1-D"):
        step_labels([[0]], [[12]], 4, [])


def test_frame_profile_averages_the_windows_over_each_frame():
    # two windows of 2 steps: 0..4 (steps 0-1, 2-4) and 2..6 (steps 2-3, 4-6); frames 7-9
    # are in no window. Step boundaries count with the later step.
    m = frame_profile([0, 2], [4, 6], [[0.2, 0.6], [1.0, 0.0]], 10)
    want = [0.2, 0.2, (0.6 + 1.0) / 2, (0.6 + 1.0) / 2, (0.6 + 0.0) / 2, 0.0, 0.0]
    np.testing.assert_allclose(m[:7], want, atol=1e-12)  # sums of differences
    assert np.isnan(m[7:]).all()
    with pytest.raises(ValueError, match=r"\(N, T\)"):
        frame_profile([0], [4], [0.2, 0.6], 10)


RULE = ExtentRule(min_s=0.05, pad_s=0.02)  # at 100 fps: runs of >= 5 frames, padded by 2


def _profile(n, runs):
    m = np.full(n, 0.05)
    for (a, b), v in runs.items():
        m[a : b + 1] = v
    return m


def test_profile_runs_become_padded_spots_scored_by_their_peak():
    #   frames   0 ..... 20 ... 35 ...... 60 61 62 63 ....... 80 .. 90 ... 99
    #   profile          [0.6 0.9]        [0.7 x 4: too short]  [0.5 .. ]
    m = _profile(100, {(20, 35): 0.6, (28, 30): 0.9, (60, 63): 0.7, (80, 99): 0.5})
    got = profile_spots(m, 0.5, RULE, fps=100)
    assert got == [Spot(18, 37, 0.9), Spot(78, 99, 0.5)]  # padding clipped at the end
    assert profile_spots(m, 0.95, RULE, fps=100) == []


def test_runs_closer_than_twice_the_padding_merge():
    m = _profile(100, {(20, 30): 0.8, (33, 40): 0.6})  # 2 frames apart, padded by 2 each
    assert profile_spots(m, 0.5, RULE, fps=100) == [Spot(18, 42, 0.8)]


def test_frames_no_window_scored_spot_nothing():
    m = _profile(50, {(10, 30): 0.9})
    m[20:] = np.nan
    assert profile_spots(m, 0.5, RULE, fps=100) == [Spot(8, 21, 0.9)]  # the run ends at 19
    assert profile_spots(np.full(30, np.nan), 0.5, RULE, fps=100) == []


def test_rule_validation_and_frames():
    assert ExtentRule().frames(100) == (16, 8) and ExtentRule().frames(25) == (4, 2)
    for bad in ({"min_s": -1}, {"pad_s": -0.1}):
        with pytest.raises(ValueError):
            ExtentRule(**bad)
    with pytest.raises(ValueError, match="fps"):
        ExtentRule().frames(0)


def test_under_a_budget_a_long_run_is_split_best_stretch_first():
    # One run from frame 10 to 79 (70 frames, padded by 2: 8..81) holding two bumps: a
    # strong one at 20..29 and a weak one at 60..69. Spots are at most 30 frames (0.3 s).
    rule = ExtentRule(min_s=0.05, pad_s=0.02, max_s=0.3)
    m = _profile(100, {(10, 79): 0.3, (20, 29): 0.9, (60, 69): 0.6})
    assert profile_spots(m, 0.2, rule, fps=100) == [Spot(8, 81, 0.9)]  # no budget: whole
    got = profile_spots(m, 0.2, rule, fps=100, split=True)
    # The 30-frame stretches holding the whole strong bump and 20 frames of 0.3 are the
    # best (starts 10..20, all equal): the middle one, 15..44, comes first. Left: 8..14
    # (7 frames, >= min_len 5, peak 0.3 >= the threshold: a spot) and 45..81, split again:
    # the stretches holding the weak bump and 20 frames of 0.3 start at 45..50; the middle
    # one is 48..77. Its leftovers, 45..47 and 78..81, are shorter than min_len: dropped.
    assert got == [Spot(8, 14, 0.3), Spot(15, 44, 0.9), Spot(48, 77, 0.6)]
    assert all(b.start > a.end for a, b in itertools.pairwise(got))  # pairwise apart
    assert all(s.end - s.start + 1 <= 30 for s in got)


def test_split_drops_leftovers_too_short_or_below_the_threshold():
    m = _profile(100, {(10, 45): 0.8})
    m[40:46] = 0.1  # the run's last 6 frames fall below the threshold
    # A spot 8..47 (40 frames) cut to 30: the best stretch is 10..39, all 0.8 (the others
    # hold fewer 0.8 frames); left: 8..9 (2 frames, < min_len 5) and 40..47 (peak 0.1 <
    # threshold 0.5): both dropped.
    got = split_spot(Spot(8, 47, 0.8), m, longest=30, min_len=5, threshold=0.5)
    assert got == [Spot(10, 39, 0.8)]
    assert split_spot(Spot(8, 37, 0.8), m, longest=30, min_len=5, threshold=0.5) == [
        Spot(8, 37, 0.8)
    ]  # short enough: whole


def test_max_s_validation_and_frames():
    assert ExtentRule().max_frames(100) == 60 and ExtentRule(max_s=None).max_frames(100) is None
    assert ExtentRule(min_s=0.16, max_s=0.16).max_frames(25) == 4
    for bad in (0.0, 0.1):  # shorter than min_s (0.16), or nothing
        with pytest.raises(ValueError, match="max_s"):
            ExtentRule(max_s=bad)
    m = _profile(100, {(10, 89): 0.9})  # without max_s, never split
    assert profile_spots(m, 0.5, ExtentRule(max_s=None), fps=100, split=True) == [Spot(2, 97, 0.9)]

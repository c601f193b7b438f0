"""Micro spots from timestep scores: bounds, labels, the per-frame profile, its runs."""

import numpy as np
import pytest

from pipeline.core.extents import (
    ExtentRule,
    frame_profile,
    profile_spots,
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

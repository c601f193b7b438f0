"""Spots fitted to timestep scores: bounds, labels, the per-frame profile, the refit."""

import numpy as np
import pytest

from pipeline.core.extents import (
    ExtentRule,
    fit_extents,
    frame_profile,
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


def _profile(n, runs):
    m = np.full(n, 0.05)
    for (a, b), v in runs.items():
        m[a : b + 1] = v
    return m


RULE = ExtentRule(level=0.5, pad_s=0.02, reach_s=0.1)  # at 100 fps: pad 2, reach 10 frames


def test_a_spot_shrinks_to_its_movement_and_keeps_its_score():
    #   frames  100 ............ 151   (the window greedy NMS kept)
    #   profile       [120 .. 135] 0.9, 0.05 elsewhere
    m = _profile(300, {(120, 135): 0.9})
    (got,) = fit_extents([Spot(100, 151, 0.8)], m, RULE, fps=100)
    assert got == Spot(118, 137, 0.8)  # the run, padded by 2 frames


def test_a_spot_reaches_past_its_window_but_no_further_than_reach():
    # the movement straddles the window's end: 140..158; reach 10 frames -> up to 161
    m = _profile(300, {(140, 158): 0.9})
    (got,) = fit_extents([Spot(100, 151, 0.8)], m, RULE, fps=100)
    assert (got.start, got.end) == (138, 160)
    # a longer run is cut at the reach
    m = _profile(300, {(140, 190): 0.9})
    (got,) = fit_extents([Spot(100, 151, 0.8)], m, RULE, fps=100)
    assert (got.start, got.end) == (138, 161)


def test_the_level_is_a_share_of_the_spots_peak():
    # peak 0.4 inside the window; 0.3 around it is above half of it, 0.1 is not
    m = _profile(300, {(110, 139): 0.3, (120, 125): 0.4, (140, 145): 0.1})
    (got,) = fit_extents([Spot(100, 151, 0.8)], m, RULE, fps=100)
    assert (got.start, got.end) == (108, 141)


def test_refitted_spots_stay_apart():
    # two touching windows whose movements run into each other's window
    m = _profile(400, {(140, 170): 0.8, (175, 200): 0.9})
    spots = [Spot(100, 151, 0.8), Spot(152, 203, 0.7)]
    a, b = fit_extents(spots, m, RULE, fps=100)
    assert a.end < b.start
    assert (a.start, a.end) == (138, 151)  # stops before its neighbour's window
    assert (b.start, b.end) == (173, 202)


def test_frames_no_window_scored_leave_the_spot_as_it_is():
    m = np.full(300, np.nan)
    assert fit_extents([Spot(100, 151, 0.8)], m, RULE, fps=100) == [Spot(100, 151, 0.8)]
    assert fit_extents([], m, RULE, fps=100) == []


def test_rule_validation_and_frames():
    assert ExtentRule().frames(100) == (4, 13) and ExtentRule().frames(25) == (1, 3)
    for bad in ({"level": 0}, {"level": 1.0}, {"pad_s": -0.1}):
        with pytest.raises(ValueError):
            ExtentRule(**bad)
    with pytest.raises(ValueError, match="fps"):
        ExtentRule().frames(0)

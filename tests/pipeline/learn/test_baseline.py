"""Moilanen et al.'s feature difference on HOOF: known distances, which windows stand out."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.learn.baseline import (
    chi_squared,
    difference_scores,
    feature_difference,
    moilanen_threshold,
)
from pipeline.learn.layout import FeatureLayout
from pipeline.vision.config import FeatureConfig
from schemas import WINDOW_FEATURES, conform

T, R, B = 9, 2, 4
REGIONS = ("eyebrows", "mouth_left")
FC = FeatureConfig(regions=REGIONS, n_bins=B, cells=0, flow_step_s=0.5 / T)
LAYOUT = FeatureLayout(
    T, R, B, REGIONS, with_magnitude=True, config_id=FC.config_id, step_s=FC.flow_step_s
)


def one_hot(bin_: int) -> np.ndarray:
    h = np.zeros(B, np.float32)
    h[bin_] = 1.0
    return h


def window(motion: dict[int, tuple[int, float]], rng=None, noise=0.0):
    """(hoof (T, R, B), magnitude (T, R)): timestep -> (bin, magnitude) in every region.

    Other timesteps hold normalised random histograms (noise) with magnitude ``noise``.
    """
    rng = rng or np.random.default_rng(0)
    hoof = rng.random((T, R, B)).astype(np.float32)
    hoof /= hoof.sum(axis=2, keepdims=True)
    mag = np.full((T, R), noise, np.float32)
    for t, (bin_, m) in motion.items():
        hoof[t] = one_hot(bin_)
        mag[t] = m
    return hoof, mag


def table(windows, faces=None):
    faces = faces or [True] * len(windows)
    rows = [
        {
            "dataset": "d", "subject": "s", "video": "v", "window": i,
            "start_frame": 40 * i, "end_frame": 40 * i + 100,
            "start_s": 0.2 * i, "end_s": 0.2 * i + 0.5,
            "face_found": face, "skip_reason": None if face else "no face",
            "n_timesteps": T, "n_regions": R, "n_bins": B, "n_cells": 0,
            "hoof": h.ravel() if face else None, "magnitude": m.ravel() if face else None,
            "label": None, "config_id": FC.config_id,
        }
        for i, ((h, m), face) in enumerate(zip(windows, faces, strict=True))
    ]  # fmt: skip
    return conform(rows, WINDOW_FEATURES)


def test_chi_squared_known_values():
    assert chi_squared(np.array([1.0, 0]), np.array([0.0, 1])) == pytest.approx(2.0)
    assert chi_squared(np.array([3.0, 1]), np.array([1.0, 1])) == pytest.approx(1.0)
    assert chi_squared(np.zeros(4), np.zeros(4)) == 0.0  # empty bins add nothing, no NaN
    p = np.array([[0.2, 0.8], [0.5, 0.5]])
    np.testing.assert_allclose(chi_squared(p, p), [0, 0])


def test_a_movement_at_the_centre_outscores_stillness_and_drift():
    centre = T // 2
    still = window({}, noise=0.01)  # sensor noise: random directions, tiny magnitudes
    drift = window({t: (1, 0.3) for t in range(T)})  # the same slow motion throughout
    peak = window({centre: (2, 1.5)}, noise=0.01)
    faceless = window({centre: (2, 1.5)})
    scores, rows = feature_difference(
        table([still, drift, faceless, peak], faces=[True, True, False, True]), LAYOUT
    )
    assert rows.tolist() == [0, 1, 3]
    s_still, s_drift, s_peak = scores
    assert s_drift == pytest.approx(0.0, abs=1e-9)
    assert s_peak > 50 * s_still
    assert s_peak > s_drift
    # Both regions move the same way, each adding chi2(1.5 e_2, ~0) ~ 1.5.
    assert s_peak == pytest.approx(2 * 1.5, rel=0.05)


def test_magnitude_scaling_keeps_noise_quiet():
    # Normalised histograms alone would make the noise of a still face look like motion.
    still = window({}, noise=0.01)
    peak = window({T // 2: (2, 1.5)}, noise=0.01)
    raw = np.stack([still[0], peak[0]])
    on_histograms = difference_scores(raw)
    assert on_histograms[0] > 0.1 * on_histograms[1]  # alone, noise is nearly as loud
    scores, _ = feature_difference(table([still, peak]), LAYOUT)
    assert scores[0] < 0.02 * scores[1]
    # A table of raw (un-normalised) HOOFs is used as it is.
    raw_table = table([(still[0] * still[1][..., None], still[1]), (peak[0] * 1.5, peak[1])])
    raw_scores, _ = feature_difference(raw_table, LAYOUT, normalised=False)
    assert raw_scores[0] < 0.02 * raw_scores[1]


def test_cumulative_sees_onset_and_offset_around_a_still_apex():
    # Up at T/4, down again at 3T/4: the face is still at the apex (the centre timestep).
    rise_fall = window({T // 4: (1, 1.0), 3 * T // 4: (3, 1.0)})
    drift = window({t: (1, 0.3) for t in range(T)})
    per_step, _ = feature_difference(table([rise_fall, drift]), LAYOUT)
    cumulative, _ = feature_difference(table([rise_fall, drift]), LAYOUT, cumulative=True)
    assert per_step[0] == pytest.approx(0.0, abs=1e-4)  # no flow at the centre or the ends
    assert cumulative[0] > 0.5
    assert cumulative[1] == pytest.approx(0.0, abs=1e-6)  # drift: centre = mean of the ends


def test_moilanen_threshold_known_numbers():
    scores = np.array([1.0, 2.0, 3.0, 6.0])  # mean 3, max 6
    assert moilanen_threshold(scores) == pytest.approx(4.5)
    assert moilanen_threshold(scores, p=0.0) == pytest.approx(3.0)
    assert moilanen_threshold(scores, p=1.0) == pytest.approx(6.0)
    assert moilanen_threshold([2.0, 2.0], p=0.3) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="no scores"):
        moilanen_threshold(np.array([]))
    with pytest.raises(ValueError, match="p must be"):
        moilanen_threshold(scores, p=1.5)

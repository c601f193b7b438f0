"""A handcrafted baseline: Moilanen et al.'s feature difference (the paper, II-B), on HOOF.

Moilanen et al. compare the appearance features (LBP) of a window's centre frame with the
average of its first and last frames' features by a chi-squared distance: a
micro-expression goes neutral -> peak -> neutral inside the window, so the centre differs
from its ends, while stillness (no difference) and slow or long movements (the ends
change as much as the centre) do not. A per-video threshold then keeps the peaks
(:func:`moilanen_threshold`), or, fairer against a trained model, one threshold chosen on
the training subjects (pipeline.core.thresholds.best_threshold).

Adaptation to our features: we compare motion histograms of timesteps, not appearance
features of frames. Timestep t of a window holds the HOOF of the flow between two sampled
frames. The normalised HOOF sums to 1 whatever the amount of motion, so sensor noise on a
still face looks like full-strength motion; we first rebuild the raw histogram as
``hoof * magnitude`` (with the extractor's normalisation this is exactly the un-normalised
histogram: bins summing to the region's mean flow magnitude, in pixels). Then per window

    score = sum over regions of chi2(H[centre], (H[0] + H[T-1]) / 2),
    chi2(p, q) = sum over bins of (p - q)^2 / (p + q + eps)

with centre = T // 2 (the middle timestep for odd T, the later of the two for even T).
``cumulative=True`` compares running sums of the raw histograms instead (motion so far,
a stand-in for "how far the face has moved from the window's first frame"): a movement
whose onset and offset flank the centre has little flow at the apex itself, and the
running sum sees it where per-timestep flow does not.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.learn.layout import FeatureLayout, face_rows

EPS = 1e-12


def chi_squared(p: np.ndarray, q: np.ndarray, axis: int = -1) -> np.ndarray:
    """sum (p - q)^2 / (p + q + eps) along ``axis`` (histograms of non-negative values)."""
    return np.sum((p - q) ** 2 / (p + q + EPS), axis=axis)


def difference_scores(raw: np.ndarray, cumulative: bool = False) -> np.ndarray:
    """Feature difference of raw HOOFs (N, T, R, B) -> (N,) float64 scores."""
    if raw.ndim != 4:
        raise ValueError(f"raw HOOFs must be (N, T, R, B), got {raw.shape}")
    h = raw.astype(np.float64)
    if cumulative:
        h = np.cumsum(h, axis=1)
    t = h.shape[1]
    ends = (h[:, 0] + h[:, t - 1]) / 2  # (N, R, B)
    return chi_squared(h[:, t // 2], ends).sum(axis=1)


def feature_difference(
    table: pa.Table,
    layout: FeatureLayout,
    *,
    normalised: bool = True,
    cumulative: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Feature-difference scores of the windows with a face in a ``window_features`` table.

    Returns (scores (N,) float64, rows (N,) int64: the windows' indices in ``table``).
    ``normalised`` says whether the table's HOOFs were normalised (FeatureConfig.normalise);
    if not, they are raw already and are used as they are.
    """
    hoof, mag, rows = face_rows(table, layout)
    raw = hoof * mag[..., None] if normalised else hoof
    return difference_scores(raw, cumulative), rows


def moilanen_threshold(scores: np.ndarray, p: float = 0.5) -> float:
    """Moilanen et al.'s per-video threshold: mean + p * (max - mean), p in [0, 1]."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("no scores: a video without windows has no threshold")
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], got {p}")
    mean = float(scores.mean())
    return mean + p * (float(scores.max()) - mean)

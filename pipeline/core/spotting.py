"""From window scores to spotted intervals: the paper's greedy suppression, and a refinement.

Inputs are one video's windows as three parallel 1-D arrays (``starts``, ``ends``,
``scores``), frames 0-based and inclusive at both ends, in any order. A *detection* is a
window whose score is ``>= threshold``. Two windows *overlap* when they share at least one
frame; windows that merely touch (``[0, 4]`` and ``[5, 9]``) do not.

- :func:`spot_intervals` is the paper's post-processing (section III-D): greedy
  non-maximum suppression over overlapping detections.
- :func:`merge_detections` spots movements longer than a window (macro-expressions): each
  run of overlapping or touching detections becomes one interval.
- :func:`refine_spots` is the onset/offset refinement the paper leaves to future work
  (section V): it narrows or widens each spot to the frames where the scores of the
  windows covering them stay above the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipeline.core.intervals import Spot


def _windows(
    starts: ArrayLike, ends: ArrayLike, scores: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Check and convert the parallel window arrays (shape ``(n,)`` each)."""
    s = np.asarray(starts)
    e = np.asarray(ends)
    p = np.asarray(scores, dtype=np.float64)
    for name, a in (("starts", s), ("ends", e), ("scores", p)):
        if a.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if not len(s) == len(e) == len(p):
        raise ValueError(
            f"starts, ends and scores must have the same length, got {len(s)}, {len(e)}, {len(p)}"
        )
    for name, a in (("starts", s), ("ends", e)):
        if len(a) and not np.issubdtype(a.dtype, np.integer):
            # Frames are indices; a float frame number is a caller's bug, not something to round.
            raise ValueError(f"{name} must hold integer frame numbers, got dtype {a.dtype}")
    s, e = s.astype(np.int64), e.astype(np.int64)
    if np.any(e < s):
        i = int(np.flatnonzero(e < s)[0])
        raise ValueError(f"window {i} ends ({e[i]}) before it starts ({s[i]})")
    if not np.all(np.isfinite(p)):
        raise ValueError("scores must be finite (no NaN or inf)")
    return s, e, p


def _greedy_nms(
    starts: NDArray[np.int64], ends: NDArray[np.int64], scores: NDArray[np.float64]
) -> list[int]:
    """Indices kept by greedy suppression: best score first, ties by earliest start."""
    # lexsort's last key is the primary one: score descending, then start, then end,
    # then input position (lexsort is stable), so ties are broken deterministically.
    remaining = list(np.lexsort((ends, starts, -scores)))
    kept: list[int] = []
    while remaining:
        best = remaining[0]
        kept.append(int(best))
        remaining = [i for i in remaining[1:] if starts[i] > ends[best] or ends[i] < starts[best]]
    return kept


def spot_intervals(
    starts: ArrayLike, ends: ArrayLike, scores: ArrayLike, threshold: float
) -> list[Spot]:
    """The paper's post-processing: greedy non-maximum suppression over detections.

    Args:
        starts, ends: shape ``(n,)``, integer frames of each window, inclusive.
        scores: shape ``(n,)``, the detector's score of each window.
        threshold: windows scoring ``>= threshold`` are detections.

    Repeatedly keeps the remaining detection with the highest score (ties: earliest start,
    then earliest end, then input order) and drops every remaining detection that shares a
    frame with it. A run of consecutive overlapping detections thus keeps its maximum, but a
    run longer than two windows can keep a second member that does not overlap the maximum
    (with the paper's 0.5 s windows and 0.2 s stride, the third window after it).

    Returns:
        The kept detections as :class:`Spot`, sorted by start; pairwise non-overlapping.
    """
    s, e, p = _windows(starts, ends, scores)
    det = np.flatnonzero(p >= threshold)
    kept = det[_greedy_nms(s[det], e[det], p[det])]
    return sorted(Spot(int(s[i]), int(e[i]), float(p[i])) for i in kept)


def merge_detections(
    starts: ArrayLike, ends: ArrayLike, scores: ArrayLike, threshold: float
) -> list[Spot]:
    """Each run of overlapping detections (each shares a frame with the run so far) as one
    spot from the run's first frame to its last, scored by its best window. A
    macro-expression of 1-3 s holds several 0.5 s windows in a row and is one interval;
    greedy NMS would cut it into window-sized pieces. Windows that merely touch are apart,
    as for :func:`spot_intervals`. Returns spots sorted by start.
    """
    s, e, p = _windows(starts, ends, scores)
    det = np.flatnonzero(p >= threshold)
    det = det[np.lexsort((e[det], s[det]))]
    out: list[Spot] = []
    for i in det:
        if out and s[i] <= out[-1].end:
            last = out[-1]
            out[-1] = Spot(last.start, max(last.end, int(e[i])), max(last.score, float(p[i])))
        else:
            out.append(Spot(int(s[i]), int(e[i]), float(p[i])))
    return out


def frame_scores(
    starts: ArrayLike, ends: ArrayLike, scores: ArrayLike, n_frames: int | None = None
) -> NDArray[np.float64]:
    """Per frame, the mean score of all windows covering it (NaN where no window does).

    Returns shape ``(n_frames,)``; ``n_frames`` defaults to one past the last window's end.
    """
    s, e, p = _windows(starts, ends, scores)
    if n_frames is None:
        n_frames = int(e.max()) + 1 if len(e) else 0
    if len(s) and (s.min() < 0 or e.max() >= n_frames):
        raise ValueError(f"windows must lie within frames 0..{n_frames - 1}")
    # A plain loop over windows rather than cumulative sums of a difference array: each
    # frame's total is then the sum of just its own few windows, with no rounding carried
    # along the video, so a mean exactly at the threshold stays exactly at it.
    total = np.zeros(n_frames)
    count = np.zeros(n_frames, dtype=np.int64)
    for a, b, score in zip(s, e, p, strict=True):
        total[a : b + 1] += score
        count[a : b + 1] += 1
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def refine_spots(
    spots: Sequence[Spot],
    starts: ArrayLike,
    ends: ArrayLike,
    scores: ArrayLike,
    threshold: float,
) -> list[Spot]:
    """Narrow (or widen) each spot to where the overlapping windows agree it is positive.

    Args:
        spots: the output of :func:`spot_intervals` on the same windows and threshold.
        starts, ends, scores: shape ``(n,)``, all of the video's windows (below threshold too).
        threshold: the same threshold as for :func:`spot_intervals`.

    For each frame, the *frame score* is the mean score of every window covering it
    (:func:`frame_scores`). For each spot, the *search region* is the union of the spot and
    every detection (window scoring ``>= threshold``) that overlaps it; it is one run of
    frames, since each of those windows shares a frame with the spot. The refined spot is the
    maximal run of frames in the search region whose frame score is ``>= threshold`` and that
    contains the region's highest-scoring frame (ties: the earliest). When even that frame
    scores below the threshold (a detection whose neighbours all disagree), the refined spot
    is that single frame. A refined spot keeps its original score, so ranking is unchanged.

    Search regions of neighbouring spots can overlap, and so can their refined spots; those
    mean one event, so overlapping refined spots go through the same greedy suppression as
    :func:`spot_intervals` (the higher score survives). Returns spots sorted by start.
    """
    s, e, p = _windows(starts, ends, scores)
    if not len(spots):
        return []
    if min(sp.start for sp in spots) < 0:
        raise ValueError("spots must start at frame 0 or later")
    n_frames = int(max(e.max() if len(e) else 0, max(sp.end for sp in spots))) + 1
    per_frame = frame_scores(s, e, p, n_frames)
    above = np.nan_to_num(per_frame, nan=-np.inf) >= threshold
    det = p >= threshold
    refined: list[Spot] = []
    for sp in spots:
        near = det & (s <= sp.end) & (e >= sp.start)
        lo = min(sp.start, int(s[near].min())) if near.any() else sp.start
        hi = max(sp.end, int(e[near].max())) if near.any() else sp.end
        region = np.nan_to_num(per_frame[lo : hi + 1], nan=-np.inf)
        peak = lo + int(np.argmax(region))  # argmax returns the first maximum
        a = b = peak
        if above[peak]:
            while a > lo and above[a - 1]:
                a -= 1
            while b < hi and above[b + 1]:
                b += 1
        refined.append(Spot(a, b, sp.score))
    r_s = np.array([r.start for r in refined], dtype=np.int64)
    r_e = np.array([r.end for r in refined], dtype=np.int64)
    r_p = np.array([r.score for r in refined])
    return sorted(refined[i] for i in _greedy_nms(r_s, r_e, r_p))

"""From window scores to spotted intervals: the paper's greedy suppression, and runs.

Inputs are one video's windows as three parallel 1-D arrays (``starts``, ``ends``,
``scores``), frames 0-based and inclusive at both ends, in any order. A *detection* is a
window whose score is ``>= threshold``. Two windows *overlap* when they share at least one
frame; windows that merely touch (``[0, 4]`` and ``[5, 9]``) do not.

- :func:`spot_intervals` is the paper's post-processing (section III-D): greedy
  non-maximum suppression over overlapping detections.
- :func:`merge_detections` spots movements longer than a window (macro-expressions): each
  run of overlapping detections becomes one interval.
- :func:`within_budget` keeps a video's best spots that fit in a share of its frames; under
  a budget they are spotted down to :data:`REVIEW_FLOOR` unless a threshold is given
  (:func:`review_threshold`).

Onsets and offsets, which the paper leaves to future work, come from a model's extent
head (pipeline.core.extents). A first refinement here, narrowing each spot to the frames
whose covering windows agree, was removed: it lowered the IoU-rule F1 and the
coverage-rule recall on the held-out benchmark (BENCHMARKS.md).
"""

from __future__ import annotations

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


#: The micro threshold under a review budget when none is given: spots are drawn down to
#: this score and the budget keeps the best of them. The threshold learnt for the best F1
#: is too strict for a budget: on faces a model never saw, movements under a pixel often
#: score below 0.05. Under a budget, profile runs longer than a micro-movement are split
#: (pipeline.core.extents.split_spot), so a low floor no longer lets runs widen and merge
#: into spots that fill the budget: on the sparse dev set (two seeds) a tenth of the
#: footage holds 0.99 of the micro-movements from 0.01, against 0.97 from 0.05, and no
#: floor down to 0.005 does better (BENCHMARKS.md, "Long runs split under a budget").
REVIEW_FLOOR = 0.01


def review_threshold(threshold: float | None, budget: float | None) -> float | None:
    """The micro threshold to spot at: ``threshold`` when given; REVIEW_FLOOR under a
    ``budget``; None otherwise (the model's own, or the one learnt on the folds)."""
    if threshold is not None or budget is None:
        return threshold
    return REVIEW_FLOOR


def within_budget(spots: list[Spot], n_frames: int, fraction: float) -> list[Spot]:
    """The best ``spots`` of one video that fit in ``fraction`` of its ``n_frames``: taken
    in score order (ties: the earlier first) while the frames they cover together stay
    within ``floor(fraction * n_frames)``; the first that does not fit ends the list, so
    what is kept is always a top of the ranking. Returns them sorted by start.

    An annotator's review budget: "show me at most a tenth of this video, best first".
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"budget must be a fraction in (0, 1], got {fraction}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    allowed = int(np.floor(fraction * n_frames + 1e-9))
    covered, used = np.zeros(n_frames, bool), 0
    kept: list[Spot] = []
    for sp in sorted(spots, key=lambda s: (-s.score, s.start, s.end)):
        lo, hi = max(0, sp.start), min(n_frames - 1, sp.end)
        new = int((~covered[lo : hi + 1]).sum())
        if used + new > allowed:
            break
        covered[lo : hi + 1], used = True, used + new
        kept.append(sp)
    return sorted(kept)

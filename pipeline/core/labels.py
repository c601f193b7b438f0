"""Window labels: the one coverage rule that ground truth and verdicts share.

A window is *positive* for an interval when it covers at least ``min_coverage`` of the
interval, ``|window ∩ interval| / |interval| >= 0.8`` by default (the paper's condition
(1)), measured on the time grid: a window stands for the ``span_s`` seconds its timesteps
sample (T x R, ``FeatureConfig.label_span_s``: 0.52 s by default) from its first frame,
and an annotated frame for 1/fps s (:func:`label_spans` turns both into frames at the
window's own rate). Counted in whole frames instead, a window at 30 fps would reach 17
frames (0.567 s) and one at 100 fps 53 (0.53 s): the same movement would be positive in
more windows at 30 fps than at 100 fps, and a model trained at one rate would learn
another boundary than one trained at the other. ``FeatureConfig.label_min_coverage`` sets
the fraction for a store; everything that labels that store's windows (extraction from
ground truth, verdicts, the feedback simulation) takes it from there. The metrics
(``pipeline.core.metrics``) judge spotted intervals against ground truth in frames, as
the paper does.

Labels from annotators' verdicts (:func:`verdict_labels`): positive as above for a ``yes``
interval; other windows touching a ``yes`` interval stay unlabelled (they hold part of the
movement); a window lying wholly inside a ``no`` interval is a *hard negative* (the model
thought it held a movement, the annotator said the interval does not). Only those: a
``no`` says nothing about a movement straddling the interval's edge, which a window
reaching outside it can hold (with 0.5 s windows every 0.2 s, the neighbours of a reviewed
window share 60% of its frames). Every other window stays unlabelled: nobody looked at it.

Classes (:func:`class_labels`): a model that spots macro-expressions too learns three
classes, 0 none, 1 micro (the coverage rule above), 2 macro. A macro-expression (0.5-4 s)
is longer than a window, so no window covers 80% of it: a window is *macro* when at least
:data:`MACRO_MIN_INSIDE` of its label span lies inside one (:func:`inside`), and it is not
micro.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from pipeline.core.intervals import Interval
from pipeline.core.windows import Window

#: A window is positive when it covers at least this fraction of a ground-truth interval.
LABEL_MIN_COVERAGE = 0.8
#: A window with at least this fraction of its frames inside a ``no`` interval is negative
#: (1.0: only windows wholly inside it, see the module doc).
NEGATIVE_MIN_OVERLAP = 1.0
#: A window is macro when at least this fraction of its label span lies in a macro interval.
MACRO_MIN_INSIDE = 0.5
#: Class numbers of a window's label (and of a model's outputs).
NONE, MICRO, MACRO = 0, 1, 2


def _spans(starts: ArrayLike, ends: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(starts, np.float64)
    e = np.asarray(ends, np.float64)
    if s.shape != e.shape or s.ndim != 1:
        raise ValueError(f"starts and ends must be 1-D of one length, got {s.shape}, {e.shape}")
    return s, e


def _overlap(s: np.ndarray, e: np.ndarray, iv: Interval) -> np.ndarray:
    """Frames each span shares with ``iv`` (0 when apart). Spans may end part-way through a
    frame (:func:`label_spans`): ``start..end`` inclusive is the stretch [start, end + 1)."""
    return np.clip(np.minimum(e, iv.end) - np.maximum(s, iv.start) + 1, 0, None)


def covering(
    starts: ArrayLike,
    ends: ArrayLike,
    truth: Iterable[Interval],
    min_coverage: float = LABEL_MIN_COVERAGE,
) -> np.ndarray:
    """(N,) bool: which spans ``starts[i]..ends[i]`` (inclusive frames, see :func:`_overlap`)
    cover >= ``min_coverage`` of some interval."""
    s, e = _spans(starts, ends)
    out = np.zeros(len(s), bool)
    for iv in truth:
        # 1e-9: label spans end part-way through frames (0.52 * 30 - 1 is 14.600000000000001)
        out |= _overlap(s, e, iv) / iv.length >= min_coverage - 1e-9
    return out


def inside(
    starts: ArrayLike,
    ends: ArrayLike,
    truth: Iterable[Interval],
    min_fraction: float = MACRO_MIN_INSIDE,
) -> np.ndarray:
    """(N,) bool: which spans ``starts[i]..ends[i]`` (see :func:`_overlap`) lie at least
    ``min_fraction`` inside some interval (the fraction of the *span*, not the interval)."""
    s, e = _spans(starts, ends)
    out = np.zeros(len(s), bool)
    for iv in truth:
        out |= _overlap(s, e, iv) / (e - s + 1) >= min_fraction - 1e-9
    return out


def class_labels(micro: ArrayLike, macro: ArrayLike) -> np.ndarray:
    """(N,) int8 classes from (N,) micro labels (1 / 0 / -1 unlabelled, or bool) and (N,)
    bool macro flags: :data:`MICRO` wins over :data:`MACRO`, an unlabelled window stays -1."""
    y = np.asarray(micro).astype(np.int8)
    m = np.asarray(macro, bool)
    if y.shape != m.shape:
        raise ValueError(f"micro and macro labels differ in shape: {y.shape}, {m.shape}")
    return np.where((y == NONE) & m, MACRO, y).astype(np.int8)


def label_spans(
    starts: ArrayLike, ends: ArrayLike, starts_s: ArrayLike, ends_s: ArrayLike, span_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Windows' label spans in frames: ``span_s`` seconds from each window's first frame.

    ``starts``/``ends`` are the windows' first and last frames and ``starts_s``/``ends_s``
    those frames' times; their ratio is the window's own frame rate (the video's, or the
    local one in a variable-rate video). Returns (starts, inclusive ends) for
    :func:`covering`; an end may fall part-way through a frame (0.52 s at 30 fps is 15.6
    frames: frames ``s .. s + 14.6``, i.e. the stretch [s, s + 15.6)).
    """
    s, e = _spans(starts, ends)
    t0, t1 = _spans(starts_s, ends_s)
    if s.shape != t0.shape:
        raise ValueError(f"frames and times differ in length: {s.shape}, {t0.shape}")
    if np.any(e <= s) or np.any(t1 <= t0):
        raise ValueError("every window must span at least two frames at increasing times")
    fps = (e - s) / (t1 - t0)
    return s, s + span_s * fps - 1


def window_spans(windows: Sequence[Window], span_s: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`label_spans` of ``windows``."""
    cols = ([getattr(w, a) for w in windows] for a in ("start", "end", "start_s", "end_s"))
    return label_spans(*cols, span_s)


def window_labels(
    windows: Sequence[Window],
    truth: Iterable[Interval],
    span_s: float,
    min_coverage: float = LABEL_MIN_COVERAGE,
) -> list[bool]:
    """True for each window whose label span (``span_s`` seconds, :func:`label_spans`)
    covers >= ``min_coverage`` of some ground-truth interval."""
    return covering(*window_spans(windows, span_s), truth, min_coverage).tolist()


def verdict_labels(
    starts: ArrayLike,
    ends: ArrayLike,
    yes: Iterable[Interval],
    no: Iterable[Interval],
    *,
    min_coverage: float = LABEL_MIN_COVERAGE,
    negative_overlap: float = NEGATIVE_MIN_OVERLAP,
) -> np.ndarray:
    """Labels of one video's windows from its resolved intervals: int8 1 / 0 / -1 (none).

    ``starts``/``ends`` are the windows' label spans (:func:`label_spans`). See the module doc.
    """
    s, e = _spans(starts, ends)
    yes = list(yes)
    touched = np.zeros(len(s), bool)
    for iv in yes:
        touched |= _overlap(s, e, iv) > 0
    negative = np.zeros(len(s), bool)
    for iv in no:
        negative |= _overlap(s, e, iv) / (e - s + 1) >= negative_overlap
    labels = np.full(len(s), -1, np.int8)
    labels[negative & ~touched] = 0
    labels[covering(s, e, yes, min_coverage)] = 1
    return labels

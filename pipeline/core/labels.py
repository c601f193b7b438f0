"""Window labels: the one coverage rule that ground truth, verdicts and metrics share.

A window (any inclusive frame span) is *positive* for an interval when it covers at least
``min_coverage`` of the interval's frames, ``|window ∩ interval| / |interval| >= 0.8`` by
default (the paper's condition (1), which is also the coverage rule of
``pipeline.core.metrics``). ``FeatureConfig.label_min_coverage`` sets it for a store;
everything that labels that store's windows (extraction from ground truth, verdicts,
the feedback simulation) takes it from there.

Labels from annotators' verdicts (:func:`verdict_labels`): positive as above for a ``yes``
interval; other windows touching a ``yes`` interval stay unlabelled (they hold part of the
movement); a window lying wholly inside a ``no`` interval is a *hard negative* (the model
thought it held a movement, the annotator said the interval does not). Only those: a
``no`` says nothing about a movement straddling the interval's edge, which a window
reaching outside it can hold (with 0.5 s windows every 0.2 s, the neighbours of a reviewed
window share 60% of its frames). Every other window stays unlabelled: nobody looked at it.
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


def _spans(starts: ArrayLike, ends: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(starts, np.int64)
    e = np.asarray(ends, np.int64)
    if s.shape != e.shape or s.ndim != 1:
        raise ValueError(f"starts and ends must be 1-D of one length, got {s.shape}, {e.shape}")
    return s, e


def _overlap(s: np.ndarray, e: np.ndarray, iv: Interval) -> np.ndarray:
    """Frames each span shares with ``iv`` (0 when apart)."""
    return np.clip(np.minimum(e, iv.end) - np.maximum(s, iv.start) + 1, 0, None)


def covering(
    starts: ArrayLike,
    ends: ArrayLike,
    truth: Iterable[Interval],
    min_coverage: float = LABEL_MIN_COVERAGE,
) -> np.ndarray:
    """(N,) bool: which spans ``starts[i]..ends[i]`` cover >= ``min_coverage`` of some interval."""
    s, e = _spans(starts, ends)
    out = np.zeros(len(s), bool)
    for iv in truth:
        out |= _overlap(s, e, iv) / iv.length >= min_coverage
    return out


def window_labels(
    windows: Sequence[Window],
    truth: Iterable[Interval],
    min_coverage: float = LABEL_MIN_COVERAGE,
) -> list[bool]:
    """True for each window that covers >= ``min_coverage`` of some ground-truth interval."""
    starts = [w.start for w in windows]
    ends = [w.end for w in windows]
    return covering(starts, ends, truth, min_coverage).tolist()


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

    ``starts``/``ends`` are the windows' inclusive frame spans. See the module doc.
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

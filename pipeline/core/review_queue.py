"""What an annotator reviews next: the model's surest spots, its doubts, and what it may miss.

Reviewing only the highest-scoring spots teaches a model little: it confirms what the model
already finds, and the movements it misses, the ones that would raise its recall, are never
shown. A review queue (:func:`choose`) mixes three pools of *candidates* (intervals of one
video, each with a score):

- ``top``: spotted intervals (scored at or above the threshold), best first;
- ``uncertain``: any candidate, closest to the threshold first, where a verdict moves the
  decision boundary most;
- ``low``: peaks of the score timeline below the threshold (:func:`low_peaks`), best
  first: what the model would not spot, where its misses are.

Strategy ``mixed`` (the default) fills each batch by :data:`MIX` (half top, a quarter each
of the other two; a pool that runs dry leaves its share to the others); ``top`` is the plain
order, highest score first. Never is an interval chosen that overlaps one already judged
(shares a frame of the same video), nor two that overlap each other: a retrained model's
spots move by a frame or a stride, and the same movement must not come back. Each choice
carries the pool it came from and a sentence saying why, for the review page.

:func:`video_candidates` makes one video's candidates (low peaks that overlap a spotted
interval are left out: that stretch is offered already); :func:`review_order` is the whole
order of one video's candidates for the review page, in batches as :func:`choose` draws
them, so that the order does not move while annotators work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from pipeline.core.spotting import spot_intervals
from pipeline.core.verdicts import IntervalKey

#: The review orders: ``mixed`` (the pools of the module doc) and ``top`` (score order).
STRATEGIES = ("mixed", "top")
#: The share of each batch a ``mixed`` queue draws from each pool, in the order filled.
MIX = (("top", 0.5), ("uncertain", 0.25), ("low", 0.25))


@dataclass(frozen=True, slots=True)
class Candidate:
    """An interval that could be reviewed: ``spotted`` at the threshold, or a low peak."""

    key: IntervalKey
    score: float
    spotted: bool


@dataclass(frozen=True, slots=True)
class Pick:
    """A chosen interval: its ``pool`` (``top``, ``uncertain`` or ``low``) and why."""

    key: IntervalKey
    score: float
    pool: str
    reason: str


def low_peaks(
    starts: ArrayLike, ends: ArrayLike, scores: ArrayLike, threshold: float
) -> list[tuple[int, int, float]]:
    """Peaks of one video's score timeline below ``threshold``, as (start, end, score), best
    first (ties: earliest). A peak is a window scoring at least as much as the windows
    before and after it (in start order) and more than one of them (a flat stretch is no
    peak); of peaks that overlap, greedy NMS keeps the best.
    """
    s, e = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    p = np.asarray(scores, np.float64)
    if not len(s) == len(e) == len(p):
        raise ValueError(f"starts, ends and scores differ in length: {len(s)}, {len(e)}, {len(p)}")
    order = np.lexsort((e, s))
    s, e, p = s[order], e[order], p[order]
    prev, after = np.r_[p[:1], p[:-1]], np.r_[p[1:], p[-1:]]  # an end is its own neighbour
    peak = (p >= prev) & (p >= after) & ((p > prev) | (p > after)) & (p < threshold)
    kept = spot_intervals(s[peak], e[peak], p[peak], threshold=-np.inf)
    return sorted(((x.start, x.end, x.score) for x in kept), key=lambda t: (-t[2], t[0]))


def _overlaps(key: IntervalKey, others: Sequence[IntervalKey]) -> bool:
    return any(
        o.video_key == key.video_key and o.start <= key.end and key.start <= o.end for o in others
    )


def _reason(pool: str, score: float, threshold: float) -> str:
    if pool == "top":
        return f"one of the model's surest unreviewed spots (score {score:.2f})"
    if pool == "uncertain":
        return f"the model is unsure: score {score:.2f}, near its threshold {threshold:.2f}"
    return (
        f"below the threshold (score {score:.2f}): a peak the model would not spot, shown "
        "to find the movements it misses"
    )


def _pools(candidates: Sequence[Candidate], threshold: float) -> dict[str, list[Candidate]]:
    """Each pool's candidates in the order it offers them (ties by key)."""
    return {
        "top": sorted((c for c in candidates if c.spotted), key=lambda c: (-c.score, c.key)),
        "uncertain": sorted(candidates, key=lambda c: (abs(c.score - threshold), c.key)),
        "low": sorted((c for c in candidates if not c.spotted), key=lambda c: (-c.score, c.key)),
    }


def choose(
    candidates: Iterable[Candidate],
    judged: Iterable[IntervalKey],
    k: int,
    threshold: float,
    strategy: str = "mixed",
) -> list[Pick]:
    """Up to ``k`` intervals to review next, none overlapping ``judged`` or each other
    (module doc). ``threshold``: the one the candidates were spotted at. In pick order."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {list(STRATEGIES)}, got {strategy!r}")
    taken = list(judged)
    pools = _pools(list(candidates), threshold)
    if strategy == "top":
        pools, quota = {"top": pools["top"]}, {"top": k}
    else:
        quota = {pool: int(np.floor(share * k + 0.5)) for pool, share in MIX}
        quota["top"] = k - quota["uncertain"] - quota["low"]
    picks: list[Pick] = []

    def draw(pool: str, n: int) -> None:
        for c in pools[pool]:
            if n <= 0:
                return
            if not _overlaps(c.key, taken):
                picks.append(Pick(c.key, c.score, pool, _reason(pool, c.score, threshold)))
                taken.append(c.key)
                n -= 1

    for pool in quota:
        draw(pool, quota[pool])
    for pool in quota:  # a pool that ran dry leaves its share to the others
        draw(pool, k - len(picks))
    return picks


def video_candidates(
    video: tuple[str, str, str],
    spotted: Iterable[tuple[int, int, float]],
    windows: tuple[ArrayLike, ArrayLike, ArrayLike] | None,
    threshold: float,
) -> list[Candidate]:
    """One video's candidates: its ``spotted`` intervals (start, end, score), and, with its
    ``windows`` (starts, ends, scores), the peaks of their scores below ``threshold`` that
    overlap no spotted interval."""
    out = [Candidate(IntervalKey(*video, int(a), int(b)), float(p), True) for a, b, p in spotted]
    if windows is None or not len(windows[0]):
        return out
    taken = [c.key for c in out]
    for a, b, p in low_peaks(*windows, threshold):
        key = IntervalKey(*video, a, b)
        if not _overlaps(key, taken):
            out.append(Candidate(key, p, False))
    return out


def review_order(
    candidates: Iterable[Candidate], threshold: float, strategy: str = "mixed", batch: int = 4
) -> list[Pick]:
    """Every candidate of one video in the order to review them: :func:`choose`'s batches of
    ``batch``, one after the other, each judging the ones before (``mixed``: by the pools'
    shares; ``top``: the spotted ones, highest score first). The candidates of
    :func:`video_candidates` are pairwise apart, so each comes once."""
    cands = list(candidates)
    out: list[Pick] = []
    while picks := choose(cands, [p.key for p in out], batch, threshold, strategy):
        out += picks
    return out


def page_order(
    video: tuple[str, str, str],
    spotted: Sequence[tuple[int, int, float, str]],
    windows: tuple[ArrayLike, ArrayLike, ArrayLike] | None,
    threshold: float,
    strategy: str = "mixed",
    peak_threshold: float | None = None,
) -> list[tuple[int, int, float, str, str, str]]:
    """The review page's order of one video's intervals, as (start, end, score, kind, pool,
    reason): the micro ones of ``spotted`` (start, end, score, kind) and the ``windows``'
    peaks below ``peak_threshold`` (default ``threshold``: the window-score threshold,
    where micro spots are on another scale; kind ``unspotted``) by :func:`review_order`,
    then the other kinds (macro), by their order in ``spotted``."""
    micro = [(a, b, p) for a, b, p, kind in spotted if kind == "micro"]
    peaks_below = threshold if peak_threshold is None else peak_threshold
    cands = video_candidates(video, micro, windows, peaks_below)
    was_spotted = {(a, b) for a, b, _ in micro}
    out = [
        (p.key.start, p.key.end, p.score,
         "micro" if (p.key.start, p.key.end) in was_spotted else "unspotted", p.pool, p.reason)
        for p in review_order(cands, threshold, strategy)
    ]  # fmt: skip
    for a, b, p, kind in spotted:
        if kind != "micro":
            out.append((a, b, p, kind, "top", f"a {kind} spot (score {p:.2f})"))
    return out

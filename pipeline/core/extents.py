"""Micro spots from per-timestep scores: where a movement starts and ends.

Greedy NMS (pipeline.core.spotting) spots whole windows, 0.52 s long, while micro-movements
last 0.2-0.5 s: a window-long spot covers its movement (the paper's rule) but often shares
too few frames with it for MEGC's IoU >= 0.5. A model with an *extent head*
(pipeline.learn.extent) scores each timestep of a window with the probability that it lies
inside a micro-movement. Here those scores become a per-frame profile (each frame: the mean
score of the timesteps of every window that covers it, :func:`frame_profile`), and the
micro spots are its runs at or above a threshold (:func:`profile_spots`): a spot then
starts and ends where the movement does, and the profile, which looks at every window
around a frame in both directions, also finds movements better than the best window does
(BENCHMARKS.md, "Onsets and offsets"). Under a review budget, a run longer than any
micro-movement is split (:func:`split_spot`), so that its best stretch competes for the
budget on its own and the rest waits its turn.

Timestep ``k`` of a window spanning frames ``start..end`` with ``T`` timesteps runs from
frame ``b[k]`` to ``b[k + 1]``, ``b = start + round(k * (end - start) / T)``
(:func:`step_bounds`): exactly the window's own frames at rates on the time grid (25, 50,
100, 200 fps), within a frame elsewhere. The same bounds label timesteps for training
(:func:`step_labels`): a timestep is inside a ground-truth interval when its middle is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from pipeline.core.intervals import Interval, Spot


@dataclass(frozen=True)
class ExtentRule:
    """How runs of the profile become spots: runs shorter than ``min_s`` are dropped (a
    micro-movement lasts 0.2 s or more; shorter runs are noise), the others widened by
    ``pad_s`` on each side (the profile fades in and out over a timestep or two), and
    spots that then overlap merged. Under a review budget, a spot longer than ``max_s`` is
    split (``None``: never): a micro-movement lasts at most 0.5 s, so a longer run holds
    several movements, or one and the rise of something else, and one long spot would spend
    the budget on frames that match one movement at most. Chosen on the dev sets
    (BENCHMARKS.md).
    """

    min_s: float = 0.16
    pad_s: float = 0.08
    max_s: float | None = 0.6

    def __post_init__(self) -> None:
        if self.min_s < 0 or self.pad_s < 0:
            raise ValueError(f"min_s and pad_s must be >= 0, got {self.min_s}, {self.pad_s}")
        if self.max_s is not None and not self.max_s >= max(self.min_s, 1e-9):
            raise ValueError(f"max_s must be >= min_s and > 0, got {self.max_s}")

    def frames(self, fps: float) -> tuple[int, int]:
        """(min_len, pad) in whole frames at ``fps``."""
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        return max(1, round(self.min_s * fps)), round(self.pad_s * fps)

    def max_frames(self, fps: float) -> int | None:
        """The longest spot in whole frames at ``fps`` (None: no limit)."""
        min_len, _ = self.frames(fps)
        return None if self.max_s is None else max(min_len, round(self.max_s * fps))


#: The rule micro spots are made by, unless a caller gives another.
EXTENTS = ExtentRule()


def step_bounds(start: int, end: int, n_steps: int) -> np.ndarray:
    """The ``n_steps + 1`` frames bounding a window's timesteps, first ``start``, last ``end``."""
    if n_steps < 1 or end < start:
        raise ValueError(f"need n_steps >= 1 and end >= start, got {n_steps}, {start}..{end}")
    k = np.arange(n_steps + 1)
    return start + np.floor(k * (end - start) / n_steps + 0.5).astype(np.int64)


def step_labels(
    starts: ArrayLike, ends: ArrayLike, n_steps: int, truth: Iterable[Interval]
) -> np.ndarray:
    """(N, n_steps) int8: 1 where a timestep's middle lies inside an interval of ``truth``
    (one video's ground truth), else 0."""
    s, e = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    if s.shape != e.shape or s.ndim != 1:
        raise ValueError(f"starts and ends must be 1-D of one length, got {s.shape}, {e.shape}")
    if n_steps < 1 or np.any(e < s):
        raise ValueError(f"need n_steps >= 1 and every end >= its start, got {n_steps}")
    k = np.arange(n_steps + 1)
    bounds = s[:, None] + np.floor(k * (e - s)[:, None] / n_steps + 0.5).astype(np.int64)
    middle = (bounds[:, :-1] + bounds[:, 1:]) / 2
    out = np.zeros((len(s), n_steps), bool)
    for iv in truth:
        out |= (middle >= iv.start) & (middle <= iv.end)
    return out.astype(np.int8)


def frame_profile(
    starts: ArrayLike, ends: ArrayLike, step_scores: ArrayLike, n_frames: int
) -> np.ndarray:
    """(n_frames,) float64: each frame's mean timestep score over the windows covering it
    (``step_scores``: (N, T), one row per window); NaN for frames no window covers.
    A frame where two timesteps of one window meet counts with the later one."""
    q = np.asarray(step_scores, np.float64)
    s, e = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    if q.ndim != 2 or len(q) != len(s) or s.shape != e.shape:
        raise ValueError(f"need (N, T) step scores for N windows, got {q.shape} for {s.shape}")
    total, count = np.zeros(n_frames + 1), np.zeros(n_frames + 1)
    for i in range(len(s)):
        b = step_bounds(int(s[i]), int(e[i]), q.shape[1])
        b[-1] += 1  # the last timestep holds the window's last frame
        lo, hi = np.clip(b[:-1], 0, n_frames), np.clip(b[1:], 0, n_frames)
        # difference arrays: + score at each timestep's first frame, - after its last
        np.add.at(total, lo, q[i])
        np.add.at(total, hi, -q[i])
        np.add.at(count, lo, 1.0)
        np.add.at(count, hi, -1.0)
    total, count = np.cumsum(total)[:n_frames], np.cumsum(count)[:n_frames]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0.5, total / np.maximum(count, 1.0), np.nan)


def profile_spots(
    profile: ArrayLike, threshold: float, rule: ExtentRule, fps: float, *, split: bool = False
) -> list[Spot]:
    """Micro spots of one video: each run of frames whose ``profile`` (:func:`frame_profile`)
    is >= ``threshold`` and at least ``rule.min_s`` long, widened by ``rule.pad_s`` on each
    side (clipped to the video), spots that then overlap merged; with ``split`` (for a
    review budget), spots longer than ``rule.max_s`` split (:func:`split_spot`). Scored by
    the highest profile value inside. Sorted by start, pairwise apart."""
    m = np.nan_to_num(np.asarray(profile, np.float64), nan=-1.0)
    min_len, pad = rule.frames(fps)
    edges = np.diff(np.concatenate([[0], (m >= threshold).astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    out: list[Spot] = []
    for a, b in zip(starts, ends, strict=True):
        if b - a + 1 < min_len:
            continue
        lo, hi, peak = max(0, a - pad), min(len(m) - 1, b + pad), float(m[a : b + 1].max())
        if out and lo <= out[-1].end:
            last = out.pop()
            lo, peak = last.start, max(peak, last.score)
        out.append(Spot(int(lo), int(hi), peak))
    longest = rule.max_frames(fps)
    if not split or longest is None:
        return out
    return sorted(p for sp in out for p in split_spot(sp, m, longest, min_len, threshold))


def split_spot(
    spot: Spot, profile: np.ndarray, longest: int, min_len: int, threshold: float
) -> list[Spot]:
    """``spot`` cut into spots of at most ``longest`` frames: the stretch of that length
    holding the most profile (frames' values, negatives as 0; of equals, the middle one,
    which centres a bump on a plateau) is one, and what is left on each side is split in
    turn, kept where it is ``min_len`` frames or more and peaks at ``threshold`` or above.
    Each piece is scored by its own peak, so under a review budget the stretch around the
    best movement comes first and the rest of a long run waits its turn. A spot of
    ``longest`` frames or fewer is kept whole."""
    m = np.clip(profile, 0.0, None)
    out, todo = [], [spot]
    while todo:
        sp = todo.pop()
        if sp.end - sp.start + 1 <= longest:
            out.append(sp)
            continue
        mass = np.concatenate([[0.0], np.cumsum(m[sp.start : sp.end + 1])])
        best = mass[longest:] - mass[:-longest]
        tied = np.flatnonzero(best >= best.max() - 1e-9)  # sums equal but for rounding
        a = sp.start + int(tied[len(tied) // 2])
        b = a + longest - 1
        out.append(Spot(a, b, float(profile[a : b + 1].max())))
        for lo, hi in ((sp.start, a - 1), (b + 1, sp.end)):
            if hi - lo + 1 >= min_len and profile[lo : hi + 1].max() >= threshold:
                todo.append(Spot(lo, hi, float(profile[lo : hi + 1].max())))
    return sorted(out)

"""Where a spotted micro-movement starts and ends: spots fitted to per-timestep scores.

Greedy NMS (pipeline.core.spotting) spots whole windows, 0.52 s long, while micro-movements
last 0.2-0.5 s: a window-long spot covers its movement (the paper's rule) but often shares
too few frames with it for MEGC's IoU >= 0.5. A model with an *extent head*
(pipeline.learn.extent) scores each timestep of a window with the probability that it lies
inside a micro-movement. Here those scores become a per-frame profile (each frame: the mean
score of the timesteps of every window that covers it, :func:`frame_profile`) and each spot
is refitted to the run of frames around its best frame where the profile stays at or above
a share of that frame's (:func:`fit_extents`).

Timestep ``k`` of a window spanning frames ``start..end`` with ``T`` timesteps runs from
frame ``b[k]`` to ``b[k + 1]``, ``b = start + round(k * (end - start) / T)``
(:func:`step_bounds`): exactly the window's own frames at rates on the time grid (25, 50,
100, 200 fps), within a frame elsewhere. The same bounds label timesteps for training
(:func:`step_labels`): a timestep is inside a ground-truth interval when its middle is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from pipeline.core.intervals import Interval, Spot


@dataclass(frozen=True)
class ExtentRule:
    """How a spot is refitted to the profile: the run of frames around its best frame (the
    *peak*, inside the spot's window) whose profile is >= ``level`` x the peak's, widened by
    ``pad_s`` on each side, reaching at most ``reach_s`` beyond the spot's window (a
    movement can straddle the window the greedy suppression kept).

    Chosen on the dev sets (BENCHMARKS.md): 0.3 of the peak, one timestep of padding
    (40 ms), a quarter of a window's reach.
    """

    level: float = 0.3
    pad_s: float = 0.04
    reach_s: float = 0.13

    def __post_init__(self) -> None:
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {self.level}")
        if self.pad_s < 0 or self.reach_s < 0:
            raise ValueError(f"pad_s and reach_s must be >= 0, got {self.pad_s}, {self.reach_s}")

    def frames(self, fps: float) -> tuple[int, int]:
        """(pad, reach) in whole frames at ``fps``."""
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        return round(self.pad_s * fps), round(self.reach_s * fps)


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


def _grow(profile: np.ndarray, peak: int, lo: int, hi: int, level: float) -> tuple[int, int]:
    """The run of frames in ``lo..hi`` around ``peak`` whose profile is >= ``level``."""
    above = np.nan_to_num(profile[lo : hi + 1], nan=-1.0) >= level
    j = peak - lo
    left = np.flatnonzero(~above[:j])
    right = np.flatnonzero(~above[j:])
    a = left[-1] + 1 if len(left) else 0
    b = j + right[0] - 1 if len(right) else len(above) - 1
    return lo + int(a), lo + int(b)


def fit_extents(
    spots: Sequence[Spot], profile: ArrayLike, rule: ExtentRule, fps: float
) -> list[Spot]:
    """``spots`` (one video's, pairwise apart, as greedy NMS gives them) refitted to
    ``profile`` (:func:`frame_profile`) by ``rule``; scores kept. The refitted spots stay
    pairwise apart: each reaches no further left than its refitted left neighbour's end
    and no further right than its right neighbour's window."""
    m = np.asarray(profile, np.float64)
    pad, reach = rule.frames(fps)
    ordered = sorted(spots)
    out: list[Spot] = []
    for i, sp in enumerate(ordered):
        floor = out[-1].end + 1 if out else 0
        ceil = ordered[i + 1].start - 1 if i + 1 < len(ordered) else len(m) - 1
        lo, hi = max(floor, sp.start - reach, 0), min(ceil, sp.end + reach, len(m) - 1)
        core = m[max(sp.start, lo) : min(sp.end, hi) + 1]
        if not len(core) or not np.isfinite(core).any():
            out.append(sp)  # no window scored these frames: nothing to fit to
            continue
        peak = max(sp.start, lo) + int(np.nanargmax(core))
        a, b = _grow(m, peak, lo, hi, rule.level * m[peak])
        out.append(Spot(max(lo, a - pad), min(hi, b + pad), sp.score))
    return out

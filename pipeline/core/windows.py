"""Sliding windows over a video, on a time grid: parameters in seconds, frames chosen by time.

A window's LSTM input must mean the same thing at every frame rate, so its timesteps sit at
fixed times, not at fixed frame counts. With window W, overlap O and flow step R (seconds):

- a window has T = ceil(W / R) timesteps whatever the frame rate (13 with the defaults
  W 0.5 s, R 1/25 s; 25 with the paper's R 1/50 s) and spans T * R >= W seconds (0.52 s),
  so that, as in the paper, some window covers >= 80% of any movement up to W long;
- timestep k is the optical flow from the frame nearest to ``t0 + k * R`` to the frame
  nearest to ``t0 + (k + 1) * R``, where ``t0`` is the time of the window's first frame
  (halves rounded up). At 25, 50, 100 or 200 fps those frames are exactly R apart; at 30 fps
  they are 1 or 2 frames apart (33 or 67 ms), and the extractor scales each flow by
  R / (its frames' time apart) so that every timestep is a displacement per R seconds;
- windows start every W - O seconds (``stride`` frames, rounded) and span ``span`` frames.

Where two times would pick the same frame (a step a little shorter than a frame, e.g.
40 ms at 23.976 fps, or a dropped frame), the later time takes the next frame. A frame rate
so low that a window's frames would span over 5% more than T * R is refused: R 1/25 s
needs about 24 fps or more. Videos with a variable frame rate give each frame's time
(``times``); frames are then chosen by those times the same way.

Last-window policy: windows start at 0, 0 + stride, ... while they fit inside the video.
When the last of them ends before the video's last frame, one more window is placed ending
on the last frame (closer to its neighbour than ``stride``), so every frame is covered. A
video shorter than one window has no windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.core.intervals import Interval

#: How much longer than T * R a window's frames may span at a low frame rate.
MAX_STRETCH = 1.05


def _round_half_up(x):
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


@dataclass(frozen=True, slots=True)
class Window:
    """One sliding window: its index in the video, the T + 1 frames it samples (ascending;
    its inclusive span runs from the first to the last), the seconds between consecutive
    ones (T values, R each on an exact grid) and the time of its first frame."""

    index: int
    frames: tuple[int, ...]
    gaps_s: tuple[float, ...]
    start_s: float

    def __post_init__(self) -> None:
        if len(self.frames) < 2 or len(self.gaps_s) != len(self.frames) - 1:
            raise ValueError(f"window {self.index}: needs T + 1 frames and T gaps")

    @property
    def start(self) -> int:
        return self.frames[0]

    @property
    def end(self) -> int:
        return self.frames[-1]

    @classmethod
    def evenly(cls, index: int, start: int, timesteps: int, step: int, fps: float) -> Window:
        """A window sampling every ``step``-th frame of a constant-rate video (tests, tools)."""
        frames = tuple(range(start, start + timesteps * step + 1, step))
        return cls(index, frames, (step / fps,) * timesteps, start / fps)

    @property
    def end_s(self) -> float:
        """Time of the window's last frame."""
        return self.start_s + float(sum(self.gaps_s))

    @property
    def interval(self) -> Interval:
        return Interval(self.start, self.end)

    @property
    def timesteps(self) -> int:
        return len(self.frames) - 1

    def sample_frames(self) -> tuple[int, ...]:
        """The frames the window reads, ascending (T + 1 of them)."""
        return self.frames


@dataclass(frozen=True, slots=True)
class WindowGrid:
    """Window geometry for one frame rate: T, stride and span in frames, and the frame
    offsets a window samples at a constant rate; converts frames and seconds."""

    fps: float
    timesteps: int
    step_s: float
    stride: int
    offsets: tuple[int, ...]  # frames sampled, relative to a window's start (T + 1)

    @classmethod
    def from_seconds(
        cls,
        fps: float,
        window_s: float = 0.5,
        overlap_s: float = 0.3,
        flow_step_s: float = 1 / 25,
    ) -> WindowGrid:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        timesteps = grid_timesteps(window_s, overlap_s, flow_step_s)
        offsets = _after_each_other(_round_half_up(np.arange(timesteps + 1) * flow_step_s * fps))
        if offsets[-1] / fps > timesteps * flow_step_s * MAX_STRETCH:
            need = math.ceil(1 / (flow_step_s * MAX_STRETCH))
            raise ValueError(
                f"{fps:g} fps is too low for a flow step of {flow_step_s:g} s: frames one after "
                f"another would span {offsets[-1] / fps:.3f} s for a {timesteps * flow_step_s:g} s "
                f"window (this step needs about {need} fps or more; extract with a longer "
                "flow_step_s)"
            )
        stride = max(1, round((window_s - overlap_s) * fps))
        return cls(float(fps), timesteps, float(flow_step_s), stride, tuple(offsets.tolist()))

    @property
    def span(self) -> int:
        """Frame intervals from a window's first to its last sampled frame (constant rate)."""
        return self.offsets[-1]

    def windows(self, n_frames: int, times: Sequence[float] | None = None) -> list[Window]:
        """Every window of a video of ``n_frames`` frames (see the module's last-window
        policy). ``times``: each frame's time in seconds for a variable-rate video (None:
        frames are evenly spaced at ``fps``)."""
        if n_frames < 0:
            raise ValueError(f"n_frames must be >= 0, got {n_frames}")
        if times is not None:
            return self._timed_windows(np.asarray(times, dtype=np.float64), n_frames)
        last = n_frames - 1
        starts = list(range(0, last - self.span + 1, self.stride))
        if starts and starts[-1] + self.span < last:
            starts.append(last - self.span)
        gaps = tuple((np.diff(self.offsets) / self.fps).tolist())
        return [
            Window(i, tuple(s + o for o in self.offsets), gaps, s / self.fps)
            for i, s in enumerate(starts)
        ]

    def _timed_windows(self, times: np.ndarray, n_frames: int) -> list[Window]:
        if len(times) != n_frames or np.any(np.diff(times) <= 0):
            raise ValueError(f"times must be {n_frames} increasing values, got {len(times)}")
        if n_frames == 0:
            return []
        duration = self.timesteps * self.step_s
        stride_s = self.stride / self.fps
        anchors = np.arange(times[0], times[-1] - duration + 1e-9, stride_s)
        if len(anchors) and anchors[-1] + duration < times[-1] - 0.5 / self.fps:
            anchors = np.append(anchors, times[-1] - duration)
        out: list[Window] = []
        for t in anchors:
            start = _nearest(times, t)
            want = times[start] + np.arange(self.timesteps + 1) * self.step_s
            frames = _after_each_other([_nearest(times, x) for x in want]).tolist()
            if frames[-1] >= n_frames:
                break
            if out and frames[0] == out[-1].start:
                continue
            gaps = tuple(np.diff(times[frames]).tolist())
            out.append(Window(len(out), tuple(frames), gaps, float(times[frames[0]])))
        return out

    def to_seconds(self, frame: int | float) -> float:
        return frame / self.fps

    def to_frame(self, seconds: float) -> int:
        """The frame nearest to ``seconds``, halves rounded up."""
        return int(seconds * self.fps + 0.5)


def grid_timesteps(window_s: float, overlap_s: float, flow_step_s: float) -> int:
    """T = ceil(W / R): a window's timesteps, the same at every frame rate."""
    if not window_s > 0 or not 0 <= overlap_s < window_s:
        raise ValueError(
            f"need window_s > 0 and 0 <= overlap_s < window_s, got {window_s}, {overlap_s}"
        )
    if not flow_step_s > 0:
        raise ValueError(f"flow_step_s must be positive, got {flow_step_s!r}")
    return max(1, math.ceil(window_s / flow_step_s - 1e-9))


def _after_each_other(frames) -> np.ndarray:
    """Frames made strictly increasing: one that repeats the frame before it (a step
    shorter than a frame, or a dropped frame) moves on to the next frame."""
    out = np.asarray(frames, dtype=np.int64).copy()
    for k in range(1, len(out)):
        out[k] = max(out[k], out[k - 1] + 1)
    return out


def _nearest(times: np.ndarray, t: float) -> int:
    """Index of the frame whose time is nearest to ``t`` (the later one on a tie)."""
    i = int(np.searchsorted(times, t))
    if i == 0:
        return 0
    if i >= len(times):
        return len(times) - 1
    return i if times[i] - t <= t - times[i - 1] else i - 1

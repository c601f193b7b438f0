"""Sliding windows over a video, in frames, from parameters given in seconds.

The paper's numbers are in seconds so that any frame rate works: window W = 0.5 s,
overlap 0.3 s (stride 0.2 s), flow step R = 1/50 s. In frames:

- ``step`` R = max(1, round(R_s * fps)) (4 at 200 fps, 1 at 30 fps);
- ``timesteps`` T = max(1, round(W_s * fps) // step) (25 at 200 fps, 15 at 30 fps);
- a window samples frames ``start + k * step`` for k = 0..T and so spans
  ``T * step`` frame intervals: ``[start, start + T * step]`` inclusive (101 frames
  at 200 fps, i.e. exactly 0.5 s from its first to its last sampled frame);
  timestep k is the optical flow between sampled frames k and k + 1;
- ``stride`` = max(1, round((W_s - overlap_s) * fps)) (40 at 200 fps, 6 at 30 fps).

Last-window policy: windows start at 0, 0 + stride, ... while they fit inside the
video. When the last of them ends before the video's last frame, one more window is
placed ending exactly on the last frame (closer to its neighbour than ``stride``), so
every frame is covered. A video shorter than one window has no windows.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.intervals import Interval


@dataclass(frozen=True, slots=True)
class Window:
    """One sliding window: its index in the video and its inclusive frame span."""

    index: int
    start: int
    end: int
    step: int

    @property
    def interval(self) -> Interval:
        return Interval(self.start, self.end)

    @property
    def timesteps(self) -> int:
        return (self.end - self.start) // self.step

    def sample_frames(self) -> range:
        """The frames the window reads: every ``step``-th frame from start to end."""
        return range(self.start, self.end + 1, self.step)


@dataclass(frozen=True, slots=True)
class WindowGrid:
    """Window geometry in frames for one frame rate; converts frames and seconds."""

    fps: float
    timesteps: int
    step: int
    stride: int

    @classmethod
    def from_seconds(
        cls,
        fps: float,
        window_s: float = 0.5,
        overlap_s: float = 0.3,
        flow_step_s: float = 1 / 50,
    ) -> WindowGrid:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        if not window_s > 0 or not 0 <= overlap_s < window_s:
            raise ValueError(
                f"need window_s > 0 and 0 <= overlap_s < window_s, got {window_s}, {overlap_s}"
            )
        if not flow_step_s > 0:
            raise ValueError(f"flow_step_s must be positive, got {flow_step_s!r}")
        step = max(1, round(flow_step_s * fps))
        timesteps = max(1, round(window_s * fps) // step)
        stride = max(1, round((window_s - overlap_s) * fps))
        return cls(fps=float(fps), timesteps=timesteps, step=step, stride=stride)

    @property
    def span(self) -> int:
        """Frame intervals from a window's first to its last sampled frame."""
        return self.timesteps * self.step

    def windows(self, n_frames: int) -> list[Window]:
        """Every window of a video of ``n_frames`` frames (see the module's last-window policy)."""
        if n_frames < 0:
            raise ValueError(f"n_frames must be >= 0, got {n_frames}")
        last = n_frames - 1
        starts = list(range(0, last - self.span + 1, self.stride))
        if starts and starts[-1] + self.span < last:
            starts.append(last - self.span)
        return [Window(i, s, s + self.span, self.step) for i, s in enumerate(starts)]

    def to_seconds(self, frame: int | float) -> float:
        return frame / self.fps

    def to_frame(self, seconds: float) -> int:
        """The frame nearest to ``seconds``, halves rounded up."""
        return int(seconds * self.fps + 0.5)

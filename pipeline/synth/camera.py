"""What a real camera and its encoder do to rendered frames, so a model trained on synthetic
video meets real video's nuisances in training: auto-exposure flicker and H.264 compression.

Real recordings (webcams, phones, lab cameras that save MP4) are lossy video: each frame is
predicted from the ones before, so compression noise is correlated in time and jumps at
every keyframe, which optical flow reads as small motion. Sensor noise alone (the
renderer's) is white and independent per frame, and a model trained on it takes real
compression noise for movement. ``Camera`` passes a video's frames, in order, through:

- flicker: a global brightness gain ``1 + a * sin(2 pi t / p + phase) + b * walk(t)`` (auto
  exposure hunting and mains-powered light), ``a`` and ``b`` drawn per video;
- an H.264 round trip (libx264 through PyAV, in memory): encoded at ``crf`` with a keyframe
  every ``keyframe_s`` seconds, decoded back to grey frames. One thread and no B-frames,
  so the same frames give the same bytes on every machine and frame i comes out as frame i.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np

#: Flicker amplitudes drawn per video: sinusoid up to 1.5%, random walk up to 1%.
FLICKER_SINE, FLICKER_WALK = 0.015, 0.01


class Camera:
    """Flicker then an H.264 round trip, frame by frame (``crf`` None: no compression)."""

    def __init__(
        self,
        rng: np.random.Generator,
        n_frames: int,
        fps: float,
        size: tuple[int, int],
        crf: int | None,
        flicker: bool,
        keyframe_s: float = 2.0,
    ) -> None:
        self.fps, self.size = fps, size
        self._gain = _flicker(rng, n_frames, fps) if flicker else None
        self._enc = self._dec = None
        if crf is not None:
            self._open_codec(crf, keyframe_s)

    def _open_codec(self, crf: int, keyframe_s: float) -> None:
        w, h = self.size
        rate = Fraction(self.fps).limit_denominator(1001)
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
        enc.time_base, enc.framerate = 1 / rate, rate
        gop = max(1, round(keyframe_s * self.fps))
        enc.options = {
            "crf": str(crf),
            "preset": "veryfast",
            "tune": "zerolatency",  # no B-frames, no lookahead: a frame out per frame in
            "threads": "1",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        }
        self._enc, self._dec = enc, av.CodecContext.create("h264", "r")
        self._dec.thread_count = 1
        self._pts = 0

    def process(self, index: int, frame: np.ndarray) -> Iterator[np.ndarray]:
        """Feed frame ``index`` (grey uint8, in order); yields the frames that come out (with
        the codec: the same frame, decoded; ``flush`` yields any still inside)."""
        if self._gain is not None:
            frame = np.clip(frame.astype(np.float32) * self._gain[index] + 0.5, 0, 255)
            frame = frame.astype(np.uint8)
        if self._enc is None:
            yield frame
            return
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="gray")
        vf = vf.reformat(format="yuv420p")
        vf.pts = self._pts
        self._pts += 1
        yield from self._decode(self._enc.encode(vf))

    def flush(self) -> Iterator[np.ndarray]:
        if self._enc is not None:
            yield from self._decode(self._enc.encode(None))
            yield from (f.to_ndarray(format="gray") for f in self._dec.decode(None))

    def _decode(self, packets) -> Iterator[np.ndarray]:
        for p in packets:
            for f in self._dec.decode(p):
                yield f.to_ndarray(format="gray")


def _flicker(rng: np.random.Generator, n: int, fps: float) -> np.ndarray:
    """(n,) float32 brightness gains around 1 (sinusoid of 0.5-4 s plus a slow walk)."""
    t = np.arange(n) / fps
    a, period, phase = (
        rng.uniform(0, FLICKER_SINE),
        rng.uniform(0.5, 4.0),
        rng.uniform(0, 2 * math.pi),
    )
    walk = np.cumsum(rng.standard_normal(n)) / math.sqrt(max(n, 1))
    walk = walk / (np.abs(walk).max() or 1.0) * rng.uniform(0, FLICKER_WALK)
    return (1 + a * np.sin(2 * np.pi * t / period + phase) + walk).astype(np.float32)

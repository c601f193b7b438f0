"""Frame presentation times read from a video's container, without decoding (PyAV demuxing).

``VideoFrames`` uses these to tell a constant frame rate from a variable one, to find the
frame rate when the container's is missing or wrong, and to give ``frame_times()``.

Times are float64 seconds from the first frame, in presentation order: the order OpenCV
(FFmpeg) returns decoded frames, so element i is the time of frame index i.

The rule for "evenly spaced at fps" (``fits_rate``): every frame i lies within
``0.5 ms + one time-base tick`` of ``i / fps``. Each timestamp is rounded to the container's
time base (1 ms in Matroska), so a constant-rate stream is off its ideal times by up to a
tick; the half millisecond absorbs writers that round to milliseconds before converting.
The bound is on each frame's time, not on each interval: a per-interval tolerance lets a
slightly wrong rate drift without limit (30 fps declared for 29.97 fps footage is only 0.1%
per interval, yet 3.6 s off after an hour).
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

from pipeline.vision.frame_common import FrameError

# Frame rates outside this range are not taken from a container (FFmpeg reports a time base
# such as 90000 for some streams when it finds no rate); timestamps can still give one.
MIN_FPS, MAX_FPS = 0.1, 1000.0
_SLACK_S = 0.0005
# Timestamps missing for at most this many frames at the end are extrapolated; more means
# the file and its frame count disagree (cut short, or a header that lies).
MAX_EXTRAPOLATED = 2


@dataclass(frozen=True)
class Timestamps:
    """What demuxing a video stream found.

    ``times``: float64 (n,) seconds from the first timestamped packet, sorted (presentation
    order); n is the number of packets with a timestamp, possibly 0. ``tick``: the stream's
    time base in seconds (0.0 if unknown). ``declared``: the stream's frame count as its
    container declares it (0 when the container declares none, as Matroska).
    """

    times: np.ndarray
    tick: float
    declared: int

    @property
    def usable(self) -> bool:
        """At least two distinct times: enough to give a rate."""
        return self.times.size >= 2 and self.times[-1] > 0


NO_TIMESTAMPS = Timestamps(np.zeros(0), 0.0, 0)


def usable_fps(fps: float | None) -> float | None:
    """``fps`` as a float when it is a plausible frame rate, else None (0, NaN, absurd)."""
    if fps is None or not np.isfinite(fps) or not MIN_FPS <= fps <= MAX_FPS:
        return None
    return float(fps)


def _video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The stream OpenCV decodes: the first video stream that is not a cover picture."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def read_timestamps(path: str) -> Timestamps:
    """Demux (never decode) the video stream of the local file ``path`` and collect each
    packet's presentation time (pts, else dts, times the time base).

    Packets with neither, and packets the demuxer marks to be discarded (cut by an MP4 edit
    list; the decoder drops their frames too), are left out. A file PyAV cannot open, or
    without a video stream, gives ``NO_TIMESTAMPS``; a demuxing error part-way keeps the
    packets read before it (a cut file's tail).
    """
    try:
        with av.open(path) as container:
            stream = _video_stream(container)
            if stream is None or stream.time_base is None:
                return NO_TIMESTAMPS
            tick, declared = stream.time_base, int(stream.frames or 0)
            stamps: list[int] = []
            try:
                for packet in container.demux(stream):
                    t = packet.pts if packet.pts is not None else packet.dts
                    if t is not None and not packet.is_discard:
                        stamps.append(t)
            except av.FFmpegError:
                pass  # keep what came before the damage
    except (av.FFmpegError, OSError):
        return NO_TIMESTAMPS
    if not stamps:
        return Timestamps(np.zeros(0), float(tick), declared)
    ticks = np.sort(np.asarray(stamps, dtype=np.int64))
    # Subtract in integer ticks first: exact, whatever the first pts.
    times = (ticks - ticks[0]).astype(np.float64) * float(tick)
    return Timestamps(times, float(tick), declared)


def mean_rate(times: np.ndarray) -> float | None:
    """(n - 1) / duration of ``times`` (seconds, (n,)): frames per second; None if n < 2
    or they span no time."""
    if times.size < 2 or not times[-1] > times[0]:
        return None
    return float((times.size - 1) / (times[-1] - times[0]))


def fits_rate(times: np.ndarray, fps: float, tick: float) -> bool:
    """Whether every frame i of ``times`` (seconds from the first, (n,)) lies within
    0.5 ms + one ``tick`` (seconds) of ``i / fps`` (module docstring)."""
    ideal = np.arange(times.size, dtype=np.float64) / fps
    return bool(np.all(np.abs(times - ideal) <= _SLACK_S + tick))


def reconcile(times: np.ndarray, n_frames: int, uri: str) -> np.ndarray:
    """``times`` (seconds, (k,)) made one per frame, (n_frames,), strictly increasing.

    More timestamps than frames: the first ``n_frames`` (frames past the header's count
    are never read). Fewer by at most ``MAX_EXTRAPOLATED``: the missing ones continue at the
    median interval. Fewer by more, or repeated timestamps: FrameError naming ``uri``.
    """
    k = times.size
    if k >= n_frames:
        out = times[:n_frames].copy()
    elif n_frames - k <= MAX_EXTRAPOLATED and k >= 2:
        step = float(np.median(np.diff(times)))
        out = np.concatenate([times, times[-1] + step * np.arange(1, n_frames - k + 1)])
    else:
        raise FrameError(
            f"video {uri}: its container timestamps {k} frames but the video has {n_frames} "
            f"(cut short, or a wrong frame count in its header): the frames' times are "
            f"unknown; pass the frame rate (--fps) to treat them as evenly spaced"
        )
    repeated = np.flatnonzero(np.diff(out) <= 0)
    if repeated.size:
        i = int(repeated[0]) + 1
        raise FrameError(
            f"video {uri}: frame {i} has the same timestamp as frame {i - 1} "
            f"({out[i]:.6f} s): the frames' times are unknown; pass the frame rate (--fps) "
            f"to treat them as evenly spaced"
        )
    return out

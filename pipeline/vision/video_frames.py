"""VideoFrames: grey frames from a video file decoded with OpenCV (FFmpeg backend), read
through fsspec; ``frames.open_frames`` picks it for a file.

A file cut short (its container says it holds more bytes than it has) decodes up to the cut,
and the frames decoded there cannot be trusted: the last one may be only partly decoded
(MJPEG in AVI: the missing part is garbage), and with B-frames (H.264 in MP4) the decoder
returns reference frames whose preceding B-frames lie beyond the cut, so a later frame
comes back at an earlier index. Those frames count as missing, like frames past the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property

import cv2
import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem

from pipeline.vision.containers import container_shortfall
from pipeline.vision.frame_common import (
    FrameError,
    basename,
    check_index,
    check_reduce,
    default_fs,
    digest,
    grey_reduced,
)
from pipeline.vision.frame_times import (
    Timestamps,
    fits_rate,
    mean_rate,
    read_timestamps,
    reconcile,
    usable_fps,
)

_FINGERPRINT_CHUNK = 1 << 20
# H.264 and HEVC reorder at most 16 frames, so frames put out of place by a cut lie among
# the last 16 decoded.
_REORDER_TAIL = 16


def out_of_place(stamps_ms: Sequence[float], fps: float | None) -> int | None:
    """The first of the last ``_REORDER_TAIL`` frames whose timestamp is not about one frame
    interval after the previous one's (frames before it are missing); None if all are.

    The interval is the median gap, or 1000 / ``fps`` if shorter (few frames, most of
    them out of place, can pull the median up).
    """
    gaps = np.diff(np.asarray(stamps_ms, float))
    if gaps.size == 0:
        return None
    step = float(np.median(gaps))
    if fps is not None:
        step = min(step, 1000.0 / fps)
    if not step > 0:  # no usable timestamps
        return None
    for j in range(max(1, len(stamps_ms) - _REORDER_TAIL), len(stamps_ms)):
        if not 0.5 * step < gaps[j - 1] < 1.5 * step:
            return j
    return None


class VideoFrames:
    """A video file decoded with OpenCV (``cv2.VideoCapture``, FFmpeg backend).

    ``n_frames`` is the container header's frame count, which can be more than the video
    decodes: reading past the real end raises FrameError ("video x.mp4 ended at frame 95,
    header says 98 frames"). In a file cut short (``container_shortfall``) that ends before
    the header's count, the frames decoded at the cut count as missing too: the last one
    (it may be only partly decoded) and any of the last few whose timestamp is not one frame
    after the previous one's (out of place: frames before it are beyond the cut); finding
    them takes one decoding pass over such a file, at its first read. A whole file is
    decoded as before.

    ``fps`` given: frames are evenly spaced at it, timestamps are never read. Otherwise the
    packets are demuxed once at open (no decoding; ``frame_times`` module): ``fps`` is the
    container's (``CAP_PROP_FPS``) if frame i lies at i / fps (within 0.5 ms + a time-base
    tick), else the timestamps' mean rate (n - 1) / duration; None with neither (the file
    opens, ``frame_times()`` raises). Where the container declares no frame count
    (Matroska), OpenCV's is duration x rate, a guess: unless the file is cut short,
    ``n_frames`` is the count of timestamped packets.

    A file on a remote filesystem (anything but fsspec's local one) is first copied to a
    local temporary file, removed by ``close()``; OpenCV cannot read from fsspec.
    Unreadable files raise FrameError when opened.
    """

    source_kind = "video"
    first_frame_number = 0

    def __init__(
        self,
        path: str,
        fs: fsspec.AbstractFileSystem | None = None,
        fps: float | None = None,
        reduce: int = 1,
    ) -> None:
        self.fs = default_fs(fs)
        self.uri = path
        self.reduce = check_reduce(reduce)
        self._tmpdir: str | None = None
        self._cap: cv2.VideoCapture | None = None
        try:
            self._open(fps)
        except BaseException:
            self.close()
            raise

    def _open(self, fps: float | None) -> None:
        if not self.fs.isfile(self.uri):
            raise FrameError(f"video {self.uri}: no such file")
        local = self.uri
        if not isinstance(self.fs, LocalFileSystem):
            self._tmpdir = tempfile.mkdtemp(prefix="mespot-video-")
            # Removed by close(), or when this object is collected if nobody called it.
            weakref.finalize(self, shutil.rmtree, self._tmpdir, ignore_errors=True)
            # Keep the name: FFmpeg's format probing also looks at the extension.
            local = os.path.join(self._tmpdir, basename(self.uri))
            self.fs.get_file(self.uri, local)
        self._local = local
        # FFmpeg explicitly, so frame counts and seeking do not depend on which other
        # backends (GStreamer, ...) this OpenCV build happens to have.
        self._cap = cap = cv2.VideoCapture(local, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise FrameError(f"video {self.uri}: cannot be opened (unreadable or not a video)")
        self._header_count = header_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self._container_fps = usable_fps(cap.get(cv2.CAP_PROP_FPS))
        self._given_fps = fps is not None
        ok, frame = cap.read()
        if not ok or frame is None:
            raise FrameError(f"video {self.uri}: no frame can be decoded")
        self._pos = 1  # index of the frame the next grab() decodes
        # Frame 0 was decoded to learn the size; keep it, readers usually start there.
        self._first = grey_reduced(frame, self.reduce)
        self.height, self.width = self._first.shape
        # Some containers carry no frame count: then count by demuxing (slow, but exact).
        self.n_frames = header_count if header_count > 0 else self._count_by_grabbing()
        self.fps: float | None = float(fps) if fps is not None else self._container_fps
        if fps is None:
            self._rate_and_count_from_timestamps()
        self.frame_numbers: Sequence[int] = range(self.n_frames)

    @cached_property
    def _stamps(self) -> Timestamps:
        """The video stream's packet timestamps, demuxed once (never read when the caller
        gave fps)."""
        return read_timestamps(self._local)

    def _rate_and_count_from_timestamps(self) -> None:
        """Correct ``n_frames`` and ``fps`` from the timestamps (class docstring)."""
        stamps = self._stamps
        if not stamps.usable:
            return  # nothing better than what OpenCV said
        # OpenCV's count for a container without one is duration x rate, a guess; the
        # packets are the frames, unless the file is cut (then the cut-file rules apply to
        # the header's count, and the packets stop at the cut).
        if stamps.declared == 0 and self._header_count > 0:
            if not self._cut_short:
                self.n_frames = int(stamps.times.size)
        times = self._trusted_times()
        if self.fps is None or not fits_rate(times, self.fps, stamps.tick):
            self.fps = mean_rate(times)

    @cached_property
    def _cut_short(self) -> bool:
        return container_shortfall(self._local) is not None

    def _trusted_times(self) -> np.ndarray:
        """The timestamps that say how frames are spaced: in a file cut short, the last few
        packets before the cut may be out of place (B-frames), so they are left out."""
        times = self._stamps.times[: self.n_frames]
        if self._cut_short:
            times = times[: max(2, times.size - _REORDER_TAIL)]
        return times

    def _evenly_spaced(self) -> bool:
        """Whether frame i is at i / fps: the caller gave fps, or the timestamps fit it, or
        there are none to say otherwise (then fps, if any, is the container's)."""
        stamps = self._stamps if not self._given_fps else None
        if stamps is None or not stamps.usable or self.fps is None:
            return True
        return fits_rate(self._trusted_times(), self.fps, stamps.tick)

    @property
    def variable_rate(self) -> bool:
        """True when ``frame_times()`` gives an array: the frames are not evenly spaced at
        ``fps`` (always False when the caller gave fps)."""
        return not self._evenly_spaced()

    def frame_times(self) -> np.ndarray | None:
        """float64 (n_frames,) seconds of each frame from frame 0 (element 0 is 0.0),
        strictly increasing and read-only; None when frames are evenly spaced at ``fps``.

        Timestamps come from the container's packets, sorted (presentation order). More of
        them than ``n_frames``: the first ``n_frames``; up to 2 fewer: the rest extrapolated
        at the median interval; over 2 fewer: FrameError (``frame_times.reconcile``). With
        no frame rate and no timestamps: FrameError saying to pass the frame rate.
        """
        if self.fps is None:
            raise FrameError(
                f"video {self.uri}: its container gives neither a frame rate nor frame "
                f"timestamps; pass the frame rate (--fps)"
            )
        if self._evenly_spaced():
            return None
        return self._variable_times

    @cached_property
    def _variable_times(self) -> np.ndarray:
        times = reconcile(self._stamps.times, self.n_frames, self.uri)
        times.flags.writeable = False  # cached and shared between callers
        return times

    def _count_by_grabbing(self) -> int:
        cap = cv2.VideoCapture(self._local, cv2.CAP_FFMPEG)
        n = 0
        while cap.grab():
            n += 1
        cap.release()
        return n

    @cached_property
    def _cut(self) -> tuple[int, str] | None:
        """(frames usable, the FrameError message for the rest) for a file cut short that
        ends before its header's frame count; None otherwise."""
        sizes = container_shortfall(self._local)
        if sizes is None:
            return None
        cap = cv2.VideoCapture(self._local, cv2.CAP_FFMPEG)
        stamps = []
        while cap.grab():
            stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
        cap.release()
        n = len(stamps)
        if self._header_count > 0 and n >= self._header_count:
            return None  # the cut spared every frame
        displaced = out_of_place(stamps, self._container_fps)
        usable = max(0, n - 1) if displaced is None else displaced
        what = f"frame {usable} counts" if usable == n - 1 else f"frames {usable}..{n - 1} count"
        why = f"frame {n - 1}, the last decoded before the cut, may be only partly decoded"
        if displaced is not None:
            fps = self._container_fps
            later = round((stamps[displaced] - stamps[0]) * fps / 1000) if fps else None
            at = f"frame {later}" if later is not None else "a later frame"
            why = f"frame {displaced} has the timestamp of {at}, out of place; {why}"
        message = (
            f"video {self.uri} ended at frame {usable}, header says {self.n_frames} frames: "
            f"the file is cut short ({sizes[0]} bytes, its container declares at least "
            f"{sizes[1]}): {what} as missing ({why})"
        )
        return usable, message

    def _ended(self) -> FrameError:
        return FrameError(
            f"video {self.uri} ended at frame {self._pos}, header says {self.n_frames} frames"
        )

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as grey uint8 (height, width)."""
        return next(self.read_many([index]))[1]

    def read_many(self, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
        """(index, grey uint8 (height, width)) for each index, meant to be ascending.

        Decodes sequentially: skipped frames are only grabbed (demuxed, not converted),
        wanted ones retrieved. An index behind the current position seeks back with
        ``CAP_PROP_POS_FRAMES``.
        """
        if self._cap is None:
            raise FrameError(f"video {self.uri}: closed")
        cap, cut = self._cap, self._cut
        for index in indices:
            check_index(index, self.n_frames, self.uri)
            if cut is not None and index >= cut[0]:
                raise FrameError(cut[1])
            if index == 0:
                yield 0, self._first.copy()
                continue
            if index < self._pos:
                if not cap.set(cv2.CAP_PROP_POS_FRAMES, index):
                    raise FrameError(f"video {self.uri}: cannot seek back to frame {index}")
                self._pos = index
            while self._pos <= index:
                if not cap.grab():
                    raise self._ended()
                self._pos += 1
            ok, frame = cap.retrieve()
            if not ok or frame is None:
                raise FrameError(f"video {self.uri}: frame {index} cannot be decoded")
            yield index, grey_reduced(frame, self.reduce)

    @cached_property
    def fingerprint(self) -> str:
        """16 hex chars of sha256 over the file size and its first and last MiB."""
        size = int(self.fs.size(self.uri))
        head = self.fs.cat_file(self.uri, start=0, end=min(size, _FINGERPRINT_CHUNK))
        tail = self.fs.cat_file(self.uri, start=max(0, size - _FINGERPRINT_CHUNK), end=size)
        return digest([str(size).encode(), head, tail])

    def close(self) -> None:
        """Release the decoder and remove the local copy of a remote file."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> VideoFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoFrames({self.uri!r}, n_frames={self.n_frames}, fps={self.fps})"

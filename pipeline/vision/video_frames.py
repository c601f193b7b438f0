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
import struct
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property

import cv2
import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem

from pipeline.vision.frame_common import (
    FrameError,
    basename,
    check_index,
    check_reduce,
    default_fs,
    digest,
    grey_reduced,
)

_FINGERPRINT_CHUNK = 1 << 20
# H.264 and HEVC reorder at most 16 frames, so frames put out of place by a cut lie among
# the last 16 decoded.
_REORDER_TAIL = 16
# First box of an ISO base media file (MP4, MOV, M4V, 3GP).
_BMFF_FIRST = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp"}
_EBML_ID, _SEGMENT_ID = 0x1A45DFA3, 0x18538067


def _bmff_end(f, size: int) -> int | None:
    """Where the top-level boxes end as declared (past ``size`` at the first box that runs
    past the end of the file); None if not ISO BMFF or a box runs to the end undeclared."""
    off = 0
    while off + 8 <= size:
        f.seek(off)
        head = f.read(16)
        box_size, kind = struct.unpack(">I4s", head[:8])
        if off == 0 and kind not in _BMFF_FIRST:
            return None
        if box_size == 1:  # 64-bit size follows the type
            if len(head) < 16:
                return off + 16
            box_size = struct.unpack(">Q", head[8:16])[0]
        if box_size < 8:  # 0: "runs to the end of the file", nothing to check; < 8: junk
            return None
        off += box_size
    return off


def _riff_end(f, size: int) -> int | None:
    """End of the last RIFF chunk (AVI; OpenDML files chain several), as declared."""
    off, end = 0, None
    while off + 8 <= size:
        f.seek(off)
        tag, n = struct.unpack("<4sI", f.read(8))
        if tag != b"RIFF":
            break
        end = off + 8 + n
        off = end + (n & 1)  # chunks are padded to even sizes
    return end


def _ebml_number(data: bytes, pos: int, keep_marker: bool) -> tuple[int | None, int]:
    """An EBML variable-length number at ``pos``: (value, next pos); None value if unknown."""
    if pos >= len(data) or data[pos] == 0:
        return None, len(data) + 1
    length = 9 - data[pos].bit_length()
    raw = int.from_bytes(data[pos : pos + length], "big")
    if keep_marker:  # element IDs keep their length marker
        return raw, pos + length
    value = raw & ((1 << (7 * length)) - 1)
    return (None if value == (1 << (7 * length)) - 1 else value), pos + length


def _matroska_end(f, size: int) -> int | None:
    """End of the Segment (Matroska, WebM) as declared; None if not Matroska or unknown."""
    f.seek(0)
    data = f.read(4096)
    ident, pos = _ebml_number(data, 0, keep_marker=True)
    if ident != _EBML_ID:
        return None
    header_size, pos = _ebml_number(data, pos, keep_marker=False)
    if header_size is None:
        return None
    ident, pos = _ebml_number(data, pos + header_size, keep_marker=True)
    if ident != _SEGMENT_ID:
        return None
    segment_size, pos = _ebml_number(data, pos, keep_marker=False)
    return None if segment_size is None or pos > len(data) else pos + segment_size


def container_shortfall(path: str) -> tuple[int, int] | None:
    """(file size, end of the first top-level box, chunk or segment that runs past it) when a
    local MP4/MOV, AVI or Matroska file is shorter than its own structure says (cut short);
    None when it is whole, or its container is none of these or does not declare sizes."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        for container_end in (_bmff_end, _riff_end, _matroska_end):
            declared = container_end(f, size)
            if declared is not None:
                return (size, declared) if declared > size else None
    return None


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
    decoded as before. ``fps`` is the container's unless given. A file on a remote
    filesystem (anything but fsspec's local one) is first copied to a local temporary file,
    removed by ``close()``; OpenCV cannot read from fsspec. Unreadable files raise
    FrameError when opened.
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
        container_fps = cap.get(cv2.CAP_PROP_FPS)
        if not (np.isfinite(container_fps) and container_fps > 0):
            container_fps = None
        self._container_fps = container_fps
        ok, frame = cap.read()
        if not ok or frame is None:
            raise FrameError(f"video {self.uri}: no frame can be decoded")
        self._pos = 1  # index of the frame the next grab() decodes
        # Frame 0 was decoded to learn the size; keep it, readers usually start there.
        self._first = grey_reduced(frame, self.reduce)
        self.height, self.width = self._first.shape
        # Some containers carry no frame count: then count by demuxing (slow, but exact).
        self.n_frames = header_count if header_count > 0 else self._count_by_grabbing()
        self.frame_numbers: Sequence[int] = range(self.n_frames)
        self.fps: float | None = float(fps) if fps is not None else container_fps

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

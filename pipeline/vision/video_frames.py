"""VideoFrames: grey frames from a video file decoded with OpenCV (FFmpeg backend), read
through fsspec; ``frames.open_frames`` picks it for a file."""

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


class VideoFrames:
    """A video file decoded with OpenCV (``cv2.VideoCapture``, FFmpeg backend).

    ``n_frames`` is the container header's frame count, which can be more than the video
    decodes: reading past the real end raises FrameError ("video x.mp4 ended at frame 95,
    header says 98 frames"). ``fps`` is the container's unless given. A file on a remote
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
        header_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        container_fps = cap.get(cv2.CAP_PROP_FPS)
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
        if fps is not None:
            self.fps: float | None = float(fps)
        else:
            self.fps = container_fps if np.isfinite(container_fps) and container_fps > 0 else None

    def _count_by_grabbing(self) -> int:
        cap = cv2.VideoCapture(self._local, cv2.CAP_FFMPEG)
        n = 0
        while cap.grab():
            n += 1
        cap.release()
        return n

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
        cap = self._cap
        for index in indices:
            check_index(index, self.n_frames, self.uri)
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

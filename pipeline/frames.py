"""Grey frames from a numbered frame folder or a video file, decoding only what is asked for.

Frame indices are 0-based positions in the decoded sequence (``schemas.tables``): index 0 is
the first file of a folder whatever number its name carries (``img1.jpg``, ``006_1_0001.jpg``,
``frame_000.png``), and the first frame a video decodes. Every frame comes back as a grey
``uint8`` array of shape ``(height, width)``; with ``reduce`` in (1, 2, 4, 8) both sides are
``ceil(full / reduce)`` (JPEGs decode at that size directly, which is faster; other images
and video frames are resized with ``INTER_AREA`` to the same size).

Files are read through an fsspec filesystem (local by default), so the same code reads
object storage; paths are plain strings and never parsed here.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise

import cv2
import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
REDUCE_FACTORS = (1, 2, 4, 8)
_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
_JPEG_FLAGS = {
    1: cv2.IMREAD_GRAYSCALE,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}
_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")
_FINGERPRINT_CHUNK = 1 << 20
_MAX_LISTED = 5


class FrameError(Exception):
    """A frame source cannot be opened or a frame cannot be decoded.

    The message always names the file (and, for a frame, its index).
    """


def _default_fs(fs: fsspec.AbstractFileSystem | None) -> fsspec.AbstractFileSystem:
    return fs if fs is not None else fsspec.filesystem("file")


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _check_reduce(reduce: int) -> int:
    if reduce not in REDUCE_FACTORS:
        raise ValueError(f"reduce must be one of {REDUCE_FACTORS}, got {reduce!r}")
    return reduce


def reduced_size(width: int, height: int, reduce: int) -> tuple[int, int]:
    """(width, height) of a frame decoded at 1/``reduce`` size: libjpeg rounds up."""
    return -(-width // reduce), -(-height // reduce)


def _grey_reduced(image: np.ndarray, reduce: int) -> np.ndarray:
    """BGR (H, W, 3) or grey (H, W) -> grey uint8 (ceil(H/r), ceil(W/r))."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if reduce > 1:
        h, w = image.shape
        image = cv2.resize(image, reduced_size(w, h, reduce), interpolation=cv2.INTER_AREA)
    return image


def decode_image(data: bytes, reduce: int, what: str) -> np.ndarray:
    """Decode an encoded image to grey uint8 (H, W) at 1/``reduce`` size; ``what`` names it."""
    if not data:
        raise FrameError(f"{what}: empty file")
    is_jpeg = data[:2] == _JPEG_SOI
    # OpenCV decodes a truncated JPEG without complaint, padding it with grey; only the
    # missing end-of-image marker gives it away (some writers pad the file with zeros).
    if is_jpeg and data.rstrip(b"\x00")[-2:] != _JPEG_EOI:
        raise FrameError(f"{what}: truncated JPEG (no end-of-image marker FF D9)")
    flag = _JPEG_FLAGS[reduce] if is_jpeg else cv2.IMREAD_GRAYSCALE
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    except cv2.error as e:
        raise FrameError(f"{what}: cannot be decoded ({e})") from e
    if image is None:
        raise FrameError(f"{what}: cannot be decoded as an image")
    return image if is_jpeg else _grey_reduced(image, reduce)


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class _FrameFile:
    number: int
    prefix: str
    name: str
    path: str
    size: int


def _list_numbered(fs: fsspec.AbstractFileSystem, folder: str) -> list[_FrameFile]:
    """The folder's image files sorted by the integer ending their stem; FrameError if the
    numbering is not one run of distinct consecutive numbers under one prefix."""
    if not fs.isdir(folder):
        raise FrameError(f"frame folder {folder}: no such folder")
    entries = fs.ls(folder, detail=True)
    files, unnumbered = [], []
    for entry in entries:
        name = _basename(entry["name"])
        stem, dot, ext = name.rpartition(".")
        # Hidden files (macOS "._img1.jpg" resource forks) are not frames.
        if entry.get("type") != "file" or name.startswith(".") or not dot:
            continue
        if f".{ext.lower()}" not in IMAGE_EXTENSIONS:
            continue
        match = _NUMBERED.match(stem)
        if match is None:
            unnumbered.append(name)
            continue
        number = int(match["number"])
        files.append(_FrameFile(number, match["prefix"], name, entry["name"], entry["size"] or 0))
    if unnumbered:
        raise FrameError(
            f"frame folder {folder}: image files without a frame number: "
            f"{sorted(unnumbered)[:_MAX_LISTED]}"
        )
    if not files:
        raise FrameError(f"frame folder {folder}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    by_prefix: dict[str, str] = {}
    for f in files:
        by_prefix.setdefault(f.prefix, f.name)
    if len(by_prefix) > 1:
        examples = ", ".join(f"{p!r} ({n})" for p, n in sorted(by_prefix.items()))
        raise FrameError(f"frame folder {folder}: file names have mixed prefixes: {examples}")
    files.sort(key=lambda f: (f.number, f.name))
    dups = [(a.name, b.name) for a, b in pairwise(files) if a.number == b.number]
    if dups:
        raise FrameError(f"frame folder {folder}: duplicate frame numbers: {dups[:_MAX_LISTED]}")
    gaps = [
        f"{a.number + 1}"
        + (f"..{b.number - 1}" if b.number - a.number > 2 else "")
        + f" (between {a.name} and {b.name})"
        for a, b in pairwise(files)
        if b.number - a.number > 1
    ]
    if gaps:
        more = f" and {len(gaps) - _MAX_LISTED} more gaps" if len(gaps) > _MAX_LISTED else ""
        raise FrameError(
            f"frame folder {folder}: numbering has gaps, missing frame numbers "
            + "; ".join(gaps[:_MAX_LISTED])
            + more
        )
    return files


class FolderFrames:
    """A folder of numbered image files, one frame each, in the order of their numbers.

    Files are ordered by the integer ending their stem (``img2.jpg`` before ``img10.jpg``).
    Only .jpg/.jpeg/.png/.bmp files count; other and hidden files are ignored. Raises
    FrameError (naming the folder) when there are no images, numbers repeat or have gaps,
    or stems have different prefixes.

    Attributes: ``uri``, ``n_frames``, ``width``/``height`` (at the ``reduce`` size),
    ``fps`` (as given, may be None), ``first_frame_number`` (the number in the first file's
    name), ``frame_numbers`` (the numbers in index order).
    """

    source_kind = "frames"

    def __init__(
        self,
        path: str,
        fs: fsspec.AbstractFileSystem | None = None,
        fps: float | None = None,
        reduce: int = 1,
    ) -> None:
        self.fs = _default_fs(fs)
        self.uri = path
        self.fps = None if fps is None else float(fps)
        self.reduce = _check_reduce(reduce)
        self._files = _list_numbered(self.fs, path)
        self.frame_numbers: Sequence[int] = [f.number for f in self._files]
        self.first_frame_number = self.frame_numbers[0]
        self.n_frames = len(self._files)
        self.height, self.width = 0, 0  # unknown until frame 0 is decoded: no size check
        self.height, self.width = self._decode(0).shape

    def file_name(self, index: int) -> str:
        """The file holding frame ``index``."""
        return self._files[index].name

    def _decode(self, index: int) -> np.ndarray:
        f = self._files[index]
        what = f"frame folder {self.uri}: frame {index} ({f.name})"
        try:
            data = self.fs.cat_file(f.path)
        except OSError as e:
            raise FrameError(f"{what}: cannot be read ({e})") from e
        image = decode_image(data, self.reduce, what)
        if self.width and image.shape != (self.height, self.width):
            raise FrameError(
                f"{what}: size {image.shape[1]}x{image.shape[0]} differs from the first "
                f"frame's {self.width}x{self.height}"
            )
        return image

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as grey uint8 (height, width)."""
        _check_index(index, self.n_frames, self.uri)
        return self._decode(index)

    def read_many(self, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
        """(index, grey uint8 (height, width)) for each index; reads only those files."""
        for index in indices:
            yield index, self.read(index)

    @cached_property
    def fingerprint(self) -> str:
        """16 hex chars of sha256 over the sorted (name, size) list and the first and last
        files' bytes: cheap; changes when frames are added, removed, renamed or change size,
        or the first or last frame changes."""
        listing = "\n".join(
            f"{f.name}\t{f.size}" for f in sorted(self._files, key=lambda f: f.name)
        )
        ends = [self.fs.cat_file(self._files[0].path), self.fs.cat_file(self._files[-1].path)]
        return _digest([listing.encode(), *ends])

    def close(self) -> None:
        """Nothing to release; here so both sources are used the same way."""

    def __enter__(self) -> FolderFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FolderFrames({self.uri!r}, n_frames={self.n_frames})"


def _check_index(index: int, n_frames: int, uri: str) -> None:
    if not 0 <= index < n_frames:
        raise IndexError(f"{uri}: frame {index} is outside 0..{n_frames - 1}")


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
        self.fs = _default_fs(fs)
        self.uri = path
        self.reduce = _check_reduce(reduce)
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
            local = os.path.join(self._tmpdir, _basename(self.uri))
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
        self._first = _grey_reduced(frame, self.reduce)
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
            _check_index(index, self.n_frames, self.uri)
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
            yield index, _grey_reduced(frame, self.reduce)

    @cached_property
    def fingerprint(self) -> str:
        """16 hex chars of sha256 over the file size and its first and last MiB."""
        size = int(self.fs.size(self.uri))
        head = self.fs.cat_file(self.uri, start=0, end=min(size, _FINGERPRINT_CHUNK))
        tail = self.fs.cat_file(self.uri, start=max(0, size - _FINGERPRINT_CHUNK), end=size)
        return _digest([str(size).encode(), head, tail])

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


Frames = FolderFrames | VideoFrames


def open_frames(
    path: str,
    fs: fsspec.AbstractFileSystem | None = None,
    fps: float | None = None,
    reduce: int = 1,
) -> Frames:
    """A folder -> FolderFrames, a file -> VideoFrames (``fps`` overrides the container's)."""
    fs = _default_fs(fs)
    if fs.isdir(path):
        return FolderFrames(path, fs=fs, fps=fps, reduce=reduce)
    if fs.isfile(path):
        return VideoFrames(path, fs=fs, fps=fps, reduce=reduce)
    raise FrameError(f"{path}: no such file or folder")

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

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise

# Unused here; kept so ``frames.cv2`` still reaches the cv2 module that decodes images
# (tests patch ``frames.cv2.imdecode``).
import cv2  # noqa: F401
import fsspec
import numpy as np

from pipeline.vision.frame_common import (
    REDUCE_FACTORS,
    FrameError,
    basename,
    check_index,
    check_reduce,
    decode_image,
    default_fs,
    digest,
    reduced_size,
)
from pipeline.vision.video_frames import VideoFrames

__all__ = [
    "IMAGE_EXTENSIONS",
    "REDUCE_FACTORS",
    "FolderFrames",
    "FrameError",
    "Frames",
    "VideoFrames",
    "decode_image",
    "open_frames",
    "reduced_size",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")
_MAX_LISTED = 5


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
        name = basename(entry["name"])
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
    # A folder has no timestamps: its frames are evenly spaced at the fps given.
    variable_rate = False

    def __init__(
        self,
        path: str,
        fs: fsspec.AbstractFileSystem | None = None,
        fps: float | None = None,
        reduce: int = 1,
    ) -> None:
        self.fs = default_fs(fs)
        self.uri = path
        self.fps = None if fps is None else float(fps)
        self.reduce = check_reduce(reduce)
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
        check_index(index, self.n_frames, self.uri)
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
        return digest([listing.encode(), *ends])

    def frame_times(self) -> np.ndarray | None:
        """Always None: frame i is at i / fps (``VideoFrames.frame_times`` has the array)."""
        return None

    def close(self) -> None:
        """Nothing to release; here so both sources are used the same way."""

    def __enter__(self) -> FolderFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FolderFrames({self.uri!r}, n_frames={self.n_frames})"


Frames = FolderFrames | VideoFrames


def open_frames(
    path: str,
    fs: fsspec.AbstractFileSystem | None = None,
    fps: float | None = None,
    reduce: int = 1,
) -> Frames:
    """A folder -> FolderFrames, a file -> VideoFrames (``fps`` overrides the container's)."""
    fs = default_fs(fs)
    if fs.isdir(path):
        return FolderFrames(path, fs=fs, fps=fps, reduce=reduce)
    if fs.isfile(path):
        return VideoFrames(path, fs=fs, fps=fps, reduce=reduce)
    raise FrameError(f"{path}: no such file or folder")

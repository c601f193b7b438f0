"""What both frame sources (frames.py, video_frames.py) share: FrameError, the reduce
factors, grey image decoding, and small fsspec, index and fingerprint helpers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import cv2
import fsspec
import numpy as np

REDUCE_FACTORS = (1, 2, 4, 8)
_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
_JPEG_FLAGS = {
    1: cv2.IMREAD_GRAYSCALE,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


class FrameError(Exception):
    """A frame source cannot be opened or a frame cannot be decoded.

    The message always names the file (and, for a frame, its index).
    """


def default_fs(fs: fsspec.AbstractFileSystem | None) -> fsspec.AbstractFileSystem:
    return fs if fs is not None else fsspec.filesystem("file")


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def check_reduce(reduce: int) -> int:
    if reduce not in REDUCE_FACTORS:
        raise ValueError(f"reduce must be one of {REDUCE_FACTORS}, got {reduce!r}")
    return reduce


def check_index(index: int, n_frames: int, uri: str) -> None:
    if not 0 <= index < n_frames:
        raise IndexError(f"{uri}: frame {index} is outside 0..{n_frames - 1}")


def reduced_size(width: int, height: int, reduce: int) -> tuple[int, int]:
    """(width, height) of a frame decoded at 1/``reduce`` size: libjpeg rounds up."""
    return -(-width // reduce), -(-height // reduce)


def grey_reduced(image: np.ndarray, reduce: int) -> np.ndarray:
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
    return image if is_jpeg else grey_reduced(image, reduce)


def digest(parts: Iterable[bytes]) -> str:
    """16 hex chars of sha256 over the length-prefixed ``parts``."""
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()[:16]

"""Pixels of the synthetic corpus: a subject's still face, and each frame rendered from it.

``base_face`` puts one of the photos in ``pipeline/assets`` (see SOURCES.md) on a
frame-sized canvas and says where its 68 landmarks are; ``FrameRenderer`` turns that
canvas into frame ``i`` of a video with one ``cv2.remap`` (the map is described in
``pipeline.synth.motion``) plus sensor noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources

import cv2
import numpy as np

from pipeline.synth.motion import BUMP_REACH, Bump, HeadMotion, SynthEvent, envelope

PHOTOS = (
    "0-f1-su-ph.jpg",
    "0-f15-hao-ph.jpg",
    "15-f13-anc-ph.jpg",
    "astronaut.jpg",
)
#: Faces no default corpus uses: a synthetic held-out set of people never trained or tuned on
#: (``SynthConfig.photos``; see pipeline/assets/SOURCES.md).
HELD_OUT_PHOTOS = ("heldout-multi_face.jpg", "heldout-2008_002506.jpg")
#: More faces for training corpora (``SynthConfig.photos``): five of them small in their photos
#: (73-105 px), so that a model also sees the blurred texture of a face upscaled from few pixels.
MORE_PHOTOS = (
    "45-m7-di-ph.jpg",
    "dlib-2008_001009-a.jpg",
    "dlib-2008_001009-b.jpg",
    "dlib-2008_001322-a.jpg",
    "dlib-2008_001322-b.jpg",
    "dlib-2008_001322-c.jpg",
    "dlib-2009_004587-a.jpg",
    "dlib-2009_004587-b.jpg",
)
FACE_HEIGHT = 0.55  # face box height / frame height
BACKGROUND = 128  # mid grey around the pasted photo

# --- base faces ----------------------------------------------------------------------------


def _mirror_permutation() -> list[int]:
    # iBUG 68 index of each point's mirror image: mirroring a face swaps left and right.
    perm = list(range(68))
    spans = [(0, 16), (17, 26), (31, 35)]  # jaw, brows, nose base: reversed runs
    for a, b in spans:
        for i in range(a, b + 1):
            perm[i] = a + b - i
    pairs = [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)]
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


MIRROR_68 = _mirror_permutation()


@cache
def _face_model():
    from pipeline.vision.face import FaceModel

    return FaceModel()


@cache
def _photo(name: str) -> tuple[np.ndarray, tuple[int, int, int, int], np.ndarray]:
    """(grey photo, face box (x0, y0, x1, y1), (68, 2) landmarks); detected once per process."""
    data = (resources.files("pipeline") / "assets" / name).read_bytes()
    grey = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise ValueError(f"cannot decode asset {name}")
    box, landmarks = _face_model().find(grey)
    return grey, (box.x0, box.y0, box.x1, box.y1), landmarks


def subject_variant(
    subject_index: int, photos: tuple[str, ...] = PHOTOS
) -> tuple[str, bool, float]:
    """(photo, mirrored, face scale) of the 0-based subject: the photos cycle; later rounds
    are mirrored every other time and rescaled by 4% steps (12 variants per photo, then repeats)."""
    photo = photos[subject_index % len(photos)]
    round_ = subject_index // len(photos)
    step = ((round_ + 1) // 2) % 6
    return photo, round_ % 2 == 1, 1.0 + 0.04 * step * (-1) ** step


@dataclass(frozen=True)
class BaseFace:
    """A subject's still face on a frame-sized canvas and its landmarks there."""

    canvas: np.ndarray  # (H, W) uint8
    landmarks: np.ndarray  # (68, 2) canvas pixels
    face_width: float
    photo: str
    mirrored: bool
    scale: float
    contrast: float = 1.0


def base_face(
    subject_index: int,
    width: int,
    height: int,
    photos: tuple[str, ...] = PHOTOS,
    size: float = 1.0,
    contrast: float = 1.0,
) -> BaseFace:
    """Scale the subject's photo (cycling through ``photos``) so the face box is FACE_HEIGHT
    x ``size`` of the frame, centre the face on a mid-grey canvas and feather the photo's
    edges into it; ``contrast`` < 1 pulls the photo's grey levels towards mid-grey."""
    photo, mirrored, scale = subject_variant(subject_index, photos)
    scale *= size
    grey, (x0, y0, x1, y1), lm = _photo(photo)
    h, w = grey.shape
    if mirrored:
        grey = np.ascontiguousarray(grey[:, ::-1])
        lm = lm[MIRROR_68] * (-1.0, 1.0) + (w - 1.0, 0.0)
        x0, x1 = w - x1, w - x0
    k = FACE_HEIGHT * height * scale / (y1 - y0)
    sw, sh = max(1, round(w * k)), max(1, round(h * k))
    resized = cv2.resize(grey, (sw, sh), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
    kx, ky = sw / w, sh / h
    # Paste so that the face box centre lands on the canvas centre (integer offset: no resampling).
    ox = round(width / 2 - (x0 + x1) / 2 * kx)
    oy = round(height / 2 - (y0 + y1) / 2 * ky)
    photo_layer = np.full((height, width), float(BACKGROUND), np.float32)
    mask = np.zeros((height, width), np.float32)
    cx0, cy0, cx1, cy1 = max(0, ox), max(0, oy), min(width, ox + sw), min(height, oy + sh)
    photo_layer[cy0:cy1, cx0:cx1] = resized[cy0 - oy : cy1 - oy, cx0 - ox : cx1 - ox]
    if contrast != 1.0:  # (not even a rounding change to faces at full contrast)
        photo_layer = BACKGROUND + contrast * (photo_layer - BACKGROUND)
    mask[cy0:cy1, cx0:cx1] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), 0.02 * height)  # no hard photo edge to track
    canvas = mask * photo_layer + (1.0 - mask) * BACKGROUND
    landmarks = (lm + 0.5) * (kx, ky) - 0.5 + (ox, oy)
    return BaseFace(
        np.clip(np.rint(canvas), 0, 255).astype(np.uint8),
        landmarks,
        (x1 - x0) * kx,
        photo,
        mirrored,
        scale,
        contrast,
    )


# --- rendering -----------------------------------------------------------------------------

NOISE_TILES = 8  # distinct noise tiles: frames up to 7 apart never share one
NOISE_PAD = 64  # tiles are this much larger than a frame; each frame reads a random offset


class FrameRenderer:
    """Renders frame ``i`` of one video: one cv2.remap of the canvas, then sensor noise.

    Fresh Gaussian noise for a 2040x1088 frame costs ~25 ms; instead each frame reads a
    random offset into one of NOISE_TILES precomputed tiles. Tiles rotate so that frames
    compared by optical flow (a few apart) never see a shifted copy of the same noise,
    which flow would read as motion. Rendering is random access: frame ``i`` depends
    only on ``i``.
    """

    def __init__(
        self,
        canvas: np.ndarray,
        events: list[SynthEvent],
        head: HeadMotion,
        noise_sigma: float,
        rng: np.random.Generator,
    ) -> None:
        if canvas.ndim != 2 or canvas.dtype != np.uint8:
            raise ValueError(f"canvas must be grey uint8 (H, W), got {canvas.dtype} {canvas.shape}")
        self.canvas = canvas
        self.head = head
        self.n_frames = len(head.scale)
        self.events = [e for e in events if e.bumps]
        self._active = np.full(self.n_frames, -1, dtype=np.int64)
        for k, e in enumerate(self.events):
            self._active[e.onset - 1 : e.offset] = k
        h, w = canvas.shape
        # float32 throughout: exact to ~1e-4 px at 2040 px, and half the memory traffic.
        self._xs = np.arange(w, dtype=np.float32)
        self._ys = np.arange(h, dtype=np.float32)
        self._mapx = np.empty((h, w), np.float32)
        self._mapy = np.empty((h, w), np.float32)
        self._noise: list[tuple[np.ndarray, np.ndarray]] = []
        if noise_sigma > 0:
            for _ in range(NOISE_TILES):
                n = np.rint(
                    rng.standard_normal((h + NOISE_PAD, w + NOISE_PAD), dtype=np.float32)
                    * noise_sigma
                )
                n = np.clip(n, -255, 255).astype(np.int16)
                # Saturating uint8 subtract-then-add of the two halves == clip(frame + n).
                self._noise.append(
                    (np.maximum(n, 0).astype(np.uint8), np.maximum(-n, 0).astype(np.uint8))
                )
        self._offsets = rng.integers(0, NOISE_PAD + 1, size=(self.n_frames, 2))

    def weight(self, index: int) -> tuple[SynthEvent | None, float]:
        """The event active at frame ``index`` (0-based) and its envelope there."""
        k = int(self._active[index])
        if k < 0:
            return None, 0.0
        e = self.events[k]
        return e, float(envelope(index + 1, e.onset, e.apex, e.offset))

    def maps(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(map_x, map_y) float32 (H, W) of frame ``index``; reused buffers, copy to keep."""
        inv = cv2.invertAffineTransform(self.head.matrix(index))
        xs, ys = self._xs, self._ys
        f32 = np.float32
        np.add(
            (f32(inv[0, 0]) * xs)[None, :],
            (f32(inv[0, 1]) * ys + f32(inv[0, 2]))[:, None],
            out=self._mapx,
        )
        np.add(
            (f32(inv[1, 0]) * xs)[None, :],
            (f32(inv[1, 1]) * ys + f32(inv[1, 2]))[:, None],
            out=self._mapy,
        )
        event, wgt = self.weight(index)
        if event is not None and wgt > 0:
            self._add_bumps(event.bumps, wgt, inv)
        return self._mapx, self._mapy

    def _add_bumps(self, bumps: tuple[Bump, ...], wgt: float, inv: np.ndarray) -> None:
        # Every bump is evaluated at the base (affine) canvas point of each output pixel,
        # computed afresh from ``inv`` so that overlapping patches do not see each
        # other's displacement.
        h, w = self._mapx.shape
        fwd = cv2.invertAffineTransform(inv)
        for b in bumps:
            px, py = fwd[:, :2] @ b.centre + fwd[:, 2]
            # Half extents of the bump's ellipse after the head's (small) rotation.
            sx, sy = b.sigma
            rx = BUMP_REACH * math.hypot(sx * fwd[0, 0], sy * fwd[0, 1]) + 2
            ry = BUMP_REACH * math.hypot(sx * fwd[1, 0], sy * fwd[1, 1]) + 2
            x0, x1 = max(0, int(px - rx)), min(w, int(px + rx) + 1)
            y0, y1 = max(0, int(py - ry)), min(h, int(py + ry) + 1)
            if x0 >= x1 or y0 >= y1:
                continue
            # (u - centre) / sigma along each canvas axis, as a row term plus a column term.
            f32, xs, ys = np.float32, self._xs[x0:x1], self._ys[y0:y1]
            k = np.sqrt(0.5)  # folds the 1/2 of the Gaussian's exponent into the terms
            ax, ay = k / sx, k / sy
            dx = (f32(ax * inv[0, 0]) * xs)[None, :] + (
                f32(ax * inv[0, 1]) * ys + f32(ax * (inv[0, 2] - b.centre[0]))
            )[:, None]
            dy = (f32(ay * inv[1, 0]) * xs)[None, :] + (
                f32(ay * inv[1, 1]) * ys + f32(ay * (inv[1, 2] - b.centre[1]))
            )[:, None]
            np.multiply(dx, dx, out=dx)
            np.multiply(dy, dy, out=dy)
            np.add(dx, dy, out=dx)
            g = np.exp(np.negative(dx, out=dx), out=dx)
            self._mapx[y0:y1, x0:x1] -= f32(wgt * b.vector[0]) * g
            self._mapy[y0:y1, x0:x1] -= f32(wgt * b.vector[1]) * g

    def render(self, index: int, out: np.ndarray | None = None) -> np.ndarray:
        """Frame ``index`` (0-based) as grey uint8 (H, W), written into ``out`` if given."""
        if not 0 <= index < self.n_frames:
            raise IndexError(f"frame index {index} outside 0..{self.n_frames - 1}")
        mapx, mapy = self.maps(index)
        out = cv2.remap(
            self.canvas, mapx, mapy, cv2.INTER_LINEAR, dst=out, borderMode=cv2.BORDER_REPLICATE
        )
        if self._noise:
            pos, neg = self._noise[index % NOISE_TILES]
            oy, ox = self._offsets[index]
            h, w = out.shape
            cv2.subtract(out, neg[oy : oy + h, ox : ox + w], dst=out)
            cv2.add(out, pos[oy : oy + h, ox : ox + w], dst=out)
        return out

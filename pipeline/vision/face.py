"""Face detection, 68 landmarks, eye-line alignment and regions of interest.

The paper (III-A): dlib's frontal face detector, dlib's 68-point landmarks, the face
aligned so the eyes lie on a horizontal line, landmarks refitted on the aligned face,
and boxes around the eyebrows and the mouth corners. The alignment of a window is
computed once from its first frame and applied to all of its frames.

Aligned-face coordinates: a ``face_width`` x ``face_width`` image in which the eye
centres sit at ``(left_eye_x, left_eye_y)`` and ``(1 - left_eye_x, left_eye_y)`` times
``face_width`` (imutils' FaceAligner layout). Only the regions are ever warped, never
whole frames, so the cost does not grow with the video's resolution.

Landmark indices are iBUG 68-point, image-left to image-right: 17-21 the brow on the
image's left (the subject's right), 22-26 the other brow, 36-41 and 42-47 the eyes,
48 and 54 the mouth corners.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: Landmarks each region is built around, and its padding as fractions of the face
#: width: (left, top, right, bottom). Eyebrows get room above for raises.
REGION_LANDMARKS: dict[str, tuple[tuple[int, ...], tuple[float, float, float, float]]] = {
    "eyebrows": (tuple(range(17, 27)), (0.04, 0.10, 0.04, 0.04)),
    "right_eyebrow": (tuple(range(17, 22)), (0.04, 0.10, 0.04, 0.04)),
    "left_eyebrow": (tuple(range(22, 27)), (0.04, 0.10, 0.04, 0.04)),
    # Brow parts, per side (AU1 lifts the inner ends, AU2 the outer, AU4 lowers and draws
    # in the inner ones): each half of a brow, sharing its middle landmark.
    "right_brow_outer": ((17, 18, 19), (0.04, 0.10, 0.0, 0.05)),
    "right_brow_inner": ((19, 20, 21), (0.0, 0.10, 0.04, 0.05)),
    "left_brow_inner": ((22, 23, 24), (0.04, 0.10, 0.0, 0.05)),
    "left_brow_outer": ((24, 25, 26), (0.0, 0.10, 0.04, 0.05)),
    "mouth_left": ((54,), (0.10, 0.10, 0.10, 0.10)),
    "mouth_right": ((48,), (0.10, 0.10, 0.10, 0.10)),
}
#: The head-motion reference: the lower nose ridge (landmarks 28-30), rigid with the skull
#: and still in expressions; its median flow is the head's own motion (FeatureConfig.stabilise).
NOSE_RIDGE: tuple[tuple[int, ...], tuple[float, float, float, float]] = (
    (28, 29, 30),
    (0.03, 0.0, 0.03, 0.0),
)
#: Longest side of the first, coarse face search (dlib finds faces of >= ~80 px there).
COARSE_SIDE = 320
RIGHT_EYE = slice(36, 42)  # image left
LEFT_EYE = slice(42, 48)  # image right


class NoFace(Exception):
    """No usable face in a frame; the message says why."""


@dataclass(frozen=True, slots=True)
class Box:
    """Pixel box ``[x0, x1) x [y0, y1)``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def _predictor_path() -> str:
    import face_recognition_models

    return face_recognition_models.pose_predictor_model_location()


class FaceModel:
    """dlib detector + 68-point predictor, loaded once and reused for every frame.

    Detection runs on a copy of the frame shrunk so that its longest side is at most
    ``detect_max_side`` pixels (the cost of dlib's HOG detector grows with the pixel
    count); the box is scaled back to the full frame, where landmarks are fitted.
    """

    def __init__(self, detect_max_side: int = 640, upsample: int = 0) -> None:
        import dlib

        self.detect_max_side = detect_max_side
        self.upsample = upsample
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(_predictor_path())

    def detect(self, grey: np.ndarray) -> Box:
        """The largest face in ``grey`` (H, W) uint8, in full-frame pixels; NoFace if none.

        Two looks, both from this frame alone (so a window's features never depend on
        which windows were processed before it): a coarse search on a copy shrunk to
        ``COARSE_SIDE`` px, then a search around what it found at a scale where the face
        is ~160 px wide, which places the box as well as a full-size search at a fraction
        of its cost. When the coarse look finds nothing (a small face), the whole frame is
        searched shrunk to ``detect_max_side``.
        """
        _check_grey(grey)
        h, w = grey.shape
        whole = Box(0, 0, w, h)
        coarse = self._detect_in(grey, whole, min(1.0, COARSE_SIDE / max(h, w)))
        if coarse is not None:
            mx, my = coarse.width // 2, coarse.height // 2
            region = Box(
                max(0, coarse.x0 - mx),
                max(0, coarse.y0 - my),
                min(w, coarse.x1 + mx),
                min(h, coarse.y1 + my),
            )
            box = self._detect_in(grey, region, min(1.0, 160 / max(coarse.width, 1)))
            if box is not None:
                return box
        box = self._detect_in(grey, whole, min(1.0, self.detect_max_side / max(h, w)))
        if box is None:
            raise NoFace("no face detected")
        return box

    def _detect_in(self, grey: np.ndarray, region: Box, scale: float) -> Box | None:
        """Largest face inside ``region``, searched at ~``scale``, in full-frame pixels.

        The region is shrunk by a whole factor k >= 1/scale: OpenCV's area resize takes a
        fast path for whole factors (0.13 ms for 2040x1088 -> 1/2, against 4.8 ms for a
        fractional factor), which matters at five detections per second of video.
        """
        k = max(1, math.ceil(1.0 / scale - 1e-9))
        h, w = (region.height // k) * k, (region.width // k) * k
        if h < k or w < k:
            return None
        img = grey[region.y0 : region.y0 + h, region.x0 : region.x0 + w]
        if k > 1:
            img = cv2.resize(img, (w // k, h // k), interpolation=cv2.INTER_AREA)
        rects, _scores, _ = self._detector.run(np.ascontiguousarray(img), self.upsample, 0.0)
        if not rects:
            return None
        r = max(rects, key=lambda r: r.width() * r.height())
        return Box(
            region.x0 + r.left() * k,
            region.y0 + r.top() * k,
            region.x0 + (r.right() + 1) * k,
            region.y0 + (r.bottom() + 1) * k,
        )

    def landmarks(self, grey: np.ndarray, box: Box) -> np.ndarray:
        """The 68 landmarks (68, 2) float64 (x, y) of the face in ``box``."""
        _check_grey(grey)
        rect = self._dlib.rectangle(box.x0, box.y0, box.x1 - 1, box.y1 - 1)
        shape = self._predictor(np.ascontiguousarray(grey), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)

    def find(self, grey: np.ndarray) -> tuple[Box, np.ndarray]:
        """Detect the face (see ``detect``) and fit its landmarks: (box, (68, 2) landmarks)."""
        box = self.detect(grey)
        return box, self.landmarks(grey, box)


def _check_grey(grey: np.ndarray) -> None:
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError(f"expected a grey uint8 (H, W) image, got {grey.dtype} {grey.shape}")


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image-left eye centre, image-right eye centre) from 68 landmarks."""
    return landmarks[RIGHT_EYE].mean(axis=0), landmarks[LEFT_EYE].mean(axis=0)


def eye_line_angle(landmarks: np.ndarray) -> float:
    """Angle of the line from the image-left eye to the image-right eye, in degrees."""
    a, b = eye_centres(landmarks)
    return float(np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0])))


def similarity_from_points(p1, p2, q1, q2) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, translation) taking p1->q1 and p2->q2."""
    p1, p2, q1, q2 = (complex(*np.asarray(v, dtype=np.float64)) for v in (p1, p2, q1, q2))
    if p1 == p2:
        raise NoFace("degenerate landmarks: both eyes at the same point")
    a = (q2 - q1) / (p2 - p1)
    b = q1 - a * p1
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], dtype=np.float64)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    return points @ matrix[:, :2].T + matrix[:, 2]


@dataclass(frozen=True)
class Alignment:
    """A window's eye-line similarity: source-frame pixels -> aligned-face pixels."""

    matrix: np.ndarray  # (2, 3) float64
    face_width: int

    @classmethod
    def from_landmarks(
        cls,
        landmarks: np.ndarray,
        face_width: int = 256,
        left_eye_x: float = 0.35,
        left_eye_y: float = 0.35,
    ) -> Alignment:
        a, b = eye_centres(landmarks)
        q1 = (left_eye_x * face_width, left_eye_y * face_width)
        q2 = ((1.0 - left_eye_x) * face_width, left_eye_y * face_width)
        return cls(similarity_from_points(a, b, q1, q2), face_width)

    @property
    def scale(self) -> float:
        """How many aligned pixels one source pixel becomes."""
        return float(np.hypot(self.matrix[0, 0], self.matrix[1, 0]))

    def warp(self, frame: np.ndarray, box: Box | None = None) -> np.ndarray:
        """The aligned face (or only ``box`` of it): (box.height, box.width) like ``frame``."""
        box = box or Box(0, 0, self.face_width, self.face_width)
        m = self.matrix.copy()
        m[:, 2] -= (box.x0, box.y0)
        return cv2.warpAffine(
            frame,
            m,
            (box.width, box.height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )


def region_boxes(landmarks: np.ndarray, regions: tuple[str, ...], face_width: int) -> list[Box]:
    """A box per region around its landmarks (aligned-face coordinates), padded, >= 8 px."""
    boxes = []
    for name in regions:
        try:
            idx, pads = REGION_LANDMARKS[name]
        except KeyError:
            raise ValueError(
                f"unknown region {name!r}; known: {sorted(REGION_LANDMARKS)}"
            ) from None
        boxes.append(landmark_box(landmarks, idx, pads, face_width, name))
    return boxes


def landmark_box(
    landmarks: np.ndarray,
    idx: tuple[int, ...],
    pads: tuple[float, float, float, float],
    face_width: int,
    name: str,
) -> Box:
    """The box around ``landmarks[idx]`` padded by ``pads`` (left, top, right, bottom, in face
    widths); NoFace when it is under 8 px a side."""
    pl, pt, pr, pb = pads
    pts = landmarks[list(idx)]
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    box = Box(
        int(np.floor(x0 - pl * face_width)),
        int(np.floor(y0 - pt * face_width)),
        int(np.ceil(x1 + pr * face_width)) + 1,
        int(np.ceil(y1 + pb * face_width)) + 1,
    )
    if box.width < 8 or box.height < 8:
        raise NoFace(f"region {name} is only {box.width}x{box.height} px")
    return box


@dataclass(frozen=True)
class WindowFace:
    """What a window needs from its first frame: the alignment and its region boxes."""

    alignment: Alignment
    boxes: list[Box]
    landmarks: np.ndarray  # (68, 2) refitted, aligned-face coordinates
    box: Box  # the detected face in source-frame pixels
    reference: Box | None = None  # the nose ridge, for head-motion compensation
    aligned: np.ndarray | None = None  # the first frame's aligned face (face_width square)

    def crops(self, frame: np.ndarray) -> list[np.ndarray]:
        """Each region of ``frame`` warped into aligned-face pixels."""
        return [self.alignment.warp(frame, b) for b in self.boxes]

    @property
    def union(self) -> Box:
        """The smallest box holding every region and the reference (aligned-face pixels)."""
        boxes = [*self.boxes, *([self.reference] if self.reference is not None else [])]
        return Box(
            min(b.x0 for b in boxes),
            min(b.y0 for b in boxes),
            max(b.x1 for b in boxes),
            max(b.y1 for b in boxes),
        )

    def region_slices(self) -> list[tuple[slice, slice]]:
        """(rows, cols) of each region inside an image of the ``union`` box."""
        return [self._slice(b) for b in self.boxes]

    def reference_slice(self) -> tuple[slice, slice] | None:
        """(rows, cols) of the reference inside an image of the ``union`` box (None: none)."""
        return None if self.reference is None else self._slice(self.reference)

    def _slice(self, b: Box) -> tuple[slice, slice]:
        u = self.union
        return slice(b.y0 - u.y0, b.y1 - u.y0), slice(b.x0 - u.x0, b.x1 - u.x0)


def locate_window_face(
    model: FaceModel,
    first_frame: np.ndarray,
    regions: tuple[str, ...],
    face_width: int = 256,
    left_eye_x: float = 0.35,
    left_eye_y: float = 0.35,
    reference: bool = False,
    found: tuple[Box, np.ndarray] | None = None,
) -> WindowFace:
    """Detect, fit, align on the eye line, refit on the aligned face, box the regions (and,
    with ``reference``, the nose ridge). ``found``: the face's box and landmarks in
    ``first_frame`` already (pipeline.vision.anchors), detection skipped.

    Raises NoFace with the reason when any step fails.
    """
    box, landmarks = model.find(first_frame) if found is None else found
    alignment = Alignment.from_landmarks(landmarks, face_width, left_eye_x, left_eye_y)
    aligned = alignment.warp(first_frame)
    corners = np.array(
        [(box.x0, box.y0), (box.x1, box.y0), (box.x0, box.y1), (box.x1, box.y1)], dtype=np.float64
    )
    tc = transform_points(alignment.matrix, corners)
    (ax0, ay0), (ax1, ay1) = tc.min(axis=0), tc.max(axis=0)
    aligned_box = Box(int(ax0), int(ay0), int(np.ceil(ax1)), int(np.ceil(ay1)))
    refit = model.landmarks(aligned, aligned_box)
    ref = landmark_box(refit, *NOSE_RIDGE, face_width, "nose ridge") if reference else None
    boxes = region_boxes(refit, regions, face_width)
    return WindowFace(alignment, boxes, refit, box, ref, aligned)

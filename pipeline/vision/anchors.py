"""Faces detected on anchor windows only; the windows between fit theirs from the anchor's.

dlib's detector is the costliest step after decoding (two looks, ~15 ms a window at
2040x1088), while fitting the 68 landmarks from a given box costs ~1 ms. With
``FeatureConfig.detect_every`` = K, window i's anchor is window i - i % K. The face is
detected on the anchor's first frame; every other window of its group fits its landmarks
on its own first frame from the anchor's box, moves (and scales) the box as far as its
landmarks moved, and is aligned and refitted from there as a detected face is
(pipeline.vision.face.locate_window_face). A fit is kept only if it passes a check that
depends on the two frames alone: the landmarks moved less than TRACK_SHIFT box widths,
their spread changed less than TRACK_SCALE, and the aligned face still correlates with
the anchor's aligned face (normalised cross-correlation >= TRACK_NCC). Otherwise, or when
the anchor has no face (or its first frame cannot be read), the window detects on its own
first frame, as every window does with K = 1.

A window's face depends on its own first frame and its anchor's first frame only, never
on which windows a worker processed before it or how a video was split into chunks: a
chunk that does not hold a window's anchor is told the anchor's first frame
(``anchor_starts``) and reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.core.windows import Window
from pipeline.vision.face import Box, FaceModel, NoFace, WindowFace

#: The landmarks' centroid may move this many anchor box widths from the anchor's.
TRACK_SHIFT = 0.15
#: The landmarks' spread (RMS distance from their centroid) may change by this fraction.
TRACK_SCALE = 0.1
#: The aligned face must correlate at least this well with the anchor's (normalised).
TRACK_NCC = 0.8
#: Moved more than this many box widths, the landmarks are fitted again from the moved box.
REFIT_SHIFT = 0.02

#: locate_window_face with the config's settings bound: (model, frame, found=...) -> face.
Locate = Callable[..., WindowFace]


@dataclass(frozen=True)
class Anchor:
    """What a group's windows take from their anchor's first frame."""

    box: Box  # the detected face, source-frame pixels
    landmarks: np.ndarray  # (68, 2) fitted in the source frame
    face: WindowFace  # the anchor window's own face


def anchor_index(index: int, every: int) -> int:
    """The index of window ``index``'s anchor: the first of its group of ``every``."""
    return index - index % every


def anchor_starts(windows: Sequence[Window], chunk: Sequence[Window], every: int) -> dict[int, int]:
    """{anchor index: its first frame} for the anchors of ``chunk``'s windows (``windows``:
    every window of the video)."""
    starts = {w.index: w.start for w in windows}
    return {a: starts[a] for a in sorted({anchor_index(w.index, every) for w in chunk})}


def find_anchor(model: FaceModel, frame: np.ndarray, locate: Locate) -> Anchor | NoFace:
    """The anchor of ``frame`` (its detected face), or NoFace saying why there is none."""
    try:
        box, landmarks = model.find(frame)
        return Anchor(box, landmarks, locate(model, frame, found=(box, landmarks)))
    except NoFace as e:
        return e


def track(model: FaceModel, frame: np.ndarray, anchor: Anchor, locate: Locate) -> WindowFace | None:
    """The face of ``frame`` fitted from ``anchor``'s box; None when the fit fails the check
    (the window then detects its own face)."""
    ref = anchor.landmarks
    pts = model.landmarks(frame, anchor.box)
    shift = pts.mean(axis=0) - ref.mean(axis=0)
    scale = _spread(pts) / _spread(ref)
    width = anchor.box.width
    if np.hypot(*shift) > TRACK_SHIFT * width or abs(np.log(scale)) > TRACK_SCALE:
        return None
    box = _moved(anchor.box, shift, scale)
    if np.hypot(*shift) > REFIT_SHIFT * width or abs(np.log(scale)) > REFIT_SHIFT:
        pts = model.landmarks(frame, box)
    try:
        face = locate(model, frame, found=(box, pts))
    except NoFace:
        return None
    return face if _correlation(face.aligned, anchor.face.aligned) >= TRACK_NCC else None


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two images of one shape (1: equal up to gain and
    offset; 0: a flat image)."""
    x, y = a.astype(np.float32), b.astype(np.float32)
    x -= x.mean()
    y -= y.mean()
    den = float(np.sqrt(np.dot(x.ravel(), x.ravel()) * np.dot(y.ravel(), y.ravel())))
    return float(np.dot(x.ravel(), y.ravel())) / den if den > 0 else 0.0


def _spread(points: np.ndarray) -> float:
    return float(np.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=1).mean())) or 1.0


def _moved(box: Box, shift: np.ndarray, scale: float) -> Box:
    """``box`` moved by ``shift`` and scaled by ``scale`` about its centre."""
    cx, cy = (box.x0 + box.x1) / 2 + shift[0], (box.y0 + box.y1) / 2 + shift[1]
    hw, hh = box.width * scale / 2, box.height * scale / 2
    return Box(round(cx - hw), round(cy - hh), round(cx + hw), round(cy + hh))


class WindowFaces:
    """Each window's face, by anchors (see the module): the current anchor kept, one at a
    time, so memory stays flat."""

    def __init__(
        self, model: FaceModel, locate: Locate, every: int, starts: Mapping[int, int]
    ) -> None:
        self.model, self.locate, self.every = model, locate, every
        self.starts = dict(starts)
        self._index: int | None = None
        self._anchor: Anchor | NoFace | None = None

    def needs(self, window: Window) -> int | None:
        """The first frame of ``window``'s anchor when it is still to be found, else None."""
        a = anchor_index(window.index, self.every)
        if self.every == 1 or a == self._index:
            return None
        if a == window.index:
            return window.start
        if a not in self.starts:
            raise ValueError(
                f"window {window.index}: its anchor, window {a}, is not among the windows "
                "given and its first frame was not given (anchor_starts)"
            )
        return self.starts[a]

    def set_anchor(self, window: Window, frame: np.ndarray | Exception) -> None:
        """Find the anchor of ``window``'s group on ``frame`` (an exception: unreadable)."""
        a = anchor_index(window.index, self.every)
        if isinstance(frame, Exception):
            self._index, self._anchor = a, NoFace(f"anchor frame unreadable: {frame}")
        else:
            self._index, self._anchor = a, find_anchor(self.model, frame, self.locate)

    def face(self, window: Window, first_frame: np.ndarray) -> WindowFace:
        """``window``'s face (NoFace with the reason when it has none)."""
        anchor = self._anchor if self.every > 1 else None
        if anchor is not None and anchor_index(window.index, self.every) == window.index:
            if isinstance(anchor, NoFace):
                raise anchor
            return anchor.face
        if isinstance(anchor, Anchor):
            face = track(self.model, first_frame, anchor, self.locate)
            if face is not None:
                return face
        return self.locate(self.model, first_frame)

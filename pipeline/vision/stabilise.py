"""Head-motion compensation: the head's own motion taken out of a window's flow fields.

Two ways (``FeatureConfig.stabilise``):

- ``"nose"``: per timestep, the median flow of the lower nose ridge (rigid with the skull,
  still in expressions) is subtracted from the whole field. It removes a translation, not a
  turn or a tilt: a rotating head still moves the brows' outer ends and the mouth corners.
- ``"similarity"``: per timestep, a similarity motion (rotation, scale, shift) is fitted to
  the whole field by least median of squares (OpenCV's ``estimateAffinePartial2D`` with
  LMEDS, on a grid of points) and subtracted. Facial actions move a minority of the face,
  which the robust fit ignores, so a head that drifts, turns in the image plane or comes
  closer shows as no motion while a brow or mouth corner moving on it is kept.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Points of the similarity fit: one every this many pixels of the field, each way.
GRID_STEP = 6


def subtract_median(flows: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """Subtract from ``flows`` (T, H, W, 2), in place, each timestep's median flow inside
    ``[rows, cols]``; returns ``flows``."""
    flows -= np.median(flows[:, rows, cols], axis=(1, 2), keepdims=True)
    return flows


def fit_similarity(flow: np.ndarray, step: int = GRID_STEP) -> np.ndarray:
    """The 2x3 similarity matrix fitted robustly (LMEDS) to ``flow`` (H, W, 2): points on
    a grid every ``step`` pixels move from where they are to where the flow takes them.
    The identity when the fit is degenerate (too few points)."""
    h, w, _ = flow.shape
    ys, xs = np.mgrid[step // 2 : h : step, step // 2 : w : step]
    src = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    dst = src + flow[ys.ravel(), xs.ravel()].astype(np.float32)
    # LMEDS draws random subsets from OpenCV's per-thread generator: seeded here, a fit
    # depends on its field only, not on how many fits the thread did before (features must
    # not depend on how videos are split into chunks and workers).
    cv2.setRNGSeed(0)
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    return np.eye(2, 3) if matrix is None else matrix


def _fields(matrices: np.ndarray, h: int, w: int) -> np.ndarray:
    """(T, H, W, 2) flows of (T, 2, 3) affine matrices: ``M @ (x, y, 1) - (x, y)``."""
    gx = np.arange(w, dtype=np.float32)[None, None, :]
    gy = np.arange(h, dtype=np.float32)[None, :, None]
    m = matrices.astype(np.float32)[:, :, :, None, None]  # (T, 2, 3, 1, 1)
    dx = (m[:, 0, 0] - 1) * gx + m[:, 0, 1] * gy + m[:, 0, 2]
    dy = m[:, 1, 0] * gx + (m[:, 1, 1] - 1) * gy + m[:, 1, 2]
    return np.stack([dx, dy], axis=-1)


def subtract_similarity(flows: np.ndarray, step: int = GRID_STEP) -> np.ndarray:
    """Subtract from ``flows`` (T, H, W, 2), in place, each timestep's fitted similarity
    motion; returns ``flows``."""
    _, h, w, _ = flows.shape
    matrices = np.stack([fit_similarity(f, step) for f in flows])
    flows -= _fields(matrices, h, w)
    return flows

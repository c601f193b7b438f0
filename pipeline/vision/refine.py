"""Cell flow refined by a least-squares fit over each cell (Lucas-Kanade with a gain).

A cell's mean of dense flow (pipeline.vision.hoof.cell_means) inherits the dense method's
bias on sub-pixel movements: DIS's "fast" preset estimates patches on a half-resolution
level and smooths them, so a 0.3 px lift of part of a region comes out smaller than it
is. One Gauss-Newton step over the whole cell, at full resolution, from that mean removes
most of it (Lucas-Kanade over the cell): the second frame is sampled at the cell's mean
displacement and the residual displacement is the least-squares solution of

    I1(x + d + delta) = (1 + g) I0(x) + b    over the cell's pixels,

linearised in ``delta`` with the gradient of I0 (two unknowns), with a gain ``g`` and a
bias ``b`` so a change of exposure is not read as motion. Hundreds of pixels vote on two
numbers, so the estimate's noise is small, and it is unbiased to first order where the
dense mean is not. Both images are blurred a little first (BLUR): central differences
overstate the gradient of the finest detail (their gain falls to 2/pi at half the Nyquist
rate), and the blur cuts the noise too. After that blur, neighbouring pixels say nearly
the same thing, so the sums may run over every other pixel in both directions (``stride``
2: the same precision at a quarter of the pixels; tests/pipeline/vision/test_refine.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.vision.hoof import cell_edges

#: Ridge added to the diagonal of the normal equations (cell means; times 1e4 on the
#: gain, whose column holds grey levels): a flat cell (no gradient) keeps the dense mean
#: (residual 0) instead of an unstable solution.
RIDGE = 1e-4
#: Gaussian blur (sigma, px) of both images before the fit.
BLUR = 1.0


def refine_cells(
    prev: np.ndarray,
    nxt: np.ndarray,
    region: tuple[slice, slice],
    start: np.ndarray,
    stride: int = 1,
) -> np.ndarray:
    """Residual displacement (cells, cells, 2) of each cell of ``region`` beyond ``start``
    (cells, cells, 2), from grey image ``prev`` to ``nxt``: refine_window for one pair."""
    one = refine_window(
        [prev, nxt], np.array([0]), np.array([1]), [region], start[None, None], stride
    )
    return one[0, 0]


def refine_window(
    images: list[np.ndarray],
    refs: np.ndarray,
    ends: np.ndarray,
    regions: list[tuple[slice, slice]],
    starts: np.ndarray,
    stride: int = 1,
) -> np.ndarray:
    """What to add to each cell's mean displacement: (T, R, cells, cells, 2) float32.

    Args:
        images: grey images of one shape (a window's aligned crops).
        refs, ends: timestep k's displacement runs from ``images[refs[k]]`` to
            ``images[ends[k]]``.
        regions: R (rows, cols) slices inside the images.
        starts: (T, R, cells, cells, 2) each cell's mean displacement (dx, dy) so far, in
            pixels, unstabilised (the images' own motion).
        stride: the sums run over every ``stride``-th pixel of a cell, in both directions
            (the images are blurred first, so neighbours say nearly the same thing).

    Raises ValueError when a region is too small for its cells. The whole window is a few
    array operations over the regions' pixels, laid out cell after cell (``_layout``): one
    blur of the images, one remap for every timestep and region, and each cell's sums as
    one ``reduceat``.
    """
    refs, ends = np.asarray(refs), np.asarray(ends)
    n_t, n_r, cells = starts.shape[:3]
    used = np.unique(np.concatenate([refs, ends]))
    blurred = _blurred([images[i] for i in used])  # (N, H, W)
    _, height, width = blurred.shape
    lay = _layout(height, width, tuple(_bounds(r, height, width) for r in regions), cells, stride)
    uniq, which = np.unique(refs, return_inverse=True)
    # (3, U, P): each reference's gradient and values at the regions' pixels, cell after
    # cell: f = (gx, gy, -I0, -1) are the columns of the unknowns dx, dy, gain and bias.
    f = _at_pixels(blurred[np.searchsorted(used, uniq)], lay)
    normal = _normal_matrices(f, lay)  # (U, K, 4, 4), its ridge apart
    warped = _warped(blurred[np.searchsorted(used, ends)], starts, lay)  # (T, P)
    e = -f[2, which] - warped  # (T, P): I0 - I1 at the start
    prods = np.empty((4, *e.shape), np.float32)
    np.multiply(f[:, which], e, out=prods[:3])
    np.negative(e, out=prods[3])
    rhs = np.moveaxis(lay.mean(prods), 0, -1)  # (T, K, 4): the means of f_i e
    normal[..., np.arange(4), np.arange(4)] += RIDGE * np.array([1.0, 1.0, 1e4, 1.0])
    u = np.linalg.solve(normal[which], rhs[..., None])
    return u[..., :2, 0].reshape(n_t, n_r, cells, cells, 2).astype(np.float32)


@dataclass(frozen=True)
class _Layout:
    """The regions' pixels in one flat order, cell after cell (region by region, each
    region's cells row by row): their and their neighbours' indices in a flattened image
    (edges replicated), their coordinates, their cells, and each cell's first pixel and
    size."""

    around: np.ndarray  # (5, P) flat indices: the pixel, left, right, above, below
    ys: np.ndarray
    xs: np.ndarray
    cell: np.ndarray  # (P,) each pixel's cell, 0..K-1
    first: np.ndarray  # (K,) each cell's first pixel
    count: np.ndarray  # (K,) float32, each cell's pixels

    def mean(self, x: np.ndarray) -> np.ndarray:
        """(..., K) each cell's mean of ``x`` (..., P)."""
        return np.add.reduceat(x, self.first, axis=-1) / self.count


def _bounds(region: tuple[slice, slice], height: int, width: int) -> tuple[int, int, int, int]:
    rows, cols = region
    return (*rows.indices(height)[:2], *cols.indices(width)[:2])


@functools.lru_cache(maxsize=64)
def _layout(height: int, width: int, bounds: tuple, cells: int, stride: int = 1) -> _Layout:
    labels, ys, xs = [], [], []
    for k, (r0, r1, c0, c1) in enumerate(bounds):
        if r1 - r0 < 2 * cells or c1 - c0 < 2 * cells:
            raise ValueError(f"cannot refine a {r1 - r0}x{c1 - c0} region in {cells}x{cells} cells")
        y, x = np.arange(r0, r1, stride), np.arange(c0, c1, stride)
        row = np.searchsorted(cell_edges(r1 - r0, cells)[1:], y - r0, side="right")
        col = np.searchsorted(cell_edges(c1 - c0, cells)[1:], x - c0, side="right")
        labels.append(((k * cells + row)[:, None] * cells + col).ravel())
        ys.append(np.repeat(y, len(x)))
        xs.append(np.tile(x, len(y)))
    label = np.concatenate(labels)
    order = np.argsort(label, kind="stable")  # cell after cell, each cell's rows in order
    y, x, cell = np.concatenate(ys)[order], np.concatenate(xs)[order], label[order]
    count = np.bincount(cell, minlength=len(bounds) * cells * cells)
    lay = _Layout(
        around=np.stack(
            [
                y * width + x,
                y * width + np.maximum(x - 1, 0),
                y * width + np.minimum(x + 1, width - 1),
                np.maximum(y - 1, 0) * width + x,
                np.minimum(y + 1, height - 1) * width + x,
            ]
        ),
        ys=y.astype(np.float32),
        xs=x.astype(np.float32),
        cell=cell,
        first=np.concatenate([[0], np.cumsum(count)[:-1]]),
        count=count.astype(np.float32),
    )
    for a in vars(lay).values():  # shared by every window of its geometry (the cache)
        a.flags.writeable = False
    return lay


def _blurred(images: list[np.ndarray]) -> np.ndarray:
    """(N, H, W) float32: each image blurred by a Gaussian of sigma BLUR, edges replicated."""
    out = np.empty((len(images), *np.shape(images[0])), np.float32)
    for k, img in enumerate(images):
        src = np.asarray(img, np.float32)
        cv2.GaussianBlur(src, (0, 0), BLUR, dst=out[k], borderType=cv2.BORDER_REPLICATE)
    return out


def _at_pixels(images: np.ndarray, lay: _Layout) -> np.ndarray:
    """(3, U, P): the images' central differences along x and y (edges replicated, as
    OpenCV's 1-tap Sobel halved) and their values negated, at the layout's pixels."""
    px = np.take(images.reshape(len(images), -1), lay.around, axis=1)  # (U, 5, P)
    out = np.empty((3, len(images), px.shape[2]), np.float32)
    np.subtract(px[:, 2], px[:, 1], out=out[0])
    np.subtract(px[:, 4], px[:, 3], out=out[1])
    out[:2] *= np.float32(0.5)
    np.negative(px[:, 0], out=out[2])
    return out


def _normal_matrices(f: np.ndarray, lay: _Layout) -> np.ndarray:
    """(U, K, 4, 4) float64: per reference and cell, the means of f_i f_j over the cell's
    pixels for f = (gx, gy, -I0, -1) (``f`` holds the first three, (3, U, P)): the normal
    equations, without their ridge. Means in float32 move the solution by under 1e-4 px."""
    pairs = [(i, j) for i in range(3) for j in range(i, 3)]
    prods = np.empty((len(pairs) + 3, *f.shape[1:]), np.float32)
    for k, (i, j) in enumerate(pairs):
        np.multiply(f[i], f[j], out=prods[k])
    np.negative(f, out=prods[len(pairs) :])  # f_i times the bias's -1
    means = lay.mean(prods)
    a = np.empty((*means.shape[1:], 4, 4))
    for k, (i, j) in enumerate([*pairs, (0, 3), (1, 3), (2, 3)]):
        a[..., i, j] = a[..., j, i] = means[k]
    a[..., 3, 3] = 1.0
    return a


def _warped(ends: np.ndarray, starts: np.ndarray, lay: _Layout) -> np.ndarray:
    """(T, P): timestep k's second image ``ends[k]`` sampled at each pixel plus its cell's
    displacement (``starts``, (T, R, cells, cells, 2)), bilinearly. The images are stacked
    one above the other and coordinates clamped inside each (its nearest edge, as
    BORDER_REPLICATE would), so one remap serves every timestep and region."""
    n_t, height, width = ends.shape
    d = np.take(starts.reshape(n_t, -1, 2).astype(np.float32), lay.cell, axis=1)  # (T, P, 2)
    mx = np.clip(lay.xs + d[..., 0], 0, width - 1)
    my = np.clip(lay.ys + d[..., 1], 0, height - 1)
    my += (np.arange(n_t, dtype=np.float32) * height)[:, None]
    # remap is pointwise: the maps' shape is free, so rows of at most 4096 points keep
    # them within OpenCV's limits on a map's size.
    size, cols = mx.size, min(mx.size, 4096)
    pad = -size % cols
    mx, my = (np.pad(m.ravel(), (0, pad)).reshape(-1, cols) for m in (mx, my))
    tall = ends.reshape(n_t * height, width)
    out = cv2.remap(tall, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.ravel()[:size].reshape(n_t, -1)

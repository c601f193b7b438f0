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
rate), and the blur cuts the noise too.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.vision.hoof import cell_averagers, cell_edges

#: Ridge added to the diagonal of the normal equations (cell means; times 1e4 on the
#: gain, whose column holds grey levels): a flat cell (no gradient) keeps the dense mean
#: (residual 0) instead of an unstable solution.
RIDGE = 1e-4
#: Gaussian blur (sigma, px) of both images before the fit.
BLUR = 1.0


def refine_cells(
    prev: np.ndarray, nxt: np.ndarray, region: tuple[slice, slice], start: np.ndarray
) -> np.ndarray:
    """Residual displacement (cells, cells, 2) of each cell of ``region`` beyond ``start``
    (cells, cells, 2), from grey image ``prev`` to ``nxt``: refine_window for one pair."""
    one = refine_window([prev, nxt], np.array([0]), np.array([1]), [region], start[None, None])
    return one[0, 0]


def refine_window(
    images: list[np.ndarray],
    refs: np.ndarray,
    ends: np.ndarray,
    regions: list[tuple[slice, slice]],
    starts: np.ndarray,
) -> np.ndarray:
    """What to add to each cell's mean displacement: (T, R, cells, cells, 2) float32.

    Args:
        images: grey images of one shape (a window's aligned crops).
        refs, ends: timestep k's displacement runs from ``images[refs[k]]`` to
            ``images[ends[k]]``.
        regions: R (rows, cols) slices inside the images.
        starts: (T, R, cells, cells, 2) each cell's mean displacement (dx, dy) so far, in
            pixels, unstabilised (the images' own motion).

    Each image is blurred once and each reference's gradient taken once; per timestep and
    region it costs one remap and the cells' sums.
    """
    edge = cv2.BORDER_REPLICATE  # pixels sampled outside an image take its nearest edge
    refs, ends = np.asarray(refs).tolist(), np.asarray(ends).tolist()
    blurred = {
        i: cv2.GaussianBlur(np.asarray(images[i], np.float32), (0, 0), BLUR, borderType=edge)
        for i in {*refs, *ends}
    }
    uniq = sorted(set(refs))
    # Central differences (OpenCV's 1-tap Sobel, halved), of each reference.
    gx = {a: cv2.Sobel(blurred[a], -1, 1, 0, ksize=1, scale=0.5, borderType=edge) for a in uniq}
    gy = {a: cv2.Sobel(blurred[a], -1, 0, 1, ksize=1, scale=0.5, borderType=edge) for a in uniq}
    which = np.array([uniq.index(a) for a in refs])
    tall = np.concatenate([blurred[b] for b in ends])  # the second images, stacked
    shape = blurred[ends[0]].shape
    out = np.empty(starts.shape, np.float32)
    for j, (rows, cols) in enumerate(regions):
        f = [np.stack([g[a][rows, cols] for a in uniq]) for g in (gx, gy)]
        i0 = np.stack([blurred[a][rows, cols] for a in uniq])
        f += [-i0, -np.ones_like(i0)]  # (U, h, w) each: the unknowns dx, dy, g, b
        cell_mean = _cell_mean(*i0.shape[1:], starts.shape[2])
        normal = _normal_matrices(f, cell_mean)  # (U, cells, cells, 4, 4)
        warped = _warped(tall, shape, rows, cols, starts[:, j])
        e = i0[which] - warped  # (T, h, w)
        rhs = cell_mean(np.stack([fi[which] * e for fi in f], axis=1))  # (T, 4, cells, cells)
        u = np.linalg.solve(normal[which], np.moveaxis(rhs, 1, -1)[..., None].astype(np.float64))
        out[:, j] = u[..., :2, 0]
    return out


def _cell_mean(h: int, w: int, cells: int):
    """A function averaging (..., h, w) arrays over each cell: (..., cells, cells).
    Raises ValueError when the region is too small for its cells."""
    if h < 2 * cells or w < 2 * cells:
        raise ValueError(f"cannot refine a {h}x{w} region in {cells}x{cells} cells")
    rows, cols = cell_averagers(h, w, cells)

    def cell_mean(x: np.ndarray) -> np.ndarray:
        return rows @ np.asarray(x, np.float32) @ cols.T

    return cell_mean


def _normal_matrices(f: list[np.ndarray], cell_mean) -> np.ndarray:
    """(U, cells, cells, 4, 4) float64: per reference and cell, the means of f_i f_j (the
    normal equations over the cell's pixels), with the ridge on the diagonal. Means in
    float32 move the solution by under 1e-4 px."""
    means = {}
    for i in range(4):
        for j in range(i, 4):
            means[i, j] = means[j, i] = cell_mean(f[i] * f[j]).astype(np.float64)
    a = np.stack([np.stack([means[i, j] for j in range(4)], -1) for i in range(4)], -2)
    a[..., np.arange(4), np.arange(4)] += RIDGE * np.array([1.0, 1.0, 1e4, 1.0])
    return a


def _warped(tall, shape, rows, cols, starts) -> np.ndarray:
    """(T, h, w): the region of each timestep's second image sampled at each pixel's cell
    displacement (``starts``, (T, cells, cells, 2)). ``tall`` holds the T second images
    one above the other; coordinates are clamped inside each image (its nearest edge, as
    BORDER_REPLICATE would), so one remap serves every timestep."""
    n_t, cells = starts.shape[:2]
    (height, width), h, w = shape, rows.stop - rows.start, cols.stop - cols.start
    row_cell = np.repeat(np.arange(cells), np.diff(cell_edges(h, cells)))
    col_cell = np.repeat(np.arange(cells), np.diff(cell_edges(w, cells)))
    d = starts[:, row_cell][:, :, col_cell].astype(np.float32)  # (T, h, w, 2)
    ys, xs = np.mgrid[rows, cols].astype(np.float32)
    mx = np.clip(xs + d[..., 0], 0, width - 1)
    my = np.clip(ys + d[..., 1], 0, height - 1)
    my += (np.arange(n_t, dtype=np.float32) * height)[:, None, None]
    out = cv2.remap(tall, mx.reshape(n_t * h, w), my.reshape(n_t * h, w), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    return out.reshape(n_t, h, w)

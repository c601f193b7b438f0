"""Cell flow refined by a least-squares fit over each cell (Lucas-Kanade with a gain).

A cell's mean of dense flow (pipeline.vision.hoof.cell_means) inherits the dense method's
bias on sub-pixel movements: DIS's "fast" preset estimates patches on a half-resolution
level and smooths them, so a 0.3 px lift of part of a region comes out smaller than it
is. One Gauss-Newton step over the whole cell, at full resolution, from that mean removes
most of it: the second frame is sampled at the cell's mean displacement and the residual
displacement is the least-squares solution of

    I1(x + d + delta) = (1 + g) I0(x) + b    over the cell's pixels,

linearised in ``delta`` (two unknowns) with a gain ``g`` and a bias ``b`` so a change of
exposure is not read as motion. Hundreds of pixels vote on two numbers, so the estimate's
noise is small, and it is unbiased to first order where the dense mean is not.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Ridge added to the normal equations, per pixel (times 1e4 on the gain, whose column
#: holds grey levels): a flat cell (no gradient) keeps the dense mean (residual 0)
#: instead of an unstable solution.
RIDGE = 1e-4
#: Gaussian blur (sigma, px) of both images before the fit, and the margin it needs.
BLUR, MARGIN = 1.0, 4


def cell_bounds(n: int, cells: int) -> np.ndarray:
    """The ``cells + 1`` edges of ``cells`` equal parts of ``n`` (as in cell_means)."""
    return (np.arange(cells + 1) * n) // cells


def refine_cells(
    prev: np.ndarray,
    nxt: np.ndarray,
    region: tuple[slice, slice],
    start: np.ndarray,
) -> np.ndarray:
    """Residual displacement of each cell of ``region`` beyond ``start``, for N pairs.

    Args:
        prev, nxt: (N, H, W) grey images (uint8 or float), or one pair of (H, W) ones.
        region: (rows, cols) slices of the region inside them.
        start: (N, cells, cells, 2) (or one (cells, cells, 2)) the cells' mean displacement
            (dx, dy) so far, in pixels of the images, from ``prev`` to ``nxt``.

    Returns what to add to ``start``, float32 of its shape.
    """
    if start.ndim == 3:
        return refine_cells(prev[None], nxt[None], region, start[None])[0]
    rows, cols = region
    cells = start.shape[1]
    h, w = rows.stop - rows.start, cols.stop - cols.start
    if h < 2 * cells or w < 2 * cells:
        raise ValueError(f"cannot refine a {h}x{w} region in {cells}x{cells} cells")
    rb, cb = cell_bounds(h, cells), cell_bounds(w, cells)
    # Per pixel, its cell's displacement; nxt sampled there (one remap for the region and
    # MARGIN pixels around it, so the blur and the central differences hold to its edges).
    row_cell = np.repeat(np.arange(cells), np.diff(rb))
    col_cell = np.repeat(np.arange(cells), np.diff(cb))
    m = MARGIN
    d = start[:, row_cell][:, :, col_cell].astype(np.float32)
    d = np.pad(d, ((0, 0), (m, m), (m, m), (0, 0)), "edge")
    ys, xs = np.mgrid[rows.start - m : rows.stop + m, cols.start - m : cols.stop + m]
    xs, ys = xs.astype(np.float32), ys.astype(np.float32)
    edge = cv2.BORDER_REPLICATE  # pixels sampled outside an image take its nearest edge
    i0 = np.empty((len(start), h + 2 * m, w + 2 * m), np.float32)
    warped = np.empty_like(i0)
    for k in range(len(start)):
        # Central differences overstate nothing once the finest detail is blurred away
        # (their gain falls to 2/pi at half the Nyquist rate); the blur also cuts the noise.
        a = cv2.remap(np.asarray(prev[k], np.float32), xs, ys, cv2.INTER_NEAREST, borderMode=edge)
        b = cv2.remap(
            np.asarray(nxt[k], np.float32), xs + d[k, ..., 0], ys + d[k, ..., 1],
            cv2.INTER_LINEAR, borderMode=edge,
        )  # fmt: skip
        i0[k] = cv2.GaussianBlur(a, (0, 0), BLUR, borderType=edge)
        warped[k] = cv2.GaussianBlur(b, (0, 0), BLUR, borderType=edge)
    gy, gx = np.gradient(0.5 * (i0 + warped), axis=(1, 2))
    inner = (slice(None), slice(m, -m), slice(m, -m))
    gx, gy, i0, warped = gx[inner], gy[inner], i0[inner], warped[inner]
    return _solve(gx, gy, i0, i0 - warped, rb, cb)


def _solve(gx, gy, i0, e, rb, cb) -> np.ndarray:
    """Per pair and cell (rows ``rb``, columns ``cb``), the least-squares (dx, dy) of
    ``gx dx + gy dy - g i0 - b = e`` (with the gain g and bias b), through the cells' sums."""
    # The products are summed in float32 (float64 costs a third more time here): the
    # solution moves by under 1e-4 px.
    f = (gx, gy, -i0, -np.ones_like(i0))
    pairs = [(i, j) for i in range(4) for j in range(i, 4)]
    images = np.empty((len(e), len(pairs) + 4, *e.shape[1:]), np.float32)
    for k, (i, j) in enumerate(pairs):
        np.multiply(f[i], f[j], out=images[:, k])
    for i in range(4):
        np.multiply(f[i], e, out=images[:, len(pairs) + i])
    sums = np.add.reduceat(np.add.reduceat(images, rb[:-1], 2), cb[:-1], 3).astype(np.float64)
    sums = np.moveaxis(sums, 1, -1)  # (N, cells, cells, 14)
    a = np.empty((*sums.shape[:-1], 4, 4))
    for k, (i, j) in enumerate(pairs):
        a[..., i, j] = a[..., j, i] = sums[..., k]
    n = np.diff(rb)[:, None] * np.diff(cb)[None, :]
    a[..., np.arange(4), np.arange(4)] += RIDGE * n[..., None] * np.array([1.0, 1.0, 1e4, 1.0])
    u = np.linalg.solve(a, sums[..., len(pairs) :, None])[..., 0]
    return u[..., :2].astype(np.float32)

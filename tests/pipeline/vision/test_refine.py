"""Cell flow refined over each cell: known displacements of a real face texture."""

import cv2
import numpy as np
import pytest

from pipeline.vision.flow import make_flow
from pipeline.vision.hoof import cell_means
from pipeline.vision.refine import refine_cells, refine_window

REGION = (slice(60, 111), slice(70, 121))  # 51 x 51 px, cells of 17 px, as a mouth corner


@pytest.fixture(scope="module")
def face(still_face) -> np.ndarray:
    """A 200 x 200 crop of the still face, float, around its left eye and cheek."""
    return still_face[100:300, 140:340].astype(np.float32)


def moved(img: np.ndarray, dx: np.ndarray, dy: np.ndarray, up: int = 4) -> np.ndarray:
    """``img`` with each pixel x moved by (dx, dy)[x] (next(x + d) = img(x) to first order),
    rendered at ``up`` times the size and reduced, so interpolation neither blurs nor
    sharpens it: pass zero fields for the unmoved frame, made the same way."""
    h, w = img.shape
    big = cv2.resize(img, (w * up, h * up), interpolation=cv2.INTER_CUBIC)
    ys, xs = np.mgrid[0 : h * up, 0 : w * up].astype(np.float32)
    fx, fy = (cv2.resize(f, (w * up, h * up)) * up for f in (dx, dy))
    out = cv2.remap(big, xs - fx, ys - fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)


def noisy(img: np.ndarray, rng, sigma: float = 1.0) -> np.ndarray:
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def bump(shape, amp: float, sigma: float, centre=(85, 95)) -> np.ndarray:
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    return amp * np.exp(-((ys - centre[0]) ** 2 + (xs - centre[1]) ** 2) / (2 * sigma**2))


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(("dx", "dy"), [(0.3, 0.0), (0.0, -0.4), (-0.25, 0.2)])
def test_a_uniform_sub_pixel_shift_is_found_from_zero(face, dx, dy, stride):
    rng = np.random.default_rng(0)
    still = moved(face, np.zeros_like(face), np.zeros_like(face))
    shifted = moved(face, np.full_like(face, dx), np.full_like(face, dy))
    start = np.zeros((3, 3, 2))
    res = refine_cells(noisy(still, rng), noisy(shifted, rng), REGION, start, stride)
    # Each cell within 0.25 px (its noise: 0.02-0.08 px), their mean within 0.04 px.
    np.testing.assert_allclose(res, np.broadcast_to([dx, dy], res.shape), atol=0.25)
    np.testing.assert_allclose(res.mean(axis=(0, 1)), [dx, dy], atol=0.04)


def test_a_start_at_the_true_shift_needs_no_correction(face):
    rng = np.random.default_rng(1)
    still = moved(face, np.zeros_like(face), np.zeros_like(face))
    shifted = moved(face, np.full_like(face, 1.6), np.zeros_like(face))
    start = np.zeros((3, 3, 2), np.float32)
    start[..., 0] = 1.6
    res = refine_cells(noisy(still, rng), noisy(shifted, rng), REGION, start)
    assert np.abs(res).max() < 0.25
    assert np.abs(res.mean(axis=(0, 1))).max() < 0.04


def test_a_change_of_exposure_is_not_motion(face):
    rng = np.random.default_rng(2)
    a, b = noisy(face, rng), noisy(face * 1.03 + 2.0, rng)
    res = refine_cells(a, b, REGION, np.zeros((3, 3, 2), np.float32))
    assert np.abs(res).max() < 0.25
    assert np.abs(res.mean(axis=(0, 1))).max() < 0.04


def test_a_flat_region_keeps_its_start():
    flat = np.full((200, 200), 120, np.uint8)
    start = np.full((3, 3, 2), 0.2, np.float32)
    np.testing.assert_array_equal(refine_cells(flat, flat, REGION, start), 0.0)


@pytest.mark.parametrize("stride", [1, 2])
def test_a_local_sub_pixel_lift_keeps_its_size_where_the_dense_mean_shrinks_it(face, stride):
    # A 0.4 px lift peaking in the middle cell (sigma 12 px), three noisy pairs: DIS's mean
    # over the cell is a fraction of the field's own mean there; one refinement step
    # recovers it, and adds no sideways motion.
    lift = bump(face.shape, 0.4, 12.0)
    truth = -cell_means(np.stack([np.zeros_like(lift), lift], -1)[None, *REGION], 3)[0, 1, 1, 1]
    still = moved(face, np.zeros_like(face), np.zeros_like(face))
    lifted = moved(face, np.zeros_like(face), -lift)
    flow = make_flow("dis", "fast")
    dense, refined = [], []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        a, b = noisy(still, rng, 0.5), noisy(lifted, rng, 0.5)
        start = cell_means(flow(a, b)[None, REGION[0], REGION[1]], 3)[0]
        dense.append(start[1, 1])
        refined.append(start[1, 1] + refine_cells(a, b, REGION, start, stride)[1, 1])
    dense, refined = np.mean(dense, axis=0), np.mean(refined, axis=0)
    assert abs(dense[1]) < 0.4 * abs(truth)
    assert refined[1] == pytest.approx(float(truth), abs=0.25 * abs(float(truth)))
    assert abs(refined[0]) < 0.1


def test_a_region_too_small_for_its_cells_is_refused():
    img = np.zeros((20, 20), np.uint8)
    with pytest.raises(ValueError, match="cannot refine a 4x4 region"):
        refine_cells(img, img, (slice(0, 4), slice(0, 4)), np.zeros((3, 3, 2), np.float32))


def test_every_other_pixel_is_about_as_precise_as_every_pixel(face):
    # The images are blurred (sigma 1 px) before the fit, so neighbouring pixels carry
    # nearly the same information: over still pairs with sensor noise (sigma 3 grey
    # levels), each cell's estimate scatters about as much with a quarter of the pixels
    # (measured: +2%), and clearly more with a sixteenth (+90%).
    still = moved(face, np.zeros_like(face), np.zeros_like(face))
    scatter = {}
    for stride in (1, 2, 4):
        est = []
        for seed in range(12):
            rng = np.random.default_rng(seed)
            a, b = noisy(still, rng, 3.0), noisy(still, rng, 3.0)
            est.append(refine_cells(a, b, REGION, np.zeros((3, 3, 2)), stride))
        scatter[stride] = np.std(est, axis=0).mean()
    assert scatter[2] < 1.15 * scatter[1]
    assert scatter[4] > 1.4 * scatter[1]


@pytest.mark.parametrize("stride", [1, 2])
def test_a_window_refines_each_pair_and_region_as_on_its_own(face, stride):
    # Three timesteps (two sharing a reference) over two regions at once give what each
    # pair and region gives alone: the window's shared blur, remap and sums mix nothing.
    rng = np.random.default_rng(3)
    shifts = [(0.0, 0.0), (0.3, -0.2), (0.7, 0.1), (-0.4, 0.5)]
    images = [
        noisy(moved(face, np.full_like(face, x), np.full_like(face, y)), rng) for x, y in shifts
    ]
    refs, ends = np.array([0, 0, 1]), np.array([1, 2, 3])
    regions = [REGION, (slice(0, 40), slice(150, 200))]  # the second on the image's corner
    starts = rng.uniform(-0.5, 0.5, (3, 2, 3, 3, 2)).astype(np.float32)
    window = refine_window(images, refs, ends, regions, starts, stride)
    for k, (a, b) in enumerate(zip(refs, ends, strict=True)):
        for j, region in enumerate(regions):
            alone = refine_cells(images[a], images[b], region, starts[k, j], stride)
            np.testing.assert_allclose(window[k, j], alone, atol=1e-4)


def test_the_cells_are_the_ones_the_dense_means_use():
    # Every pixel once, cell after cell, with the cells of pipeline.vision.hoof.cell_means:
    # a known field's means over the layout are that function's means.
    from pipeline.vision.refine import _layout

    field = np.random.default_rng(4).normal(size=(60, 70, 2)).astype(np.float32)
    bounds = ((3, 50, 5, 45), (10, 60, 40, 70))
    lay = _layout(60, 70, bounds, 3)
    assert np.array_equal(
        np.sort(lay.around[0][: lay.count[:9].sum().astype(int)]),
        np.sort((np.arange(3, 50)[:, None] * 70 + np.arange(5, 45)).ravel()),
    )
    for k, (r0, r1, c0, c1) in enumerate(bounds):
        want = cell_means(field[None, r0:r1, c0:c1], 3)[0]  # (3, 3, 2)
        got = lay.mean(field.reshape(-1, 2)[lay.around[0]].T)[:, 9 * k : 9 * (k + 1)]
        np.testing.assert_allclose(got.T.reshape(3, 3, 2), want, atol=1e-5)

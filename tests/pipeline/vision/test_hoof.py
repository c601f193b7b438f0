"""HOOF and cell means of flow fields built by hand: known histograms and vectors."""

import numpy as np
import pytest

from pipeline.vision.hoof import cell_means, hoof, hoof_batch


def field(dx: float, dy: float, shape=(6, 5)) -> np.ndarray:
    """A uniform flow field; dy > 0 points down the image."""
    f = np.zeros((*shape, 2), np.float32)
    f[..., 0], f[..., 1] = dx, dy
    return f


@pytest.mark.parametrize(
    ("dx", "dy", "bin_"),
    [(1, 0, 0), (0, -1, 2), (-1, 0, 4), (0, 1, 6), (1, -1, 1), (-2, 2, 5)],
)
def test_uniform_flow_on_a_bin_centre_fills_that_bin(dx, dy, bin_):
    hist, mag = hoof(field(dx, dy), n_bins=8)
    want = np.zeros(8)
    want[bin_] = 1.0
    np.testing.assert_allclose(hist, want, atol=1e-3)
    assert mag == pytest.approx(np.hypot(dx, dy), rel=1e-6)


def test_vector_between_two_bins_splits_linearly():
    # 22.5 degrees (up-right): halfway between bin 0 (0 deg) and bin 1 (45 deg).
    a = np.radians(22.5)
    hist, _ = hoof(field(np.cos(a), -np.sin(a)), n_bins=8)
    np.testing.assert_allclose(hist, [0.5, 0.5, 0, 0, 0, 0, 0, 0], atol=1e-3)
    # 10 degrees: 1 - 10/45 to bin 0, 10/45 to bin 1.
    a = np.radians(10.0)
    hist, _ = hoof(field(np.cos(a), -np.sin(a)), n_bins=8)
    np.testing.assert_allclose(hist[:2], [35 / 45, 10 / 45], atol=1e-3)


def test_wraps_around_from_last_bin_to_first():
    a = np.radians(350.0)  # between bin 7 (315) and bin 0 (360)
    hist, _ = hoof(field(np.cos(a), -np.sin(a)), n_bins=8)
    np.testing.assert_allclose(hist[[7, 0]], [10 / 45, 35 / 45], atol=1e-3)
    assert hist.sum() == pytest.approx(1.0)


def test_magnitude_weighting_of_mixed_field():
    f = field(1, 0, shape=(4, 4))
    f[:2] = (0, -3)  # half the pixels move up three times as fast
    hist, mag = hoof(f, n_bins=4)
    np.testing.assert_allclose(hist, [0.25, 0.75, 0, 0], atol=1e-3)
    assert mag == pytest.approx(2.0)
    raw, _ = hoof(f, n_bins=4, normalise=False)
    np.testing.assert_allclose(raw, [0.5, 1.5, 0, 0], atol=1e-3)


def test_zero_flow_gives_zero_histogram_not_nan():
    hist, mag = hoof(field(0, 0), n_bins=8)
    assert np.all(hist == 0) and mag == 0.0


def test_noise_normalised_looks_like_motion_but_magnitude_tells():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, (32, 32, 2)).astype(np.float32)
    hist, mag = hoof(noise)
    assert hist.sum() == pytest.approx(1.0)
    assert mag < 0.02


def test_bad_input():
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        hoof(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        hoof(field(np.nan, 0))


def test_batch_equals_one_by_one():
    rng = np.random.default_rng(1)
    flows = rng.normal(0, 1, (5, 7, 9, 2)).astype(np.float32)
    hists, mags = hoof_batch(flows, n_bins=6)
    for k in range(5):
        h, m = hoof(flows[k], n_bins=6)
        np.testing.assert_allclose(hists[k], h, atol=1e-12)
        assert mags[k] == pytest.approx(m)
    assert hists.shape == (5, 6) and np.allclose(hists.sum(axis=1), 1.0)


def test_cell_means_of_a_built_field():
    # Two timesteps of a 5x6 field: left half moves right 1 px, right half down 2 px; the
    # second timestep moves twice as far. Cells split rows [0, 2) [2, 5), columns [0, 3) [3, 6).
    flows = np.zeros((2, 5, 6, 2), np.float32)
    flows[:, :, :3, 0] = 1.0
    flows[:, :, 3:, 1] = 2.0
    flows[1] *= 2
    cells = cell_means(flows, 2)
    assert cells.shape == (2, 2, 2, 2) and cells.dtype == np.float32
    for row in range(2):
        np.testing.assert_allclose(cells[0, row], [[1, 0], [0, 2]])
        np.testing.assert_allclose(cells[1, row], [[2, 0], [0, 4]])
    # A cell on a boundary averages what it holds: one cell over the whole field.
    np.testing.assert_allclose(cell_means(flows[:1], 1)[0, 0, 0], [0.5, 1.0])
    # Rows split unevenly where H is not a multiple: the lower cell holds 3 of 5 rows.
    ramp = np.zeros((1, 5, 6, 2), np.float32)
    ramp[0, :, :, 0] = np.arange(5)[:, None]
    np.testing.assert_allclose(cell_means(ramp, 2)[0, :, 0, 0], [0.5, 3.0])


def test_cell_means_let_noise_cancel_and_keep_a_coherent_shift():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.3, (1, 60, 60, 2)).astype(np.float32)
    shifted = noise.copy()
    shifted[:, :20, :20, 1] -= 0.2  # the top-left cell lifts 0.2 px, under the noise
    cells = cell_means(shifted, 3)[0]
    assert abs(cells[0, 0, 1] + 0.2) < 0.05  # its mean keeps the lift
    assert np.abs(np.delete(cells.reshape(9, 2), 0, axis=0)).max() < 0.05  # the rest ~ 0
    # While the mean magnitude, what the HOOF keeps, barely tells the cells apart.
    mags = np.linalg.norm(shifted[0], axis=-1)
    assert mags[:20, :20].mean() < 1.3 * mags[20:, 20:].mean()


def test_cell_means_refuse_fields_smaller_than_the_grid():
    with pytest.raises(ValueError, match="3x3 cells"):
        cell_means(np.zeros((1, 2, 8, 2), np.float32), 3)

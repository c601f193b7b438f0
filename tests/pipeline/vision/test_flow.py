"""Optical flow on a textured square moved by a known amount."""

import numpy as np
import pytest

from pipeline.vision.flow import make_flow
from pipeline.vision.hoof import hoof


def textured(size=64, seed=0):
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 100, np.uint8)
    patch = rng.integers(0, 255, (24, 24)).astype(np.uint8)
    patch = np.kron(patch[::3, ::3], np.ones((3, 3), np.uint8))  # blocky, trackable
    return img, patch


def scene(dx: int, dy: int):
    img, patch = textured()
    a, b = img.copy(), img.copy()
    a[20:44, 20:44] = patch
    b[20 + dy : 44 + dy, 20 + dx : 44 + dx] = patch
    return a, b


@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize(("dx", "dy", "bin_"), [(2, 0, 0), (0, -2, 2), (-2, 0, 4), (0, 2, 6)])
def test_moving_square_gives_its_direction(method, dx, dy, bin_):
    a, b = scene(dx, dy)
    flow = make_flow(method)(a, b)
    assert flow.shape == (64, 64, 2)
    centre = flow[26:38, 26:38].reshape(-1, 2).mean(axis=0)
    np.testing.assert_allclose(centre, (dx, dy), atol=0.6)
    hist, _ = hoof(flow[22:42, 22:42])
    assert int(np.argmax(hist)) == bin_ and hist[bin_] > 0.5


def test_still_scene_has_no_flow():
    a, _ = scene(0, 0)
    flow = make_flow("dis")(a, a)
    assert np.abs(flow).max() < 0.05


def test_tvl1_needs_contrib_or_works():
    import cv2

    if hasattr(cv2, "optflow"):
        a, b = scene(2, 0)
        assert make_flow("tvl1")(a, b).shape == (64, 64, 2)
    else:
        with pytest.raises(RuntimeError, match="opencv-contrib"):
            make_flow("tvl1")


def test_bad_input():
    with pytest.raises(ValueError, match="unknown flow"):
        make_flow("lucas")
    with pytest.raises(ValueError, match="grey uint8"):
        make_flow("dis")(np.zeros((8, 8), np.uint8), np.zeros((9, 8), np.uint8))

"""Head-motion compensation on built flow fields and on a still face turned in the image."""

import cv2
import numpy as np
import pytest

from pipeline.core.windows import Window
from pipeline.vision.config import FeatureConfig
from pipeline.vision.features import StageTimer, WindowExtractor
from pipeline.vision.stabilise import subtract_similarity


def rotation_field(h: int, w: int, degrees: float, scale: float = 1.0, shift=(0.0, 0.0)):
    """The (H, W, 2) flow of a similarity about the field's centre."""
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, scale)
    m[:, 2] += shift
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack(
        [m[0, 0] * gx + m[0, 1] * gy + m[0, 2] - gx, m[1, 0] * gx + m[1, 1] * gy + m[1, 2] - gy],
        axis=-1,
    ).astype(np.float32)


def test_a_similarity_is_fitted_exactly_and_a_local_movement_is_left_alone():
    head = rotation_field(90, 120, degrees=0.8, scale=1.01, shift=(0.4, -0.3))
    # The head alone: the fitted motion is all of it, nothing is left.
    np.testing.assert_allclose(subtract_similarity(head[None].copy())[0], 0, atol=1e-3)
    # A brow lift (1.5 px up over a 20x30 patch, 6% of the field) on the turning head:
    # the fit ignores it, so after subtraction the patch keeps its lift, the rest is still.
    moving = head.copy()
    moving[10:30, 20:50, 1] -= 1.5
    left = subtract_similarity(moving[None].copy())[0]
    np.testing.assert_allclose(left[10:30, 20:50, 1], -1.5, atol=0.02)
    rest = np.ones((90, 120), bool)
    rest[10:30, 20:50] = False
    assert np.abs(left[rest]).max() < 0.02


@pytest.fixture(scope="module")
def extractors():
    nose = WindowExtractor(FeatureConfig(stabilise="nose"))
    sim = WindowExtractor(FeatureConfig(stabilise="similarity"), face_model=nose.face_model)
    return nose, sim


def turning(img: np.ndarray, n: int, degrees: float) -> list[np.ndarray]:
    """The picture turned by ``degrees`` more each frame, about a point below the face (a
    head tilting on its neck)."""
    h, w = img.shape
    centre = (w / 2, h * 0.9)
    return [
        cv2.warpAffine(img, cv2.getRotationMatrix2D(centre, k * degrees, 1.0), (w, h),
                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        for k in range(n)
    ]  # fmt: skip


def test_a_head_tilting_in_the_image_is_taken_out_by_the_similarity_not_the_nose(
    extractors, still_face
):
    nose, sim = extractors
    w = Window.evenly(0, 0, 25, 1, fps=25)
    frames = turning(still_face, 26, 0.25)  # 0.25 degrees a frame, about the chin below
    by_nose = nose.window(frames, w, StageTimer())
    by_sim = sim.window(frames, w, StageTimer())
    # The nose ridge's shift is taken out, but the turn is not: the brows' outer ends and
    # the mouth corners still move (their distance from the nose times the angle).
    assert by_nose.magnitude.mean() > 0.15
    # The similarity takes it out: what is left is DIS's own error on a turning texture
    # (about 0.1 px a step spanned in magnitude, 0.06 in a cell's mean), half or less of the nose's.
    assert by_sim.magnitude.mean() < 0.5 * by_nose.magnitude.mean()
    assert np.abs(by_sim.cell_flow).mean() < 0.5 * np.abs(by_nose.cell_flow).mean()
    assert np.abs(by_sim.cell_flow).mean() < 0.08 * sim.config.flow_span

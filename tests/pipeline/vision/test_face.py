"""Face detection, eye-line alignment and regions on real photos."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.vision.face import (
    Alignment,
    FaceModel,
    NoFace,
    eye_line_angle,
    locate_window_face,
    similarity_from_points,
    transform_points,
)

ASSETS = Path(__file__).resolve().parents[3] / "pipeline" / "assets"
REGIONS = ("eyebrows", "mouth_left", "mouth_right")


@pytest.fixture(scope="module")
def model():
    return FaceModel()


def grey(name: str) -> np.ndarray:
    img = cv2.imread(str(ASSETS / name), cv2.IMREAD_GRAYSCALE)
    assert img is not None, name
    return img


def rotate(img: np.ndarray, degrees: float) -> np.ndarray:
    h, w = img.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def test_similarity_from_points_maps_both_points():
    m = similarity_from_points((10, 20), (30, 20), (0, 0), (0, 40))
    np.testing.assert_allclose(
        transform_points(m, np.array([[10, 20], [30, 20]])), [[0, 0], [0, 40]]
    )


@pytest.mark.parametrize("photo", ["0-f1-su-ph.jpg", "15-f13-anc-ph.jpg"])
@pytest.mark.parametrize("degrees", [10.0, -10.0])
def test_rotated_photo_comes_back_with_eyes_level(model, photo, degrees):
    img = rotate(grey(photo), degrees)
    _, lm = model.find(img)
    # cv2 rotates counter-clockwise on screen for positive angles: the eye line tilts.
    assert abs(eye_line_angle(lm)) > 7
    face = locate_window_face(model, img, REGIONS)
    assert abs(eye_line_angle(face.landmarks)) < 1.0
    aligned = face.alignment.warp(img)
    # The refit on the aligned face agrees with where the alignment put the eyes.
    np.testing.assert_allclose(
        transform_points(face.alignment.matrix, lm)[36:48].mean(axis=0),
        face.landmarks[36:48].mean(axis=0),
        atol=4,
    )
    assert aligned.shape == (256, 256)


def test_regions_sit_on_brows_and_mouth_corners(model):
    face = locate_window_face(model, grey("0-f15-hao-ph.jpg"), REGIONS)
    brows, mleft, mright = face.boxes
    lm = face.landmarks
    for idx, box in [(range(17, 27), brows), ([54], mleft), ([48], mright)]:
        for x, y in lm[list(idx)]:
            assert box.x0 <= x < box.x1 and box.y0 <= y < box.y1
    # brows above the eyes, mouth corners below them; eyes are not inside the brow box's lower half
    assert brows.y1 < lm[36:48, 1].max() + 1 and mleft.y0 > lm[36:48, 1].max()
    crops = face.crops(grey("0-f15-hao-ph.jpg"))
    assert [c.shape for c in crops] == [(b.height, b.width) for b in face.boxes]


def test_alignment_normalises_scale(model):
    img = grey("0-f1-su-ph.jpg")
    small = cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA)
    a = locate_window_face(model, img, REGIONS)
    b = locate_window_face(model, small, REGIONS)
    assert b.alignment.scale == pytest.approx(2 * a.alignment.scale, rel=0.05)
    for ba, bb in zip(a.boxes, b.boxes, strict=True):
        assert abs(ba.x0 - bb.x0) <= 4 and abs(ba.y0 - bb.y0) <= 4


def test_detection_on_downscaled_frame_is_scaled_back(model):
    img = grey("0-f1-su-ph.jpg")
    big = cv2.resize(img, (1536, 1536))
    box = FaceModel(detect_max_side=512).detect(big)
    ref = model.detect(img)
    assert abs(box.x0 - 3 * ref.x0) <= 6 and abs(box.y1 - 3 * ref.y1) <= 6


def test_no_face_raises_with_reason(model):
    with pytest.raises(NoFace, match="no face"):
        locate_window_face(model, np.full((240, 320), 128, np.uint8), REGIONS)


def test_bad_image(model):
    with pytest.raises(ValueError, match="grey uint8"):
        model.detect(np.zeros((10, 10, 3), np.uint8))


def test_alignment_from_landmarks_puts_eyes_at_target():
    lm = np.zeros((68, 2))
    lm[36:42] = (100, 200)
    lm[42:48] = (180, 160)
    al = Alignment.from_landmarks(lm, face_width=256)
    np.testing.assert_allclose(
        transform_points(al.matrix, np.array([[100, 200], [180, 160]])),
        [[0.35 * 256, 0.35 * 256], [0.65 * 256, 0.35 * 256]],
        atol=1e-9,
    )

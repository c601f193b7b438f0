"""Each action unit the synthetic corpus draws is seen in the region it belongs to, moving
the way it moves: a known movement built on a still face, through the feature extractor."""

import cv2
import numpy as np
import pytest

from pipeline.core.windows import Window
from pipeline.synth.actions import micro_action
from pipeline.synth.motion import displacement_at
from pipeline.vision.config import FeatureConfig
from pipeline.vision.features import StageTimer, WindowExtractor

N, APEX = 26, 13  # frames of one window at 25 fps; the movement peaks in the middle
# HOOF bins of 45 degrees, 0 = image right, 90 = image up (pipeline.vision.hoof).
RIGHT, UP_RIGHT, UP, UP_LEFT, LEFT, DOWN = 0, 1, 2, 3, 4, 6


@pytest.fixture(scope="module")
def extractor():
    return WindowExtractor(FeatureConfig())


@pytest.fixture(scope="module")
def still(extractor, still_face):
    _, landmarks = extractor.face_model.find(still_face)
    return still_face, landmarks


def au_frames(still, au, side, amp=3.0):
    """The window's frames: ``au`` rising to ``amp`` px at APEX and back, on a still face."""
    canvas, lm = still
    width = float(lm[16, 0] - lm[0, 0])
    action = micro_action(au, lm, 0.08 * width, amp, side)
    h, w = canvas.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    field = displacement_at(np.stack([xs.ravel(), ys.ravel()], 1), action["bumps"])
    dx, dy = (field[:, i].reshape(h, w).astype(np.float32) for i in (0, 1))
    env = np.clip(1 - np.abs(np.arange(N) - APEX) / 6.0, 0, 1).astype(np.float32)
    frames = [
        cv2.remap(
            canvas, xs - e * dx, ys - e * dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        for e in env
    ]
    return frames, env, action["region"]


@pytest.mark.parametrize(
    ("au", "side", "rising_bin"),
    [
        ("AU1", None, UP),
        ("AU2", None, UP),
        ("AU1+AU2", 0, UP),
        ("AU4", None, DOWN),
        ("AU12", 0, UP_LEFT),  # landmark 48, on the image's left: out is left
        ("AU12", 1, UP_RIGHT),
        ("AU14", 0, RIGHT),  # drawn in, towards the mouth's middle
        ("AU14", 1, LEFT),
        ("AU15", 1, DOWN),
    ],
)
def test_an_action_unit_is_seen_in_its_region_moving_its_way(
    extractor, still, au, side, rising_bin
):
    frames, env, region = au_frames(still, au, side)
    res = extractor.window(frames, Window.evenly(0, 0, N - 1, 1, fps=25), StageTimer())
    regions = extractor.config.regions  # eyebrows, mouth_left, mouth_right
    mine = regions.index("eyebrows" if "brow" in region else region)
    rising = np.diff(env) > 0
    mag = res.magnitude[rising]
    # The movement is in its own region, several times what any other region shows. Its
    # mean over the region box is small: 0.04 px a step for AU4 to 0.17 for AU12, from a
    # 3 px peak (0.5 px a frame at the bump's centre) - the box dilutes a local movement.
    others = np.delete(mag, mine, axis=1)
    assert mag[:, mine].mean() > 0.03
    assert mag[:, mine].mean() > 3 * others.mean(), (au, mag.mean(0))
    # And it moves the way the AU does while it rises.
    assert np.bincount(res.hoof[rising, mine].argmax(1), minlength=8).argmax() == rising_bin

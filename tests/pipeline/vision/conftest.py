"""The still face the feature tests move in known ways, and the real clip's features."""

from pathlib import Path

import cv2
import numpy as np
import pytest

ASSETS = Path(__file__).resolve().parents[3] / "pipeline" / "assets"
CLIP = Path(__file__).resolve().parents[2] / "data" / "WolfgangLanger_Pexels.mp4"
KINDS = ("hoof", "magnitude", "cell_flow")


def features_of_clip(config, n: int, shift: int = 0) -> dict[str, np.ndarray]:
    """The first ``n`` windows' features (KINDS) of the repository's real clip, every
    frame moved ``shift`` px right and down (edges replicated); every window must show the
    face."""
    from pipeline.vision.features import WindowExtractor
    from pipeline.vision.frames import VideoFrames

    with VideoFrames(str(CLIP)) as v:
        windows = config.grid(v.fps).windows(v.n_frames)[:n]

        def read_many(indices):
            for i, f in v.read_many(indices):
                moved = np.pad(f, ((shift, 0), (shift, 0)), mode="edge")[: f.shape[0], : f.shape[1]]
                yield i, np.ascontiguousarray(moved)

        results = list(WindowExtractor(config).video(read_many, windows))
    missing = [r.window.index for r in results if not r.face_found]
    if missing:
        raise AssertionError(f"{CLIP.name}: no face in windows {missing}")
    return {k: np.stack([getattr(r, k) for r in results]).astype(np.float32) for k in KINDS}


@pytest.fixture(scope="session")
def still_face() -> np.ndarray:
    """A real face photo (pipeline/assets) squared into the middle of a 480x360 grey canvas."""
    img = cv2.imread(str(ASSETS / "0-f15-hao-ph.jpg"), cv2.IMREAD_GRAYSCALE)
    canvas = np.full((360, 480), 110, np.uint8)
    canvas[:, 60:420] = cv2.resize(img, (360, 360), interpolation=cv2.INTER_AREA)
    canvas.flags.writeable = False  # shared by every test: warp it, never draw on it
    return canvas


@pytest.fixture(scope="session")
def clip_features():
    """``features_of_clip``; skips the test where the clip is not in the checkout."""
    if not CLIP.exists():
        pytest.skip(f"{CLIP.name} not present")
    return features_of_clip

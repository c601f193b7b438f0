"""The still face the feature tests move in known ways."""

from pathlib import Path

import cv2
import numpy as np
import pytest

ASSETS = Path(__file__).resolve().parents[3] / "pipeline" / "assets"


@pytest.fixture(scope="session")
def still_face() -> np.ndarray:
    """A real face photo (pipeline/assets) squared into the middle of a 480x360 grey canvas."""
    img = cv2.imread(str(ASSETS / "0-f15-hao-ph.jpg"), cv2.IMREAD_GRAYSCALE)
    canvas = np.full((360, 480), 110, np.uint8)
    canvas[:, 60:420] = cv2.resize(img, (360, 360), interpolation=cv2.INTER_AREA)
    canvas.flags.writeable = False  # shared by every test: warp it, never draw on it
    return canvas

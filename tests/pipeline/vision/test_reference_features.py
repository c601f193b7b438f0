"""The default features of the repository's real clip against a stored reference.

A change of code or of a library (OpenCV's DIS flow and resizing, dlib's detector and
landmarks, numpy) can move every feature while the configuration, and so the config id,
stays the same: stored features, the bundled model and the documented figures would then no
longer match what extraction computes. OpenCV 5.1 did so: the demo's figures changed with
it, its corpus byte-identical. This test fails on such a move.

The tolerance: on every window and region, HOOF and cell flow within 1e-3 and magnitudes
within 1e-3 px per frame of the reference (float noise across machines is ~1e-6; the HOOF
refactor moved them by 7e-8), with up to 2 windows of 40 allowed to differ by more, for a
landmark that rounds the other way on another processor; those may still differ by no more
than a 1-pixel shift of the video changes them. Regenerate the reference only for a change
meant to move the features, with the config id, the bundled model and the documented
figures measured again:

    python tests/pipeline/vision/test_reference_features.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.vision.config import FeatureConfig

REFERENCE = Path(__file__).parents[2] / "data" / "WolfgangLanger_Pexels.features.npz"
N_WINDOWS = 40
KINDS = ("hoof", "magnitude", "cell_flow")  # as conftest.features_of_clip returns
TOLERANCE = 1e-3
ODD_WINDOWS = 2


def odd_windows(now: np.ndarray, ref: np.ndarray) -> list[int]:
    """Windows with any number further than TOLERANCE from the reference."""
    far = np.abs(now - ref) > TOLERANCE
    return [int(i) for i in np.flatnonzero(far.reshape(len(far), -1).any(axis=1))]


@pytest.fixture(scope="module")
def reference() -> dict:
    if not REFERENCE.exists():
        pytest.fail(f"{REFERENCE} is missing: run {Path(__file__).name} to make it")
    with np.load(REFERENCE) as ref:
        return {k: ref[k] for k in ref.files}


def test_default_features_match_the_reference(reference, clip_features):
    config = FeatureConfig()
    assert str(reference["config_id"]) == config.config_id, (
        "the default FeatureConfig changed: regenerate the reference with the new config id"
    )
    now = clip_features(config, N_WINDOWS)
    for k in KINDS:
        assert now[k].shape == reference[k].shape, k
        odd = odd_windows(now[k], reference[k])
        assert len(odd) <= ODD_WINDOWS, (
            f"{k}: windows {odd} differ from the reference by more than {TOLERANCE} "
            f"(largest {np.abs(now[k] - reference[k]).max():.3g}); made with "
            f"{reference['made_with']}"
        )
        if odd:
            jitter = float(reference[f"{k}_shift_jitter"])
            diff = float(np.abs(now[k][odd] - reference[k][odd]).mean())
            assert diff <= jitter, f"{k}: windows {odd} moved {diff:.3g} > {jitter:.3g}"


def test_odd_windows_are_found():
    ref = np.zeros((5, 3, 8), np.float32)
    now = ref.copy()
    now[1, 2, 3] += 2 * TOLERANCE
    now[4, 0, 0] -= TOLERANCE / 2
    assert odd_windows(now, ref) == [1]


def main() -> None:
    import cv2
    import dlib
    from conftest import features_of_clip  # run as a script: this folder is on the path

    config = FeatureConfig()
    now = features_of_clip(config, N_WINDOWS)
    moved = features_of_clip(config, N_WINDOWS, shift=1)
    jitter = {k: float(np.abs(moved[k] - now[k]).mean()) for k in KINDS}
    made_with = f"OpenCV {cv2.__version__}, dlib {dlib.__version__}, numpy {np.__version__}"
    np.savez_compressed(
        REFERENCE,
        config_id=config.config_id,
        made_with=made_with,
        **now,
        **{f"{k}_shift_jitter": v for k, v in jitter.items()},
    )
    print(f"{REFERENCE}: {N_WINDOWS} windows, {made_with}, 1-px jitter {jitter}")


if __name__ == "__main__":
    sys.exit(main())

"""The synthetic camera: frames in order through flicker and an H.264 round trip, the same
bytes from the same seed, and a corpus written through it."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from pipeline.synth.camera import FLICKER_SINE, FLICKER_WALK, Camera
from pipeline.synth.generate import SynthConfig, generate_corpus


def frames(n: int = 30) -> list[np.ndarray]:
    """A smooth picture moving 1 px right per frame (each frame distinct)."""
    y, x = np.mgrid[0:96, 0:128]
    return [
        ((np.sin((x - k) / 9.0) + np.cos(y / 7.0)) * 60 + 120).astype(np.uint8) for k in range(n)
    ]


def run(camera: Camera, images: list[np.ndarray]) -> list[np.ndarray]:
    out = [f for i, img in enumerate(images) for f in camera.process(i, img)]
    return out + list(camera.flush())


def test_every_frame_comes_back_in_order_close_to_what_went_in():
    images = frames()
    out = run(Camera(np.random.default_rng(0), 30, 25.0, (128, 96), crf=23, flicker=False), images)
    assert len(out) == len(images) and all(o.shape == (96, 128) for o in out)
    errors = [
        np.abs(o.astype(int) - i.astype(int)).mean() for o, i in zip(out, images, strict=True)
    ]
    assert 0 < max(errors) < 3  # compressed, not another frame (neighbours differ by ~6)
    shifted = np.abs(out[10].astype(int) - images[11].astype(int)).mean()
    assert shifted > 2 * errors[10]


def test_same_seed_same_bytes_and_flicker_stays_small():
    images = frames()

    def make(seed):
        return Camera(np.random.default_rng(seed), 30, 25.0, (128, 96), crf=28, flicker=True)

    a, b = run(make(1), images), run(make(1), images)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    gain = make(2)._gain
    assert np.all(np.abs(gain - 1) <= FLICKER_SINE + FLICKER_WALK + 1e-6) and gain.std() > 0


def test_without_codec_or_flicker_frames_pass_unchanged():
    images = frames(5)
    out = run(Camera(np.random.default_rng(0), 5, 25.0, (128, 96), crf=None, flicker=False), images)
    assert all(np.array_equal(o, i) for o, i in zip(out, images, strict=True))


def test_a_corpus_through_the_camera_is_deterministic(tmp_path):
    cfg = SynthConfig(
        subjects=1, seconds=1.0, fps=25.0, width=160, height=120, crf=26, flicker=True
    )
    a = generate_corpus(tmp_path / "a", cfg)
    generate_corpus(tmp_path / "b", cfg)
    v = a.videos[0]
    names = sorted(p.name for p in (tmp_path / "a" / v.folder).iterdir())
    assert len(names) == v.n_frames == 25
    for name in names:
        assert (tmp_path / "a" / v.folder / name).read_bytes() == (
            tmp_path / "b" / v.folder / name
        ).read_bytes()
    plain = generate_corpus(tmp_path / "c", replace(cfg, crf=None, flicker=False))
    img = cv2.imread(str(tmp_path / "a" / v.folder / names[5]), cv2.IMREAD_GRAYSCALE)
    ref = cv2.imread(str(tmp_path / "c" / plain.videos[0].folder / names[5]), cv2.IMREAD_GRAYSCALE)
    assert 0 < np.abs(img.astype(int) - ref.astype(int)).mean() < 10


@pytest.mark.parametrize("crf", [-1, 52, True])
def test_bad_crf_is_refused(crf):
    with pytest.raises(ValueError, match="crf"):
        SynthConfig(crf=crf)

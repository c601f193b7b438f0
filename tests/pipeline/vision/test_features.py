"""Window features: the union-box flow shortcut, motion where it was put, bad frames."""

import cv2
import numpy as np
import pytest

from pipeline.core.windows import Window, WindowGrid
from pipeline.vision.config import PAPER_REGIONS, FeatureConfig
from pipeline.vision.face import locate_window_face
from pipeline.vision.features import FrameCache, StageTimer, WindowExtractor
from pipeline.vision.frames import FrameError
from pipeline.vision.hoof import hoof_batch


@pytest.fixture(scope="module")
def extractor():
    return WindowExtractor(FeatureConfig())


def bump_warp(img: np.ndarray, centre, dy: float, sigma: float) -> np.ndarray:
    """Move the pixels around ``centre`` by ``dy`` rows (negative = up), smoothly."""
    h, w = img.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    g = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))
    map_y = (ys - dy * g).astype(np.float32)
    return cv2.remap(img, xs, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def brow_raise_frames(extractor, base, n=26, apex=13, amp=2.0):
    """Frames of ``base`` whose eyebrows rise by up to ``amp`` px and fall back, peaking at
    ``apex``."""
    _, lm = extractor.face_model.find(base)
    brow = lm[17:27].mean(axis=0)
    sigma = 0.25 * (lm[16, 0] - lm[0, 0])
    env = np.clip(1 - np.abs(np.arange(n) - apex) / 6.0, 0, 1)
    return [bump_warp(base, brow, -amp * e, sigma) for e in env], env


@pytest.fixture(scope="module")
def raw_extractor(extractor):
    """The paper's setup: its three regions, each region's own flow (no head-motion
    compensation), HOOF and magnitudes only."""
    cfg = FeatureConfig(regions=PAPER_REGIONS, cells=0, stabilise="none", flow_span=1)
    return WindowExtractor(cfg, face_model=extractor.face_model)


def shift_frames(img: np.ndarray, n: int, dx: float, dy: float) -> list[np.ndarray]:
    """The whole picture moved by (dx, dy) px per frame: a head that drifts."""
    out = []
    for k in range(n):
        m = np.float32([[1, 0, k * dx], [0, 1, k * dy]])
        out.append(cv2.warpAffine(img, m, img.shape[::-1], borderMode=cv2.BORDER_REPLICATE))
    return out


def test_head_drift_is_compensated_and_a_brow_raise_is_kept(extractor, raw_extractor, still_face):
    w = Window.evenly(0, 0, 25, 1, fps=25)
    drift = shift_frames(still_face, 26, 0.6, -0.4)  # 0.72 px per step, all over the face
    raw = raw_extractor.window(drift, w, StageTimer())
    kept = extractor.window(drift, w, StageTimer())
    # Raw: every region moves ~0.72 px a step (times the face's scale); compensated: what
    # is left is DIS's own error, which grows with the displacement a flow spans (per step
    # spanned, a tenth of a pixel on average, at most a quarter in the smallest boxes, the
    # brow halves).
    span = extractor.config.flow_span
    assert raw.magnitude.min() > 0.5
    assert kept.magnitude.max() < 0.25 * span and kept.magnitude.mean() < 0.1 * span
    # The cells' mean vectors too: the drift, (0.6, -0.4) px a frame, is gone from them.
    assert np.abs(kept.cell_flow.mean(axis=(0, 1, 2, 3))).max() < 0.05 * span
    # A brow raise on a still head (a bump narrow enough to leave the nose ridge alone):
    # nothing is subtracted (but DIS's own error, per step spanned, as above).
    base = still_face
    _, lm = extractor.face_model.find(base)
    sigma = 0.12 * (lm[16, 0] - lm[0, 0])
    env = np.clip(1 - np.abs(np.arange(26) - 13) / 6.0, 0, 1)
    frames = [bump_warp(base, lm[17:27].mean(axis=0), -3.0 * e, sigma) for e in env]
    uncompensated = FeatureConfig(stabilise="none")
    a = WindowExtractor(uncompensated, extractor.face_model).window(frames, w, StageTimer())
    b = extractor.window(frames, w, StageTimer())
    j = uncompensated.regions.index("right_brow_inner")
    assert a.magnitude[:, j].max() > 0.15 * span
    np.testing.assert_allclose(b.magnitude[:, j], a.magnitude[:, j], atol=0.05 * span)
    np.testing.assert_allclose(b.cell_flow[:, j], a.cell_flow[:, j], atol=0.05 * span)


def test_union_flow_matches_flow_on_each_region(raw_extractor, still_face):
    extractor = raw_extractor
    frames, _ = brow_raise_frames(extractor, still_face)
    cfg = extractor.config
    w = Window.evenly(0, 0, 25, 1, fps=25)
    res = extractor.window(frames, w, StageTimer())
    face = locate_window_face(extractor.face_model, frames[0], cfg.regions)
    crops = [face.crops(f) for f in frames]
    for j in range(len(cfg.regions)):
        flows = np.stack([extractor._flow(crops[k][j], crops[k + 1][j]) for k in range(25)])
        hists, mags = hoof_batch(flows, cfg.n_bins)
        moving = mags > 0.1
        # Same dominant direction where there is motion; magnitudes agree closely.
        np.testing.assert_allclose(res.magnitude[:, j], mags, atol=0.05, rtol=0.25)
        if moving.any():
            assert np.all(res.hoof[moving, j].argmax(1) == hists[moving].argmax(1))


def test_brow_raise_shows_up_in_the_eyebrow_region(raw_extractor, still_face):
    extractor = raw_extractor
    frames, env = brow_raise_frames(extractor, still_face, amp=2.0)
    res = extractor.window(frames, Window.evenly(0, 0, 25, 1, fps=25), StageTimer())
    assert res.face_found and res.hoof.shape == (25, 3, 8) and res.magnitude.shape == (25, 3)
    brows, mouth = res.magnitude[:, 0], res.magnitude[:, 1:].max(axis=1)
    rising = np.diff(env) > 0
    falling = np.diff(env) < 0
    # While rising, brow flow points up (bin 2 = 90 degrees); while falling, down (bin 6).
    assert np.all(res.hoof[rising, 0].argmax(1) == 2)
    assert np.all(res.hoof[falling, 0].argmax(1) == 6)
    assert brows[rising | falling].mean() > 4 * mouth.mean()
    assert brows[~(rising | falling)].max() < 0.1


def test_flow_is_a_displacement_per_flow_step(extractor, still_face):
    # The same frames read as if they were twice as far apart in time (a 30 fps window's
    # 67 ms gaps, say): every timestep's motion per flow step (40 ms) is half as large.
    frames, _ = brow_raise_frames(extractor, still_face, amp=2.0)
    near = extractor.window(frames, Window.evenly(0, 0, 25, 1, fps=25), StageTimer())
    far = extractor.window(frames, Window.evenly(0, 0, 25, 1, fps=12.5), StageTimer())
    # (Within 1e-4 px: the head's motion is fitted again on the halved field, and the robust
    # fit's answer moves in the last digits.)
    np.testing.assert_allclose(far.magnitude, near.magnitude / 2, rtol=1e-3, atol=1e-4)
    # Bins hold magnitudes per pixel (not normalised): halved too, in the same directions.
    np.testing.assert_allclose(far.hoof, near.hoof / 2, rtol=1e-3, atol=1e-4)


def test_flow_spans_several_steps_from_the_window_start(extractor, still_face):
    # A head drifting 0.3 px a frame, without compensation: one step's flow sees 0.3 px
    # (times the aligned face's scale), a span of three sees 0.6 px on the window's second
    # timestep (it starts at the first frame) and 0.9 px from the third on.
    frames = shift_frames(still_face, 14, 0.3, 0.0)
    w = Window.evenly(0, 0, 13, 1, fps=25)
    one, three = (
        WindowExtractor(FeatureConfig(stabilise="none", flow_span=n), extractor.face_model)
        .window(frames, w, StageTimer())
        .cell_flow[..., 0]
        .mean(axis=(1, 2, 3))
        for n in (1, 3)
    )
    assert one.min() > 0.2 and np.ptp(one) < 0.08  # the same drift at every step
    np.testing.assert_allclose(three / one.mean(), [1, 2] + [3] * 11, rtol=0.12)


@pytest.mark.parametrize("span", [0, 14])
def test_flow_span_must_fit_the_window(span):
    with pytest.raises(ValueError, match="flow_span must be 1 to the window's 13 timesteps"):
        FeatureConfig(flow_span=span)


def test_no_face_window_is_flagged(extractor):
    blank = [np.full((240, 320), 100, np.uint8)] * 26
    res = extractor.window(blank, Window.evenly(3, 40, 25, 1, fps=25), StageTimer())
    assert not res.face_found and res.hoof is None
    assert "frame 40" in res.skip_reason and "no face" in res.skip_reason


def test_unreadable_frames_flag_windows_and_the_rest_go_on(extractor, still_face):
    base = still_face

    def read_many(indices):
        for i in indices:
            if i == 20:
                raise FrameError("x/frame_0020.jpg: corrupt")
            yield i, base

    windows = WindowGrid.from_seconds(30).windows(60)  # 0..16, 6..22, 12..28, 18..34, ...
    results = list(extractor.video(read_many, windows))
    bad = [r.window.index for r in results if not r.face_found]
    assert bad == [1, 2, 3]  # the windows that need frame 20
    assert all("frame_0020.jpg" in results[i].skip_reason for i in bad)
    assert len(results) == len(windows)


def test_frame_cache_decodes_each_frame_once():
    calls = []

    def read_many(indices):
        for i in indices:
            calls.append(i)
            yield i, np.zeros((2, 2), np.uint8)

    cache = FrameCache(read_many)
    for w in WindowGrid.from_seconds(200).windows(400):
        cache.drop_before(w.start)
        cache.get(w.sample_frames())
        # the tail window (off the step grid) may sit beside frames of the last full one
        assert len(cache) <= 2 * (w.timesteps + 1)
    assert len(calls) == len(set(calls))


def test_contiguous_cache_never_reads_backwards():
    # At 30 fps a window samples frames 0, 1, 2, 4, ...: the next window (from 6) wants
    # frame 9, which the first skipped. A contiguous cache read it the first time, in order.
    calls = []

    def read_many(indices):
        for i in indices:
            calls.append(i)
            yield i, np.zeros((2, 2), np.uint8)

    cache = FrameCache(read_many, contiguous=True)
    for w in WindowGrid.from_seconds(30).windows(90):
        cache.drop_before(w.start)
        cache.get(w.sample_frames())
    assert calls == list(range(90))


def test_a_config_written_before_flow_span_keeps_its_id(tmp_path):
    # A feature_config.json from before the setting (no flow_span) reads as one step,
    # whatever the default is now, and keeps its config_id, so stores extracted then are
    # read as what they are, not refused and not mistaken for today's default; a longer
    # span is another config.
    import json

    d = json.loads(FeatureConfig(flow_span=1).to_json())
    del d["flow_span"]
    old = FeatureConfig.from_dict(d)
    assert old.flow_span == 1 and old.config_id == d["config_id"]
    assert FeatureConfig(flow_span=2).config_id != old.config_id
    # A config written by hand (no format) takes today's default for what it leaves out.
    by_hand = {k: v for k, v in d.items() if k not in ("format", "config_id")}
    assert FeatureConfig.from_dict(by_hand).flow_span == FeatureConfig().flow_span


def test_refinement_over_every_other_pixel_is_another_config_unless_nothing_is_refined():
    # A feature_config.json from before refine_stride reads as every pixel and keeps its
    # id; every other pixel (the default) is another config; without refinement (or
    # without cells) the stride changes no number, so it leaves the id alone.
    import json

    d = json.loads(FeatureConfig(refine_stride=1).to_json())
    del d["refine_stride"]
    old = FeatureConfig.from_dict(d)
    assert old.refine_stride == 1 and old.config_id == d["config_id"]
    assert FeatureConfig(refine_stride=2).config_id != old.config_id
    for unrefined in ({"cell_refine": False}, {"cells": 0}):
        ids = {FeatureConfig(**unrefined, refine_stride=s).config_id for s in (1, 2)}
        assert len(ids) == 1
    with pytest.raises(ValueError, match="refine_stride must be 1 to 4"):
        FeatureConfig(refine_stride=0)

"""Faces found on anchor windows (FeatureConfig.detect_every): the features stay within
today's own jitter, do not depend on chunking, and fall back to detection when the face is
gone."""

from pathlib import Path

import numpy as np
import pytest

from pipeline.core.windows import WindowGrid
from pipeline.vision.anchors import anchor_index, anchor_starts
from pipeline.vision.config import FeatureConfig
from pipeline.vision.features import WindowExtractor
from pipeline.vision.frames import FrameError, VideoFrames

CLIP = Path(__file__).parents[2] / "data" / "WolfgangLanger_Pexels.mp4"
needs_clip = pytest.mark.skipif(not CLIP.exists(), reason=f"{CLIP.name} not present")
ANCHORED = FeatureConfig(detect_every=5)
KINDS = ("hoof", "magnitude", "cell_flow")  # as conftest.features_of_clip returns


def test_anchored_faces_change_features_less_than_a_one_pixel_shift(clip_features):
    # The tolerance: faces from anchors every 5 windows may differ from detecting on every
    # window (detect_every=1, the default) by no more, on
    # average over every number, than detecting on every window differs from itself on
    # the same clip moved by one pixel (the detector's own jitter; measured: 0.76-0.81 of
    # it on this clip, 0.26-0.43 on a synthetic 2040x1088 one).
    n = 30
    before = clip_features(FeatureConfig(detect_every=1), n)
    jitter = clip_features(FeatureConfig(detect_every=1), n, shift=1)
    now = clip_features(ANCHORED, n)
    for k in KINDS:
        allowed = np.abs(jitter[k] - before[k]).mean()
        assert np.abs(now[k] - before[k]).mean() <= allowed, k
        assert np.corrcoef(now[k].ravel(), before[k].ravel())[0, 1] > 0.9, k
    # Anchors detect as every window did before: their features are unchanged.
    anchors = [i for i in range(n) if anchor_index(i, 5) == i]
    for k in KINDS:
        np.testing.assert_array_equal(now[k][anchors], before[k][anchors])


@needs_clip
def test_chunks_give_the_features_of_one_pass():
    config = ANCHORED
    ex = WindowExtractor(config)
    with VideoFrames(str(CLIP)) as v:
        windows = config.grid(v.fps).windows(v.n_frames)[:17]
        whole = list(ex.video(v.read_many, windows))
        parts = []
        for i in range(0, len(windows), 3):  # chunks that cut through the anchors' groups
            chunk = windows[i : i + 3]
            starts = anchor_starts(windows, chunk, config.detect_every)
            parts += list(ex.video(v.read_many, chunk, anchor_starts=starts))
    assert [r.window.index for r in parts] == [r.window.index for r in whole]
    for a, b in zip(whole, parts, strict=True):
        for k in KINDS:
            np.testing.assert_array_equal(getattr(a, k), getattr(b, k))


def test_anchor_starts_name_each_anchor_of_a_chunk():
    windows = WindowGrid.from_seconds(30).windows(200)
    assert anchor_starts(windows, windows[6:9], 5) == {5: windows[5].start}
    assert anchor_starts(windows, windows[3:11], 5) == {
        0: windows[0].start,
        5: windows[5].start,
        10: windows[10].start,
    }


def test_a_window_whose_anchor_was_not_given_is_refused(still_face):
    windows = WindowGrid.from_seconds(30).windows(60)
    ex = WindowExtractor(ANCHORED)
    with pytest.raises(ValueError, match="its anchor, window 0"):
        list(ex.video(lambda idx: ((i, still_face) for i in idx), windows[2:3]))


def _blank_after(face: np.ndarray, frame: int):
    blank = np.full_like(face, 110)

    def read_many(indices):
        for i in indices:
            yield i, face if i < frame else blank

    return read_many


def test_a_face_gone_since_the_anchor_is_not_tracked(still_face):
    # 30 fps: windows start every 6 frames; from frame 12 on the face is gone. Windows 1
    # (frames 6..) keeps the face from the anchor; windows 2-4 must not: their own
    # detection finds nothing, as it would without anchors.
    windows = WindowGrid.from_seconds(30).windows(60)[:5]
    ex = WindowExtractor(ANCHORED)
    got = list(ex.video(_blank_after(still_face, 12), windows))
    assert [r.face_found for r in got] == [True, True, False, False, False]
    assert all("no face detected" in r.skip_reason for r in got[2:])


def test_an_unreadable_anchor_frame_leaves_each_window_to_detect(still_face):
    def read_many(indices):
        for i in indices:
            if i == 0:
                raise FrameError("x/frame_0000.jpg: corrupt")
            yield i, still_face

    windows = WindowGrid.from_seconds(30).windows(60)[:3]
    ex = WindowExtractor(ANCHORED)
    got = list(ex.video(read_many, windows))
    assert [r.face_found for r in got] == [False, True, True]
    alone = next(ex.video(read_many, windows[1:2], anchor_starts={0: 0}))
    np.testing.assert_array_equal(alone.hoof, got[1].hoof)


def test_detect_every_one_is_the_config_before_it_existed():
    written = {k: v for k, v in FeatureConfig().to_dict().items() if k != "detect_every"}
    before = FeatureConfig.from_dict({"format": "mespot-features/4", **written})
    assert before.detect_every == 1
    assert FeatureConfig().config_id == before.config_id
    assert ANCHORED.config_id != before.config_id
    with pytest.raises(ValueError, match="detect_every"):
        FeatureConfig(detect_every=0)

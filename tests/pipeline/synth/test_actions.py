"""The synthetic corpus's facial actions: each AU moves the landmarks it names, the way it
names, by an amplitude that scales with the face; faces vary in size and contrast."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.synth.actions import (
    MICRO_AUS,
    REFERENCE_FACE_PX,
    micro_action,
    shape_event,
)
from pipeline.synth.config import REALISTIC, SynthConfig
from pipeline.synth.motion import displacement_at
from pipeline.synth.renderer import base_face


@pytest.fixture(scope="module")
def face():
    return base_face(0, 640, 360)


def moved(face, au, side, amp=2.0):
    """Displacement (68, 2) of every landmark under ``au``."""
    sigma = 0.08 * face.face_width
    bumps = micro_action(au, face.landmarks, sigma, amp, side)["bumps"]
    return displacement_at(face.landmarks, bumps)


def test_brow_actions_move_the_part_of_the_brow_they_name(face):
    # AU1 raises the inner brow ends (21, 22) by the amplitude and the outer brows (18, 25)
    # far less; AU2 the reverse; AU1+AU2 the arches. Image y grows downwards: raised is -dy.
    au1, au2, both = (moved(face, au, None) for au in ("AU1", "AU2", "AU1+AU2"))
    for inner, outer in ((21, 18), (22, 25)):
        assert au1[inner, 1] == pytest.approx(-2.0, abs=1e-6)
        assert au2[outer, 1] == pytest.approx(-2.0, abs=1e-6)
        assert abs(au1[outer, 1]) < 0.2 and abs(au2[inner, 1]) < 0.2
    assert both[19, 1] == pytest.approx(-2.0, abs=1e-6)
    assert both[24, 1] == pytest.approx(-2.0, abs=1e-6)


def test_au4_lowers_the_inner_brows_and_draws_them_together(face):
    d = moved(face, "AU4", None)
    # subject's right brow (17-21, image left) moves right (+x), the left one (22-26) left
    assert d[21, 1] > 1.0 and d[22, 1] > 1.0
    assert d[21, 0] > 0.5 and d[22, 0] < -0.5
    gap_before = face.landmarks[22, 0] - face.landmarks[21, 0]
    after = face.landmarks + d
    assert after[22, 0] - after[21, 0] < gap_before - 1.0
    assert np.abs(d[48:68]).max() < 0.05  # the mouth stays put


def test_one_sided_actions_move_one_side_only(face):
    right = moved(face, "AU4", 0)
    assert right[21, 1] > 1.0 and abs(right[22, 1]) < 0.3 * right[21, 1]
    for au in ("AU12", "AU14", "AU15"):
        d = moved(face, au, 1)  # the subject's left corner: landmark 54
        assert np.linalg.norm(d[54]) == pytest.approx(2.0, rel=1e-6)
        assert np.linalg.norm(d[48]) < 0.1
        assert np.abs(d[17:27]).max() < 0.05  # brows still


def test_corner_actions_pull_the_way_they_name(face):
    middle = face.landmarks[[48, 54], 0].mean()
    for side, corner in ((0, 48), (1, 54)):
        outwards = np.sign(face.landmarks[corner, 0] - middle)
        au12, au14, au15 = (moved(face, au, side)[corner] for au in ("AU12", "AU14", "AU15"))
        assert au12[1] < -1.0 and au12[0] * outwards > 0.5  # up and out
        assert au14[0] * outwards < -1.5 and abs(au14[1]) < 1e-6  # drawn in
        assert au15[1] > 1.5 and abs(au15[0]) < 1e-6  # down


def test_micro_amplitudes_are_drawn_at_a_400_px_face_and_scaled_to_this_one(face):
    rng = np.random.default_rng(3)
    amps, aus = [], set()
    for _ in range(300):
        e = shape_event("micro", rng, face.landmarks, face.face_width, "au", (0.5, 3.0))
        amps.append(e["amplitude_px"])
        aus.add(e["action_units"])
    k = face.face_width / REFERENCE_FACE_PX
    assert 0.5 * k <= min(amps) < 0.7 * k and 2.8 * k < max(amps) <= 3.0 * k
    assert aus == set(MICRO_AUS)


def test_subjects_differ_in_face_size_and_contrast():
    cfg = SynthConfig(subjects=6, seed=4, **REALISTIC)
    looks = [cfg.look(s) for s in range(6)]
    assert looks == [SynthConfig(subjects=6, seed=4, **REALISTIC).look(s) for s in range(6)]
    assert all(0.7 <= size <= 1.1 and 0.5 <= c <= 1.0 for size, c in looks)
    assert len(set(looks)) == 6
    assert {SynthConfig(subjects=6).look(s) for s in range(6)} == {(1.0, 1.0)}  # the default
    plain, small = base_face(0, 640, 360), base_face(0, 640, 360, size=0.7, contrast=0.5)
    assert small.face_width == pytest.approx(0.7 * plain.face_width, rel=0.02)
    face_box = np.s_[120:240, 260:380]
    assert small.canvas[face_box].std() < 0.6 * plain.canvas[face_box].std()


def test_bad_ranges_are_refused():
    with pytest.raises(ValueError, match="micro_px"):
        SynthConfig(micro_px=(3.0, 1.0))
    with pytest.raises(ValueError, match="contrast"):
        SynthConfig(contrast=(0.5, 1.5))


def test_the_classic_corpus_is_drawn_exactly_as_before_action_units():
    # The default corpus (actions="classic") must be the one every earlier figure was
    # measured on: the same events from the same seed. Golden digest of what mespot drew
    # before pipeline.synth.actions existed (commit 9ae6576), over what depends on the
    # random draws alone (not on the landmarks dlib fits).
    import hashlib
    import json

    from pipeline.synth.generate import plan_video

    cfg = SynthConfig(subjects=3, videos=2, seconds=20.0, fps=50.0, seed=5, macro_per_10s=2.0)
    rows = []
    for s in range(3):
        for k in (1, 2):
            _, events, _ = plan_video(cfg, s, k)
            for e in events:
                timing = [e.kind, e.onset, e.apex, e.offset]
                rows.append([*timing, e.region, e.action_units, round(e.amplitude_px, 6), e.notes])
    assert len(rows) == 95
    assert hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16] == "c20a34f97cb1229e"
    assert {r[5] for r in rows if r[0] == "micro"} <= {"AU1+AU2", "AU4", "AU12", "AU15"}

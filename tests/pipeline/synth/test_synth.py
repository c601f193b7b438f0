"""The synthetic SAMM-layout corpus: determinism, layout, sheet format, known motion."""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline.core.configs import parse_size
from pipeline.synth.generate import (
    FRAMES_DIR,
    MANIFEST_FILE,
    SHEET_COLUMNS,
    SHEET_FILE,
    SHEET_NAME,
    SynthConfig,
    SynthManifest,
    generate_corpus,
    plan_video,
)
from pipeline.synth.motion import (
    EVENT_KINDS,
    GAP_S,
    MIN_EVENT_FRAMES,
    Bump,
    bumps_through,
    displacement_at,
    envelope,
    place_events,
)
from pipeline.synth.renderer import MIRROR_68, PHOTOS, base_face, subject_variant

# Busy on purpose: every kind of event shows up in 4 s videos.
SMALL = SynthConfig(
    subjects=2,
    videos=2,
    seconds=4.0,
    fps=50.0,
    width=320,
    height=180,
    seed=7,
    micro_per_10s=6.0,
    macro_per_10s=2.5,
    blinks_per_10s=5.0,
    jerks_per_10s=3.0,
)
# Micro-movements only, on all four photos, at the default frame size.
MOTION = SynthConfig(
    subjects=4,
    seconds=4.0,
    fps=50.0,
    seed=1,
    micro_per_10s=8.0,
    macro_per_10s=0.0,
    blinks_per_10s=0.0,
    jerks_per_10s=0.0,
)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("synth")
    counted: list[int] = []
    return {
        "a": generate_corpus(root / "a", SMALL, progress=counted.append),
        "b": generate_corpus(root / "b", SMALL),
        "other": generate_corpus(root / "other", replace(SMALL, seed=8)),
        "progress": counted,
    }


@pytest.fixture(scope="module")
def motion(tmp_path_factory) -> SynthManifest:
    return generate_corpus(tmp_path_factory.mktemp("motion") / "c", MOTION)


def read_sheet(root: Path) -> pd.DataFrame:
    return pd.read_excel(root / SHEET_FILE, sheet_name=SHEET_NAME, header=9)


def grey(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


# --- determinism -------------------------------------------------------------------------------


def test_same_seed_gives_identical_corpus(corpora):
    a, b = corpora["a"], corpora["b"]
    assert (a.root / SHEET_FILE).read_bytes() == (b.root / SHEET_FILE).read_bytes()
    assert read_sheet(a.root).equals(read_sheet(b.root))
    assert (a.root / MANIFEST_FILE).read_text() == (b.root / MANIFEST_FILE).read_text()
    for v in a.videos:
        for n in (1, v.n_frames // 2, v.n_frames):
            assert a.frame_path(v.id, n).read_bytes() == b.frame_path(v.id, n).read_bytes()


def test_other_seed_differs(corpora):
    a, other = corpora["a"], corpora["other"]
    assert [e.to_dict() for e in a.events] != [e.to_dict() for e in other.events]
    v = a.videos[0]
    assert not np.array_equal(grey(a.frame_path(v.id, 10)), grey(other.frame_path(v.id, 10)))


def test_rendering_is_random_access():
    _, _, r1 = plan_video(SMALL, 0, 1)
    _, _, r2 = plan_video(SMALL, 0, 1)
    late = r1.render(120).copy()
    r2.render(3)
    assert np.array_equal(r2.render(120), late)


# --- layout and sheet ----------------------------------------------------------------------------


def test_layout(corpora):
    m = corpora["a"]
    n = round(SMALL.seconds * SMALL.fps)
    folders = sorted(p.name for p in (m.root / FRAMES_DIR).iterdir())
    assert folders == ["006_1", "006_2", "007_1", "007_2"]
    for v in m.videos:
        assert v.n_frames == n
        names = sorted(p.name for p in (m.root / v.folder).iterdir())
        assert names == [f"{v.id}_{k:04d}.jpg" for k in range(1, n + 1)]
        frame = grey(m.frame_path(v.id, 1))
        assert frame.shape == (SMALL.height, SMALL.width) and frame.dtype == np.uint8
    assert sum(corpora["progress"]) == n * len(m.videos)
    assert SynthManifest.load(m.root).to_dict() == m.to_dict()


def test_frame_names_grow_past_9999():
    v, _, _ = plan_video(replace(SMALL, seconds=60.0, fps=200.0), 0, 1)
    assert v.frame_name(1) == "006_1_00001.jpg"


def test_sheet_format(corpora):
    m = corpora["a"]
    from openpyxl import load_workbook

    ws = load_workbook(m.root / SHEET_FILE)[SHEET_NAME]
    assert ws.cell(1, 1).value  # a title
    assert [ws.cell(10, c).value for c in range(1, 11)] == list(SHEET_COLUMNS)

    df = read_sheet(m.root)
    assert list(df.columns) == list(SHEET_COLUMNS)
    annotated = [e for e in m.events if e.kind in ("micro", "macro")]
    assert len(df) == len(annotated) > 0
    assert {"micro", "macro"} <= {e.kind for e in annotated}
    assert set(df["Type"]) <= {"Micro - 1/2", "Macro"}
    for row, e in zip(df.itertuples(index=False), annotated, strict=True):
        subject, filename, _code, onset, apex, offset, duration, kind, aus, _notes = row
        assert re.fullmatch(r"\d{3}_\d+_\d+", filename)
        assert filename == f"{e.video}_{e.movement}" and subject == int(e.video[:3])
        assert (onset, apex, offset) == (e.onset, e.apex, e.offset)
        assert 1 <= onset < apex < offset <= SMALL.n_frames
        assert duration == offset - onset + 1
        assert kind == ("Macro" if e.kind == "macro" else "Micro - 1/2")
        (d0, d1), _ = EVENT_KINDS[e.kind]
        lo, hi = max(MIN_EVENT_FRAMES, round(d0 * SMALL.fps)), max(3, round(d1 * SMALL.fps))
        assert lo <= duration <= hi
        assert re.fullmatch(r"AU\d+(\+AU\d+)*", aus)
    # Movements are numbered 1.. in time order within each video.
    for v in m.videos:
        mine = [e for e in annotated if e.video == v.id]
        assert [e.movement for e in mine] == list(range(1, len(mine) + 1))
        assert [e.onset for e in mine] == sorted(e.onset for e in mine)


def test_distractors_only_in_json(corpora):
    m = corpora["a"]
    truth = json.loads((m.root / MANIFEST_FILE).read_text())
    kinds = {e["kind"] for e in truth["events"]}
    assert kinds == {"micro", "macro", "blink", "jerk"}
    df = read_sheet(m.root)
    listed = {(f.rsplit("_", 1)[0], o) for f, o in zip(df["Filename"], df["Onset"], strict=True)}
    for e in truth["events"]:
        annotated = e["kind"] in ("micro", "macro")
        assert (e["movement"] is not None) == annotated
        assert ((e["video"], e["onset"]) in listed) == annotated
        assert e["amplitude_px"] > 0 and e["region"]
    assert truth["config"] == SMALL.to_dict()


def test_events_keep_their_distance(corpora):
    fps = SMALL.fps
    gap = math.ceil(GAP_S * fps)
    for m in (corpora["a"], corpora["other"]):
        for v in m.videos:
            evs = m.events_of(v.id)
            assert evs[0].onset - 1 >= gap and v.n_frames - evs[-1].offset >= gap
            for a, b in itertools.pairwise(evs):
                assert b.onset - a.offset - 1 >= gap


def test_place_events_uniform_and_bounded():
    rng = np.random.default_rng(0)
    onsets = []
    for _ in range(300):
        placed, unplaced = place_events(rng, 1000, 100.0, {"micro": 1})
        assert unplaced == 0 and len(placed) == 1
        onsets.append(placed[0][1])
    assert min(onsets) >= 31 and max(onsets) <= 1000 - 30 - 20
    assert np.std(onsets) > 200  # spread over the video, not clumped
    placed, unplaced = place_events(rng, 200, 100.0, {"macro": 3})  # 2 s: room for one at most
    assert len(placed) + unplaced == 3 and len(placed) <= 1


# --- motion: known answers ------------------------------------------------------------------------


def test_envelope_shape():
    t = np.arange(8, 23)
    e = envelope(t, 10, 15, 20)
    assert e[t == 10] == 0 and e[t == 15] == 1 and e[t == 20] == 0
    assert np.all(e[(t < 10) | (t > 20)] == 0)
    assert np.all(np.diff(e[(t >= 10) & (t <= 15)]) > 0)
    assert np.all(np.diff(e[(t >= 15) & (t <= 20)]) < 0)


def test_bump_displacement_peaks_at_landmark():
    b = Bump((100.0, 50.0), (12.0, 8.0), (0.0, -2.5))
    assert np.allclose(displacement_at(np.array([100.0, 50.0]), [b]), [[0.0, -2.5]])
    far = displacement_at(np.array([[100 + 5 * 12, 50], [100, 50 + 5 * 8]]), [b])
    assert np.abs(far).max() < 1e-4
    # Two overlapping bumps still give exactly the wanted vectors at their centres.
    bumps = bumps_through([(0.0, 0.0), (20.0, 0.0)], [(15.0, 10.0)] * 2, [(0.0, 3.0), (1.0, -2.0)])
    got = displacement_at(np.array([[0.0, 0.0], [20.0, 0.0]]), bumps)
    assert np.allclose(got, [[0.0, 3.0], [1.0, -2.0]])


def _affine_residual(renderer, index):
    """Map minus its head-pose affine part, in canvas pixels: the events' displacement."""
    inv = cv2.invertAffineTransform(renderer.head.matrix(index))
    mx, my = (a.copy() for a in renderer.maps(index))
    h, w = mx.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    return inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2] - mx, inv[1, 0] * xs + inv[1, 1] * ys + inv[
        1, 2
    ] - my


def test_map_carries_exact_displacement():
    cfg = replace(MOTION, subjects=1)
    _, events, renderer = plan_video(cfg, 0, 1)
    assert events
    quiet = next(i for i in range(cfg.n_frames) if renderer.weight(i)[0] is None)
    rx, ry = _affine_residual(renderer, quiet)
    assert max(np.abs(rx).max(), np.abs(ry).max()) < 1e-3  # no event: the map is the head's affine
    for e in events:
        rx, ry = _affine_residual(renderer, e.apex - 1)
        mag = np.hypot(rx, ry)
        assert mag.max() == pytest.approx(e.amplitude_px, rel=0.02)
        fwd = renderer.head.matrix(e.apex - 1)
        for b in e.bumps:
            qx, qy = fwd[:, :2] @ b.centre + fwd[:, 2]
            near = mag[int(qy) - 1 : int(qy) + 3, int(qx) - 1 : int(qx) + 3]
            assert near.max() == pytest.approx(e.amplitude_px, rel=0.02)
        rx, ry = _affine_residual(renderer, e.onset - 1)
        assert np.hypot(rx, ry).max() < 1e-3  # envelope is 0 at the onset


def _stabilised(m: SynthManifest, heads, video: str, number: int) -> np.ndarray:
    """A frame warped back onto the canvas with the known head pose: only events remain."""
    f = grey(m.frame_path(video, number))
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    m_ = heads[video].matrix(number - 1)
    return cv2.warpAffine(
        f, m_, f.shape[::-1], flags=flags, borderMode=cv2.BORDER_REPLICATE
    ).astype(np.float32)


def _mad(a, b, centres, r) -> float:
    boxes = [(slice(int(y - r), int(y + r)), slice(int(x - r), int(x + r))) for x, y in centres]
    return float(np.mean([np.abs(a[bx] - b[bx]).mean() for bx in boxes]))


def test_micro_movement_shows_in_its_region_only(motion):
    heads = {}
    for s in range(MOTION.subjects):
        v, _, renderer = plan_video(MOTION, s, 1)
        heads[v.id] = renderer.head
    micro = [e for e in motion.events if e.kind == "micro"]
    assert len(micro) >= 8
    assert {"brow" if "brow" in e.region else "mouth" for e in micro} == {"brow", "mouth"}
    for e in micro:
        v = motion.video(e.video)
        lm, r = np.array(v.landmarks), 0.06 * v.face_width
        forehead = [(lm[19] + lm[24]) / 2 - (0, 0.25 * v.face_width)]
        at = [b.centre for b in e.bumps]
        onset, apex = (_stabilised(motion, heads, e.video, n) for n in (e.onset, e.apex))
        lag = e.apex - e.onset
        q0, q1 = (_stabilised(motion, heads, e.video, n) for n in (1, 1 + lag))  # quiet margin
        moved, still = _mad(onset, apex, at, r), _mad(q0, q1, at, r)
        far, far_still = _mad(onset, apex, forehead, r), _mad(q0, q1, forehead, r)
        assert moved > 2.5 * still, e
        assert moved > 2.5 * far, e
        assert far < 1.5 * far_still, e  # nothing happens on the forehead


def test_quiet_frames_differ_only_by_drift_and_noise(motion):
    v, _, renderer = plan_video(MOTION, 0, 1)
    heads = {v.id: renderer.head}
    lm = np.array(v.landmarks)
    face = [tuple(p) for p in lm[[19, 24, 30, 48, 54]]]
    a, b = (_stabilised(motion, heads, v.id, n) for n in (2, 3))  # inside the quiet margin
    # Noise sigma 2 in both frames: |a - b| averages 2 * 2 / sqrt(pi) = 2.26 before JPEG.
    assert _mad(a, b, face, 0.06 * v.face_width) < 2.5
    raw_a, raw_b = (grey(motion.frame_path(v.id, n)).astype(np.float32) for n in (2, 3))
    assert np.abs(raw_a - raw_b).mean() < 3.0  # drift between neighbours is a fraction of a px


# --- faces ---------------------------------------------------------------------------------------


def test_faces_are_found_where_the_manifest_says(motion):
    from pipeline.vision.face import FaceModel

    model = FaceModel()
    for s in range(len(PHOTOS) + 1):  # every photo and the first mirrored variant
        face = base_face(s, MOTION.width, MOTION.height)
        _, landmarks = model.find(face.canvas)
        err = np.linalg.norm(landmarks - face.landmarks, axis=1)
        assert np.median(err) < 0.04 * face.face_width, (s, face.photo)
        assert abs(face.face_width - 0.55 * MOTION.height * face.scale) < 0.25 * face.face_width


def test_subject_variants():
    n = len(PHOTOS)
    assert [subject_variant(i)[0] for i in range(n)] == [
        subject_variant(i + n)[0] for i in range(n)
    ]
    assert subject_variant(0)[1:] == (False, 1.0)
    assert subject_variant(n)[1] is True and subject_variant(n)[2] != 1.0
    assert len({subject_variant(i) for i in range(12 * n)}) == 12 * n
    assert sorted(MIRROR_68) == list(range(68))
    assert [MIRROR_68[MIRROR_68[i]] for i in range(68)] == list(range(68))
    assert MIRROR_68[36] == 45 and MIRROR_68[48] == 54 and MIRROR_68[17] == 26


# --- config --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("subjects", 0),
        ("subjects", 2.5),
        ("videos", 0),
        ("seconds", 0.5),
        ("seconds", float("nan")),
        ("fps", 0.0),
        ("width", 10),
        ("height", True),
        ("seed", -1),
        ("micro_per_10s", -1.0),
        ("noise_sigma", -0.1),
        ("jpeg_quality", 101),
    ],
)
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SynthConfig(**{field: value})


def test_config_round_trip_and_helpers():
    cfg = SynthConfig(seconds=6, fps=30)
    assert cfg.seconds == 6.0 and isinstance(cfg.seconds, float)
    assert SynthConfig.from_dict(cfg.to_dict()) == cfg
    assert SynthConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="colour"):
        SynthConfig.from_dict({"colour": 1})
    assert parse_size("2040x1088") == (2040, 1088)
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size("2040")


def test_refuses_to_overwrite(tmp_path):
    cfg = replace(SMALL, subjects=1, videos=1, seconds=1.0, width=64, height=64)
    generate_corpus(tmp_path / "c", cfg)
    with pytest.raises(FileExistsError):
        generate_corpus(tmp_path / "c", cfg)
    m = generate_corpus(tmp_path / "c", replace(cfg, seed=9), overwrite=True)
    assert SynthManifest.load(tmp_path / "c").config.seed == 9 == m.config.seed
    samm = tmp_path / "real"
    (samm / FRAMES_DIR).mkdir(parents=True)
    with pytest.raises(FileExistsError, match="not a synthetic corpus"):
        generate_corpus(samm, cfg, overwrite=True)
    assert (samm / FRAMES_DIR).is_dir()


def test_held_out_photos_are_used_only_when_named():
    from pipeline.synth.renderer import HELD_OUT_PHOTOS

    assert not set(HELD_OUT_PHOTOS) & set(PHOTOS)
    assert [subject_variant(i, HELD_OUT_PHOTOS)[0] for i in range(2)] == list(HELD_OUT_PHOTOS)
    cfg = replace(SMALL, subjects=1, videos=1, photos=HELD_OUT_PHOTOS[:1])
    assert SynthConfig.from_dict(cfg.to_dict()) == cfg  # saved and read back in the manifest
    face = base_face(0, cfg.width, cfg.height, cfg.faces)
    assert face.photo == HELD_OUT_PHOTOS[0] and face.landmarks.shape == (68, 2)
    with pytest.raises(ValueError, match="photos: unknown"):
        SynthConfig(photos=("nobody.jpg",))


def test_more_photos_each_give_a_centred_face_of_the_frame_height():
    from pipeline.synth.renderer import FACE_HEIGHT, HELD_OUT_PHOTOS, MORE_PHOTOS

    assert not set(MORE_PHOTOS) & set(PHOTOS + HELD_OUT_PHOTOS)
    cfg = SynthConfig(photos=MORE_PHOTOS)
    for i, name in enumerate(MORE_PHOTOS):
        face = base_face(i, 320, 240, cfg.faces)
        assert face.photo == name
        top, bottom = face.landmarks[:, 1].min(), face.landmarks[:, 1].max()
        # brows to chin span most of the face box, which is FACE_HEIGHT of the frame
        assert 0.6 * FACE_HEIGHT * 240 < bottom - top < 1.2 * FACE_HEIGHT * 240, name
        assert abs(face.landmarks[:, 0].mean() - 160) < 20, name

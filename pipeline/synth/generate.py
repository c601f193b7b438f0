"""A synthetic SAMM-layout corpus with known movements: ``mespot synth``.

Real face photos (``pipeline/assets``, one per subject) are animated with small local
warps at the eyebrows and mouth corners (micro- and macro-expressions), blinks and head
jerks (distractors, not annotated), slow head drift and sensor noise, and written the
way SAMM long videos come:

    OUT/SAMM_longvideos/006_1/006_1_0001.jpg ...      grey JPEG frames, numbered from 1
    OUT/SAMM_LongVideos_V2_Release.xlsx               sheet FACS_Movement_Only, header row 10
    OUT/synth_config.json                             the config and every event placed

The sheet lists micro and macro events only; the JSON lists all of them (the truth for
tests and debugging) and is written last, so its presence marks a finished corpus.
Everything is a function of the config: the same seed gives the same bytes, and a
video's content depends only on (seed, subject, video number), not on how many others
there are. How frames move: ``pipeline.synth.motion``; faces and pixels:
``pipeline.synth.renderer``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.core import configs
from pipeline.datasets import (
    SAMM_COLUMNS_ALL,
    SAMM_HEADER_ROW,
    SAMM_SHEET,
    SAMM_TYPES,
    SAMM_WORKBOOK,
    samm_workbook,
)
from pipeline.synth.actions import shape_event
from pipeline.synth.camera import Camera
from pipeline.synth.config import FIRST_SUBJECT, SynthConfig
from pipeline.synth.motion import HeadMotion, SynthEvent, event_counts, place_events
from pipeline.synth.renderer import BaseFace, FrameRenderer, base_face

FRAMES_DIR = "SAMM_longvideos"
SHEET_FILE = SAMM_WORKBOOK  # the reader (pipeline.datasets) owns the SAMM names
SHEET_NAME = SAMM_SHEET
SHEET_HEADER_ROW = SAMM_HEADER_ROW
SHEET_COLUMNS = SAMM_COLUMNS_ALL
SHEET_TYPES = SAMM_TYPES
MANIFEST_FILE = "synth_config.json"
MANIFEST_FORMAT = "mespot-synth/1"


@dataclass(frozen=True)
class SynthVideo:
    """One generated video; ``folder`` is relative to the corpus root, ``landmarks`` are
    the 68 iBUG points of the face at rest, in frame pixels (head drift moves them a few px)."""

    id: str
    subject: str
    index: int
    n_frames: int
    folder: str
    fps: float
    width: int
    height: int
    photo: str
    mirrored: bool
    face_scale: float
    face_width: float
    inducement_code: int
    unplaced: int  # events drawn but not placed for lack of room
    landmarks: tuple[tuple[float, float], ...]
    contrast: float = 1.0  # the face's contrast (SynthConfig.contrast)

    def frame_name(self, number: int) -> str:
        """File name of frame ``number`` (1-based): ``006_1_0001.jpg``."""
        return f"{self.id}_{number:0{max(4, len(str(self.n_frames)))}d}.jpg"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["landmarks"] = [[round(x, 3), round(y, 3)] for x, y in self.landmarks]
        return d

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "") -> SynthVideo:
        d = dict(d)
        d["landmarks"] = tuple((float(x), float(y)) for x, y in d["landmarks"])
        return configs.from_dict(cls, d, source=source)


@dataclass(frozen=True)
class SynthManifest:
    """What ``generate_corpus`` wrote under ``root``: videos and every event, in time order."""

    root: Path
    config: SynthConfig
    videos: list[SynthVideo]
    events: list[SynthEvent]

    def video(self, video_id: str) -> SynthVideo:
        for v in self.videos:
            if v.id == video_id:
                return v
        raise KeyError(video_id)

    def events_of(self, video_id: str, kinds: tuple[str, ...] | None = None) -> list[SynthEvent]:
        return [
            e for e in self.events if e.video == video_id and (kinds is None or e.kind in kinds)
        ]

    def frame_path(self, video_id: str, number: int) -> Path:
        v = self.video(video_id)
        return self.root / v.folder / v.frame_name(number)

    def to_dict(self) -> dict:
        return {
            "format": MANIFEST_FORMAT,
            "config": self.config.to_dict(),
            "videos": [v.to_dict() for v in self.videos],
            "events": [e.to_dict() for e in self.events],
        }

    @classmethod
    def from_dict(cls, d: dict, root: Path) -> SynthManifest:
        if d.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"not a {MANIFEST_FORMAT} manifest: format={d.get('format')!r}")
        where = str(Path(root) / MANIFEST_FILE)
        return cls(
            Path(root),
            SynthConfig.from_dict(d["config"], source=f"{where} config"),
            [SynthVideo.from_dict(v, source=f"{where} videos") for v in d["videos"]],
            [SynthEvent.from_dict(e, source=f"{where} events") for e in d["events"]],
        )

    @classmethod
    def load(cls, root: Path) -> SynthManifest:
        """Read ``root/synth_config.json``."""
        root = Path(root)
        return cls.from_dict(json.loads((root / MANIFEST_FILE).read_text()), root)


# --- one video ------------------------------------------------------------------------------


def plan_video(
    cfg: SynthConfig, subject_index: int, k: int, face: BaseFace | None = None
) -> tuple[SynthVideo, list[SynthEvent], FrameRenderer]:
    """Everything about video ``k`` (1-based) of a subject, and a renderer for its frames.

    Three independent random streams (events, head, noise) come from (seed, subject, k),
    so changing the noise leaves the events alone and other videos never matter.
    """
    face = face or base_face(
        subject_index, cfg.width, cfg.height, cfg.faces, *cfg.look(subject_index)
    )
    sid = f"{FIRST_SUBJECT + subject_index:03d}"
    vid = f"{sid}_{k}"
    r_events, r_head, r_noise, _camera = _streams(cfg, subject_index, k)
    n = cfg.n_frames
    inducement = int(r_events.integers(1, 6))
    counts = event_counts(r_events, cfg.seconds, cfg.rates_per_10s)
    timings, unplaced = place_events(r_events, n, cfg.fps, counts)
    events, movement = [], 0
    for kind, onset, apex, offset in timings:
        shape = shape_event(
            kind, r_events, face.landmarks, face.face_width, cfg.actions, cfg.micro_px
        )
        number = None
        if kind in SHEET_TYPES:
            movement += 1
            number = movement
        events.append(SynthEvent(kind, vid, onset, apex, offset, movement=number, **shape))
    centre = ((cfg.width - 1) / 2, (cfg.height - 1) / 2)
    head = HeadMotion.random(r_head, n, cfg.fps, centre, [e for e in events if e.kind == "jerk"])
    renderer = FrameRenderer(face.canvas, events, head, cfg.noise_sigma, r_noise)
    video = SynthVideo(
        vid,
        sid,
        k,
        n,
        f"{FRAMES_DIR}/{vid}",
        cfg.fps,
        cfg.width,
        cfg.height,
        face.photo,
        face.mirrored,
        face.scale,
        float(face.face_width),
        inducement,
        unplaced,
        tuple((float(x), float(y)) for x, y in face.landmarks),
        face.contrast,
    )
    return video, events, renderer


# --- the corpus -----------------------------------------------------------------------------


def sheet_rows(videos: list[SynthVideo], events: list[SynthEvent]) -> list[list]:
    """The FACS_Movement_Only rows of micro and macro events (Subject as a number, like SAMM)."""
    by_id = {v.id: v for v in videos}
    rows = []
    for e in events:
        if e.kind not in SHEET_TYPES:
            continue
        v = by_id[e.video]
        row = [int(v.subject), f"{e.video}_{e.movement}", v.inducement_code, e.onset, e.apex]
        rows.append([*row, e.offset, e.duration, SHEET_TYPES[e.kind], e.action_units, e.notes])
    return rows


def write_samm_sheet(path: Path, rows: list[list]) -> None:
    """Write the synthetic corpus's SAMM workbook (pipeline.datasets.samm_workbook)."""
    titles = [
        "SAMM Long Videos - SYNTHETIC corpus written by mespot synth (not SAMM data)",
        "Faces: pipeline/assets (see SOURCES.md); truth for every event: synth_config.json",
    ]
    Path(path).write_bytes(samm_workbook(rows, titles))


def _prepare(out_dir: Path, overwrite: bool) -> None:
    ours = [out_dir / FRAMES_DIR, out_dir / SHEET_FILE, out_dir / MANIFEST_FILE]
    present = [p for p in ours if p.exists()]
    if not present:
        out_dir.mkdir(parents=True, exist_ok=True)
        return
    if not overwrite:
        raise FileExistsError(
            f"{out_dir} already holds {present[0].name}; pass overwrite=True to replace it"
        )
    if not (out_dir / MANIFEST_FILE).exists():
        # A SAMM-looking folder without our manifest may be the real dataset: never delete it.
        raise FileExistsError(
            f"{out_dir} holds {present[0].name} but no {MANIFEST_FILE}: not a synthetic corpus"
        )
    # The manifest first, so an interrupted rewrite is never taken as finished.
    (out_dir / MANIFEST_FILE).unlink()
    shutil.rmtree(out_dir / FRAMES_DIR, ignore_errors=True)
    (out_dir / SHEET_FILE).unlink(missing_ok=True)


def _streams(cfg: SynthConfig, subject_index: int, k: int) -> list[np.random.Generator]:
    """The video's independent random streams (events, head, noise, camera) from (seed,
    subject, k); the camera's is the fourth, so the first three are what they were without it."""
    ss = np.random.SeedSequence([cfg.seed, subject_index, k])
    return [np.random.default_rng(c) for c in ss.spawn(4)]


def video_camera(cfg: SynthConfig, subject_index: int, k: int) -> Camera:
    """The camera of video ``k`` of a subject, on its own random stream."""
    rng = _streams(cfg, subject_index, k)[3]
    return Camera(rng, cfg.n_frames, cfg.fps, (cfg.width, cfg.height), cfg.crf, cfg.flicker)


def _write_frames(
    folder: Path,
    video: SynthVideo,
    renderer: FrameRenderer,
    camera: Camera,
    params: list[int],
    progress: Callable[[int], None] | None,
) -> None:
    """Render, pass through the video's camera, save as numbered JPEGs (progress per 50)."""
    folder.mkdir(parents=True)
    frame = np.empty((video.height, video.width), np.uint8)

    def rendered():
        for i in range(video.n_frames):
            yield from camera.process(i, renderer.render(i, out=frame))
        yield from camera.flush()

    pending = written = 0
    for written, image in enumerate(rendered(), start=1):
        ok, jpg = cv2.imencode(".jpg", image, params)
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {video.id} frame {written}")
        jpg.tofile(folder / video.frame_name(written))
        pending += 1
        if progress is not None and (pending == 50 or written == video.n_frames):
            progress(pending)
            pending = 0
    if written != video.n_frames:
        raise RuntimeError(f"{video.id}: the camera gave {written} of {video.n_frames} frames")


def generate_corpus(
    out_dir: Path,
    cfg: SynthConfig,
    progress: Callable[[int], None] | None = None,
    *,
    overwrite: bool = False,
) -> SynthManifest:
    """Write a synthetic SAMM-layout corpus under ``out_dir`` (see the module docstring).

    ``progress(n)`` is called with the number of frames just written (in batches of up to
    50). Refuses a folder that already holds a corpus unless ``overwrite`` (and refuses
    to delete one that has no ``synth_config.json``, which may be real SAMM data).
    """
    out_dir = Path(out_dir)
    _prepare(out_dir, overwrite)
    params = [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]
    videos: list[SynthVideo] = []
    events: list[SynthEvent] = []
    for s in range(cfg.subjects):
        face = base_face(s, cfg.width, cfg.height, cfg.faces, *cfg.look(s))
        for k in range(1, cfg.videos + 1):
            video, video_events, renderer = plan_video(cfg, s, k, face)
            camera = video_camera(cfg, s, k)
            _write_frames(out_dir / video.folder, video, renderer, camera, params, progress)
            videos.append(video)
            events.extend(video_events)
    manifest = SynthManifest(out_dir, cfg, videos, events)
    write_samm_sheet(out_dir / SHEET_FILE, sheet_rows(videos, events))
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest.to_dict(), indent=1) + "\n")
    return manifest

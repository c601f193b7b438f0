"""Per-window HOOF features of one video: decode -> face -> warp -> flow -> HOOF.

For each window: detect the face and fit landmarks on its first frame, align on the
eye line, refit and box the regions (pipeline.vision.face), warp only the regions of every
sampled frame into aligned-face pixels, compute optical flow between consecutive
sampled frames (chosen by time, R seconds apart: pipeline.core.windows) inside each region,
scaled to a displacement per R, and reduce each flow field to a HOOF.
The result per window is a (T, regions, bins) histogram array, a (T, regions)
array of mean flow magnitudes and, with ``cells``, a (T, regions, cells, cells, 2) array of
mean flow vectors per cell of each region.

Frames are decoded once even though windows overlap: a small cache holds the frames
of the current window that the next window also needs, so memory stays bounded by one
window whatever the video's length.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pyarrow as pa

from pipeline.core.labels import covering, label_spans, window_spans
from pipeline.core.records import Annotation, VideoRecord
from pipeline.core.windows import Window
from pipeline.vision.anchors import WindowFaces
from pipeline.vision.config import FeatureConfig
from pipeline.vision.face import FaceModel, NoFace, locate_window_face
from pipeline.vision.flow import make_flow
from pipeline.vision.frames import FrameError, open_frames
from pipeline.vision.hoof import cell_means, hoof_regions
from pipeline.vision.refine import refine_window
from pipeline.vision.stabilise import subtract_median, subtract_similarity
from pipeline.vision.threads import native_threads
from schemas import WINDOW_FEATURES, conform

STAGES = ("decode", "detect", "warp", "flow", "hoof")


#: How a window whose frames could not be decoded starts its ``skip_reason``.
UNREADABLE = "frames unreadable"


@dataclass
class StageTimer:
    """Seconds of CPU (process time) spent per stage."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def __call__(self, stage: str):
        t0 = time.process_time()
        try:
            yield
        finally:
            self.seconds[stage] += time.process_time() - t0


@dataclass(frozen=True)
class WindowResult:
    """Features of one window, or the reason it has none."""

    window: Window
    hoof: np.ndarray | None  # (T, regions, bins) float32
    magnitude: np.ndarray | None  # (T, regions) float32
    skip_reason: str | None = None
    cell_flow: np.ndarray | None = None  # (T, regions, cells, cells, 2) float32

    @property
    def face_found(self) -> bool:
        return self.hoof is not None


class FrameCache:
    """Decoded frames by index; asks the source only for frames it does not hold."""

    def __init__(
        self,
        read_many: Callable[[Iterable[int]], Iterator[tuple[int, np.ndarray]]],
        contiguous: bool = False,
    ):
        self._read_many = read_many
        self._frames: dict[int, np.ndarray] = {}
        # Contiguous: every frame between the first and last wanted is read and kept, so
        # reads never go back (seeking by frame number is not exact in variable-rate files).
        self._contiguous = contiguous

    def get(self, indices: Sequence[int]) -> list[np.ndarray]:
        missing = [i for i in indices if i not in self._frames]
        if self._contiguous and missing:
            missing = [i for i in range(missing[0], max(indices) + 1) if i not in self._frames]
        for i, frame in self._read_many(missing):
            self._frames[i] = frame
        return [self._frames[i] for i in indices]

    def drop_before(self, index: int) -> None:
        for i in [i for i in self._frames if i < index]:
            del self._frames[i]

    def __len__(self) -> int:
        return len(self._frames)


class WindowExtractor:
    """Extracts window features with one face model and one flow object (reuse per worker)."""

    def __init__(self, config: FeatureConfig, face_model: FaceModel | None = None) -> None:
        self.config = config
        self.face_model = face_model or FaceModel(config.detect_max_side, config.detect_upsample)
        self._flow = make_flow(config.flow, config.dis_preset)
        self._locate = partial(
            locate_window_face,
            regions=config.regions,
            face_width=config.face_width,
            left_eye_x=config.left_eye_x,
            left_eye_y=config.left_eye_y,
            reference=config.stabilise == "nose",
        )

    def faces(self, anchor_starts: dict[int, int] | None = None) -> WindowFaces:
        """Window faces by anchors (pipeline.vision.anchors) for one pass over a video."""
        every = self.config.detect_every
        return WindowFaces(self.face_model, self._locate, every, anchor_starts or {})

    def window(
        self,
        frames: list[np.ndarray],
        window: Window,
        timer: StageTimer,
        faces: WindowFaces | None = None,
    ) -> WindowResult:
        """Features of ``window`` from its T + 1 grey frames (``faces``: found by anchors)."""
        cfg = self.config
        if len(frames) != window.timesteps + 1:
            raise ValueError(
                f"window {window.index} needs {window.timesteps + 1} frames, got {len(frames)}"
            )
        with timer("detect"):
            try:
                first = frames[0]
                face = faces.face(window, first) if faces else self._locate(self.face_model, first)
            except NoFace as e:
                return WindowResult(window, None, None, f"frame {window.start}: {e}")
        # Flow is computed once per frame pair over the union of the regions and each
        # region's HOOF is read from its part of the field. DIS is local (8 px patches), so
        # a region's flow is that of its own pixels (tests/test_features.py checks this
        # against flow on each region's own crop), and one larger image keeps OpenCV's DIS
        # on its fast path: on crops under ~96 px it is 5-10x slower per pixel.
        with timer("warp"):
            crops = [face.alignment.warp(f, face.union) for f in frames]
        t, r = window.timesteps, len(cfg.regions)
        with timer("flow"):
            # Timestep k is the displacement from sampled frame k + 1 - flow_span (the
            # window's first frame at most) to frame k + 1: one estimate over a longer span
            # carries a slow movement's whole displacement with one estimate's noise.
            ends = np.arange(1, t + 1)
            refs = np.maximum(0, ends - cfg.flow_span)
            raw = np.stack(
                [self._flow(crops[a], crops[b]) for a, b in zip(refs, ends, strict=True)]
            )
            # Scaled to a displacement per (steps spanned x flow_step_s) seconds: frames chosen
            # by time lie 1 or 2 frames apart at 30 fps (33 or 67 ms for a 40 ms step).
            times = np.cumsum([0.0, *window.gaps_s])
            scale = (ends - refs) * cfg.flow_step_s / (times[ends] - times[refs])
            if not np.allclose(scale, 1.0, rtol=1e-6):
                flows = raw * scale[:, None, None, None].astype(raw.dtype)
            else:  # stabilising works in place; the refinement starts from the raw flow
                flows = raw.copy() if cfg.cell_refine and cfg.cells else raw
            ref = face.reference_slice()
            if cfg.stabilise == "similarity":  # the head's own motion (pipeline.vision.stabilise)
                flows = subtract_similarity(flows)
            elif ref is not None:
                flows = subtract_median(flows, *ref)
        hists = np.zeros((t, r, cfg.n_bins), np.float32)
        mags = np.zeros((t, r), np.float32)
        cells = np.zeros((t, r, cfg.cells, cfg.cells, 2), np.float32) if cfg.cells else None
        with timer("hoof"):
            hists[:], mags[:] = hoof_regions(flows, face.region_slices(), cfg.n_bins, cfg.normalise)
            for j, (rows, cols) in enumerate(face.region_slices() if cells is not None else []):
                cells[:, j] = cell_means(flows[:, rows, cols], cfg.cells)
        if cells is not None and cfg.cell_refine:
            with timer("refine"):
                cells += self._refinement(crops, raw, refs, ends, face.region_slices(), scale)
        return WindowResult(window, hists, mags, cell_flow=cells)

    def _refinement(self, crops, raw, refs, ends, slices, scale) -> np.ndarray:
        """(T, R, cells, cells, 2): what a least-squares step over each cell adds to its
        mean flow (pipeline.vision.refine), from the unstabilised flow ``raw`` and scaled
        like the flow."""
        n = self.config.cells
        starts = np.stack([cell_means(raw[:, rows, cols], n) for rows, cols in slices], axis=1)
        out = refine_window(crops, refs, ends, slices, starts, self.config.refine_stride)
        return out * scale[:, None, None, None, None].astype(np.float32)

    def video(
        self,
        read_many: Callable[[Iterable[int]], Iterator[tuple[int, np.ndarray]]],
        windows: list[Window],
        timer: StageTimer | None = None,
        contiguous: bool = False,
        anchor_starts: dict[int, int] | None = None,
    ) -> Iterator[WindowResult]:
        """Features of each window in turn; a window whose frames fail to decode is flagged.
        ``contiguous``: read every frame of the span, never going back (variable-rate video).
        ``anchor_starts``: the first frames of anchors not among ``windows``
        (pipeline.vision.anchors.anchor_starts; not needed when ``windows`` hold them)."""
        timer = timer or StageTimer()
        cache = FrameCache(read_many, contiguous)
        faces = self.faces(anchor_starts)
        for w in sorted(windows, key=lambda w: w.start):
            anchor = faces.needs(w)
            if anchor is not None:
                with timer("decode"):
                    cache.drop_before(min(anchor, w.start))
                    try:
                        frame = cache.get([anchor])[0]
                    except FrameError as e:
                        frame = e
                with timer("detect"):
                    faces.set_anchor(w, frame)
            try:
                with timer("decode"):
                    cache.drop_before(w.start)
                    frames = cache.get(w.sample_frames())
            except FrameError as e:
                yield WindowResult(w, None, None, f"{UNREADABLE}: {e}")
                continue
            yield self.window(frames, w, timer, faces)


def results_table(
    record: VideoRecord,
    results: list[WindowResult],
    labels: list[bool] | None,
    config: FeatureConfig,
) -> pa.Table:
    """The ``window_features`` table of one video (labels None: video without ground truth)."""
    n_regions, n_bins = len(config.regions), config.n_bins
    rows = []
    for i, res in enumerate(results):
        w = res.window
        rows.append(
            {
                "dataset": record.dataset,
                "subject": record.subject,
                "video": record.video,
                "window": w.index,
                "start_frame": w.start,
                "end_frame": w.end,
                "start_s": w.start_s,
                "end_s": w.end_s,
                "face_found": res.face_found,
                "skip_reason": res.skip_reason,
                "n_timesteps": w.timesteps,
                "n_regions": n_regions,
                "n_bins": n_bins,
                "hoof": None if res.hoof is None else res.hoof.ravel(),
                "magnitude": None if res.magnitude is None else res.magnitude.ravel(),
                "n_cells": config.cells,
                "cell_flow": None if res.cell_flow is None else res.cell_flow.ravel(),
                "label": None if labels is None else labels[i],
                "config_id": config.config_id,
            }
        )
    return conform(rows, WINDOW_FEATURES)


def extract_video(
    record: VideoRecord,
    annotations: list[Annotation] | None,
    extractor: WindowExtractor,
    *,
    fs=None,
    timer: StageTimer | None = None,
    on_window: Callable[[WindowResult], None] | None = None,
) -> pa.Table:
    """The ``window_features`` table of one video.

    ``annotations`` None means the video has no ground truth (labels are null); an
    empty list means it has none of the kinds in ``config.label_kinds`` (all False).
    Raises FrameError when the video cannot be opened at all; a window whose frames
    cannot be decoded, or that shows no face, is kept and flagged with the reason.
    """
    cfg = extractor.config
    windows = video_windows(record, cfg, fs=fs)
    results = []
    with (
        native_threads(),
        open_frames(record.uri, fs=fs, fps=record.fps, reduce=cfg.decode_reduce) as source,
    ):
        for res in extractor.video(source.read_many, windows, timer, record.variable_rate):
            results.append(res)
            if on_window is not None:
                on_window(res)
    return features_table(record, windows, results, annotations, cfg)


def video_windows(record: VideoRecord, config: FeatureConfig, fs=None) -> list[Window]:
    """The video's windows: on its frame-rate grid, or, when its frame rate varies, by its
    frames' timestamps (read from the container, without decoding). ValueError when its
    frame rate is too low for ``config.flow_step_s``."""
    if not record.variable_rate:
        return config.grid(record.fps).windows(record.n_frames)
    with open_frames(record.uri, fs=fs) as source:  # no fps given: the container's times
        times = source.frame_times()
    if times is None:  # evenly spaced after all
        return config.grid(record.fps).windows(record.n_frames)
    # The typical rate, not the mean: dropped frames lower the mean, not the frames' spacing.
    typical = 1.0 / float(np.median(np.diff(times)))
    return config.grid(typical).windows(record.n_frames, times)


def features_table(
    record: VideoRecord,
    windows: list[Window],
    results: list[WindowResult],
    annotations: list[Annotation] | None,
    config: FeatureConfig,
) -> pa.Table:
    """The video's ``window_features`` table, labelled from its ground truth.

    ``annotations`` None: no ground truth (labels null); [] or only other kinds than
    ``config.label_kinds``: all windows negative.
    """
    labels = truth_labels(window_spans(windows, config.label_span_s), annotations, config)
    return results_table(record, results, None if labels is None else labels.tolist(), config)


def truth_labels(
    spans: tuple[np.ndarray, np.ndarray],
    annotations: list[Annotation] | None,
    config: FeatureConfig,
) -> np.ndarray | None:
    """(N,) bool labels of windows (their label spans, pipeline.core.labels) from a video's
    ground truth (its ``config.label_kinds``, by the coverage rule); None when the video
    has none."""
    if annotations is None:
        return None
    truth = [a.interval for a in annotations if a.kind in config.label_kinds]
    return covering(*spans, truth, config.label_min_coverage)


def relabel(
    table: pa.Table, annotations: list[Annotation] | None, config: FeatureConfig
) -> pa.Table:
    """A video's ``window_features`` table with its ``label`` column recomputed from
    ``annotations`` (same rule as :func:`features_table`); every other column kept.

    Labels depend on the ground truth only, so corrected or added annotations need no new
    features.
    """
    cols = (table.column(c).to_numpy() for c in ("start_frame", "end_frame", "start_s", "end_s"))
    found = truth_labels(label_spans(*cols, config.label_span_s), annotations, config)
    labels = pa.nulls(table.num_rows, pa.bool_()) if found is None else pa.array(found)
    i = table.schema.get_field_index("label")
    return conform(table.set_column(i, "label", labels), WINDOW_FEATURES)

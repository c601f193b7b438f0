"""Units of extraction work: a video job, its chunks of windows, and a chunk's computation.

A video is one job, split into chunks of consecutive windows (frames shared by the
overlapping windows of a chunk are decoded once). Chunks run anywhere (in-process or as
Ray tasks, cluster.run.executors); the driver (cluster.run.extract) commits a video when
all of its chunks are back (cluster.store.commits).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from cluster.store.commits import video_name
from pipeline.core.records import Annotation, VideoRecord
from pipeline.core.windows import Window
from pipeline.vision.anchors import anchor_starts
from pipeline.vision.config import FeatureConfig
from pipeline.vision.features import WindowExtractor, WindowResult, video_windows
from pipeline.vision.frames import FrameError, open_frames
from pipeline.vision.threads import native_threads


@dataclass(frozen=True)
class VideoJob:
    """One video to extract: its record (``uri`` a full fsspec URI), truth and windows."""

    record: VideoRecord
    annotations: list[Annotation] | None  # None: the video has no ground truth
    windows: list[Window]
    span: int = 0  # frame intervals one window spans (its frames: span + 1)
    problem: str = ""  # why a video has no windows other than being short (too low a rate)

    @property
    def name(self) -> str:
        return video_name(self.record)

    def chunks(self, size: int) -> list[list[Window]]:
        if size < 1:
            raise ValueError(f"chunk size must be >= 1 window, got {size}")
        return [self.windows[i : i + size] for i in range(0, len(self.windows), size)]

    def tasks(self, size: int, config: FeatureConfig) -> list[tuple]:
        """compute_chunk's arguments after ``config`` for each chunk: (record, windows, the
        first frames of their anchors)."""
        every = config.detect_every
        return [(self.record, c, anchor_starts(self.windows, c, every)) for c in self.chunks(size)]


def plan_job(
    record: VideoRecord, annotations: list[Annotation] | None, config: FeatureConfig
) -> VideoJob:
    try:
        fs, path = url_to_fs(record.uri)
        windows = video_windows(replace(record, uri=path), config, fs=fs)
        span = windows[0].end - windows[0].start if windows else config.grid(record.fps).span
    except (ValueError, FrameError) as e:  # too low a frame rate; timestamps unreadable
        return VideoJob(record, annotations, [], 0, problem=str(e))
    return VideoJob(record, annotations, windows, span)


def with_full_uri(record: VideoRecord, fs) -> VideoRecord:
    """The record with a URI that names its filesystem (workers open it on their own)."""
    if fs is None or isinstance(fs, LocalFileSystem) or "://" in record.uri:
        return record
    return replace(record, uri=fs.unstrip_protocol(record.uri))


# --- worker side -------------------------------------------------------------------------

_EXTRACTORS: dict[str, WindowExtractor] = {}
_LOCAL_COPIES: dict[str, str] = {}
_COPY_DIR: list[str] = []


def extractor_for(config: FeatureConfig) -> WindowExtractor:
    """One extractor (dlib models, flow state) per config per worker process."""
    ex = _EXTRACTORS.get(config.config_id)
    if ex is None:
        ex = _EXTRACTORS[config.config_id] = WindowExtractor(config)
    return ex


def _local_video(fs, path: str, fingerprint: str) -> str:
    """A remote video copied once per worker (OpenCV reads only local files)."""
    key = f"{path}#{fingerprint}"
    if key not in _LOCAL_COPIES:
        if not _COPY_DIR:
            _COPY_DIR.append(tempfile.mkdtemp(prefix="mespot-videos-"))
            atexit.register(shutil.rmtree, _COPY_DIR[0], True)
        if len(_LOCAL_COPIES) >= 4:  # keep the few most recent
            old = _LOCAL_COPIES.pop(next(iter(_LOCAL_COPIES)))
            os.remove(old)
        local = os.path.join(_COPY_DIR[0], f"{uuid.uuid4().hex}-{path.rsplit('/', 1)[-1]}")
        fs.get_file(path, local)
        _LOCAL_COPIES[key] = local
    return _LOCAL_COPIES[key]


def compute_chunk(
    config: FeatureConfig,
    record: VideoRecord,
    windows: Sequence[Window],
    anchor_starts: dict[int, int] | None = None,
) -> list[WindowResult]:
    """Features of consecutive ``windows`` of one video (runs in a worker; the executors
    send ``config``, shared by every chunk of a run, once). ``anchor_starts``: the first
    frame of each of their anchors (pipeline.vision.anchors; needed when the chunk does
    not hold them)."""
    fs, path = url_to_fs(record.uri)
    if record.source_kind == "video" and not isinstance(fs, LocalFileSystem):
        fs, path = LocalFileSystem(), _local_video(fs, path, record.fingerprint)
    # The windows already hold the frames to read (chosen by time on the driver), so a
    # variable-rate video is not demuxed again here; it is read straight through, never
    # seeking back (seeking by frame number is not exact in such files).
    # One CPU's work: OpenCV and BLAS held to one thread (pipeline.vision.threads).
    with (
        native_threads(),
        open_frames(path, fs=fs, fps=record.fps, reduce=config.decode_reduce) as source,
    ):
        extractor = extractor_for(config)
        results = extractor.video(
            source.read_many, list(windows), None, record.variable_rate, anchor_starts
        )
        return list(results)

"""Units of extraction work and how their results are committed to a store.

A video is one job, split into chunks of consecutive windows (frames shared by the
overlapping windows of a chunk are decoded once). Chunks run anywhere (in-process or as
Ray tasks); the driver commits a video when all of its chunks are back:

Before extraction a video is registered in the manifest:

- ``videos/dataset=D/subject=S/video=V/part-0.parquet``      (schemas.VIDEOS, one row)
- ``annotations/dataset=D/subject=S/video=V/part-0.parquet`` (schemas.ANNOTATIONS)

and when it is finished, committed:

1. ``features/dataset=D/subject=S/video=V/part-0.parquet``  (schemas.WINDOW_FEATURES)
2. ``_commits/D/S/V.json``: video key, content fingerprint, feature config id, windows.

Each file is written atomically and always at the same path, so redoing a video
replaces it: a run killed anywhere, then run again, ends with exactly one copy of every
window. A video whose commit marker matches its fingerprint and config is skipped.
Overlapping runs take a lease per video (``_leases/D/S/V.json``, created exclusively) so
two runs never extract the same video at once.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import quote

from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from cluster.store import Store
from pipeline.config import FeatureConfig
from pipeline.features import WindowExtractor, WindowResult, features_table
from pipeline.frames import open_frames
from pipeline.records import Annotation, VideoRecord
from pipeline.windows import Window
from schemas import ANNOTATIONS, VIDEOS, conform

#: A lease not renewed for this long is taken to be held by a dead run. Running drivers
#: renew theirs every third of it.
LEASE_TTL_S = 600.0


@dataclass(frozen=True)
class VideoJob:
    """One video to extract: its record (``uri`` a full fsspec URI), truth and windows."""

    record: VideoRecord
    annotations: list[Annotation] | None  # None: the video has no ground truth
    windows: list[Window]

    @property
    def name(self) -> str:
        r = self.record
        return f"{r.dataset}/{r.subject}/{r.video}"

    def chunks(self, size: int) -> list[list[Window]]:
        if size < 1:
            raise ValueError(f"chunk size must be >= 1 window, got {size}")
        return [self.windows[i : i + size] for i in range(0, len(self.windows), size)]


def plan_job(
    record: VideoRecord, annotations: list[Annotation] | None, config: FeatureConfig
) -> VideoJob:
    return VideoJob(record, annotations, config.grid(record.fps).windows(record.n_frames))


def with_full_uri(record: VideoRecord, fs) -> VideoRecord:
    """The record with a URI that names its filesystem (workers open it on their own)."""
    if fs is None or isinstance(fs, LocalFileSystem) or "://" in record.uri:
        return record
    return replace(record, uri=fs.unstrip_protocol(record.uri))


def partition(record: VideoRecord) -> list[str]:
    """Hive partition folders of one video (values URI-encoded, as pyarrow expects)."""
    return [
        f"dataset={quote(record.dataset, safe='')}",
        f"subject={quote(record.subject, safe='')}",
        f"video={quote(record.video, safe='')}",
    ]


def _json_parts(folder: str, record: VideoRecord) -> list[str]:
    """``folder/D/S/V.json`` of a video (commit markers, leases)."""
    *head, video = _key(record)
    return [folder, *head, f"{video}.json"]


def _key(record: VideoRecord) -> list[str]:
    return [
        quote(record.dataset, safe=""),
        quote(record.subject, safe=""),
        quote(record.video, safe=""),
    ]


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
    record: VideoRecord, windows: Sequence[Window], config: FeatureConfig
) -> list[WindowResult]:
    """Features of consecutive ``windows`` of one video (runs in a worker)."""
    fs, path = url_to_fs(record.uri)
    if record.source_kind == "video" and not isinstance(fs, LocalFileSystem):
        fs, path = LocalFileSystem(), _local_video(fs, path, record.fingerprint)
    with open_frames(path, fs=fs, fps=record.fps, reduce=config.decode_reduce) as source:
        return list(extractor_for(config).video(source.read_many, list(windows)))


# --- driver side -------------------------------------------------------------------------


def _stale(lease: dict) -> bool:
    if lease.get("expires_at", 0) <= time.time():
        return True
    if lease.get("host") == socket.gethostname():
        try:
            os.kill(int(lease.get("pid", 0)), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError, OverflowError):
            return False
    return False


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


class Committer:
    """Leases, skip checks and atomic commits of finished videos in one store."""

    def __init__(self, store: Store, config: FeatureConfig, run_id: str) -> None:
        self.store, self.config, self.run_id = store, config, run_id

    def marker(self, record: VideoRecord) -> dict | None:
        parts = _json_parts("_commits", record)
        return self.store.read_json(*parts) if self.store.exists(*parts) else None

    def is_done(self, record: VideoRecord) -> bool:
        m = self.marker(record)
        return (
            m is not None
            and m.get("fingerprint") == record.fingerprint
            and m.get("config_id") == self.config.config_id
        )

    def _lease_parts(self, record: VideoRecord) -> list[str]:
        return _json_parts("_leases", record)

    def _lease_body(self, ttl_s: float) -> bytes:
        body = {
            "run_id": self.run_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "expires_at": time.time() + ttl_s,
        }
        return (json.dumps(body) + "\n").encode()

    def acquire(self, record: VideoRecord, ttl_s: float = LEASE_TTL_S) -> str | None:
        """Take the video's lease: None on success, else who holds it.

        A lease is stale, and is broken, when it has expired or when it was taken on this
        host by a process that no longer exists (a killed run on the same machine).
        """
        parts = self._lease_parts(record)
        for _ in range(2):
            if self.store.create_exclusive(self._lease_body(ttl_s), *parts):
                return None
            try:
                held = self.store.read_json(*parts)
            except FileNotFoundError:
                continue  # released in between: try again
            if not _stale(held):
                return f"run {held.get('run_id')} on {held.get('host')}"
            # Only one run may break a given stale lease: the one that creates its
            # tombstone. (Two breakers would otherwise delete each other's fresh lease.)
            tomb = [
                *parts[:-1],
                f"{parts[-1]}.broken-{held.get('run_id')}-{held.get('expires_at')}",
            ]
            if not self.store.create_exclusive(self._lease_body(0), *tomb):
                return "a concurrent run (lease contended)"
            self.store.remove(*parts)
        return "a concurrent run (lease contended)"

    def renew(self, record: VideoRecord, ttl_s: float = LEASE_TTL_S) -> None:
        """Push our lease's expiry forward (a long queue must not let it lapse)."""
        self.store.put_atomic(self._lease_body(ttl_s), *self._lease_parts(record))

    def release(self, record: VideoRecord) -> None:
        """Drop our lease (not one another run took over after ours lapsed)."""
        parts = self._lease_parts(record)
        try:
            held = self.store.read_json(*parts)
        except FileNotFoundError:
            return
        if held.get("run_id") == self.run_id:
            self.store.remove(*parts)

    def register(self, job: VideoJob) -> None:
        """Put the video (and its ground truth) in the manifest before extracting it."""
        part = partition(job.record)
        videos = conform([job.record.to_dict()], VIDEOS)
        self.store.write_parquet(videos, "videos", *part, "part-0.parquet")
        if job.annotations is not None:
            ann = conform([a.to_dict() for a in job.annotations], ANNOTATIONS)
            self.store.write_parquet(ann, "annotations", *part, "part-0.parquet")

    def commit(self, job: VideoJob, results: list[WindowResult]) -> int:
        """Write the video's tables, then its marker. Returns the number of windows."""
        results = sorted(results, key=lambda r: r.window.index)
        if [r.window.index for r in results] != [w.index for w in job.windows]:
            raise RuntimeError(f"{job.name}: chunk results do not cover its windows exactly")
        rec = job.record
        table = features_table(rec, job.windows, results, job.annotations, self.config)
        self.store.write_parquet(table, "features", *partition(rec), "part-0.parquet")
        self.store.write_json(
            {
                "dataset": rec.dataset,
                "subject": rec.subject,
                "video": rec.video,
                "fingerprint": rec.fingerprint,
                "config_id": self.config.config_id,
                "windows": table.num_rows,
                "run_id": self.run_id,
                "committed_at": time.time(),
            },
            *_json_parts("_commits", rec),
        )
        return table.num_rows

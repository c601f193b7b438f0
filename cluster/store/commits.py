"""Extraction's bookkeeping in a store: the manifest, leases per video, atomic commits.

Before extraction a video is registered in the manifest:

- ``videos/dataset=D/subject=S/video=V/part-0.parquet``      (schemas.VIDEOS, one row)
- ``annotations/dataset=D/subject=S/video=V/part-0.parquet`` (schemas.ANNOTATIONS)

and when it is finished, committed:

1. ``features/dataset=D/subject=S/video=V/part-0.parquet``  (schemas.WINDOW_FEATURES)
2. ``_commits/D/S/V.json``: video key, content fingerprint, feature config id, windows.

Each file is written atomically and always at the same path, so redoing a video
replaces it: a run killed anywhere, then run again, ends with exactly one copy of every
window. A video whose commit marker matches its fingerprint and config is not extracted
again; when the run brings other ground truth than the marker records (a corrected or
added annotation), only its ``annotations`` and the ``label`` column of its features are
rewritten (:meth:`Committer.refresh_truth`): labels depend on nothing else.
Overlapping runs take a lease per video (``_leases/D/S/V.json``, created exclusively) so
two runs never extract the same video at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Sequence

from cluster.store import paths
from cluster.store.store import Store
from pipeline.core.records import Annotation, VideoRecord
from pipeline.core.windows import Window
from pipeline.vision.config import FeatureConfig
from pipeline.vision.features import WindowResult, features_table, relabel
from schemas import ANNOTATIONS, VIDEOS, conform

#: A lease not renewed for this long is taken to be held by a dead run. Running drivers
#: renew theirs every third of it.
LEASE_TTL_S = 600.0


def video_name(record: VideoRecord) -> str:
    """``dataset/subject/video``: how runs name a video in summaries and errors."""
    return f"{record.dataset}/{record.subject}/{record.video}"


def partition(record: VideoRecord) -> list[str]:
    """Hive partition folders of one video (values URI-encoded, as pyarrow expects)."""
    return paths.video_partition(record.dataset, record.subject, record.video)


def _marker_parts(record: VideoRecord) -> list[str]:
    return paths.video_file(paths.COMMITS, record.dataset, record.subject, record.video)


def _lease_parts(record: VideoRecord) -> list[str]:
    return paths.video_file(paths.LEASES, record.dataset, record.subject, record.video)


def truth_fingerprint(annotations: list[Annotation] | None) -> str:
    """A short hash of a video's ground truth (``"none"``: the video has none)."""
    if annotations is None:
        return "none"
    rows = sorted(json.dumps(a.to_dict(), sort_keys=True) for a in annotations)
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


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
        self._tombstones: dict[str, list[str]] = {}  # video name -> tombstones we made

    def marker(self, record: VideoRecord) -> dict | None:
        parts = _marker_parts(record)
        return self.store.read_json(*parts) if self.store.exists(*parts) else None

    def done_marker(self, record: VideoRecord) -> dict | None:
        """The video's commit marker if it is done with this content and config, else None."""
        m = self.marker(record)
        if m is None or m.get("fingerprint") != record.fingerprint:
            return None
        return m if m.get("config_id") == self.config.config_id else None

    def is_done(self, record: VideoRecord) -> bool:
        return self.done_marker(record) is not None

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
        parts = _lease_parts(record)
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
            self._tombstones.setdefault(video_name(record), []).append(tomb)
            self.store.remove(*parts)
        return "a concurrent run (lease contended)"

    def renew(self, record: VideoRecord, ttl_s: float = LEASE_TTL_S) -> None:
        """Push our lease's expiry forward (a long queue must not let it lapse)."""
        self.store.put_atomic(self._lease_body(ttl_s), *_lease_parts(record))

    def release(self, record: VideoRecord) -> None:
        """Drop our lease (not one another run took over after ours lapsed)."""
        parts = _lease_parts(record)
        try:
            held = self.store.read_json(*parts)
        except FileNotFoundError:
            return
        if held.get("run_id") == self.run_id:
            self.store.remove(*parts)
            # The tombstones of leases we broke kept two runs from breaking the same one;
            # once our own lease is gone they guard nothing.
            for tomb in self._tombstones.pop(video_name(record), []):
                self.store.remove(*tomb)

    def register(self, record: VideoRecord, annotations: list[Annotation] | None) -> None:
        """Put the video (and its ground truth) in the manifest before extracting it."""
        part = partition(record)
        videos = conform([record.to_dict()], VIDEOS)
        self.store.write_parquet(videos, paths.VIDEOS, *part, paths.PART)
        self._write_annotations(record, annotations)

    def _write_annotations(self, record: VideoRecord, annotations: list[Annotation] | None):
        if annotations is not None:
            ann = conform([a.to_dict() for a in annotations], ANNOTATIONS)
            self.store.write_parquet(ann, paths.ANNOTATIONS, *partition(record), paths.PART)

    def _stored_truth(self, record: VideoRecord, marker: dict) -> str:
        """The truth fingerprint of a committed video (stores older than the field: from
        its annotations partition)."""
        if "truth" in marker:
            return marker["truth"]
        parts = [paths.ANNOTATIONS, *partition(record), paths.PART]
        if not self.store.exists(*parts):
            return truth_fingerprint(None)
        rows = self.store.read_parquet(*parts).to_pylist()
        return truth_fingerprint([Annotation.from_dict(r) for r in rows])

    def refresh_truth(
        self, record: VideoRecord, annotations: list[Annotation] | None, marker: dict
    ) -> bool:
        """Bring a committed video's (``marker``: its commit marker) ground truth and labels
        in line with ``annotations``.

        Returns True when they changed (annotations and the features' labels rewritten,
        features kept). A run without ground truth (None) changes nothing.
        """
        if annotations is None:
            return False
        new = truth_fingerprint(annotations)
        if self._stored_truth(record, marker) == new:
            return False
        self._write_annotations(record, annotations)
        feats = [paths.FEATURES, *partition(record), paths.PART]
        table = relabel(self.store.read_parquet(*feats), annotations, self.config)
        self.store.write_parquet(table, *feats)
        self.store.write_json({**marker, "truth": new}, *_marker_parts(record))
        return True

    def commit(
        self,
        record: VideoRecord,
        windows: Sequence[Window],
        results: list[WindowResult],
        annotations: list[Annotation] | None,
    ) -> int:
        """Write the video's tables, then its marker. Returns the number of windows."""
        results = sorted(results, key=lambda r: r.window.index)
        if [r.window.index for r in results] != [w.index for w in windows]:
            raise RuntimeError(
                f"{video_name(record)}: chunk results do not cover its windows exactly"
            )
        table = features_table(record, list(windows), results, annotations, self.config)
        self.store.write_parquet(table, paths.FEATURES, *partition(record), paths.PART)
        self.store.write_json(
            {
                "dataset": record.dataset,
                "subject": record.subject,
                "video": record.video,
                "fingerprint": record.fingerprint,
                "config_id": self.config.config_id,
                "windows": table.num_rows,
                "truth": truth_fingerprint(annotations),
                "run_id": self.run_id,
                "committed_at": time.time(),
            },
            *_marker_parts(record),
        )
        return table.num_rows

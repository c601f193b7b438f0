"""Scheduled ingestion: find new recording sessions under a prefix and extract only those.

A session is a video file or a folder of numbered frames, either directly under the
source prefix (its subject is its own name) or one level down in a subject folder
(``SOURCE/<subject>/<session>``). Every run registers what it finds in the store's
``videos`` manifest as it commits it, skips sessions already committed with the same
content fingerprint and feature config, and writes a run summary (``runs/<run_id>.json``).
Safe to run on a schedule: overlapping runs take a lease per video (cluster.run.jobs) and
commits are idempotent, so no video is extracted twice.
"""

from __future__ import annotations

import logging

from cluster.store import Store
from pipeline.core.records import Skipped
from pipeline.datasets import Corpus, read_generic
from pipeline.vision.frames import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def session_kind(fs, path: str) -> str | None:
    """What ``path`` is to ingest: 'video', 'frames' (a folder of images), 'folder' (may
    hold sessions) or None (ignored)."""
    return _kind(fs, path, fs.info(path))


def _kind(fs, path: str, info: dict) -> str | None:
    """'video', 'frames', 'folder' (may hold sessions) or None (ignored)."""
    name = path.rsplit("/", 1)[-1]
    if name.startswith((".", "_")):
        return None
    kind = info.get("type")
    if kind not in ("directory", "file"):  # a symbolic link: fsspec lists it as "other"
        kind = "directory" if fs.isdir(path) else "file" if fs.isfile(path) else None
    if kind == "directory":
        children = [c.rsplit("/", 1)[-1].lower() for c in fs.ls(path, detail=False)]
        if any(c.endswith(tuple(IMAGE_EXTENSIONS)) for c in children):
            return "frames"
        return "folder"
    if kind == "file" and name.lower().endswith(VIDEO_EXTENSIONS):
        return "video"
    return None


def discover_sessions(
    source: Store, *, dataset: str = "sessions", fps: float | None = None
) -> Corpus:
    """Every session under ``source`` (a folder or prefix), as a Corpus without ground truth."""
    fs, root = source.fs, source.root
    if not fs.isdir(root):
        raise FileNotFoundError(f"ingest source {source.uri or root}: no such folder or prefix")
    corpus = Corpus()
    for path, kind, subject in _find_sessions(fs, root, corpus.skipped):
        # --fps is for frame folders; a video file carries its own frame rate.
        rate = fps if kind == "frames" else None
        try:
            part = read_generic(path, fs=fs, fps=rate, dataset=dataset, subject=subject)
        except ValueError as e:  # a frame folder with no fps, a video with no frame rate
            corpus.skipped.append(Skipped(path, str(e)))
            continue
        corpus.videos += part.videos
        corpus.skipped += part.skipped
        corpus.notes += part.notes
    seen: set[tuple[str, str]] = set()
    unique = []
    for rec in corpus.videos:
        if (rec.subject, rec.video) in seen:
            corpus.skipped.append(
                Skipped(rec.uri, f"another session of {rec.subject} is named {rec.video}")
            )
            continue
        seen.add((rec.subject, rec.video))
        unique.append(rec)
    corpus.videos = unique
    return corpus


def _find_sessions(fs, root: str, skipped: list[Skipped]) -> list[tuple[str, str, str]]:
    """(path, kind, subject) of every session; empty folders are listed in ``skipped``."""
    found: list[tuple[str, str, str]] = []
    for path, info in _entries(fs, root):
        kind = _kind(fs, path, info)
        if kind in ("video", "frames"):
            found.append((path, kind, _stem(path)))
        elif kind == "folder":
            subject = path.rsplit("/", 1)[-1]
            kinds = [(sub, _kind(fs, sub, info)) for sub, info in _entries(fs, path)]
            sessions = [(sub, k, subject) for sub, k in kinds if k in ("video", "frames")]
            empty = [sub for sub, k in kinds if k == "folder"]
            skipped += [Skipped(s, "empty session folder: no frames or video in it") for s in empty]
            if not sessions and not empty:
                skipped.append(Skipped(path, "empty folder: no session (frames or video) in it"))
            found += sessions
    return found


def _entries(fs, path: str) -> list[tuple[str, dict]]:
    return sorted((i["name"].rstrip("/"), i) for i in fs.ls(path, detail=True))


def _stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name

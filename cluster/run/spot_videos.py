"""``mespot spot VIDEO_OR_FOLDER ...``: spot videos straight from their files.

Features are extracted into ``OUT/store`` (in this process; a rerun reuses what was
extracted), the model (the bundled one unless given) spots them as ``mespot spot`` does
(cluster.run.spot.spot_new_videos), and beside them go ``OUT/intervals.csv``,
``OUT/intervals.parquet`` and ``OUT/report.html`` (cluster.run.spot_report: a timeline per
video, the apex frame of each interval, the footage to review).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cluster.run.executors import make_executor
from cluster.run.extract import corpus_jobs, run_extraction
from cluster.run.ingest import discover_sessions, session_kind
from cluster.run.spot import EXTENTS, scored_videos, spot_new_videos
from cluster.run.spot_report import VideoSpots, apex_frame, render_html, thumbnail
from cluster.store import Store, paths
from cluster.store.parquet import read_table
from pipeline.core.records import VideoRecord
from pipeline.datasets.corpus import Corpus
from pipeline.datasets.generic import read_generic
from pipeline.learn.lstm import SpotterModel
from pipeline.vision.config import FeatureConfig
from pipeline.vision.frames import FrameError, open_frames

log = logging.getLogger(__name__)

DATASET = "videos"


@dataclass
class SpottedVideos:
    """What ``spot_videos`` wrote and found."""

    out: Path
    intervals: pa.Table
    videos: list[VideoSpots]
    files: dict[str, Path]

    def lines(self) -> list[str]:
        """A short table: each interval of each video, then where the files are."""
        out = ["| video | interval (s) | kind | score |", "|---|---|---|---|"]
        for r in self.intervals.sort_by(
            [("video", "ascending"), ("start_s", "ascending")]
        ).to_pylist():
            out.append(
                f"| {_name(r['subject'], r['video'])} | {r['start_s']:.2f}-{r['end_s']:.2f} | "
                f"{r['kind']} | {r['score']:.2f} |"
            )
        for v in self.videos:
            out.append(
                f"{v.name}: {v.count('micro')} micro and {v.count('macro')} macro intervals, "
                f"{v.footage:.1%} of it to review"
            )
        out += [f"{name}: {path}" for name, path in self.files.items()]
        return out


def _name(subject: str, video: str) -> str:
    """How a video is named to people: its name, after its subject's when they differ."""
    return video if subject == video else f"{subject}/{video}"


def default_out(inputs: list[str]) -> Path:
    """Beside the (first) input: ``clip.mp4`` -> ``clip-mespot/``, ``folder`` ->
    ``folder-mespot/``."""
    first = Path(inputs[0].rstrip("/"))
    return first.with_name(first.stem + "-mespot")


def gather(inputs: list[str]) -> Corpus:
    """The sessions of every input: a video file, a folder of frames, or a folder of them."""
    corpus = Corpus()
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"{item}: no such video file or folder")
        source = Store.open(str(path))
        if path.is_dir() and session_kind(source.fs, source.root) == "folder":
            part = discover_sessions(source, dataset=DATASET)
        else:  # a video file, or a folder of frames
            part = read_generic(str(path), dataset=DATASET, subject=path.stem)
        corpus.videos += part.videos
        corpus.skipped += part.skipped
    if not corpus.videos:
        why = "; ".join(f"{s.path}: {s.reason}" for s in corpus.skipped[:3])
        raise ValueError(f"no video found in {', '.join(inputs)}" + (f" ({why})" if why else ""))
    return corpus


def spot_videos(
    inputs: list[str],
    model: SpotterModel,
    out: Path,
    *,
    threshold: float | None = None,
    budget: float | None = None,
    progress: bool = True,
) -> SpottedVideos:
    """Extract, spot and report ``inputs`` with ``model`` into ``out`` (module doc)."""
    corpus = gather(inputs)
    out.mkdir(parents=True, exist_ok=True)
    store = Store.open(str(out / "store"))
    config = FeatureConfig()
    summary = run_extraction(
        corpus_jobs(corpus, config, with_labels=False), store, config, make_executor("local"),
        skipped_inputs=corpus.skipped, progress=progress,
    )  # fmt: skip
    if summary.failed:
        log.warning("%d videos failed: %s", len(summary.failed), summary.lines())
    at = model.threshold if threshold is None else threshold
    preds, intervals = spot_new_videos(model, store, store, at, EXTENTS, budget)
    files = {
        "intervals (CSV)": out / "intervals.csv",
        "intervals (Parquet)": out / "intervals.parquet",
    }
    pacsv.write_csv(intervals.drop_columns(["model_id"]), files["intervals (CSV)"])
    pq.write_table(intervals, files["intervals (Parquet)"])
    videos = _report_videos(preds, intervals, read_table(store, paths.VIDEOS), at)
    files["report"] = out / "report.html"
    title = f"mespot: {', '.join(Path(i).name for i in inputs)}"
    files["report"].write_text(render_html(videos, title, model.model_id), encoding="utf-8")
    return SpottedVideos(out, intervals, videos, files)


def _report_videos(preds: pa.Table, intervals: pa.Table, videos: pa.Table, threshold: float):
    """Each video's timeline (the extent head's profile, else window scores at window
    centres), its intervals and their apex frames' thumbnails (a micro interval's best
    frame on the timeline; a macro one's middle frame)."""
    scored = scored_videos(preds, {}, videos, EXTENTS)
    records = {(r["dataset"], r["subject"], r["video"]): r for r in videos.to_pylist()}
    rows = intervals.sort_by([("start_frame", "ascending")]).to_pylist()
    out = []
    for key, v in sorted(scored.items()):
        rec = VideoRecord.from_dict(records[key])
        if v.profile is not None:
            frames, scores = np.arange(len(v.profile)), np.asarray(v.profile)
        else:
            frames, scores = (np.asarray(v.starts) + np.asarray(v.ends)) // 2, np.asarray(v.scores)
        mine = [r for r in rows if (r["dataset"], r["subject"], r["video"]) == key]
        spots = [(r["start_frame"], r["end_frame"], r["score"]) for r in mine]
        kinds = [r["kind"] for r in mine]
        apexes = [
            apex_frame(a, b, frames, scores) if kind == "micro" else (a + b) // 2
            for (a, b, _), kind in zip(spots, kinds, strict=True)
        ]
        out.append(
            VideoSpots(
                _name(key[1], key[2]),
                rec.fps,
                rec.n_frames,
                frames,
                scores,
                threshold,
                spots,
                _thumbnails(rec, apexes),
                kinds,
            )
        )
    return out


def _thumbnails(rec: VideoRecord, frames: list[int]) -> list[bytes | None]:
    """JPEG thumbnails of ``frames`` of the video (None for one that cannot be read)."""
    if not frames:
        return []
    try:
        source = open_frames(rec.uri, fps=rec.fps)
    except FrameError as e:
        log.warning("%s: no thumbnails (%s)", rec.uri, e)
        return [None] * len(frames)
    images: dict[int, bytes] = {}
    with source:  # one ascending pass: each frame decoded once, no seeking back
        try:
            for f, image in source.read_many(sorted(set(frames))):
                images[f] = thumbnail(image)
        except (FrameError, IndexError, ValueError) as e:
            last = max(images, default=None)
            log.warning("%s: no thumbnail after frame %s (%s)", rec.uri, last, e)
    return [images.get(f) for f in frames]

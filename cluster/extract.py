"""Extract a corpus's window features into a store, one process (Ray fan-out comes later).

Layout of the output store::

    feature_config.json          the FeatureConfig (with its config_id)
    videos.parquet               schemas.VIDEOS: the videos that were read
    annotations.parquet          schemas.ANNOTATIONS: their ground truth (if any)
    features/dataset=D/subject=S/video=V/part-0.parquet   schemas.WINDOW_FEATURES
    extract_summary.json         what was done, skipped and failed, and the time per stage

Each video's features file is written atomically when the video is finished, so an
interrupted run loses at most the video in progress.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import quote

from tqdm.auto import tqdm

from cluster.store import Store
from pipeline.config import FeatureConfig
from pipeline.datasets import Corpus, annotations_by_video, read_casme2, read_generic, read_samm
from pipeline.features import StageTimer, WindowExtractor, extract_video
from pipeline.frames import FrameError
from pipeline.records import VideoRecord
from schemas import ANNOTATIONS, VIDEOS, conform

log = logging.getLogger(__name__)
DATASETS = ("samm", "casme2", "folder", "video")


class ConfigConflict(RuntimeError):
    """The output already holds features made with another configuration."""


@dataclass
class ExtractSummary:
    videos_done: list[str] = field(default_factory=list)
    videos_failed: dict[str, str] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    windows: int = 0
    windows_without_face: int = 0
    wall_seconds: float = 0.0
    cpu_seconds_by_stage: dict[str, float] = field(default_factory=dict)
    video_seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [
            f"videos: {len(self.videos_done)} done, {len(self.videos_failed)} failed; "
            f"windows: {self.windows} ({self.windows_without_face} without a face); "
            f"{self.wall_seconds:.1f} s for {self.video_seconds:.1f} s of video"
        ]
        out += [f"  failed {v}: {why}" for v, why in self.videos_failed.items()]
        out += [f"  skipped {s['what']}: {s['reason']}" for s in self.skipped]
        return out


def load_corpus(
    path: str,
    dataset: str,
    *,
    fps: float | None = None,
    intervals: str | None = None,
    fs=None,
) -> tuple[Corpus, bool]:
    """Read a corpus: (corpus, whether it carries ground truth)."""
    if dataset == "samm":
        if fps is None:
            fps = _synth_fps(path, fs) or 200.0
        return read_samm(path, fs=fs, fps=fps), True
    if dataset == "casme2":
        return read_casme2(path, fs=fs, fps=fps or 30.0), True
    if dataset in ("folder", "video"):
        corpus = read_generic(path, fs=fs, fps=fps, intervals_csv=intervals, dataset=dataset)
        return corpus, intervals is not None
    raise ValueError(f"unknown dataset {dataset!r}; choose from {DATASETS}")


def _synth_fps(path: str, fs) -> float | None:
    """A corpus made by ``mespot synth`` records its frame rate in synth_config.json."""
    store = Store(fs, path.rstrip("/")) if fs is not None else Store.open(path)
    if not store.exists("synth_config.json"):
        return None
    fps = float(json.loads(store.read_text("synth_config.json"))["config"]["fps"])
    log.info("frame rate %.6g fps from %s", fps, store.path("synth_config.json"))
    return fps


def partition(record: VideoRecord) -> list[str]:
    """Hive partition folders of one video (values URI-encoded as pyarrow expects)."""
    return [
        f"dataset={quote(record.dataset, safe='')}",
        f"subject={quote(record.subject, safe='')}",
        f"video={quote(record.video, safe='')}",
    ]


def prepare_store(store: Store, config: FeatureConfig) -> None:
    """Write feature_config.json, or check that the one there matches ``config``."""
    if store.exists("feature_config.json"):
        old = FeatureConfig.from_json(store.read_text("feature_config.json"))
        if old.config_id != config.config_id:
            raise ConfigConflict(
                f"{store.path('feature_config.json')} holds config {old.config_id}, this run uses "
                f"{config.config_id}: write to another output"
            )
    else:
        store.write_text(config.to_json(), "feature_config.json")


def extract_corpus(
    corpus: Corpus,
    store: Store,
    config: FeatureConfig,
    *,
    with_labels: bool = True,
    fs=None,
    progress: bool = True,
) -> ExtractSummary:
    """Extract every video of ``corpus`` into ``store``, one video at a time."""
    prepare_store(store, config)
    store.write_parquet(conform([v.to_dict() for v in corpus.videos], VIDEOS), "videos.parquet")
    store.write_parquet(
        conform([a.to_dict() for a in corpus.annotations], ANNOTATIONS), "annotations.parquet"
    )
    by_video = annotations_by_video(corpus)
    summary = ExtractSummary(skipped=[{"what": s.what, "reason": s.reason} for s in corpus.skipped])
    extractor = WindowExtractor(config)
    timer = StageTimer()
    total = sum(len(config.grid(v.fps).windows(v.n_frames)) for v in corpus.videos)
    t0 = time.perf_counter()
    with tqdm(total=total, unit="win", desc="extract", disable=not progress) as bar:
        for rec in corpus.videos:
            key = (rec.dataset, rec.subject, rec.video)
            bar.set_postfix_str(rec.video)
            truth = by_video.get(key, []) if with_labels else None
            try:
                table = extract_video(
                    rec, truth, extractor, fs=fs, timer=timer, on_window=lambda _r: bar.update()
                )
            except FrameError as e:
                summary.videos_failed[rec.video] = str(e)
                log.warning("video %s failed: %s", rec.video, e)
                continue
            store.write_parquet(table, "features", *partition(rec), "part-0.parquet")
            summary.videos_done.append(rec.video)
            summary.windows += table.num_rows
            summary.windows_without_face += table.num_rows - sum(
                table.column("face_found").to_pylist()
            )
            summary.video_seconds += rec.n_frames / rec.fps
    summary.wall_seconds = time.perf_counter() - t0
    summary.cpu_seconds_by_stage = {k: round(v, 3) for k, v in timer.seconds.items()}
    store.write_json(summary.to_dict(), "extract_summary.json")
    return summary

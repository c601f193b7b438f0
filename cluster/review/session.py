"""What ``mespot review`` serves: a store's videos, window scores, spotted intervals, clips.

``ReviewSession`` holds one model's view of a store and does everything the review page
asks for, without any HTTP (``cluster.review.server`` is the thin server around it):

- the videos of the store's manifest that have spotted intervals or window scores of the
  model, each named by a short id (``v0``, ``v1``, ...) that is the only thing a request
  can use to reach a video;
- per video: the window scores (the timeline) and the intervals to review in the order of
  the review queue (pipeline.core.review_queue.review_order, ``strategy``: ``mixed`` adds
  the timeline's peaks below the threshold and says why each interval is there; ``top``
  is the spotted intervals by score), each with its verdicts (re-read from the log, so
  another annotator's show up) and whether it overlaps an interval judged already;
- clips: an interval plus some context before and after, as frame numbers; frames are
  decoded through the pipeline's frame sources (numbered folders or video files, any
  fsspec filesystem), shrunk and JPEG-encoded once, then kept in a bounded cache;
- verdicts: checked (pipeline.core.verdicts.parse_verdict), tied to an interval the model
  spotted, and appended to the store's verdict log before the page hears back;
- progress: how much of the spotted footage is left to review.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import cv2
import numpy as np
import pyarrow.compute as pc
from fsspec.core import url_to_fs

from cluster.store import Store, paths
from cluster.store.models import intervals_model_id, learned_verdicts
from cluster.store.parquet import SPOTTING_KINDS, read_model_rows, read_table, spotting_thresholds
from cluster.store.verdict_log import VerdictLog
from pipeline.core.intervals import Interval
from pipeline.core.metrics import spotted_frames
from pipeline.core.records import VideoRecord
from pipeline.core.review_queue import STRATEGIES, page_order
from pipeline.core.verdicts import BadVerdict, Resolution, Verdict, parse_verdict, resolve
from pipeline.vision.frames import FrameError, open_frames

#: Longest clip sent to the page, in frames; longer clips skip frames evenly.
MAX_CLIP_FRAMES = 160


class NotFound(LookupError):
    """A video, interval or frame the session does not have."""


@dataclass(frozen=True)
class ReviewConfig:
    context_s: float = 0.5  # seconds shown before and after an interval
    frame_width: int = 480  # frames are shrunk to at most this width
    jpeg_quality: int = 85
    cache_frames: int = 2000  # encoded frames kept in memory
    open_sources: int = 4  # frame sources (decoders) kept open


@dataclass
class ReviewVideo:
    id: str
    record: VideoRecord
    intervals: list[tuple[int, int, float, str]]  # (start, end, score, kind), by score desc
    windows: tuple[list[int], list[int], list[float]]  # starts, ends, scores
    lock: threading.Lock = field(default_factory=threading.Lock)
    # the review order: (start, end, score, kind, pool, reason); kind "unspotted" for a peak
    order: list[tuple[int, int, float, str, str, str]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.record.dataset, self.record.subject, self.record.video)

    def describe(self) -> dict:
        r = self.record
        return {
            "id": self.id,
            "dataset": r.dataset,
            "subject": r.subject,
            "video": r.video,
            "fps": r.fps,
            "n_frames": r.n_frames,
            "duration_s": r.n_frames / r.fps,
        }


class ReviewSession:
    """One model's intervals in one store, for the review page (module doc)."""

    def __init__(
        self,
        store: Store,
        model_id: str | None = None,
        config: ReviewConfig | None = None,
        *,
        manifest: Store | None = None,
        verdicts: VerdictLog | None = None,
        strategy: str = "mixed",
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {list(STRATEGIES)}, got {strategy!r}")
        self.store = store
        self.strategy = strategy
        self.config = config or ReviewConfig()
        self.model_id = intervals_model_id(store, model_id)
        self.learned = learned_verdicts(store, self.model_id)  # None: not in this store
        self.log = verdicts or VerdictLog(store)
        videos = read_table(manifest or store, paths.VIDEOS)
        intervals = read_model_rows(store, paths.INTERVALS, self.model_id)
        try:
            preds = read_model_rows(store, paths.PREDICTIONS, self.model_id)
        except FileNotFoundError:
            preds = None
        self.videos: dict[str, ReviewVideo] = {}
        by_key = {(r["dataset"], r["subject"], r["video"]): r for r in videos.to_pylist()}
        spots: dict[tuple, list[tuple[int, int, float, str]]] = {}
        for r in intervals.to_pylist():
            key = (r["dataset"], r["subject"], r["video"])
            spot = (r["start_frame"], r["end_frame"], r["score"], r["kind"])
            spots.setdefault(key, []).append(spot)
        scores: dict[tuple, tuple[list, list, list]] = {}
        if preds is not None:
            preds = preds.sort_by([("start_frame", "ascending")])
            cols = [preds.column(c).to_pylist() for c in ("dataset", "subject", "video")]
            starts = preds.column("start_frame").to_pylist()
            ends = preds.column("end_frame").to_pylist()
            vals = pc.round(preds.column("score").cast("float64"), 4).to_pylist()
            for d, s, v, a, b, p in zip(*cols, starts, ends, vals, strict=True):
                w = scores.setdefault((d, s, v), ([], [], []))
                w[0].append(a)
                w[1].append(b)
                w[2].append(p)
        missing = sorted(k for k in {*spots, *scores} if k not in by_key)
        if missing:
            raise ValueError(
                f"model {self.model_id} has intervals or scores for videos missing from the "
                f"manifest of {(manifest or store).uri or (manifest or store).root}: "
                f"{['/'.join(k) for k in missing[:5]]} (give the features store with --manifest)"
            )
        for i, key in enumerate(sorted({*spots, *scores})):
            vid = f"v{i}"
            ivs = sorted(spots.get(key, []), key=lambda t: (-t[2], t[0]))
            self.videos[vid] = ReviewVideo(
                vid, VideoRecord.from_dict(by_key[key]), ivs, scores.get(key, ([], [], []))
            )
        micro = [p for ivs in spots.values() for *_, p, kind in ivs if kind == "micro"]
        # the thresholds spot/evaluate stored per subject (micro; window scores', for the
        # peaks below it); else the lowest micro spot's
        stored, on_windows = (spotting_thresholds(store, self.model_id, k) for k in SPOTTING_KINDS)
        self.threshold = stored.get("*", float(min(micro)) if micro else 0.5)
        for v in self.videos.values():
            at = stored.get(v.key[1], self.threshold)
            peaks = on_windows.get(v.key[1], on_windows.get("*", at))
            v.order = page_order(v.key, v.intervals, v.windows if strategy == "mixed" else None,
                                 at, strategy, peaks)  # fmt: skip
        self._frames: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._sources: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()  # the frame cache
        self._sources_lock = threading.Lock()

    # --- videos and intervals --------------------------------------------------------------

    def video(self, vid: str) -> ReviewVideo:
        try:
            return self.videos[vid]
        except (KeyError, TypeError):
            raise NotFound(f"no video {vid!r} in this review") from None

    def _resolutions(self, v: ReviewVideo) -> dict[Interval, Resolution]:
        found = resolve(self.log.verdicts(*v.key))
        return {k.interval: r for k, r in found.items()}

    def video_detail(self, vid: str, annotator: str | None = None) -> dict:
        """The timeline and the intervals (by score) of a video, with their verdicts."""
        v = self.video(vid)
        res = self._resolutions(v)
        fps = v.record.fps
        intervals = []
        judged = [iv for iv, r in res.items() if r.latest]
        for rank, (start, end, score, kind, pool, reason) in enumerate(v.order, 1):
            here = Interval(start, end)
            r = res.get(here)
            verdicts = [] if r is None else sorted(r.latest.values(), key=lambda x: x.created_at)
            mine = next((x for x in verdicts if x.annotator == annotator), None)
            covered = r is None and any(iv.intersection(here) for iv in judged)
            intervals.append(
                {
                    "rank": rank,
                    "start": start,
                    "end": end,
                    "start_s": start / fps,
                    "end_s": end / fps,
                    "score": round(float(score), 4),
                    "kind": kind,
                    "pool": pool,
                    "reason": reason,
                    "covered": covered,  # overlaps an interval judged already: skip it
                    "label": None if r is None else r.label,
                    "mine": None if mine is None else _verdict_json(mine),
                    "verdicts": [_verdict_json(x) for x in verdicts],
                }
            )
        return {
            **v.describe(),
            "model_id": self.model_id,
            "windows": {"start": v.windows[0], "end": v.windows[1], "score": v.windows[2]},
            "intervals": intervals,
            "progress": self._progress([v], {v.id: res}),
        }

    def list_videos(self) -> dict:
        table = self.log.verdicts()
        by_video: dict[tuple, list[Verdict]] = {}
        for x in table:
            by_video.setdefault((x.dataset, x.subject, x.video), []).append(x)
        res = {}
        for vid, v in self.videos.items():
            found = resolve(by_video.get(v.key, []))
            res[vid] = {k.interval: r for k, r in found.items()}
        out = []
        for vid, v in self.videos.items():
            out.append({**v.describe(), "progress": self._progress([v], {vid: res[vid]})})
        return {
            "model_id": self.model_id,
            "learned_verdicts": self.learned,
            "videos": out,
            "progress": self._progress(list(self.videos.values()), res),
        }

    @staticmethod
    def _progress(videos: list[ReviewVideo], res: dict[str, dict]) -> dict:
        total = reviewed = 0
        seconds = spotted_s = reviewed_s = 0.0
        for v in videos:
            fps = v.record.fps
            seconds += v.record.n_frames / fps
            ivs = [Interval(s, e) for s, e, *_ in v.intervals]
            done = [iv for iv in ivs if iv in res.get(v.id, {})]
            total += len(ivs)
            reviewed += len(done)
            spotted_s += spotted_frames(ivs) / fps
            reviewed_s += spotted_frames(done) / fps
        return {
            "intervals": total,
            "reviewed": reviewed,
            "left": total - reviewed,
            "spotted_s": round(spotted_s, 3),
            "reviewed_s": round(reviewed_s, 3),
            "left_s": round(spotted_s - reviewed_s, 3),
            "recording_s": round(seconds, 3),
        }

    def find_interval(self, vid: str, start: object, end: object) -> tuple[int, int, float]:
        v = self.video(vid)
        if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool):
            raise BadVerdict(f"start and end must be frame numbers, got {start!r}, {end!r}")
        for s, e, score, *_ in v.order:
            if (s, e) == (start, end):
                return s, e, score
        raise BadVerdict(
            f"video {v.record.video} has no interval {start}..{end} to review for {self.model_id}"
        )

    # --- verdicts ---------------------------------------------------------------------------

    def add_verdict(self, payload: object) -> dict:
        """Check an annotator's verdict and append it to the log; returns what was stored."""
        fields = parse_verdict(payload, fields=("video", "start", "end"))
        assert isinstance(payload, dict)  # parse_verdict checked it is a mapping
        v = self.video(payload.get("video"))
        start, end, score = self.find_interval(v.id, payload.get("start"), payload.get("end"))
        if fields.offset is not None and fields.offset >= v.record.n_frames:
            raise BadVerdict(
                f"extent {fields.onset}..{fields.offset} runs past the video's last frame "
                f"({v.record.n_frames - 1})"
            )
        verdict = Verdict(
            model_id=self.model_id,
            dataset=v.record.dataset,
            subject=v.record.subject,
            video=v.record.video,
            start_frame=start,
            end_frame=end,
            verdict=fields.verdict,
            annotator=fields.annotator,
            score=float(score),
            action_units=fields.action_units,
            note=fields.note,
            created_at=datetime.now(UTC),
            onset_frame=fields.onset,
            offset_frame=fields.offset,
        )
        self.log.append(verdict)
        return _verdict_json(verdict)

    # --- clips and frames -------------------------------------------------------------------

    def clip(self, vid: str, start: int, end: int) -> dict:
        """The frames to show for an interval: context before and after, evenly thinned."""
        v = self.video(vid)
        if not any((s, e) == (start, end) for s, e, *_ in v.order):
            raise NotFound(f"video {v.record.video} has no interval {start}..{end}")
        fps = v.record.fps
        ctx = round(self.config.context_s * fps)
        first, last = max(0, start - ctx), min(v.record.n_frames - 1, end + ctx)
        stride = max(1, math.ceil((last - first + 1) / MAX_CLIP_FRAMES))
        frames = list(range(first, last + 1, stride))
        self._warm(v, frames)
        return {
            "video": vid,
            "start": start,
            "end": end,
            "frames": frames,
            "stride": stride,
            "fps": fps,
        }

    def frame_jpeg(self, vid: str, index: int) -> bytes:
        v = self.video(vid)
        if not 0 <= index < v.record.n_frames:
            raise NotFound(f"video {v.record.video} has no frame {index}")
        return self._warm(v, [index])[index]

    def _warm(self, v: ReviewVideo, frames: list[int]) -> dict[int, bytes]:
        """JPEGs of ``frames``: from the cache, or decoded (ascending: one decoder pass),
        encoded and cached. Returned whole, so a concurrent eviction cannot lose one."""
        with self._lock:
            out = {i: self._frames.get((v.id, i)) for i in frames}
            for i, data in out.items():
                if data is not None:
                    self._frames.move_to_end((v.id, i))
        todo = sorted(i for i, data in out.items() if data is None)
        if not todo:
            return out
        with v.lock:  # a frame source is not thread-safe
            source = self._source(v)
            try:
                for i, image in source.read_many(todo):
                    out[i] = self._encode(image)
            except (FrameError, IndexError) as e:
                raise FrameError(f"video {v.record.video}: {e}") from e
        with self._lock:
            for i in todo:
                self._frames[(v.id, i)] = out[i]
            while len(self._frames) > self.config.cache_frames:
                self._frames.popitem(last=False)
        return out

    def _source(self, v: ReviewVideo):
        """The open frame source of ``v`` (caller holds ``v.lock``); closes the oldest."""
        with self._sources_lock:
            source = self._sources.get(v.id)
            if source is not None:
                self._sources.move_to_end(v.id)
                return source
        fs, path = url_to_fs(v.record.uri)
        source = open_frames(path, fs=fs, fps=v.record.fps)
        with self._sources_lock:
            self._sources[v.id] = source
            for old_id in list(self._sources)[: -self.config.open_sources]:
                if old_id != v.id and self.videos[old_id].lock.acquire(blocking=False):
                    try:  # only a source nobody is reading from
                        self._sources.pop(old_id).close()
                    finally:
                        self.videos[old_id].lock.release()
        return source

    def _encode(self, grey: np.ndarray) -> bytes:
        h, w = grey.shape[:2]
        if w > self.config.frame_width:
            size = (self.config.frame_width, max(1, round(h * self.config.frame_width / w)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality])
        if not ok:
            raise FrameError("a frame could not be encoded as JPEG")
        return buf.tobytes()

    def close(self) -> None:
        with self._sources_lock:
            for source in self._sources.values():
                source.close()
            self._sources.clear()


def _verdict_json(v: Verdict) -> dict:
    return {
        "verdict_id": v.verdict_id,
        "annotator": v.annotator,
        "verdict": v.verdict,
        "action_units": v.action_units,
        "note": v.note,
        "created_at": v.created_at.astimezone(UTC).isoformat(timespec="seconds"),
        "start": v.start_frame,
        "end": v.end_frame,
        "onset": v.onset_frame,
        "offset": v.offset_frame,
    }

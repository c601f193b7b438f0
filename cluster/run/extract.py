"""The extraction driver: plan video jobs, fan their chunks out, commit finished videos.

What a run writes to its store (paths in cluster.store.paths, per-video files in
cluster.store.commits)::

    feature_config.json                 the FeatureConfig and its config_id
    videos/...  annotations/...         manifest and ground truth, registered first
    features/dataset=D/subject=S/video=V/part-0.parquet
    _leases/D/S/V.json                  a video being extracted by a run (while it runs)
    _commits/D/S/V.json                 a finished video: fingerprint, config, windows
    runs/<run_id>.json                  each run's summary: done, skipped, failed (why)

A video is committed as soon as its last chunk is back, so an interrupted run keeps
every video it finished, and a rerun does only the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace

from tqdm.auto import tqdm

from cluster.run.executors import require_shared
from cluster.run.jobs import VideoJob, compute_chunk, plan_job, with_full_uri
from cluster.store import paths
from cluster.store.commits import LEASE_TTL_S, Committer, new_run_id
from cluster.store.parquet import read_feature_config
from cluster.store.store import Store
from pipeline.datasets import Corpus, annotations_by_video, read_casme2, read_generic, read_samm
from pipeline.vision.config import FeatureConfig
from pipeline.vision.features import UNREADABLE, WindowResult

log = logging.getLogger(__name__)
DATASETS = ("samm", "casme2", "folder", "video")
CHUNK_WINDOWS = 25  # 5 s of video per task with the paper's 0.2 s stride


class ConfigConflict(RuntimeError):
    """The output already holds features made with another configuration."""


@dataclass
class RunSummary:
    run_id: str
    executor: str = ""
    done: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    truth_updated: list[str] = field(default_factory=list)  # done before; labels rewritten
    in_progress_elsewhere: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    frames_missing: dict[str, str] = field(default_factory=dict)  # video -> windows, why
    skipped_inputs: list[dict] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)  # kept, but worth a look
    windows: int = 0
    windows_without_face: int = 0
    video_seconds: float = 0.0
    wall_seconds: float = 0.0
    aborted: str = ""  # why the run stopped before its end ("" when it did not)

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [
            f"run {self.run_id} ({self.executor}): {len(self.done)} videos extracted, "
            f"{len(self.already_done)} already done, {len(self.in_progress_elsewhere)} in "
            f"progress elsewhere, {len(self.failed)} failed; {self.windows} windows "
            f"({self.windows_without_face} without a face); {self.wall_seconds:.1f} s for "
            f"{self.video_seconds:.1f} s of video"
        ]
        if self.truth_updated:
            out.append(
                f"  ground truth changed for {len(self.truth_updated)} videos already done: "
                "annotations and labels rewritten, features kept"
            )
        out += [f"  truth updated {v}" for v in self.truth_updated]
        out += [f"  failed {v}: {why}" for v, why in self.failed.items()]
        out += [f"  frames missing in {v}: {why}" for v, why in self.frames_missing.items()]
        out += [f"  busy {v}: leased by {who}" for v, who in self.in_progress_elsewhere.items()]
        out += [f"  skipped {s['what']}: {s['reason']}" for s in self.skipped_inputs]
        out += [f"  note {s['what']}: {s['reason']}" for s in self.notes]
        return out


def load_corpus(
    source: Store,
    dataset: str,
    *,
    fps: float | None = None,
    intervals: str | None = None,
    name: str | None = None,
) -> tuple[Corpus, bool]:
    """Read the corpus at ``source``: (corpus, whether it carries ground truth).

    ``intervals`` (folder and video datasets) is a CSV on the same filesystem. ``name``
    replaces the reader's dataset column (two corpora with the same subject ids, e.g. one
    recorded at 200 fps and one at 30, can then share a store).
    """
    corpus, with_labels = _read_corpus(source, dataset, fps, intervals)
    if name:
        corpus = renamed(corpus, name)
    return corpus, with_labels


def renamed(corpus: Corpus, name: str) -> Corpus:
    """``corpus`` with every video and annotation in dataset ``name``."""
    return replace(
        corpus,
        videos=[replace(v, dataset=name) for v in corpus.videos],
        annotations=[replace(a, dataset=name) for a in corpus.annotations],
    )


def _read_corpus(
    source: Store, dataset: str, fps: float | None, intervals: str | None
) -> tuple[Corpus, bool]:
    path, fs = source.root, source.fs
    if dataset == "samm":
        if fps is None:
            fps = _synth_fps(source) or 200.0
        return read_samm(path, fs=fs, fps=fps), True
    if dataset == "casme2":
        return read_casme2(path, fs=fs, fps=fps or 30.0), True
    if dataset in ("folder", "video"):
        corpus = read_generic(path, fs=fs, fps=fps, intervals_csv=intervals, dataset=dataset)
        return corpus, intervals is not None
    raise ValueError(f"unknown dataset {dataset!r}; choose from {DATASETS}")


def _synth_fps(store: Store) -> float | None:
    """A corpus made by ``mespot synth`` records its frame rate in synth_config.json."""
    from pipeline.synth.generate import MANIFEST_FILE, SynthConfig

    if not store.exists(MANIFEST_FILE):
        return None
    where = store.path(MANIFEST_FILE)
    fps = SynthConfig.from_dict(store.read_json(MANIFEST_FILE)["config"], source=where).fps
    log.info("frame rate %.6g fps from %s", fps, where)
    return fps


def corpus_jobs(
    corpus: Corpus, config: FeatureConfig, with_labels: bool, source: Store | None = None
) -> list[VideoJob]:
    """One job per video of ``corpus`` (read from ``source``), with its truth if labelled."""
    fs = source.fs if source is not None else None
    by_video = annotations_by_video(corpus)
    jobs = []
    for rec in corpus.videos:
        truth = by_video.get((rec.dataset, rec.subject, rec.video), []) if with_labels else None
        jobs.append(plan_job(with_full_uri(rec, fs), truth, config))
    return jobs


def prepare_store(store: Store, config: FeatureConfig) -> None:
    """Check the store is writable, then write feature_config.json or check it matches."""
    store.check_writable()
    if store.exists(paths.FEATURE_CONFIG):
        old = read_feature_config(store)
        if old.config_id != config.config_id:
            raise ConfigConflict(
                f"{store.path(paths.FEATURE_CONFIG)} holds config {old.config_id}, this run "
                f"uses {config.config_id}: write to another output"
            )
    else:
        store.write_text(config.to_json(), paths.FEATURE_CONFIG)


def _claim(jobs: list[VideoJob], committer: Committer, summary: RunSummary) -> list[VideoJob]:
    """The jobs this run does: not committed yet, lease taken, registered in the manifest."""
    todo: list[VideoJob] = []
    for job in jobs:
        marker = committer.done_marker(job.record)
        if marker is not None:
            if committer.refresh_truth(job.record, job.annotations, marker):
                summary.truth_updated.append(job.name)
            else:
                summary.already_done.append(job.name)
            continue
        holder = committer.acquire(job.record)
        if holder is not None:
            summary.in_progress_elsewhere[job.name] = holder
            continue
        committer.register(job.record, job.annotations)
        todo.append(job)
    return todo


def run_extraction(
    jobs: list[VideoJob],
    store: Store,
    config: FeatureConfig,
    executor,
    *,
    chunk_windows: int = CHUNK_WINDOWS,
    skipped_inputs: Iterable = (),
    notes: Iterable = (),
    progress: bool = True,
    run_id: str | None = None,
    shared_fs: bool = False,
) -> RunSummary:
    """Extract every job not already committed; commit each video when it completes.

    On a Ray cluster with other nodes, local corpus or store paths are refused unless
    ``shared_fs`` says they are on a mount every node sees (executors.require_shared).
    """
    store_paths = [store.uri or store.root] if store.is_local else []
    corpus = [j.record.uri for j in jobs]
    require_shared(executor, {"corpus": corpus, "store": store_paths}, shared_fs)
    prepare_store(store, config)
    store.clean_tmp()
    summary = RunSummary(run_id or new_run_id(), executor.name)
    summary.skipped_inputs = [{"what": s.what, "reason": s.reason} for s in skipped_inputs]
    summary.notes = [{"what": s.what, "reason": s.reason} for s in notes]
    committer = Committer(store, config, summary.run_id)
    todo = _claim(jobs, committer, summary)
    t0 = time.perf_counter()
    try:
        _Progress(todo, committer, summary, chunk_windows).run(executor, config, progress)
    except Exception as e:  # the store or its endpoint lost mid-run, a bug: say what was done
        summary.aborted = f"{type(e).__name__}: {e}"
        raise RunAborted(summary) from e
    finally:
        summary.wall_seconds = time.perf_counter() - t0
        _finish(store, committer, todo, summary)
    return summary


def _finish(store: Store, committer: Committer, todo: list[VideoJob], summary: RunSummary):
    """Release the leases of unfinished videos and write the run summary, as far as the
    store still lets us (an aborted run must still report what it did)."""
    try:
        for job in todo:
            if job.name not in summary.done and job.name not in summary.failed:
                committer.release(job.record)
        store.write_json(summary.to_dict(), paths.RUNS, f"{summary.run_id}.json")
    except Exception as e:
        if not summary.aborted:
            raise
        log.warning("run %s: summary not written to the store: %s", summary.run_id, e)


class RunAborted(RuntimeError):
    """A run stopped before its end; ``summary`` says what it had done (committed videos
    stay committed, and a rerun does only the rest)."""

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary
        super().__init__(
            f"run {summary.run_id} stopped: {summary.aborted}; {len(summary.done)} videos "
            "were committed before it (a rerun does only the rest)"
        )


class _Progress:
    """One run's chunks in flight: results gathered per video, leases renewed, commits."""

    def __init__(
        self, todo: list[VideoJob], committer: Committer, summary: RunSummary, chunk_windows: int
    ) -> None:
        self.todo, self.committer, self.summary = todo, committer, summary
        self.jobs = {j.name: j for j in todo}
        self.parts: dict[str, list[WindowResult]] = {j.name: [] for j in todo}
        self.remaining = {j.name: len(j.chunks(chunk_windows)) for j in todo}
        self.chunk_windows = chunk_windows
        self.renewed = time.monotonic()

    def run(self, executor, config: FeatureConfig, progress: bool) -> None:
        total = sum(len(j.windows) for j in self.todo)
        tasks = [
            ((j.name, len(args[1])), args)
            for j in self.todo
            for args in j.tasks(self.chunk_windows, config)
        ]
        with tqdm(total=total, unit="win", desc="extract", disable=not progress) as bar:
            for (name, n_windows), out in executor.run(compute_chunk, tasks, (config,)):
                bar.update(n_windows)
                self._renew_leases()
                if self._take(self.jobs[name], out):
                    bar.set_postfix_str(f"{len(self.summary.done)}/{len(self.todo)} videos")
        for job in self.todo:  # videos shorter than one window: committed, listed as skipped
            if not job.windows and job.name not in self.summary.failed:
                _commit(self.committer, job, [], self.summary)
                self.summary.done.remove(job.name)
                self.summary.skipped_inputs.append({"what": job.name, "reason": _too_short(job)})

    def _renew_leases(self) -> None:
        if time.monotonic() - self.renewed > LEASE_TTL_S / 3:
            for j in self.todo:
                if j.name in self.parts:  # still ours and unfinished
                    self.committer.renew(j.record)
            self.renewed = time.monotonic()

    def _take(self, job: VideoJob, out) -> bool:
        """Keep one chunk's results (or the video's failure); True when the video is committed."""
        if job.name in self.summary.failed:
            return False
        if isinstance(out, BaseException):
            self.summary.failed[job.name] = f"{type(out).__name__}: {out}"
            self.parts.pop(job.name, None)
            log.warning("video %s failed: %s", job.name, out)
            self.committer.release(job.record)
            return False
        self.parts[job.name].extend(out)
        self.remaining[job.name] -= 1
        if self.remaining[job.name]:
            return False
        _commit(self.committer, job, self.parts.pop(job.name), self.summary)
        return True


def _too_short(job: VideoJob) -> str:
    r = job.record
    if job.problem:
        return f"{job.problem}; no features"
    return (
        f"shorter than one window: {r.n_frames} frames at {r.fps:g} fps, a window spans "
        f"{job.span + 1} frames; no features"
    )


def _commit(
    committer: Committer, job: VideoJob, results: list[WindowResult], summary: RunSummary
) -> None:
    try:
        n = committer.commit(job.record, job.windows, results, job.annotations)
    except BaseException:
        committer.release(job.record)
        raise
    summary.done.append(job.name)  # committed: counted even if releasing the lease fails
    summary.windows += n
    summary.windows_without_face += sum(1 for r in results if not r.face_found)
    unreadable = [r.skip_reason for r in results if (r.skip_reason or "").startswith(UNREADABLE)]
    if unreadable:
        summary.frames_missing[job.name] = f"{len(unreadable)} windows; {unreadable[0]}"
    summary.video_seconds += job.record.n_frames / job.record.fps
    committer.release(job.record)

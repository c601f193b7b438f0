"""Simulated annotator feedback: does reviewing the model's intervals improve the model?

``mespot feedback STORE`` on a store with features and ground truth. Subjects are split
(pipeline.learn.simulation.split_subjects) into *labelled*, *feedback* and *test*. Per seed:

1. round 0 trains one SpotterModel on the labelled subjects' ground truth;
2. each round scores the feedback subjects' windows, spots micro intervals at the
   threshold (cluster.run.spot: runs of the extent head's profile, or greedy NMS over
   windows for models without one, ``FeedbackConfig.extent``), and the simulated
   annotator reviews K intervals a review queue offers (pipeline.core.review_queue: by
   ``FeedbackConfig.strategy``, from the spotted intervals and the score timeline's
   peaks below the threshold, none overlapping one reviewed before), answering from the
   hidden ground truth as a person would (pipeline.learn.simulation.answer: extents
   marked, some movements missed, some intervals unsure); each answer is a real
   pipeline.core.verdicts.Verdict appended to the simulation's own VerdictLog;
3. the model is fine-tuned (``FeedbackConfig.finetune_epochs``; 0: retrained from scratch)
   on the labelled ground truth plus the verdict labels of the feedback subjects, windows
   and timesteps (pipeline.core.verdicts.labels_from_verdicts and steps_from_verdicts, as
   ``mespot train --verdicts``), and evaluated on the test subjects (both TP rules,
   window AUC).

Plus, per seed, a reference trained with the feedback subjects' full ground truth and,
when fine-tuning, a control: round 0's model fine-tuned as long without verdicts. Fits
run in this process, one after another. Writes to the store::

    simulations/<id>/seed=<s>/verdicts/...        the simulated verdicts (never verdicts/)
    reports/<id>/feedback_config.json             the FeedbackConfig
    reports/<id>/curve.json, report.md, curve.png

``<id>`` = ``feedback-<hash of config, split, labelling rules and features>``: a rerun of the same
simulation replaces its folders.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from cluster.run.evaluate import ground_truth, video_results
from cluster.run.feedback_report import write_report
from cluster.run.spot import scored_videos, spot_table
from cluster.run.training_data import Dataset, load_dataset
from cluster.store import paths
from cluster.store.parquet import read_table, window_columns, window_predictions
from cluster.store.store import Store
from cluster.store.verdict_log import VerdictLog
from pipeline.core.curves import roc
from pipeline.core.intervals import Interval
from pipeline.core.labels import NEGATIVE_MIN_OVERLAP
from pipeline.core.metrics import RULES, evaluate
from pipeline.core.review_queue import Candidate, choose, video_candidates
from pipeline.core.verdicts import (
    IntervalKey,
    Verdict,
    labels_from_verdicts,
    resolve,
    steps_from_verdicts,
)
from pipeline.learn.lstm import SpotterModel, limit_threads
from pipeline.learn.simulation import (
    ANNOTATOR,
    FeedbackConfig,
    Split,
    answer,
    confirmed,
    curve_markdown,
    split_subjects,
    summarise,
    summarise_reference,
)

log = logging.getLogger(__name__)


@dataclass
class FeedbackResult:
    sim_id: str
    split: Split
    rows: list[dict]  # one per seed and round
    references: list[dict]  # one per seed
    summary: list[dict]  # one per round: mean ± std over seeds
    reference: dict
    stopped: dict[int, str] = field(default_factory=dict)  # seed -> why it stopped early
    paths: dict[str, str] = field(default_factory=dict)
    control_rows: list[dict] = field(default_factory=list)  # one per seed (when fine-tuned)
    control: dict = field(default_factory=dict)  # their mean ± std

    def lines(self) -> list[str]:
        s = self.split
        out = [
            f"simulation {self.sim_id}: labelled {', '.join(s.labelled)}; feedback "
            f"{', '.join(s.feedback)}; test {', '.join(s.test)}",
            "",
            *curve_markdown(self.summary, self.reference, self.control),
        ]
        out += [f"seed {seed}: {why}" for seed, why in sorted(self.stopped.items())]
        return out


@dataclass
class _Corpus:
    """What every fit and evaluation of one simulation shares."""

    data: Dataset
    cols: tuple[np.ndarray, ...]  # datasets, subjects, videos, label spans per window
    videos: pa.Table
    truth: dict[tuple, list[Interval]]
    masks: dict[str, np.ndarray]  # labelled / feedback / test -> (N,) bool

    def keys(self, mask: np.ndarray) -> set[tuple]:
        d, s, v = (c[mask] for c in self.cols[:3])
        return set(zip(d, s, v, strict=True))


def _prepare(store: Store, cfg: FeedbackConfig) -> tuple[_Corpus, Split, str, tuple[str, ...]]:
    data = load_dataset(store, cfg.with_magnitude)
    kinds = tuple(data.config.label_kinds)
    with_truth = sorted(set(data.subjects[data.y >= 0]))
    without = sorted(set(data.subjects) - set(with_truth))
    if without:
        log.warning("subjects without ground truth left out: %s", ", ".join(without))
    split = split_subjects(with_truth, cfg.labelled, cfg.test)
    masks = {
        name: np.isin(data.subjects, list(getattr(split, name)))
        for name in ("labelled", "feedback", "test")
    }
    y = data.y[masks["labelled"]]
    if not ((y == 1).any() and (y == 0).any()):
        raise ValueError(
            f"the labelled subjects {list(split.labelled)} have {int((y == 1).sum())} positive "
            f"and {int((y == 0).sum())} negative windows: training needs both; "
            "choose more --labelled subjects"
        )
    truth = ground_truth(store, kinds)
    videos = read_table(store, paths.VIDEOS)
    cols = window_columns(data.table, data.config.label_span_s)
    corpus = _Corpus(data, cols, videos, truth, masks)
    if not any(corpus.truth.get(k) for k in corpus.keys(masks["test"])):
        raise ValueError(
            f"the test subjects {list(split.test)} have no {'/'.join(kinds)} ground truth: "
            "recall would be undefined; choose other --test subjects"
        )
    rules = {"label_min_coverage": data.config.label_min_coverage, "negative": NEGATIVE_MIN_OVERLAP}
    blob = json.dumps(
        {"cfg": cfg.to_dict(), "split": split.to_dict(), "rules": rules}, sort_keys=True
    )
    digest = hashlib.sha256(blob.encode() + data.X.tobytes()[: 1 << 20] + data.y.tobytes())
    return corpus, split, "feedback-" + digest.hexdigest()[:10], kinds


def _fit(
    c: _Corpus, y: np.ndarray, steps: np.ndarray, cfg: FeedbackConfig, seed: int,
    base: SpotterModel | None = None, epochs: int | None = None,
) -> SpotterModel:  # fmt: skip
    """A model trained on the windows ``y`` labels (their timesteps by ``steps``): from
    scratch, or ``base`` fine-tuned for ``epochs`` (default ``cfg.finetune_epochs``) more
    epochs (changed in place)."""
    train = y >= 0
    counts = np.bincount(y[train], minlength=2)
    if counts.min() == 0:  # _prepare rules this out; verdicts only add labels
        raise ValueError(f"one-class training data: {counts[0]} negative, {counts[1]} positive")
    if base is None:
        model = SpotterModel.build(c.data.layout, cfg.model_config(seed))
    else:
        model, epochs = base, cfg.finetune_epochs if epochs is None else epochs
    model.fit(
        c.data.X[train], y[train].astype(np.int64), epochs=epochs,
        steps=steps[train] if model.config.extent else None,
    )  # fmt: skip
    return model


def _spots(c: _Corpus, model: SpotterModel, mask: np.ndarray, threshold: float):
    """(window scores, their predictions table, spotted micro intervals table) of the
    windows in ``mask``: on the extent head's profile when the model has one."""
    x = c.data.X[mask]
    scores = model.predict(x)
    rows = c.data.table.filter(pa.array(mask))
    preds = window_predictions(rows, scores, model.model_id, "none", None, model.predict_steps(x))
    return scores, preds, spot_table(preds, c.videos, threshold)


def _evaluate(c: _Corpus, model: SpotterModel, threshold: float) -> dict:
    """Spotting on the test subjects against their ground truth: both rules, AUC."""
    mask = c.masks["test"]
    scores, _, intervals = _spots(c, model, mask, threshold)
    report = evaluate(video_results(intervals, c.videos, c.truth, c.keys(mask)))
    _, _, auc = roc(scores, c.data.y[mask] == 1)
    out = {name: report.counts[name].to_dict() for name in RULES}
    return out | {"auc": auc, "footage": report.footage_fraction, "spots": intervals.num_rows}


def _labels(c: _Corpus, verdicts: list[Verdict]) -> tuple[np.ndarray, np.ndarray]:
    """Labelled subjects' ground truth, feedback subjects' verdict labels, nothing else:
    the windows' classes and their timestep labels (a yes's extent on the feedback
    subjects, pipeline.core.verdicts.steps_from_verdicts)."""
    y = np.where(c.masks["labelled"], c.data.y, -1).astype(np.int8)
    given = labels_from_verdicts(*c.cols, verdicts, c.data.config.label_min_coverage)
    y = np.where(c.masks["feedback"], given, y).astype(np.int8)
    steps = _truth_steps(c, y)
    frames = (c.data.table.column(k).to_numpy() for k in ("start_frame", "end_frame"))
    on_feedback = np.where(c.masks["feedback"], y, -1)
    given_steps = steps_from_verdicts(*c.cols[:3], *frames, on_feedback, verdicts, steps.shape[1])
    return y, np.where(c.masks["feedback"][:, None], given_steps, steps).astype(np.int8)


def _truth_steps(c: _Corpus, y: np.ndarray) -> np.ndarray:
    """Ground truth's timestep labels of the windows ``y`` labels; -1 rows elsewhere."""
    return np.where((y >= 0)[:, None], c.data.steps, -1).astype(np.int8)


def _confirmed(c: _Corpus, verdicts: list[Verdict]) -> float | None:
    yes: dict[tuple, list[Interval]] = {}
    for key, res in resolve(verdicts).items():
        if res.label == "yes":
            yes.setdefault(key.video_key, []).append(key.interval)
    truth = {k: c.truth.get(k, []) for k in c.keys(c.masks["feedback"])}
    hit, total = confirmed(truth, yes)
    return hit / total if total else None


def _candidates(c: _Corpus, model: SpotterModel, cfg: FeedbackConfig) -> list[Candidate]:
    """The feedback subjects' micro spots at the threshold, and (for a queue that wants
    them) the peaks of each video's window scores below it that overlap no spot
    (pipeline.core.review_queue.video_candidates)."""
    _, preds, spots = _spots(c, model, c.masks["feedback"], cfg.threshold)
    spotted: dict[tuple, list[tuple[int, int, float]]] = {}
    for r in spots.to_pylist():
        if r["kind"] == "micro":
            key = (r["dataset"], r["subject"], r["video"])
            spotted.setdefault(key, []).append((r["start_frame"], r["end_frame"], r["score"]))
    out = []
    for key, v in scored_videos(preds, {}).items():  # each video's windows, in order
        windows = None if cfg.strategy == "top" else (v.starts, v.ends, v.scores)
        out += video_candidates(key, spotted.get(key, []), windows, cfg.threshold)
    return out


def _review(c: _Corpus, model, cfg, vlog: VerdictLog, reviewed: list, round_: int, rng) -> int:
    """One round of simulated review; returns how many intervals were reviewed."""
    picks = choose(_candidates(c, model, cfg), reviewed, cfg.per_round, cfg.threshold,
                   cfg.strategy)  # fmt: skip
    for p in picks:
        said = answer(
            p.key.interval,
            c.truth.get(p.key.video_key, []),
            rng,
            miss_rate=cfg.miss_rate,
            unsure_rate=cfg.unsure_rate,
            mark_extent=cfg.mark_extent,
        )
        vlog.append(
            Verdict(
                model_id=model.model_id,
                dataset=p.key.dataset,
                subject=p.key.subject,
                video=p.key.video,
                start_frame=p.key.start,
                end_frame=p.key.end,
                verdict=said.verdict,
                annotator=ANNOTATOR,
                score=float(p.score),
                note=f"simulated from ground truth, round {round_}, {p.pool}",
                onset_frame=None if said.extent is None else said.extent.start,
                offset_frame=None if said.extent is None else said.extent.end,
            )
        )
        reviewed.append(p.key)
    return len(picks)


def _row(
    c: _Corpus, cfg: FeedbackConfig, seed: int, round_: int, verdicts: list[Verdict], t0: float,
    base: SpotterModel | None = None,
) -> tuple[dict, SpotterModel]:  # fmt: skip
    """Train on what is known after ``round_`` rounds of review (fine-tuning ``base`` when
    ``cfg.finetune_epochs``); evaluate on the test subjects."""
    y, steps = _labels(c, verdicts)
    model = _fit(c, y, steps, cfg, seed, base if cfg.finetune_epochs else None)
    from_verdicts = c.masks["feedback"] & (y >= 0)
    row = {
        "seed": seed,
        "round": round_,
        "reviewed": len(verdicts),
        "yes": sum(v.verdict == "yes" for v in verdicts),
        "confirmed": _confirmed(c, verdicts),
        "train_windows": int((y >= 0).sum()),
        "verdict_positive_windows": int((y[from_verdicts] == 1).sum()),
        "verdict_negative_windows": int((y[from_verdicts] == 0).sum()),
        "model_id": model.model_id,
        "fine_tuned": base is not None and cfg.finetune_epochs > 0,
        **_evaluate(c, model, cfg.threshold),
    }
    return row | {"seconds": round(time.perf_counter() - t0, 2)}, model


def _simulate_seed(c: _Corpus, cfg: FeedbackConfig, seed: int, vlog: VerdictLog, bar):
    """Round 0 and up to ``cfg.rounds`` rounds of review; (rows, why it stopped early)."""
    row, model = _row(c, cfg, seed, 0, [], time.perf_counter())
    rows = [row]
    bar.update()
    reviewed: list[IntervalKey] = []
    rng = np.random.default_rng([seed, 14])  # the annotator's slips, the same on a rerun
    for r in range(1, cfg.rounds + 1):
        t0 = time.perf_counter()
        if not _review(c, model, cfg, vlog, reviewed, r, rng):
            bar.update(cfg.rounds + 1 - r)
            return rows, (
                f"round {r}: no interval left to review (none the {cfg.strategy!r} queue "
                "offers on the feedback subjects overlaps nothing reviewed); stopped after "
                f"{r - 1} rounds"
            )
        row, model = _row(c, cfg, seed, r, vlog.verdicts(), t0, model)
        rows.append(row)
        bar.update()
    return rows, None


def _reference(c: _Corpus, cfg: FeedbackConfig, seed: int) -> dict:
    """Trained with the feedback subjects' full ground truth."""
    y = np.where(c.masks["labelled"] | c.masks["feedback"], c.data.y, -1).astype(np.int8)
    model = _fit(c, y, _truth_steps(c, y), cfg, seed)
    return {"seed": seed, "train_windows": int((y >= 0).sum())} | _evaluate(c, model, cfg.threshold)


def _control(c: _Corpus, cfg: FeedbackConfig, seed: int) -> dict:
    """Round 0's model fine-tuned as long as the last round's, without verdicts: what the
    epochs alone buy."""
    y, steps = _labels(c, [])
    model = _fit(c, y, steps, cfg, seed)
    model = _fit(c, y, steps, cfg, seed, model, epochs=cfg.rounds * cfg.finetune_epochs)
    return {"seed": seed, "train_windows": int((y >= 0).sum())} | _evaluate(c, model, cfg.threshold)


def run_feedback(
    store: Store, cfg: FeedbackConfig, *, progress: bool = True, threads: int = 1
) -> FeedbackResult:
    """The whole simulation (module doc); writes the verdicts and the report to ``store``."""
    from tqdm.auto import tqdm

    c, split, sim_id, kinds = _prepare(store, cfg)
    store.check_writable()
    if store.exists(paths.SIMULATIONS, sim_id):  # a rerun: the same simulation, replaced
        store.fs.rm(store.path(paths.SIMULATIONS, sim_id), recursive=True)
    limit_threads(threads)
    rows, refs, controls, stopped = [], [], [], {}
    total = cfg.seeds * (cfg.rounds + 2 + (cfg.finetune_epochs > 0))
    with tqdm(total=total, unit="fit", desc="feedback", disable=not progress) as bar:
        for seed in range(cfg.seeds):
            vlog = VerdictLog(store, folder=paths.simulation_verdicts(sim_id, seed))
            seed_rows, why = _simulate_seed(c, cfg, seed, vlog, bar)
            rows += seed_rows
            if why:
                stopped[seed] = why
                log.warning("seed %d: %s", seed, why)
            refs.append(_reference(c, cfg, seed))
            bar.update()
            if cfg.finetune_epochs:  # retrained from scratch, round 0 is the control
                controls.append(_control(c, cfg, seed))
                bar.update()
    result = FeedbackResult(
        sim_id, split, rows, refs, summarise(rows), summarise_reference(refs), stopped,
        control_rows=controls, control=summarise_reference(controls) if controls else {},
    )  # fmt: skip
    result.paths = write_report(store, cfg, result, kinds)
    return result

"""Simulated annotator feedback: does reviewing the model's intervals improve the model?

``mespot feedback STORE`` on a store with features and ground truth. Subjects are split
(pipeline.learn.simulation.split_subjects) into *labelled*, *feedback* and *test*. Per seed:

1. round 0 trains one SpotterModel on the labelled subjects' ground truth, and learns its
   threshold (``FeedbackConfig.threshold``, or, when None, learnt as ``mespot train``
   does on out-of-fold scores of the labelled subjects: cluster.run.feedback_models);
2. each round scores the feedback subjects' windows, spots micro intervals at the
   model's threshold (cluster.run.spot: runs of the extent head's profile, or greedy NMS over
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
   ``mespot train --verdicts``), its fold models alike, its threshold learnt again, and
   evaluated on the test subjects (both TP rules, window AUC).

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

from cluster.run.evaluate import ground_truth
from cluster.run.feedback_models import Fitted, SimCorpus, figures, fit
from cluster.run.feedback_models import spots as fitted_spots
from cluster.run.feedback_report import write_report
from cluster.run.spot import scored_videos
from cluster.run.training_data import load_dataset
from cluster.store import paths
from cluster.store.parquet import read_table, window_columns
from cluster.store.store import Store
from cluster.store.verdict_log import VerdictLog
from pipeline.core.intervals import Interval
from pipeline.core.labels import NEGATIVE_MIN_OVERLAP
from pipeline.core.review_queue import Candidate, choose, video_candidates
from pipeline.core.verdicts import (
    IntervalKey,
    Verdict,
    labels_from_verdicts,
    resolve,
    steps_from_verdicts,
)
from pipeline.learn.lstm import limit_threads
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


def _prepare(store: Store, cfg: FeedbackConfig) -> tuple[SimCorpus, Split, str, tuple[str, ...]]:
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
    corpus = SimCorpus(data, cols, videos, truth, masks)
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


def _labels(c: SimCorpus, verdicts: list[Verdict]) -> tuple[np.ndarray, np.ndarray]:
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


def _truth_steps(c: SimCorpus, y: np.ndarray) -> np.ndarray:
    """Ground truth's timestep labels of the windows ``y`` labels; -1 rows elsewhere."""
    return np.where((y >= 0)[:, None], c.data.steps, -1).astype(np.int8)


def _confirmed(c: SimCorpus, verdicts: list[Verdict]) -> float | None:
    yes: dict[tuple, list[Interval]] = {}
    for key, res in resolve(verdicts).items():
        if res.label == "yes":
            yes.setdefault(key.video_key, []).append(key.interval)
    truth = {k: c.truth.get(k, []) for k in c.keys(c.masks["feedback"])}
    hit, total = confirmed(truth, yes)
    return hit / total if total else None


def _candidates(c: SimCorpus, fitted: Fitted, cfg: FeedbackConfig) -> list[Candidate]:
    """The feedback subjects' micro spots at the fit's threshold, and (for a queue that
    wants them) the peaks of each video's window scores below its window threshold that
    overlap no spot (pipeline.core.review_queue.video_candidates)."""
    preds, spots = fitted_spots(c, fitted, c.masks["feedback"])
    spotted: dict[tuple, list[tuple[int, int, float]]] = {}
    for r in spots.to_pylist():
        if r["kind"] == "micro":
            key = (r["dataset"], r["subject"], r["video"])
            spotted.setdefault(key, []).append((r["start_frame"], r["end_frame"], r["score"]))
    out = []
    for key, v in scored_videos(preds, {}).items():  # each video's windows, in order
        windows = None if cfg.strategy == "top" else (v.starts, v.ends, v.scores)
        out += video_candidates(key, spotted.get(key, []), windows, fitted.window_threshold)
    return out


def _review(c: SimCorpus, fitted: Fitted, cfg, vlog: VerdictLog, reviewed: list, round_: int,
            rng) -> int:  # fmt: skip
    """One round of simulated review; returns how many intervals were reviewed."""
    picks = choose(_candidates(c, fitted, cfg), reviewed, cfg.per_round, fitted.threshold,
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
                model_id=fitted.model.model_id,
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
    c: SimCorpus, cfg: FeedbackConfig, seed: int, round_: int, verdicts: list[Verdict], t0: float,
    base: Fitted | None = None,
) -> tuple[dict, Fitted]:  # fmt: skip
    """Train on what is known after ``round_`` rounds of review (fine-tuning ``base`` when
    ``cfg.finetune_epochs``); evaluate on the test subjects."""
    y, steps = _labels(c, verdicts)
    fitted = fit(c, y, steps, cfg, seed, base if cfg.finetune_epochs else None)
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
        "model_id": fitted.model.model_id,
        "fine_tuned": base is not None and cfg.finetune_epochs > 0,
        **figures(c, fitted, cfg.budget),
    }
    return row | {"seconds": round(time.perf_counter() - t0, 2)}, fitted


def _simulate_seed(c: SimCorpus, cfg: FeedbackConfig, seed: int, vlog: VerdictLog, bar):
    """Round 0 and up to ``cfg.rounds`` rounds of review; (rows, why it stopped early)."""
    row, fitted = _row(c, cfg, seed, 0, [], time.perf_counter())
    rows = [row]
    bar.update()
    reviewed: list[IntervalKey] = []
    rng = np.random.default_rng([seed, 14])  # the annotator's slips, the same on a rerun
    for r in range(1, cfg.rounds + 1):
        t0 = time.perf_counter()
        if not _review(c, fitted, cfg, vlog, reviewed, r, rng):
            bar.update(cfg.rounds + 1 - r)
            return rows, (
                f"round {r}: no interval left to review (none the {cfg.strategy!r} queue "
                "offers on the feedback subjects overlaps nothing reviewed); stopped after "
                f"{r - 1} rounds"
            )
        row, fitted = _row(c, cfg, seed, r, vlog.verdicts(), t0, fitted)
        rows.append(row)
        bar.update()
    return rows, None


def _reference(c: SimCorpus, cfg: FeedbackConfig, seed: int) -> dict:
    """Trained with the feedback subjects' full ground truth."""
    y = np.where(c.masks["labelled"] | c.masks["feedback"], c.data.y, -1).astype(np.int8)
    fitted = fit(c, y, _truth_steps(c, y), cfg, seed)
    return {"seed": seed, "train_windows": int((y >= 0).sum())} | figures(c, fitted, cfg.budget)


def _control(c: SimCorpus, cfg: FeedbackConfig, seed: int) -> dict:
    """Round 0's model fine-tuned as long as the last round's, without verdicts: what the
    epochs alone buy."""
    y, steps = _labels(c, [])
    fitted = fit(c, y, steps, cfg, seed)
    fitted = fit(c, y, steps, cfg, seed, fitted, epochs=cfg.rounds * cfg.finetune_epochs)
    return {"seed": seed, "train_windows": int((y >= 0).sum())} | figures(c, fitted, cfg.budget)


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

"""The feedback simulation's fits: a model, the fold models its threshold is learnt on, and
its spots and figures on a set of subjects (cluster.run.feedback runs the rounds).

A model spots at a threshold. ``FeedbackConfig.threshold`` fixes one for every fit; left
None, each fit learns its own as ``mespot train`` does: one fold model per labelled
subject, trained on everything the model is trained on but that subject, scores the
subject's windows, and the threshold with the best pooled coverage-rule F1 on those
out-of-fold scores against the labelled subjects' ground truth is the model's
(cluster.run.spot.chosen_threshold). The fold models are fine-tuned along with the model,
so a held-out labelled subject stays unseen round after round. The feedback subjects'
verdicts train every fold, and the test subjects choose nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from cluster.run.evaluate import video_results
from cluster.run.spot import chosen_threshold, spot_table
from cluster.run.training_data import Dataset
from cluster.store.parquet import window_predictions
from pipeline.core.curves import roc
from pipeline.core.intervals import Interval
from pipeline.core.metrics import RULES, evaluate
from pipeline.core.spotting import REVIEW_FLOOR
from pipeline.learn.lstm import SpotterModel
from pipeline.learn.simulation import FeedbackConfig

log = logging.getLogger(__name__)


@dataclass
class SimCorpus:
    """What every fit and evaluation of one simulation shares."""

    data: Dataset
    cols: tuple[np.ndarray, ...]  # datasets, subjects, videos, label spans per window
    videos: pa.Table
    truth: dict[tuple, list[Interval]]
    masks: dict[str, np.ndarray]  # labelled / feedback / test -> (N,) bool

    def keys(self, mask: np.ndarray) -> set[tuple]:
        d, s, v = (c[mask] for c in self.cols[:3])
        return set(zip(d, s, v, strict=True))


@dataclass
class Fitted:
    """A trained model, with its spotting thresholds in ``model.spotting``, and the fold
    models they were learnt on (labelled subject held out -> model; empty when fixed)."""

    model: SpotterModel
    folds: dict[str, SpotterModel] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        return self.model.threshold

    @property
    def window_threshold(self) -> float:
        return self.model.window_threshold


def fit_one(
    c: SimCorpus, y: np.ndarray, steps: np.ndarray, cfg: FeedbackConfig, seed: int,
    base: SpotterModel | None = None, epochs: int | None = None,
) -> SpotterModel:  # fmt: skip
    """A model trained on the windows ``y`` labels (their timesteps by ``steps``): from
    scratch, or ``base`` fine-tuned for ``epochs`` (default ``cfg.finetune_epochs``) more
    epochs (changed in place)."""
    train = y >= 0
    counts = np.bincount(y[train], minlength=2)
    if counts.min() == 0:  # the simulation's split rules this out; verdicts only add labels
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


def fit(
    c: SimCorpus, y: np.ndarray, steps: np.ndarray, cfg: FeedbackConfig, seed: int,
    base: Fitted | None = None, epochs: int | None = None,
) -> Fitted:  # fmt: skip
    """``fit_one`` and, unless ``cfg.threshold`` fixes it, the fold models (``base``'s
    fine-tuned alike) and the threshold learnt on them (module doc)."""
    model = fit_one(c, y, steps, cfg, seed, None if base is None else base.model, epochs)
    if cfg.threshold is not None:
        model.spotting = {"threshold": cfg.threshold, "window_threshold": cfg.threshold}
        return Fitted(model)
    subjects, folds, scored = c.cols[1], {}, []
    for s in sorted(set(subjects[c.masks["labelled"]])):
        held = subjects == s
        y_fold = np.where(held, -1, y).astype(np.int8)
        if not ((y_fold == 1).any() and (y_fold == 0).any()):
            continue  # one labelled subject cannot train a fold alone: none learnt on it
        start = None if base is None else base.folds.get(s)
        # a fold the base has none of (it could not train then) starts from scratch
        folds[s] = fit_one(c, y_fold, steps, cfg, seed, start, None if start is None else epochs)
        scored.append(predictions(c, folds[s], held))
    chosen = chosen_threshold(pa.concat_tables(scored), c.truth, c.videos) if scored else None
    previous = base.model.spotting if base is not None else {}
    if chosen is None:
        log.warning("no threshold learnt on the labelled subjects: %s", previous or "default")
    model.spotting = dict(chosen or previous)
    return Fitted(model, folds)


def predictions(c: SimCorpus, model: SpotterModel, mask: np.ndarray) -> pa.Table:
    """schemas.WINDOW_PREDICTIONS of the windows in ``mask`` (timestep scores with them
    when the model has an extent head)."""
    x = c.data.X[mask]
    rows = c.data.table.filter(pa.array(mask))
    steps = model.predict_steps(x)
    return window_predictions(rows, model.predict(x), model.model_id, "none", None, steps)


def spots(c: SimCorpus, fitted: Fitted, mask: np.ndarray) -> tuple[pa.Table, pa.Table]:
    """(predictions, spotted micro intervals) of the windows in ``mask``, at the fit's
    threshold: on the extent head's profile when the model has one."""
    preds = predictions(c, fitted.model, mask)
    return preds, spot_table(preds, c.videos, fitted.threshold)


def figures(c: SimCorpus, fitted: Fitted, budget: float | None = None) -> dict:
    """Spotting on the test subjects against their ground truth: both rules, AUC, the
    footage kept and the threshold spotted at; with a ``budget``, also (``at_budget``) both
    rules and the footage of the best micro spots that fit in that fraction of each video,
    drawn down to the review floor (cluster.run.spot.spot_table, as ``spot --budget``)."""
    mask = c.masks["test"]
    preds, intervals = spots(c, fitted, mask)
    out = _counts(c, intervals, mask) | {"spots": intervals.num_rows}
    _, _, auc = roc(preds.column("score").to_numpy(), c.data.y[mask] == 1)
    out |= {"auc": auc, "threshold": fitted.threshold}
    if budget is not None:
        kept = spot_table(preds, c.videos, REVIEW_FLOOR, budget=budget)
        out["at_budget"] = _counts(c, kept, mask) | {"spots": kept.num_rows, "budget": budget}
    return out


def _counts(c: SimCorpus, intervals: pa.Table, mask: np.ndarray) -> dict:
    """Both rules' counts of ``intervals`` and the footage they keep, on ``mask``'s videos."""
    report = evaluate(video_results(intervals, c.videos, c.truth, c.keys(mask)))
    out = {name: report.counts[name].to_dict() for name in RULES}
    return out | {"footage": report.footage_fraction}

"""LOSO folds trained stacked (pipeline.learn.stacked): groups of folds, each group one task
that trains its folds as one computation, instead of one task per fold.

``mespot train --stack K`` puts up to K folds in a task (0, the default: one fold per task).
On a GPU the folds of one stack keep it busy where one fold alone cannot (BENCHMARKS.md,
"LOSO at SAMM size"); a task asks for the job's share of a GPU as a fold does. A fine-tune
(``--verdicts`` or ``--from-model``) or an ensemble (``--members``) trains fold by fold.
"""

from __future__ import annotations

import time

import numpy as np

from cluster.store.models import pack_model
from pipeline.learn.layout import FeatureLayout
from pipeline.learn.lstm import ModelConfig, SpotterModel, limit_threads


def fold_groups(folds: list[str | None], stack: int) -> list[tuple[str | None, ...]]:
    """``folds`` in groups of at most ``stack``, as even as that allows (the model on every
    subject, None, is a fold like the others)."""
    if stack < 1:
        raise ValueError(f"stack must be >= 1 folds per task, got {stack}")
    n_groups = -(-len(folds) // stack)
    return [tuple(folds[i::n_groups]) for i in range(n_groups)]


def fit_fold_group(
    X: np.ndarray,
    y: np.ndarray,
    steps: np.ndarray,
    subjects: np.ndarray,
    layout: FeatureLayout,
    cfg: ModelConfig,
    run_id: str,
    folds: tuple[str | None, ...],
    threads: int = 1,
) -> list[tuple[str | None, bytes, tuple, float]]:
    """Train ``folds`` stacked; per fold (fold, model archive, held-out scores, seconds),
    as cluster.run.train.fit_fold returns them. Runs in a worker."""
    from pipeline.learn.stacked import FoldPlan, fit_folds

    limit_threads(threads)
    t0 = time.perf_counter()
    plan = FoldPlan.loso(subjects, y >= 0, folds)
    models = fit_folds(layout, cfg, X, y.astype(np.int64), steps if cfg.extent else None,
                       plan, fingerprint=run_id)  # fmt: skip
    seconds = (time.perf_counter() - t0) / len(folds)
    pairs = zip(folds, models, strict=True)
    return [(f, *packed_and_scored(m, X, subjects, f), seconds) for f, m in pairs]


def packed_and_scored(
    model: SpotterModel, X: np.ndarray, subjects: np.ndarray, fold: str | None
) -> tuple[bytes, tuple]:
    """A fold's trained model as archive bytes and its held-out (micro, macro or None,
    timestep scores or None) scores on ``fold``'s windows (none for the model on every
    subject)."""
    test = subjects == fold if fold is not None else np.zeros(len(subjects), bool)
    scores = (*model.predict_kinds(X[test]), model.predict_steps(X[test]))
    return pack_model(model), scores

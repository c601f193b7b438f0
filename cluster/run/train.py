"""Leave-One-Subject-Out training of the LSTM, folds in parallel on Ray (or in-process).

One fold per subject with ground truth: train on every other subject's windows, score
the held-out subject's windows. With ``use_verdicts`` (``mespot train --verdicts``), videos
without ground truth are labelled from the annotators' verdicts in the store (see
:func:`load_dataset`), and subjects labelled that way get folds too.

Folds run on the job's executor (cluster.run.executors): as plain Ray tasks (one CPU
each, a fraction of a GPU when the cluster has GPUs), retried when they fail, or in this
process. Plain tasks were chosen over Ray Tune trials and Ray Train's TensorflowTrainer by
measurement (BENCHMARKS.md, "LOSO training"): they start fastest, and a fold is a small
single-process Keras fit that needs none of Train's distributed machinery.

The run's model id (``lstm-<hash of config, layout and data>``) names the run's folder
and its held-out predictions; each saved model records its own id in ``model.json``
(its recipe plus ``<run id>:<fold>``), which ``mespot spot`` puts on its predictions.

The model trained on every subject spots at its own threshold: the one with the best
micro F1 on the folds' held-out scores (cluster.run.spot.chosen_threshold), saved in its
``model.json`` ("spotting") once the folds are done.

Writes to the store::

    models/<model_id>/fold=<subject>/{model.keras,model.json}   one model per fold
    models/<model_id>/all/{model.keras,model.json}              trained on every subject
    predictions/model=<model_id>/part-0.parquet                  schemas.WINDOW_PREDICTIONS
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cluster.run.executors import TaskOptions, make_executor, require_shared
from cluster.run.spot import chosen_threshold
from cluster.run.train_stacked import fit_fold_group, fold_groups, packed_and_scored
from cluster.run.training_data import Dataset, ground_truth, load_dataset
from cluster.store import paths
from cluster.store.models import (
    archive_model,
    record_spotting,
    record_verdicts,
    saved_archive,
    saved_folds,
    unpack_model,
)
from cluster.store.parquet import read_table, window_predictions, write_model_rows
from cluster.store.store import Store
from cluster.store.verdict_log import VerdictLog
from pipeline.core.verdicts import Verdict
from pipeline.learn.layout import FeatureLayout
from pipeline.learn.lstm import (
    DEFAULT_THRESHOLD,
    FINETUNE_EPOCHS,
    ModelConfig,
    SpotterModel,
    limit_threads,
)
from schemas import WINDOW_PREDICTIONS, conform

log = logging.getLogger(__name__)
#: A fold is retried this often when it fails (its worker died, or the fit raised).
FOLD_OPTIONS = TaskOptions(retries=2, retry_exceptions=True)


def fit_fold(
    X: np.ndarray,
    y: np.ndarray,
    steps: np.ndarray,
    subjects: np.ndarray,
    layout: FeatureLayout,
    cfg: ModelConfig,
    run_id: str,
    fold: str | None,
    base: bytes | None = None,
    epochs: int | None = None,
    threads: int = 1,
) -> tuple[bytes, np.ndarray, float]:
    """Train on subjects other than ``fold`` (all when None); score ``fold``'s windows.

    ``base``: a saved model (cluster.store.models.saved_archive) to fine-tune for ``epochs``
    instead of a new network of ``cfg``. Returns (model archive bytes, held-out (micro,
    macro or None, timestep scores or None) scores, seconds). Runs in a worker.
    """
    limit_threads(threads)
    t0 = time.perf_counter()
    train = (y >= 0) & (subjects != fold) if fold is not None else (y >= 0)
    model = SpotterModel.build(layout, cfg) if base is None else archive_model(base)
    base_id = None if base is None else model.model_id
    model.fit(
        X[train], y[train].astype(np.int64), data_fingerprint=f"{run_id}:{fold or 'all'}",
        steps=steps[train] if model.config.extent else None, epochs=epochs,
    )  # fmt: skip
    if base_id is not None:
        model.training["fine_tuned_from"] = base_id
        model.spotting = {}  # the base's threshold: chosen again on this run's folds
    return (*packed_and_scored(model, X, subjects, fold), time.perf_counter() - t0)


@dataclass
class TrainSummary:
    model_id: str
    folds: dict[str, float] = field(default_factory=dict)  # subject -> seconds
    failed: dict[str, str] = field(default_factory=dict)
    windows: int = 0
    positives: int = 0
    macro: int = 0  # windows labelled macro-expression
    wall_seconds: float = 0.0
    verdicts: int | None = None  # verdicts read (None: trained without them)
    verdict_positives: int = 0  # windows labelled positive by verdicts
    verdict_negatives: int = 0  # windows labelled negative (hard negatives) by verdicts
    spotting: dict | None = None  # the threshold chosen on the folds (cluster.run.spot)
    base: str | None = None  # the model fine-tuned (None: trained from scratch)
    finetune_epochs: int | None = None

    def lines(self) -> list[str]:
        out = [
            f"model {self.model_id}: {len(self.folds)} LOSO folds on {self.windows} windows "
            f"({self.positives} micro, {self.macro} macro) in {self.wall_seconds:.1f} s"
        ]
        if self.base is not None:
            out.append(
                f"  fine-tuned from model {self.base} for {self.finetune_epochs} epochs, each "
                "fold from that model's fold of the same subject"
            )
        if self.verdicts is not None:
            out.append(
                f"  labels from {self.verdicts} verdicts: {self.verdict_positives} positive and "
                f"{self.verdict_negatives} negative windows of videos without ground truth"
            )
        if self.spotting:
            sp = self.spotting
            on = (
                f" on the extent head's profile (windows: {sp['window_threshold']:.3g})"
                if sp.get("spots") == "profile"
                else ""
            )
            out.append(
                f"  spotting threshold {sp['threshold']:.3g}{on}, chosen on the folds' "
                f"held-out scores ({sp['videos']} videos, micro F1 {sp['f1']:.3f} there), "
                "saved with the model"
            )
        elif not self.failed:
            out.append(
                "  no spotting threshold chosen (the folds found no micro-movement at any "
                f"threshold): the model spots at {DEFAULT_THRESHOLD}"
            )
        out += [f"  fold {s} failed: {why}" for s, why in self.failed.items()]
        return out


def model_id_for(data: Dataset, cfg: ModelConfig, base: tuple[str, int] | None = None) -> str:
    """``lstm-<hash>`` of the recipe, the layout, the data and (fine-tuning) the base model
    and the epochs."""
    recipe = {"cfg": cfg.to_dict(), "layout": data.layout.to_dict()}
    if base is not None:
        recipe["base"] = list(base)
    blob = json.dumps(recipe, sort_keys=True)
    digest = hashlib.sha256(blob.encode() + data.X.tobytes()[: 1 << 20] + data.y.tobytes())
    return "lstm-" + digest.hexdigest()[:10]


def _store_verdicts(store: Store) -> list[Verdict]:
    verdict_log = VerdictLog(store)
    verdicts = verdict_log.verdicts()
    if not verdicts:
        raise ValueError(
            f"store {store.uri or store.root} has no verdicts (nothing under "
            f"{verdict_log.folder}/): review spotted intervals first, or train without "
            "--verdicts"
        )
    return verdicts


def _labelled_subjects(data: Dataset, store: Store, use_verdicts: bool) -> list[str]:
    subjects = sorted(set(data.subjects[data.y >= 0]))
    if len(subjects) < 2:
        what = "ground truth or verdicts" if use_verdicts else "ground truth"
        raise ValueError(f"LOSO needs {what} for >= 2 subjects; {store.uri} has {subjects}")
    return subjects


def reviewed_model(store: Store, verdicts: list[Verdict]) -> str | None:
    """The model annotators reviewed last: the newest verdict's model whose saved folds the
    store holds (None: none of them)."""
    for v in sorted(verdicts, key=lambda v: v.created_at, reverse=True):
        if store.exists(*paths.model_folder(v.model_id, None), "model.json"):
            return v.model_id
    return None


def base_recipe(store: Store, base: str) -> tuple[ModelConfig, FeatureLayout]:
    """The config and layout of ``base``, the model to fine-tune (from the ``model.json`` of
    its model on every subject)."""
    parts = [*paths.model_folder(base, None), "model.json"]
    if not store.exists(*parts):
        raise FileNotFoundError(
            f"store {store.uri or store.root} has no model {base!r} to fine-tune (no "
            f"{'/'.join(parts)}): name one it holds, or train from scratch"
        )
    info, where = json.loads(store.read_text(*parts)), store.path(*parts)
    config = ModelConfig.from_dict(info["config"], source=where)
    return config, FeatureLayout.from_dict(info["layout"], source=f"{where} layout")


def base_archives(store: Store, base: str, subjects: list[str]) -> dict[str | None, bytes]:
    """Per fold, the saved model of ``base`` to fine-tune: the base's fold of the same
    subject, so a held-out subject stays unseen; for a subject the base has no fold of
    (unlabelled when it was trained, so its model on every subject never saw it), that
    model; for the model on every subject (None), the base's."""
    whole = saved_archive(store, base, None)
    folds = set(saved_folds(store, base))
    archives = {s: saved_archive(store, base, s) if s in folds else whole for s in subjects}
    return {**archives, None: whole}


def train_loso(
    store: Store,
    cfg: ModelConfig,
    *,
    executor: str = "ray",
    gpu_fraction: float = 0.25,
    progress: bool = True,
    use_verdicts: bool = False,
    shared_fs: bool = False,
    base_model: str | None = None,
    scratch: bool = False,
    finetune_epochs: int = FINETUNE_EPOCHS,
    stack: int = 0,
) -> TrainSummary:
    """LOSO folds over the labelled subjects of ``store``, then a model on all of them.

    ``use_verdicts``: videos without ground truth are labelled from the store's verdicts
    (cluster.run.training_data.load_dataset), and subjects labelled that way take part in LOSO
    like the others. Then, unless ``scratch``, the model the verdicts were given on
    (:func:`reviewed_model`) is fine-tuned for ``finetune_epochs`` instead of training new
    networks (``cfg`` gives way to that model's). ``base_model`` names
    the model to fine-tune, with or without verdicts. ``stack``: train up to that many
    folds as one computation per task (cluster.run.train_stacked; 0: a task per fold).
    """
    if finetune_epochs < 1:
        raise ValueError(f"finetune_epochs must be >= 1, got {finetune_epochs}")
    t0 = time.perf_counter()
    runner = make_executor(executor)
    local = [store.uri or store.root] if store.is_local else []
    require_shared(runner, {"store": local}, shared_fs)
    store.check_writable()  # models and predictions go here: fail before any work
    verdicts = _store_verdicts(store) if use_verdicts else None
    if base_model is None and verdicts is not None and not scratch:
        base_model = reviewed_model(store, verdicts)
        if base_model is None:
            log.warning("no model the verdicts were given on is in the store: from scratch")
    if base_model is not None:
        cfg, base_layout = base_recipe(store, base_model)
    data = load_dataset(store, cfg.with_magnitude, verdicts=verdicts)
    subjects = _labelled_subjects(data, store, use_verdicts)
    bases = None
    if base_model is not None:
        base_layout.check(data.layout, where=f"model {base_model}")
        bases = base_archives(store, base_model, subjects)
    summary = TrainSummary(
        model_id_for(data, cfg, None if bases is None else (base_model, finetune_epochs))
    )
    if bases is not None:
        summary.base, summary.finetune_epochs = base_model, finetune_epochs
    summary.windows, summary.positives = int((data.y >= 0).sum()), int((data.y == 1).sum())
    summary.macro = int((data.y == 2).sum())
    if verdicts is not None:
        summary.verdicts = len(verdicts)
        summary.verdict_positives, summary.verdict_negatives = data.verdict_counts
    folds = {f: (f, None if bases is None else bases[f], finetune_epochs if bases else None)
             for f in [*subjects, None]}  # fmt: skip
    if stack and (bases is not None or cfg.members != 1):
        log.warning("a fine-tune or an ensemble trains fold by fold: --stack ignored")
        stack = 0
    if stack:
        folds = {group: (group,) for group in fold_groups(list(folds), stack)}
    scores = _run_folds(store, data, cfg, folds, summary, runner, gpu_fraction, progress,
                        stacked=bool(stack))  # fmt: skip
    _finish(store, data, summary, scores)
    summary.wall_seconds = time.perf_counter() - t0
    return summary


def _finish(store: Store, data: Dataset, summary: TrainSummary, scores: dict) -> None:
    """Held-out predictions to the store; the spotting threshold chosen on them and what
    the model learned from verdicts, into its ``model.json``."""
    predictions = predictions_table(data, scores, summary.model_id)
    write_model_rows(store, paths.PREDICTIONS, summary.model_id, predictions)
    truth = ground_truth(store, ("micro",))
    # the videos' frame rates, for spots on the extent head's profile (a store of features
    # only, without the manifest, chooses on windows)
    videos = read_table(store, paths.VIDEOS) if store.exists(paths.VIDEOS) else None
    summary.spotting = chosen_threshold(predictions, truth, videos)
    if summary.spotting and "all" not in summary.failed:
        record_spotting(store, summary.model_id, summary.spotting)
    if summary.verdicts is not None and "all" not in summary.failed:
        learned = {"verdicts": summary.verdicts, "positive_windows": summary.verdict_positives,
                   "negative_windows": summary.verdict_negatives}  # fmt: skip
        if summary.base is not None:
            learned["fine_tuned_from"] = summary.base
        record_verdicts(store, summary.model_id, learned)


def _run_folds(
    store: Store,
    data: Dataset,
    cfg: ModelConfig,
    folds: dict[str | None, tuple],
    summary: TrainSummary,
    runner,
    gpu_fraction: float,
    progress: bool,
    stacked: bool = False,
) -> dict[str, tuple]:
    """Fit every fold (its fit_fold arguments after the shared ones; ``stacked``: every
    group of folds, fit_fold_group's) on ``runner``; save each model as it comes back;
    held-out scores."""
    from tqdm.auto import tqdm

    shared = (data.X, data.y, data.steps, data.subjects, data.layout, cfg, summary.model_id)
    options = replace(FOLD_OPTIONS, gpu_fraction=gpu_fraction)
    scores: dict[str, tuple] = {}
    total = sum(len(k) for k in folds) if stacked else len(folds)
    task = fit_fold_group if stacked else fit_fold
    with tqdm(total=total, unit="fold", desc="train", disable=not progress) as bar:
        for key, out in runner.run(task, folds.items(), shared, options):
            if isinstance(out, BaseException):
                for fold in key if stacked else (key,):
                    bar.update()
                    summary.failed[fold or "all"] = f"{type(out).__name__}: {out}"
                continue
            for fold, archive, fold_scores, seconds in out if stacked else [(key, *out)]:
                bar.update()
                unpack_model(archive, store, *paths.model_folder(summary.model_id, fold))
                if fold is not None:
                    scores[fold] = fold_scores
                    summary.folds[fold] = round(seconds, 2)
    runner.close()
    return scores


def predictions_table(data: Dataset, scores: dict[str, tuple], model_id: str) -> pa.Table:
    """Held-out (micro, macro, timestep) scores of every fold as schemas.WINDOW_PREDICTIONS
    rows."""
    parts = [
        window_predictions(
            data.table.filter(pa.array(data.subjects == fold)), micro, model_id, fold, macro,
            steps,
        )
        for fold, (micro, macro, steps) in scores.items()
    ]  # fmt: skip
    if not parts:
        return conform([], WINDOW_PREDICTIONS)
    table = pa.concat_tables(parts)
    order = pc.sort_indices(table, [("video", "ascending"), ("window", "ascending")])
    return conform(table.take(order), WINDOW_PREDICTIONS)

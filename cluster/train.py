"""Leave-One-Subject-Out training of the LSTM, folds in parallel on Ray (or in-process).

One fold per subject with ground truth: train on every other subject's windows, score
the held-out subject's windows. With ``use_verdicts`` (``mespot train --verdicts``), videos
without ground truth are labelled from the annotators' verdicts in the store (see
:func:`load_dataset`), and subjects labelled that way get folds too.

Folds run as plain Ray tasks (one CPU each, a fraction of a GPU when the cluster has GPUs)
and are retried when they fail. Plain tasks were chosen over Ray Tune trials and Ray
Train's TensorflowTrainer by measurement (DESIGN.md, and BENCHMARKS.md "LOSO training"):
they start fastest, and a fold is a small single-process Keras fit that needs none of
Train's distributed machinery.

The run's model id (``lstm-<hash of config, layout and data>``) names the run's folder
and its held-out predictions; each saved model records its own id in ``model.json``
(its recipe plus ``<run id>:<fold>``), which ``mespot spot`` puts on its predictions.

Writes to the store::

    models/<model_id>/fold=<subject>/{model.keras,model.json}   one model per fold
    models/<model_id>/all/{model.keras,model.json}              trained on every subject
    predictions/model=<model_id>/part-0.parquet                  schemas.WINDOW_PREDICTIONS
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from cluster.store import Store
from cluster.verdicts import VerdictLog
from pipeline.feedback import labels_from_verdicts
from pipeline.model import FeatureLayout, ModelConfig, SpotterModel, limit_threads, window_arrays
from pipeline.review import Verdict
from schemas import WINDOW_PREDICTIONS, conform

log = logging.getLogger(__name__)
FOLD_RETRIES = 2


def read_table(store: Store, name: str) -> pa.Table:
    """A partitioned table of the store (the key columns are inside the files)."""
    if not store.exists(name):
        raise FileNotFoundError(f"store {store.uri or store.root} has no {name}/ table")
    return ds.dataset(store.path(name), filesystem=store.fs, format="parquet").to_table()


@dataclass
class Dataset:
    """The windows that can be learned from: arrays plus the rows they came from."""

    table: pa.Table  # features rows with a face (the rows of X)
    X: np.ndarray  # (N, T, F) float32
    y: np.ndarray  # (N,) int8, -1 where unlabelled
    subjects: np.ndarray  # (N,) str
    layout: FeatureLayout
    from_verdicts: np.ndarray | None = None  # (N,) bool: label given by verdicts

    @property
    def verdict_counts(self) -> tuple[int, int]:
        """(positive, negative) windows whose label came from verdicts."""
        if self.from_verdicts is None:
            return 0, 0
        y = self.y[self.from_verdicts]
        return int((y == 1).sum()), int((y == 0).sum())


def window_columns(table: pa.Table) -> tuple[np.ndarray, ...]:
    """(datasets, subjects, videos, starts, ends) of a features table's rows, as arrays."""
    keys = (
        np.asarray(table.column(c).to_pylist(), dtype=object)
        for c in ("dataset", "subject", "video")
    )
    spans = (table.column(c).to_numpy() for c in ("start_frame", "end_frame"))
    return (*keys, *spans)


def load_dataset(
    store: Store, with_magnitude: bool, verdicts: Iterable[Verdict] | None = None
) -> Dataset:
    """The windows with a face, labelled from ground truth (and ``verdicts``, when given).

    With ``verdicts``, videos without ground truth (every window's ``label`` null) take
    their labels from the resolved verdicts (pipeline.feedback.labels_from_verdicts: yes ->
    positive windows, no -> hard negatives, the rest unlabelled); videos with ground truth
    keep it, whatever was said about them.
    """
    table = read_table(store, "features")
    feature_config = store.read_json("feature_config.json")
    layout = FeatureLayout.from_table(table, feature_config, with_magnitude)
    X, y, rows = window_arrays(table, layout)
    used = table.take(pa.array(rows))
    subjects = np.asarray(used.column("subject").to_pylist(), dtype=object)
    from_verdicts = None
    if verdicts is not None:
        datasets, _, videos, starts, ends = window_columns(used)
        keys = list(zip(datasets, subjects, videos, strict=True))
        truth_videos = {k for k, label in zip(keys, y, strict=True) if label >= 0}
        with_truth = np.fromiter((k in truth_videos for k in keys), bool, len(keys))
        given = labels_from_verdicts(datasets, subjects, videos, starts, ends, verdicts)
        from_verdicts = ~with_truth & (given >= 0)
        y = np.where(from_verdicts, given, y).astype(np.int8)
    return Dataset(used, X, y, subjects, layout, from_verdicts)


def fit_fold(
    X, y, subjects, fold: str | None, layout, cfg: ModelConfig, run_id: str, threads: int = 1
):
    """Train on subjects other than ``fold`` (all when None); score ``fold``'s windows.

    Returns (model archive bytes, held-out scores, seconds). Runs in a worker.
    """
    limit_threads(threads)
    t0 = time.perf_counter()
    train = (y >= 0) & (subjects != fold) if fold is not None else (y >= 0)
    model = SpotterModel.build(layout, cfg)
    model.fit(X[train], y[train].astype(np.int64), data_fingerprint=f"{run_id}:{fold or 'all'}")
    test = subjects == fold if fold is not None else np.zeros(len(y), bool)
    scores = model.predict(X[test]) if test.any() else np.zeros(0, np.float32)
    with tempfile.TemporaryDirectory() as d:
        model.save(Path(d))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for p in sorted(Path(d).iterdir()):
                tar.add(p, arcname=p.name)
    return buf.getvalue(), scores, time.perf_counter() - t0


def _unpack_model(archive: bytes, store: Store, *parts: str) -> None:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            data = tar.extractfile(member).read()
            store.put_atomic(data, *parts, member.name)


@dataclass
class TrainSummary:
    model_id: str
    folds: dict[str, float] = field(default_factory=dict)  # subject -> seconds
    failed: dict[str, str] = field(default_factory=dict)
    windows: int = 0
    positives: int = 0
    wall_seconds: float = 0.0
    verdicts: int | None = None  # verdicts read (None: trained without them)
    verdict_positives: int = 0  # windows labelled positive by verdicts
    verdict_negatives: int = 0  # windows labelled negative (hard negatives) by verdicts

    def lines(self) -> list[str]:
        out = [
            f"model {self.model_id}: {len(self.folds)} LOSO folds on {self.windows} windows "
            f"({self.positives} positive) in {self.wall_seconds:.1f} s"
        ]
        if self.verdicts is not None:
            out.append(
                f"  labels from {self.verdicts} verdicts: {self.verdict_positives} positive and "
                f"{self.verdict_negatives} negative windows of videos without ground truth"
            )
        out += [f"  fold {s} failed: {why}" for s, why in self.failed.items()]
        return out


def model_id_for(data: Dataset, cfg: ModelConfig) -> str:
    blob = json.dumps({"cfg": cfg.to_dict(), "layout": data.layout.to_dict()}, sort_keys=True)
    digest = hashlib.sha256(blob.encode() + data.X.tobytes()[: 1 << 20] + data.y.tobytes())
    return "lstm-" + digest.hexdigest()[:10]


def run_folds(
    executor: str, X, y, subjects, folds, layout, cfg, run_id: str, gpu_fraction: float
) -> Iterator:
    """Yield (fold, result or exception) as folds finish; fold None = all subjects."""
    if executor == "local":
        for fold in folds:
            try:
                yield fold, fit_fold(X, y, subjects, fold, layout, cfg, run_id)
            except Exception as e:
                yield fold, e
        return
    from cluster.executors import connect_ray

    ray = connect_ray()
    gpus = ray.cluster_resources().get("GPU", 0)
    task = ray.remote(
        num_cpus=1,
        num_gpus=gpu_fraction if gpus else 0,
        max_retries=FOLD_RETRIES,
        retry_exceptions=True,
    )(fit_fold)
    refs = [ray.put(a) for a in (X, y, subjects)]
    pending = {task.remote(*refs, fold, layout, cfg, run_id): fold for fold in folds}
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        fold = pending.pop(ref)
        try:
            yield fold, ray.get(ref)
        except ray.exceptions.RayError as e:
            yield fold, e


def train_loso(
    store: Store,
    cfg: ModelConfig,
    *,
    executor: str = "ray",
    gpu_fraction: float = 0.25,
    progress: bool = True,
    use_verdicts: bool = False,
) -> TrainSummary:
    """LOSO folds over the labelled subjects of ``store``, then a model on all of them.

    ``use_verdicts``: videos without ground truth are labelled from the store's verdicts
    (:func:`load_dataset`), and subjects labelled that way take part in LOSO like the others.
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    verdicts = None
    if use_verdicts:
        verdict_log = VerdictLog(store)
        verdicts = verdict_log.verdicts()
        if not verdicts:
            raise ValueError(
                f"store {store.uri or store.root} has no verdicts (nothing under "
                f"{verdict_log.folder}/): review spotted intervals first, or train without "
                "--verdicts"
            )
    data = load_dataset(store, cfg.with_magnitude, verdicts=verdicts)
    labelled = data.y >= 0
    subjects = sorted(set(data.subjects[labelled]))
    if len(subjects) < 2:
        what = "ground truth or verdicts" if use_verdicts else "ground truth"
        raise ValueError(f"LOSO needs {what} for >= 2 subjects; {store.uri} has {subjects}")
    summary = TrainSummary(model_id_for(data, cfg))
    summary.windows, summary.positives = int(labelled.sum()), int((data.y == 1).sum())
    if verdicts is not None:
        summary.verdicts = len(verdicts)
        summary.verdict_positives, summary.verdict_negatives = data.verdict_counts
    scores: dict[str, np.ndarray] = {}
    folds = [*subjects, None]
    with tqdm(total=len(folds), unit="fold", desc="train", disable=not progress) as bar:
        for fold, out in run_folds(
            executor,
            data.X,
            data.y,
            data.subjects,
            folds,
            data.layout,
            cfg,
            summary.model_id,
            gpu_fraction,
        ):
            bar.update()
            name = fold if fold is not None else "all"
            if isinstance(out, BaseException):
                summary.failed[name] = f"{type(out).__name__}: {out}"
                continue
            archive, fold_scores, seconds = out
            part = f"fold={fold}" if fold is not None else "all"
            _unpack_model(archive, store, "models", summary.model_id, part)
            if fold is not None:
                scores[fold] = fold_scores
                summary.folds[fold] = round(seconds, 2)
    store.write_parquet(
        predictions_table(data, scores, summary.model_id),
        "predictions",
        f"model={summary.model_id}",
        "part-0.parquet",
    )
    summary.wall_seconds = time.perf_counter() - t0
    return summary


def window_predictions(rows: pa.Table, scores: np.ndarray, model_id: str, fold) -> pa.Table:
    """schemas.WINDOW_PREDICTIONS rows for ``rows`` of a features table and their scores.

    ``fold`` is one name for all rows or a sequence with one per row.
    """
    n = rows.num_rows
    folds = [fold] * n if isinstance(fold, str) else list(fold)
    return conform(
        pa.table(
            {
                "model_id": pa.array([model_id] * n, pa.string()),
                "fold": pa.array(folds, pa.string()),
                **{c: rows.column(c) for c in ("dataset", "subject", "video", "window")},
                **{c: rows.column(c) for c in ("start_frame", "end_frame")},
                "score": pa.array(np.asarray(scores, np.float32)),
                "label": rows.column("label"),
            }
        ),
        WINDOW_PREDICTIONS,
    )


def predictions_table(data: Dataset, scores: dict[str, np.ndarray], model_id: str) -> pa.Table:
    """Held-out scores of every fold as schemas.WINDOW_PREDICTIONS rows."""
    parts = [
        window_predictions(data.table.filter(pa.array(data.subjects == fold)), s, model_id, fold)
        for fold, s in scores.items()
    ]
    if not parts:
        return conform([], WINDOW_PREDICTIONS)
    table = pa.concat_tables(parts)
    order = pc.sort_indices(table, [("video", "ascending"), ("window", "ascending")])
    return conform(table.take(order), WINDOW_PREDICTIONS)

"""The windows a store's features offer to learning: LSTM arrays, labels, subjects.

Labels come from ground truth (the ``label`` column, written at extraction, for
micro-movements; the store's macro-expression annotations for class 2,
pipeline.core.labels.class_labels) and, when verdicts are given, from the annotators'
verdicts for videos without ground truth (pipeline.core.verdicts.labels_from_verdicts, with
the store's coverage rule).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cluster.store import paths
from cluster.store.parquet import read_feature_config, read_table, window_columns
from cluster.store.store import Store
from pipeline.core.extents import step_labels
from pipeline.core.intervals import Interval
from pipeline.core.labels import class_labels, inside
from pipeline.core.verdicts import Verdict, labels_from_verdicts, steps_from_verdicts
from pipeline.learn.layout import FeatureLayout, window_arrays
from pipeline.vision.config import FeatureConfig


@dataclass
class Dataset:
    """The windows that can be learned from: arrays plus the rows they came from."""

    table: pa.Table  # features rows with a face (the rows of X)
    X: np.ndarray  # (N, T, F) float32
    y: np.ndarray  # (N,) int8 classes: 0 none, 1 micro, 2 macro; -1 where unlabelled
    subjects: np.ndarray  # (N,) str
    layout: FeatureLayout
    config: FeatureConfig  # what the features were made with
    from_verdicts: np.ndarray | None = None  # (N,) bool: label given by verdicts
    # (N, T) int8: 1 where a timestep lies in a micro-movement of the ground truth (or of a
    # yes verdict's extent), else 0; -1 for unlabelled windows (pipeline.core.extents.step_labels)
    steps: np.ndarray | None = None

    @property
    def verdict_counts(self) -> tuple[int, int]:
        """(positive, negative) windows whose label came from verdicts."""
        if self.from_verdicts is None:
            return 0, 0
        y = self.y[self.from_verdicts]
        return int((y == 1).sum()), int((y == 0).sum())


def load_dataset(
    store: Store, with_magnitude: bool, verdicts: Iterable[Verdict] | None = None
) -> Dataset:
    """The windows with a face, labelled from ground truth (and ``verdicts``, when given):
    micro from the ``label`` column, macro (class 2) where a window lies in a
    macro-expression of the store's annotations and is not micro.

    With ``verdicts``, videos without ground truth (every window's ``label`` null) take
    their labels from the resolved verdicts (yes -> positive windows, no -> hard
    negatives, the rest unlabelled) and so do those windows' timesteps (a yes's extent);
    videos with ground truth keep it, whatever was said about them.
    """
    config = read_feature_config(store)  # first: a store of an older format says so
    table = read_table(store, paths.FEATURES)
    layout = FeatureLayout.from_table(table, config, with_magnitude)
    X, y, rows = window_arrays(table, layout)
    used = table.take(pa.array(rows))
    subjects = np.asarray(used.column("subject").to_pylist(), dtype=object)
    steps = timestep_labels(store, used, y, layout.n_timesteps)
    y = class_labels(y, macro_windows(store, used, config))
    from_verdicts = None
    if verdicts is not None:
        verdicts = list(verdicts)  # read twice: window labels, then timestep labels
        datasets, _, videos, starts, ends = window_columns(used, config.label_span_s)
        keys = list(zip(datasets, subjects, videos, strict=True))
        truth_videos = {k for k, label in zip(keys, y, strict=True) if label >= 0}
        with_truth = np.fromiter((k in truth_videos for k in keys), bool, len(keys))
        given = labels_from_verdicts(
            datasets, subjects, videos, starts, ends, verdicts, config.label_min_coverage
        )
        from_verdicts = ~with_truth & (given >= 0)
        y = np.where(from_verdicts, given, y).astype(np.int8)
        frames = (used.column(c).to_numpy() for c in ("start_frame", "end_frame"))
        given_steps = steps_from_verdicts(
            datasets, subjects, videos, *frames, np.where(from_verdicts, y, -1), verdicts,
            layout.n_timesteps,
        )  # fmt: skip
        steps = np.where(from_verdicts[:, None], given_steps, steps).astype(np.int8)
    subjects = loso_subjects(used, subjects)
    return Dataset(used, X, y, subjects, layout, config, from_verdicts, steps)


def timestep_labels(store: Store, table: pa.Table, y: np.ndarray, n_steps: int) -> np.ndarray:
    """(N, n_steps) int8 timestep labels of a features table's rows from the store's micro
    ground truth (pipeline.core.extents.step_labels); -1 for rows without ground truth
    (``y`` < 0: their video has none)."""
    out = np.full((table.num_rows, n_steps), -1, np.int8)
    truth = ground_truth(store, ("micro",))
    cols = ("dataset", "subject", "video")
    keys = zip(*(table.column(c).to_pylist() for c in cols), strict=True)
    starts, ends = (table.column(c).to_numpy() for c in ("start_frame", "end_frame"))
    for key, rows in _rows_by_video(keys).items():
        rows = rows[y[rows] >= 0]
        out[rows] = step_labels(starts[rows], ends[rows], n_steps, truth.get(key, []))
    return out


def _rows_by_video(keys) -> dict[tuple, np.ndarray]:
    """Row numbers of each (dataset, subject, video) key, from the rows' keys in order."""
    rows_of: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        rows_of.setdefault(key, []).append(i)
    return {key: np.asarray(rows, np.int64) for key, rows in rows_of.items()}


def ground_truth(store: Store, kinds: tuple[str, ...]) -> dict[tuple, list[Interval]]:
    """Each video's ground-truth intervals of ``kinds`` (e.g. ("micro",)); {} for a store
    without annotations (videos ingested for spotting only)."""
    if not store.exists(paths.ANNOTATIONS):
        return {}
    ann = read_table(store, paths.ANNOTATIONS)
    ann = ann.filter(pc.is_in(ann.column("kind"), pa.array(list(kinds))))
    truth: dict[tuple, list[Interval]] = {}
    for a in ann.to_pylist():
        truth.setdefault((a["dataset"], a["subject"], a["video"]), []).append(
            Interval(a["onset_frame"], a["offset_frame"])
        )
    return truth


def macro_windows(store: Store, table: pa.Table, config: FeatureConfig) -> np.ndarray:
    """(N,) bool: which rows of a features table lie in a macro-expression of the store's
    annotations (pipeline.core.labels.inside, on their label spans)."""
    macro = ground_truth(store, ("macro",))
    out = np.zeros(table.num_rows, bool)
    if not macro or not table.num_rows:
        return out
    datasets, subjects, videos, starts, ends = window_columns(table, config.label_span_s)
    rows_of = _rows_by_video(zip(datasets, subjects, videos, strict=True))
    for key, intervals in macro.items():
        rows = rows_of.get(key)
        if rows is not None:
            out[rows] = inside(starts[rows], ends[rows], intervals)
    return out


def loso_subjects(table: pa.Table, subjects: np.ndarray) -> np.ndarray:
    """The LOSO group of each row: its subject, or ``dataset:subject`` when the table holds
    several datasets (SAMM's 006 and another corpus's 006 are different people)."""
    datasets = pc.unique(table.column("dataset")).to_pylist()
    if len(datasets) <= 1:
        return subjects
    names = np.asarray(table.column("dataset").to_pylist(), dtype=object)
    return np.asarray([f"{d}:{s}" for d, s in zip(names, subjects, strict=True)], dtype=object)

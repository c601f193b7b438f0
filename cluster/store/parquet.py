"""Reading a store's tables and its feature config; building window-prediction rows.

Every table of a store is hive-partitioned Parquet with its key columns also inside the
files (cluster.store.paths); :func:`read_table` reads one whole. The FeatureConfig the
store's features were made with is read back typed by :func:`read_feature_config`, the
one place ``feature_config.json`` is parsed.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from cluster.store import paths
from cluster.store.store import Store
from pipeline.core.configs import ConfigError
from pipeline.core.labels import label_spans
from pipeline.vision.config import FEATURES_FORMAT, FeatureConfig
from schemas import WINDOW_PREDICTIONS, conform


def read_table(store: Store, name: str) -> pa.Table:
    """A partitioned table of the store (the key columns are inside the files)."""
    if not store.exists(name):
        store.check_exists()
        raise FileNotFoundError(f"store {store.uri or store.root} has no {name}/ table")
    return ds.dataset(store.path(name), filesystem=store.fs, format="parquet").to_table()


#: Why each older features format is refused (None: no format field at all).
OLD_FORMATS = {
    None: "their timesteps were counted in frames, so they meant another thing at every frame rate",
    "mespot-features/2": "their labels counted a window's frames, not the time it stands "
    "for, so a movement was positive in more windows at 30 fps than at 100 fps",
    "mespot-features/3": "they lack the cell flow (mean flow vectors per cell of each "
    "region) that models from this mespot on read",
}


def read_feature_config(store: Store) -> FeatureConfig:
    """The store's ``feature_config.json`` as a FeatureConfig (errors name the file)."""
    where = store.path(paths.FEATURE_CONFIG)
    if not store.exists(paths.FEATURE_CONFIG):
        raise FileNotFoundError(f"{where}: no feature config (run `mespot extract` first)")
    try:
        stored = json.loads(store.read_text(paths.FEATURE_CONFIG))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{where}: not JSON ({e})") from e
    if isinstance(stored, dict) and stored.get("format") != FEATURES_FORMAT:
        why = OLD_FORMATS.get(stored.get("format"), "they are of another format")
        raise ConfigError(
            f"{where}: features from an older mespot (format {stored.get('format')!r}, this "
            f"one reads {FEATURES_FORMAT!r}): {why}. Re-extract them into a new store: "
            "`mespot extract CORPUS NEW_STORE` (or `mespot ingest SOURCE NEW_STORE`), then "
            "`mespot train NEW_STORE`"
        )
    config = FeatureConfig.from_dict(stored, source=where)
    stored_id = stored.get("config_id") if isinstance(stored, dict) else None
    if stored_id is not None and stored_id != config.config_id:
        raise ConfigError(
            f"{where}: config_id {stored_id} does not match its settings ({config.config_id}); "
            "the file was edited after extraction"
        )
    return config


def window_columns(table: pa.Table, span_s: float) -> tuple[np.ndarray, ...]:
    """(datasets, subjects, videos, starts, ends) of a features table's rows, as arrays;
    starts/ends are the windows' label spans of ``span_s`` seconds (FeatureConfig.label_span_s,
    pipeline.core.labels.label_spans)."""
    keys = (
        np.asarray(table.column(c).to_pylist(), dtype=object)
        for c in ("dataset", "subject", "video")
    )
    cols = (table.column(c).to_numpy() for c in ("start_frame", "end_frame", "start_s", "end_s"))
    return (*keys, *label_spans(*cols, span_s))


def window_predictions(
    rows: pa.Table,
    scores: np.ndarray,
    model_id: str,
    fold,
    macro: np.ndarray | None = None,
    steps: np.ndarray | None = None,
) -> pa.Table:
    """schemas.WINDOW_PREDICTIONS rows for ``rows`` of a features table and their scores
    (``macro``: macro-expression scores, None for a model without a macro class;
    ``steps``: (N, T) timestep scores of the extent head, None for a model without one).

    ``fold`` is one name for all rows or a sequence with one per row.
    """
    n = rows.num_rows
    macro_col = (
        pa.nulls(n, pa.float32()) if macro is None else pa.array(np.asarray(macro, np.float32))
    )
    step_col = pa.nulls(n, pa.list_(pa.float32()))
    if steps is not None:
        q = np.asarray(steps, np.float32)
        step_col = pa.FixedSizeListArray.from_arrays(q.ravel(), q.shape[1]).cast(
            pa.list_(pa.float32())
        )
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
                "macro_score": macro_col,
                "step_scores": step_col,
            }
        ),
        WINDOW_PREDICTIONS,
    )


def write_model_rows(store: Store, table_name: str, model_id: str, table: pa.Table) -> str:
    """Write one model's ``predictions`` or ``intervals`` partition (replacing it)."""
    return store.write_parquet(table, table_name, paths.model_partition(model_id), paths.PART)


#: Beside a model's intervals: the thresholds they were spotted at (the leading "_" keeps
#: it out of the table for pyarrow, and out of ``**/*.parquet`` globs).
SPOTTING_FILE = "_spotting.json"
#: What it records: the micro thresholds, and the window-score ones beside them.
SPOTTING_KINDS = ("micro", "window")


def write_spotting(
    store: Store,
    model_id: str,
    thresholds: dict[str, float],
    window_thresholds: dict[str, float] | None = None,
) -> str:
    """Record the micro threshold each subject's intervals of ``model_id`` were spotted at
    (key ``"*"``: every subject) and the window-score one beside it (what the review
    queue's peaks below the threshold are found with: for a model with an extent head,
    micro spots are runs of its profile, on another scale than window scores), beside the
    intervals, for the review page's queue."""

    def clean(d: dict) -> dict[str, float]:
        return {k: float(v) for k, v in d.items() if v is not None and np.isfinite(v)}

    parts = (paths.INTERVALS, paths.model_partition(model_id), SPOTTING_FILE)
    record = {"micro_thresholds": clean(thresholds)}
    record["window_thresholds"] = clean(window_thresholds or {})
    return store.write_json(record, *parts)


def spotting_thresholds(store: Store, model_id: str, kind: str = "micro") -> dict[str, float]:
    """The ``kind`` (``micro`` or ``window``) thresholds :func:`write_spotting` recorded for
    ``model_id`` ({} for intervals written before it was, or before it recorded them)."""
    if kind not in SPOTTING_KINDS:
        raise ValueError(f"kind must be one of {SPOTTING_KINDS}, got {kind!r}")
    parts = (paths.INTERVALS, paths.model_partition(model_id), SPOTTING_FILE)
    if not store.exists(*parts):
        return {}
    found = store.read_json(*parts).get(f"{kind}_thresholds", {})
    return {k: float(v) for k, v in found.items()}


def read_model_rows(store: Store, table_name: str, model_id: str) -> pa.Table:
    """One model's ``predictions`` or ``intervals`` rows."""
    return read_table(store, paths.model_table(table_name, model_id))

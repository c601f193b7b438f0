"""Window scores -> spotted intervals, for a trained model on new videos or LOSO scores.

Writes ``predictions/model=<id>/part-0.parquet`` (schemas.WINDOW_PREDICTIONS) and
``intervals/model=<id>/part-0.parquet`` (schemas.SPOTTED_INTERVALS) to a store. Models are
loaded with cluster.store.models.load_model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from cluster.store import Store, paths
from cluster.store.models import run_model_id
from cluster.store.parquet import (
    read_feature_config,
    read_table,
    window_predictions,
    write_model_rows,
)
from pipeline.core.spotting import refine_spots, spot_intervals
from pipeline.learn.layout import FeatureLayout, window_arrays
from pipeline.learn.lstm import SpotterModel
from schemas import SPOTTED_INTERVALS, conform

Threshold = float | Callable[[np.ndarray], float]


def spot_table(
    predictions: pa.Table, videos: pa.Table, threshold: Threshold, *, refine: bool = False
) -> pa.Table:
    """Greedy NMS per video over window scores; ``threshold`` may depend on the video's scores."""
    fps = {
        (d, s, v): f
        for d, s, v, f in zip(
            *(videos.column(c).to_pylist() for c in ("dataset", "subject", "video", "fps")),
            strict=True,
        )
    }
    rows = []
    keys = ["dataset", "subject", "video"]
    df = predictions.select([*keys, "model_id", "start_frame", "end_frame", "score"]).to_pandas()
    for (dataset, subject, video), g in df.groupby(keys, sort=True):
        g = g.sort_values("start_frame")
        starts, ends = g["start_frame"].to_numpy(), g["end_frame"].to_numpy()
        scores = g["score"].to_numpy(np.float64)
        thr = threshold(scores) if callable(threshold) else threshold
        spots = spot_intervals(starts, ends, scores, thr)
        if refine:
            spots = refine_spots(spots, starts, ends, scores, thr)
        rate = fps[(dataset, subject, video)]
        for sp in spots:
            rows.append(
                {
                    "model_id": g["model_id"].iloc[0],
                    "dataset": dataset,
                    "subject": subject,
                    "video": video,
                    "start_frame": int(sp.start),
                    "end_frame": int(sp.end),
                    "start_s": sp.start / rate,
                    "end_s": sp.end / rate,
                    "score": float(sp.score),
                }
            )
    return conform(rows, SPOTTED_INTERVALS)


def spot_new_videos(
    model: SpotterModel, features: Store, out: Store, threshold: float, refine: bool = False
) -> tuple[pa.Table, pa.Table]:
    """Score every window of ``features`` with ``model``; write predictions and intervals."""
    table = read_table(features, paths.FEATURES)
    layout = FeatureLayout.from_table(
        table, read_feature_config(features), model.layout.with_magnitude
    )
    model_id = run_model_id(model)
    model.layout.check(
        layout, where=f"model {model_id} vs features in {features.uri or features.root}"
    )
    X, _y, rows = window_arrays(table, layout)
    used = table.take(pa.array(rows))
    scores = model.predict(X)
    preds = window_predictions(used, scores, model_id, "none")
    videos = read_table(features, paths.VIDEOS)
    intervals = spot_table(preds, videos, threshold, refine=refine)
    write_model_rows(out, paths.PREDICTIONS, model_id, preds)
    write_model_rows(out, paths.INTERVALS, model_id, intervals)
    return preds, intervals

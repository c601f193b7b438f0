"""Window scores -> spotted intervals, for a trained model on new videos or LOSO scores.

Writes ``predictions/model=<id>/part-0.parquet`` (schemas.WINDOW_PREDICTIONS) and
``intervals/model=<id>/part-0.parquet`` (schemas.SPOTTED_INTERVALS) to a store.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from cluster.store import Store
from cluster.train import read_table, window_predictions
from pipeline.model import FeatureLayout, SpotterModel, window_arrays
from pipeline.spotting import refine_spots, spot_intervals
from schemas import SPOTTED_INTERVALS, conform

Threshold = float | Callable[[np.ndarray], float]
#: The model id of the feature-difference baseline (cluster.evaluate).
BASELINE_ID = "baseline-moilanen"


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


def load_model(uri: str) -> SpotterModel:
    """A saved model folder (local path or fsspec URI) loaded into memory."""
    src = Store.open(uri)
    if not src.exists("model.json"):
        raise FileNotFoundError(f"{uri}: no model.json (a model folder from `mespot train`)")
    with tempfile.TemporaryDirectory() as d:
        for name in ("model.json", "model.keras"):
            src.fs.get_file(src.path(name), str(Path(d) / name))
        return SpotterModel.load(Path(d))


def spot_new_videos(
    model: SpotterModel, features: Store, out: Store, threshold: float, refine: bool = False
) -> tuple[pa.Table, pa.Table]:
    """Score every window of ``features`` with ``model``; write predictions and intervals."""
    table = read_table(features, "features")
    layout = FeatureLayout.from_table(
        table, features.read_json("feature_config.json"), model.layout.with_magnitude
    )
    model.layout.check(
        layout, where=f"model {model.model_id} vs features in {features.uri or features.root}"
    )
    X, _y, rows = window_arrays(table, layout)
    used = table.take(pa.array(rows))
    scores = model.predict(X)
    preds = window_predictions(used, scores, model.model_id, "none")
    intervals = spot_table(preds, read_table(features, "videos"), threshold, refine=refine)
    part = f"model={model.model_id}"
    out.write_parquet(preds, "predictions", part, "part-0.parquet")
    out.write_parquet(intervals, "intervals", part, "part-0.parquet")
    return preds, intervals


def intervals_model_id(store: Store, model_id: str | None = None) -> str:
    """``model_id`` if it has spotted intervals, else the store's only non-baseline one.

    (The baseline's intervals are chosen only by name, or when they are all there is.)
    """
    found = sorted({p.rsplit("model=", 1)[1].split("/")[0] for p in store.find("intervals")})
    where = store.uri or store.root
    if model_id is not None:
        if model_id not in found:
            raise FileNotFoundError(
                f"store {where} has no intervals of model {model_id!r} (it has {found or 'none'})"
            )
        return model_id
    ids = [m for m in found if m != BASELINE_ID] or found
    if not ids:
        raise FileNotFoundError(
            f"store {where} has no spotted intervals: run `mespot spot` or `mespot evaluate`"
        )
    if len(ids) > 1:
        raise ValueError(
            f"store {where} holds intervals of several models {ids}: choose one with --model-id"
        )
    return ids[0]

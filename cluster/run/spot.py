"""Window scores -> spotted intervals, for a trained model on new videos or LOSO scores.

Writes ``predictions/model=<id>/part-0.parquet`` (schemas.WINDOW_PREDICTIONS) and
``intervals/model=<id>/part-0.parquet`` (schemas.SPOTTED_INTERVALS) to a store. Models are
loaded with cluster.store.models.load_model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cluster.store import Store, paths
from cluster.store.models import run_model_id
from cluster.store.parquet import (
    read_feature_config,
    read_table,
    window_predictions,
    write_model_rows,
)
from pipeline.core.extents import ExtentRule, fit_extents, frame_profile
from pipeline.core.intervals import Spot
from pipeline.core.spotting import merge_detections, spot_intervals
from pipeline.core.thresholds import ScoredVideo, best_threshold, pooled_counts
from pipeline.learn.layout import FeatureLayout, window_arrays
from pipeline.learn.lstm import SpotterModel
from schemas import SPOTTED_INTERVALS, conform

Threshold = float | Callable[[np.ndarray], float]
#: How micro spots are fitted to the extent head's timestep scores, where a model has one.
EXTENTS = ExtentRule()


def frame_seconds(features: pa.Table) -> dict[tuple, tuple[np.ndarray, np.ndarray]]:
    """Per video, (frames, seconds) of its windows' first and last frames, from a features
    table: the frames' own times, which a variable-rate video's mean fps would not give."""
    cols = ("dataset", "subject", "video", "start_frame", "end_frame", "start_s", "end_s")
    pairs: dict[tuple, dict[int, float]] = {}
    for r in features.select(list(cols)).to_pylist():
        known = pairs.setdefault((r["dataset"], r["subject"], r["video"]), {})
        known[r["start_frame"]], known[r["end_frame"]] = r["start_s"], r["end_s"]
    out = {}
    for key, known in pairs.items():
        frames = np.asarray(sorted(known), dtype=np.float64)
        out[key] = (frames, np.asarray([known[int(f)] for f in frames]))
    return out


def spot_table(
    predictions: pa.Table,
    videos: pa.Table,
    threshold: Threshold,
    *,
    seconds: dict[tuple, tuple[np.ndarray, np.ndarray]] | None = None,
    extents: ExtentRule | None = EXTENTS,
) -> pa.Table:
    """Spotted intervals per video: micro-movements by greedy NMS over window scores (kind
    "micro"), and, where the predictions carry macro scores, macro-expressions as runs of
    overlapping windows at or above the threshold (kind "macro",
    pipeline.core.spotting.merge_detections). ``threshold`` may depend on the video's
    scores (micro ones; macro runs use the same value).

    Where the predictions carry timestep scores (a model with an extent head), each micro
    spot is refitted to its movement's onset and offset by ``extents``
    (pipeline.core.extents); ``extents=None`` keeps window-long spots.

    Seconds of a spot are frame / fps, or, for videos in ``seconds`` (``frame_seconds``),
    its frames' times."""
    cols = ("dataset", "subject", "video", "fps")
    fps = {
        (d, s, v): f
        for d, s, v, f in zip(*(videos.column(c).to_pylist() for c in cols), strict=True)
    }
    rows = []
    keys = ["dataset", "subject", "video"]
    cols = [*keys, "model_id", "start_frame", "end_frame", "score", "macro_score"]
    with_steps = "step_scores" in predictions.column_names
    df = predictions.select(cols + ["step_scores"] * with_steps).to_pandas()
    for (dataset, subject, video), g in df.groupby(keys, sort=True):
        g = g.sort_values("start_frame")
        rate = fps[(dataset, subject, video)]
        kinds = _video_spots(g, threshold, rate, extents if with_steps else None)
        known = (seconds or {}).get((dataset, subject, video))

        def at(frame: int, known=known, rate=rate) -> float:
            return frame / rate if known is None else float(np.interp(frame, *known))

        for kind, sp in kinds:
            rows.append(
                {
                    "model_id": g["model_id"].iloc[0],
                    "dataset": dataset,
                    "subject": subject,
                    "video": video,
                    "start_frame": int(sp.start),
                    "end_frame": int(sp.end),
                    "start_s": at(sp.start),
                    "end_s": at(sp.end),
                    "score": float(sp.score),
                    "kind": kind,
                }
            )
    return conform(rows, SPOTTED_INTERVALS)


def _video_spots(
    g, threshold: Threshold, fps: float, extents: ExtentRule | None
) -> list[tuple[str, Spot]]:
    """One video's (kind, spot) pairs from its windows' predictions ``g`` (a DataFrame in
    window order), see ``spot_table``."""
    starts, ends = g["start_frame"].to_numpy(), g["end_frame"].to_numpy()
    scores = g["score"].to_numpy(np.float64)
    thr = threshold(scores) if callable(threshold) else threshold
    spots = spot_intervals(starts, ends, scores, thr)
    steps = g["step_scores"].to_list() if extents is not None else []
    if spots and steps and all(q is not None for q in steps):
        # frames past the last window are in none: the profile ends with it
        profile = frame_profile(starts, ends, np.stack(steps), int(ends.max()) + 1)
        spots = fit_extents(spots, profile, extents, fps)
    kinds = [("micro", sp) for sp in spots]
    macro = g["macro_score"].to_numpy(np.float64)
    if not np.isnan(macro).any():
        kinds += [("macro", sp) for sp in merge_detections(starts, ends, macro, thr)]
    return kinds


def scored_videos(predictions: pa.Table, truth: dict) -> dict[tuple, ScoredVideo]:
    """Each video's windows in order, their micro scores and its ground truth (``truth``:
    (dataset, subject, video) -> intervals), from a ``window_predictions`` table."""
    keys = ["dataset", "subject", "video"]
    df = predictions.select([*keys, "start_frame", "end_frame", "score"]).to_pandas()
    return {
        key: ScoredVideo(
            g["start_frame"].to_numpy(), g["end_frame"].to_numpy(),
            g["score"].to_numpy(np.float64), truth.get(key, []),
        )
        for key, g in df.sort_values("start_frame").groupby(keys, sort=True)
    }  # fmt: skip


def chosen_threshold(predictions: pa.Table, truth: dict) -> dict | None:
    """The micro threshold with the best pooled F1 (coverage rule, greedy NMS) on the
    out-of-fold ``predictions`` of the videos with ground truth (labelled windows), as
    ``{"threshold", "f1", "videos", "subjects", "movements", "chosen_on"}``; None when
    those videos hold no micro-movement or none is found at any threshold (nothing to
    choose by).
    """
    labelled = predictions.filter(pc.is_valid(predictions.column("label")))
    scored = scored_videos(labelled, truth)
    videos = list(scored.values())
    movements = sum(len(v.truth) for v in videos)
    if not movements:
        return None
    thr = round(best_threshold(videos), 6)
    f1 = pooled_counts(videos, thr).f1
    if f1 == 0:
        return None
    return {
        "threshold": thr,
        "f1": round(f1, 4),
        "videos": len(videos),
        "subjects": len({key[:2] for key in scored}),
        "movements": movements,
        "chosen_on": "out-of-fold micro scores of the training subjects (best pooled "
        "coverage-rule F1 under greedy NMS)",
    }


def chosen_intervals(
    predictions: pa.Table, videos: pa.Table, truth: dict, extents: ExtentRule | None = EXTENTS
) -> tuple[pa.Table, dict[str, float]]:
    """Held-out scores spotted with, for each subject, the one threshold that is best
    (pooled coverage-rule F1, window-long spots) on the other subjects' videos: no
    subject's own labels choose its threshold. Returns the intervals (``spot_table``, with
    ``extents``) and each subject's threshold."""
    scored = scored_videos(predictions, truth)
    parts, chosen = [], {}
    for person in sorted({(d, s) for d, s, _ in scored}):
        others = [v for (d, s, _), v in scored.items() if (d, s) != person]
        mine = pc.and_(
            pc.equal(predictions.column("dataset"), person[0]),
            pc.equal(predictions.column("subject"), person[1]),
        )
        thr = best_threshold(others) if others else float("inf")
        chosen[person[1]] = thr
        parts.append(spot_table(predictions.filter(mine), videos, thr, extents=extents))
    if not parts:
        return spot_table(predictions, videos, float("inf"), extents=extents), chosen
    return pa.concat_tables(parts), chosen


def spot_new_videos(
    model: SpotterModel,
    features: Store,
    out: Store,
    threshold: float,
    extents: ExtentRule | None = EXTENTS,
) -> tuple[pa.Table, pa.Table]:
    """Score every window of ``features`` with ``model``; write predictions and intervals
    (micro spots fitted by ``extents`` where the model has an extent head)."""
    table = read_table(features, paths.FEATURES)
    layout = FeatureLayout.from_table(
        table, read_feature_config(features), model.layout.with_magnitude, model.layout.cell_norm
    )
    model_id = run_model_id(model)
    model.layout.check(
        layout, where=f"model {model_id} vs features in {features.uri or features.root}"
    )
    X, _y, rows = window_arrays(table, layout)
    used = table.take(pa.array(rows))
    scores, macro = model.predict_kinds(X)
    preds = window_predictions(used, scores, model_id, "none", macro, model.predict_steps(X))
    videos = read_table(features, paths.VIDEOS)
    variable = videos.filter(pc.equal(videos.column("variable_rate"), True))
    timed = None
    if variable.num_rows:  # their spots' seconds from the frames' own times
        cols = (variable.column(c).to_pylist() for c in ("dataset", "subject", "video"))
        keys = set(zip(*cols, strict=True))
        timed = {k: v for k, v in frame_seconds(used).items() if k in keys}
    intervals = spot_table(preds, videos, threshold, seconds=timed, extents=extents)
    write_model_rows(out, paths.PREDICTIONS, model_id, preds)
    write_model_rows(out, paths.INTERVALS, model_id, intervals)
    return preds, intervals

"""Window scores -> spotted intervals, for a trained model on new videos or LOSO scores.

Micro spots: for a model with an extent head (its predictions carry timestep scores), the
runs of its per-frame profile at or above the micro threshold
(pipeline.core.extents.profile_spots); otherwise, or with ``extents=None`` (window-long
spots, ``--window-spots``), the windows greedy NMS keeps (pipeline.core.spotting). Macro
spots: runs of windows whose macro score passes the window threshold.

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
    write_spotting,
)
from pipeline.core.extents import EXTENTS, ExtentRule, frame_profile
from pipeline.core.spotting import merge_detections, within_budget
from pipeline.core.thresholds import ScoredVideo, best_threshold, pooled_counts
from pipeline.learn.layout import FeatureLayout, window_arrays
from pipeline.learn.lstm import SpotterModel
from schemas import SPOTTED_INTERVALS, conform

Threshold = float | Callable[[np.ndarray], float]
_KEYS = ["dataset", "subject", "video"]


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
    macro_threshold: float | None = None,
    seconds: dict[tuple, tuple[np.ndarray, np.ndarray]] | None = None,
    extents: ExtentRule | None = EXTENTS,
    budget: float | None = None,
) -> pa.Table:
    """Spotted intervals per video (see the module doc): micro spots at ``threshold``, on
    the profile where the predictions carry timestep scores and ``extents`` is given, else
    on window scores (greedy NMS); where the predictions carry macro scores, macro spots as
    runs of windows at or above ``macro_threshold`` (``threshold`` when None). A callable
    ``threshold`` gets the values it is compared with (profile frames or window scores).

    ``budget`` (a fraction of each video's frames): only the best micro spots that fit in
    it (pipeline.core.spotting.within_budget), profile runs longer than ``extents.max_s``
    split first (pipeline.core.extents.split_spot). Seconds of a spot are frame / fps, or, for
    videos in ``seconds`` (``frame_seconds``), its frames' times."""
    keys = list(zip(*(videos.column(c).to_pylist() for c in _KEYS), strict=True))
    fps = dict(zip(keys, videos.column("fps").to_pylist(), strict=True))
    if budget is not None:
        n_frames = dict(zip(keys, videos.column("n_frames").to_pylist(), strict=True))
    rows = []
    for key, g in _video_frames(predictions):
        video = _scored(g, [], fps[key], extents)
        thr = threshold(video.values()) if callable(threshold) else threshold
        micro = video.spots(thr, extents or EXTENTS, split=budget is not None)
        if budget is not None:
            micro = within_budget(micro, n_frames[key], budget)
        kinds = [("micro", sp) for sp in micro]
        macro = g["macro_score"].to_numpy(np.float64)
        if not np.isnan(macro).any():
            m_thr = thr if macro_threshold is None else macro_threshold
            kinds += [
                ("macro", sp) for sp in merge_detections(video.starts, video.ends, macro, m_thr)
            ]
        known = (seconds or {}).get(key)

        def at(frame: int, known=known, rate=fps[key]) -> float:
            return frame / rate if known is None else float(np.interp(frame, *known))

        for kind, sp in kinds:
            rows.append(
                {
                    "model_id": g["model_id"].iloc[0],
                    **dict(zip(_KEYS, key, strict=True)),
                    "start_frame": int(sp.start),
                    "end_frame": int(sp.end),
                    "start_s": at(sp.start),
                    "end_s": at(sp.end),
                    "score": float(sp.score),
                    "kind": kind,
                }
            )
    return conform(rows, SPOTTED_INTERVALS)


def _video_frames(predictions: pa.Table):
    """(video key, its predictions as a DataFrame in window order) for each video."""
    cols = [*_KEYS, "model_id", "start_frame", "end_frame", "score", "macro_score"]
    if "step_scores" in predictions.column_names:  # absent in predictions of older models
        cols.append("step_scores")
    df = predictions.select(cols).to_pandas()
    for key, g in df.groupby(_KEYS, sort=True):
        yield tuple(key), g.sort_values("start_frame")


def _scored(g, truth: list, fps: float, extents: ExtentRule | None) -> ScoredVideo:
    """One video's ScoredVideo: with its profile when it has timestep scores and
    ``extents`` is given (spotted by profile runs), else windows only (greedy NMS)."""
    starts, ends = g["start_frame"].to_numpy(), g["end_frame"].to_numpy()
    scores = g["score"].to_numpy(np.float64)
    steps = g["step_scores"].to_list() if "step_scores" in g and extents is not None else []
    if not steps or any(q is None for q in steps):
        return ScoredVideo(starts, ends, scores, truth)
    # frames past the last window are in none: the profile ends with it
    profile = frame_profile(starts, ends, np.stack(steps), int(ends.max()) + 1)
    return ScoredVideo(starts, ends, scores, truth, profile, fps)


def scored_videos(
    predictions: pa.Table, truth: dict, videos: pa.Table | None = None, extents=EXTENTS
) -> dict[tuple, ScoredVideo]:
    """Each video's windows in order, their micro scores and its ground truth (``truth``:
    (dataset, subject, video) -> intervals), from a ``window_predictions`` table; with
    ``videos`` (for their fps) and ``extents``, their profiles too, where the
    predictions carry timestep scores."""
    fps = {}
    if videos is not None:
        cols = (videos.column(c).to_pylist() for c in (*_KEYS, "fps"))
        fps = {(d, s, v): f for d, s, v, f in zip(*cols, strict=True)}
    return {
        key: _scored(g, truth.get(key, []), fps.get(key, 0.0), extents if key in fps else None)
        for key, g in _video_frames(predictions)
    }


def _choose(scored: list[ScoredVideo]) -> tuple[float, float] | None:
    """(threshold, pooled coverage-rule F1) of the best threshold on ``scored``."""
    if not scored or not sum(len(v.truth) for v in scored):
        return None
    # 6 decimals, rounded down: rounded up, it could pass over the very score it chose
    thr = float(np.floor(best_threshold(scored) * 1e6) / 1e6)
    return thr, pooled_counts(scored, thr).f1


def _windows_only(scored: dict) -> list[ScoredVideo]:
    return [ScoredVideo(v.starts, v.ends, v.scores, v.truth) for v in scored.values()]


def chosen_threshold(predictions: pa.Table, truth: dict, videos: pa.Table | None = None):
    """The micro threshold with the best pooled F1 (coverage rule) on the out-of-fold
    ``predictions`` of the videos with ground truth (labelled windows): on the profile
    runs where the predictions carry timestep scores (``videos`` gives their fps), else on
    greedy NMS over windows. Returns ``{"threshold", "window_threshold", "spots", "f1",
    "videos", "subjects", "movements", "chosen_on"}`` (``window_threshold``: the same
    choice on window scores, for macro runs and window-long spots), or None when those
    videos hold no micro-movement or none is found at any threshold.
    """
    labelled = predictions.filter(pc.is_valid(predictions.column("label")))
    scored = scored_videos(labelled, truth, videos)
    windows = _choose(_windows_only(scored))
    if windows is None:
        return None
    on_profile = any(v.profile is not None for v in scored.values())
    thr, f1 = _choose(list(scored.values())) if on_profile else windows
    if f1 == 0:
        return None
    how = "runs of the extent head's profile" if on_profile else "greedy NMS over windows"
    return {
        "threshold": thr,
        "window_threshold": windows[0],
        "spots": "profile" if on_profile else "windows",
        "f1": round(f1, 4),
        "videos": len(scored),
        "subjects": len({key[:2] for key in scored}),
        "movements": sum(len(v.truth) for v in scored.values()),
        "chosen_on": f"out-of-fold micro scores of the training subjects (best pooled "
        f"coverage-rule F1, micro spots by {how})",
    }


def chosen_intervals(
    predictions: pa.Table,
    videos: pa.Table,
    truth: dict,
    extents: ExtentRule | None = EXTENTS,
    threshold: float | None = None,
    budget: float | None = None,
) -> tuple[pa.Table, dict[str, float], dict[str, float]]:
    """Held-out scores spotted with, for each subject, the thresholds that are best
    (pooled coverage-rule F1) on the other subjects' videos, so that no subject's own
    labels choose them: the micro one on what its spots are made from (profile runs with
    ``extents`` and timestep scores, else windows), the window one for macro runs.
    ``threshold``: this micro threshold for every subject instead; ``budget``: as for
    ``spot_table``. Returns the intervals, each subject's micro threshold and each
    subject's window threshold."""
    scored = scored_videos(predictions, truth, videos, extents)
    parts, chosen, windows = [], {}, {}
    for person in sorted({(d, s) for d, s, _ in scored}):
        others = {k: v for k, v in scored.items() if k[:2] != person}
        mine = pc.and_(
            pc.equal(predictions.column("dataset"), person[0]),
            pc.equal(predictions.column("subject"), person[1]),
        )
        window = best_threshold(_windows_only(others)) if others else float("inf")
        on_profile = any(v.profile is not None for v in others.values())
        micro = best_threshold(list(others.values())) if on_profile else window
        chosen[person[1]] = micro if threshold is None else threshold
        windows[person[1]] = window
        parts.append(
            spot_table(
                predictions.filter(mine), videos, chosen[person[1]], macro_threshold=window,
                extents=extents, budget=budget,
            )
        )  # fmt: skip
    if not parts:
        return spot_table(predictions, videos, float("inf"), extents=extents), chosen, windows
    return pa.concat_tables(parts), chosen, windows


def spot_new_videos(
    model: SpotterModel,
    features: Store,
    out: Store,
    threshold: float,
    extents: ExtentRule | None = EXTENTS,
    budget: float | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Score every window of ``features`` with ``model``; write predictions and intervals
    (micro spots at ``threshold``: profile runs by ``extents`` where the model has an
    extent head, the best that fit in ``budget`` of each video when given; macro runs at
    the model's window threshold)."""
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
    intervals = spot_table(
        preds, videos, threshold, macro_threshold=model.window_threshold, seconds=timed,
        extents=extents, budget=budget,
    )  # fmt: skip
    write_model_rows(out, paths.PREDICTIONS, model_id, preds)
    write_model_rows(out, paths.INTERVALS, model_id, intervals)
    write_spotting(out, model_id, {"*": threshold}, {"*": model.window_threshold})
    return preds, intervals

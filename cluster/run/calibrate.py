"""A trained model's spotting threshold from its LOSO held-out scores
(pipeline.core.calibration), saved beside each of its model folders as ``spotting.json``;
``mespot spot`` uses it unless given ``--threshold``."""

from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np
import pyarrow as pa

from cluster.store import paths
from cluster.store.parquet import read_table
from cluster.store.store import Store
from pipeline.core.calibration import Calibration, HeldOut, calibrate
from pipeline.core.intervals import Interval

log = logging.getLogger(__name__)

SPOTTING_FILE = "spotting.json"
#: The threshold when a model folder has no spotting.json (models of older mespots).
DEFAULT_THRESHOLD = 0.5
#: Spots a quiet minute the calibrated threshold allows.
QUIET_PER_MINUTE = 1.0


def held_out(store: Store, predictions: pa.Table) -> list[HeldOut]:
    """The held-out videos of ``predictions`` with every annotated movement (any kind)."""
    moves: dict[tuple, list[Interval]] = defaultdict(list)
    if store.exists(paths.ANNOTATIONS):
        for a in read_table(store, paths.ANNOTATIONS).to_pylist():
            key = (a["dataset"], a["subject"], a["video"])
            moves[key].append(Interval(a["onset_frame"], a["offset_frame"]))
    videos = {
        (v["dataset"], v["subject"], v["video"]): v
        for v in read_table(store, paths.VIDEOS).to_pylist()
    }
    cols = ("dataset", "subject", "video", "start_frame", "end_frame", "score", "label")
    rows = defaultdict(list)
    for r in predictions.select(list(cols)).to_pylist():
        if r["label"] is not None:  # videos with ground truth only: quiet must be known
            rows[(r["dataset"], r["subject"], r["video"])].append(r)
    out = []
    for key, rs in rows.items():
        a = np.asarray([(r["start_frame"], r["end_frame"], r["score"]) for r in rs])
        v = videos[key]
        out.append(
            HeldOut(
                a[:, 0].astype(int),
                a[:, 1].astype(int),
                a[:, 2],
                moves[key],
                v["n_frames"],
                v["fps"],
            )
        )
    return out


def calibrate_model(
    store: Store, model_id: str, predictions: pa.Table, folds: list[str | None]
) -> Calibration | None:
    """Choose and save the model's threshold; None (and 0.5 stays) when there is nothing
    quiet to calibrate on."""
    try:
        c = calibrate(held_out(store, predictions), per_minute=QUIET_PER_MINUTE)
    except ValueError as e:
        log.warning("model %s: spotting threshold left at %s: %s", model_id, DEFAULT_THRESHOLD, e)
        return None
    for fold in folds:
        store.write_json(c.to_dict(), *paths.model_folder(model_id, fold), SPOTTING_FILE)
    return c


def model_threshold(model_uri: str) -> tuple[float, str]:
    """(threshold, where it comes from) for the model folder at ``model_uri``."""
    folder = Store.open(model_uri)
    if not folder.exists(SPOTTING_FILE):
        return DEFAULT_THRESHOLD, "the default (the model folder has no spotting.json)"
    c = folder.read_json(SPOTTING_FILE)
    why = (
        f"the model's: {c['spots_per_minute']:.2f} spots per quiet minute on held-out "
        f"footage, {c['quiet_minutes']:.1f} min"
    )
    return float(c["threshold"]), why

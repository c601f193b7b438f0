"""Spot and evaluate a store's LOSO scores beside the feature-difference baseline.

For the LSTM (held-out LOSO scores from ``mespot train``) and for the Moilanen-style
baseline (chi-squared feature difference, per-video threshold), windows are turned into
spotted intervals the same way (greedy NMS; a model with a macro class also spots
macro-expressions, cluster.run.spot) and scored under both true-positive rules
(pipeline.core.metrics), per kind: micro spots against micro ground truth, macro against
macro, and MEGC's overall (the two summed). Writes::

    predictions/model=baseline-moilanen/part-0.parquet
    intervals/model=<id>/part-0.parquet, intervals/model=baseline-moilanen/part-0.parquet
    reports/<id>[+<settings>]/report.md, report.json, roc.png   (see report_folder)
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cluster.run.spot import EXTENTS, chosen_intervals, spot_table
from cluster.run.training_data import ground_truth, load_dataset
from cluster.store import paths
from cluster.store.models import trained_model_id
from cluster.store.parquet import (
    read_model_rows,
    read_table,
    window_predictions,
    write_model_rows,
    write_spotting,
)
from cluster.store.store import Store
from pipeline.core.curves import plot_roc, roc
from pipeline.core.intervals import Spot
from pipeline.core.metrics import Report, VideoResult, evaluate_kinds
from pipeline.core.spotting import review_threshold
from pipeline.learn.baseline import feature_difference, moilanen_threshold

#: Kinds of movement spotted and scored, in report order (then pipeline.core.metrics.OVERALL).
KINDS = ("micro", "macro")


@dataclass
class Evaluation:
    model_id: str
    reports: dict[str, dict[str, Report]]  # method -> kind (micro, macro, overall) -> Report
    aucs: dict[str, float | None]  # method -> window AUC of micro scores
    paths: dict[str, str]

    def summary_lines(self) -> list[str]:
        out = [
            "| method | kind | rule | TP | FP | FN | recall | precision | F1 | footage kept "
            "| AUC |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for method, by_kind in self.reports.items():
            auc = self.aucs.get(method)
            for kind, rep in by_kind.items():
                d = rep.to_dict()
                for rule, c in d["rules"].items():
                    out.append(
                        f"| {method} | {kind} | {rule} | {c['tp']} | {c['fp']} | {c['fn']} | "
                        f"{c['recall']:.3f} | {c['precision']:.3f} | {c['f1']:.3f} | "
                        f"{d['footage_fraction']:.3f} | "
                        f"{'-' if auc is None or kind != 'micro' else f'{auc:.3f}'} |"
                    )
        return out


def baseline_predictions(store: Store) -> pa.Table:
    data = load_dataset(store, with_magnitude=True)
    scores, rows = feature_difference(data.table, data.layout, normalised=data.config.normalise)
    used = data.table.take(pa.array(rows))
    return window_predictions(used, scores, paths.BASELINE_ID, "none")


def baseline_intervals(
    base: pa.Table, videos: pa.Table, truth: dict, baseline_p: float | None
) -> tuple[pa.Table, dict[str, float]]:
    """The baseline's spotted intervals: with ``baseline_p``, Moilanen's per-video
    threshold; by default, for each held-out subject one threshold chosen on the other
    subjects' videos (cluster.run.spot.chosen_intervals), as the LSTM's are. Returns the
    intervals and the threshold of each subject (empty with ``baseline_p``)."""
    if baseline_p is not None:
        return spot_table(base, videos, lambda s: moilanen_threshold(s, baseline_p)), {}
    return chosen_intervals(base, videos, truth)[:2]


def video_results(
    intervals: pa.Table, videos: pa.Table, truth: dict, keep: set, kind: str = "micro"
) -> list[VideoResult]:
    """Each kept video's spotted intervals of ``kind`` and ground truth, as
    metrics.evaluate takes them."""
    spots: dict[tuple, list[Spot]] = {}
    for r in intervals.filter(pc.equal(intervals.column("kind"), kind)).to_pylist():
        spots.setdefault((r["dataset"], r["subject"], r["video"]), []).append(
            Spot(r["start_frame"], r["end_frame"], r["score"])
        )
    out = []
    for v in videos.to_pylist():
        key = (v["dataset"], v["subject"], v["video"])
        if key not in keep:
            continue
        out.append(
            VideoResult(
                *key, v["n_frames"], v["fps"], sorted(spots.get(key, [])), truth.get(key, [])
            )
        )
    return out


def evaluate_store(
    store: Store,
    model_id: str | None = None,
    *,
    threshold: float | None = None,
    baseline_p: float | None = None,
    label_kinds: tuple[str, ...] = ("micro",),
    window_spots: bool = False,
    budget: float | None = None,
) -> Evaluation:
    """Spot and score the LSTM's held-out predictions and the baseline; write the report.

    ``threshold`` None: each held-out subject is spotted at the threshold that is best on
    the other subjects' held-out scores (as ``mespot train`` chooses the final model's on
    all of them); a number: that threshold for every subject. ``window_spots``: keep
    window-long micro spots even where the model has an extent head. ``budget``: keep
    only the best LSTM micro spots that fit in that fraction of each video, drawn down to
    ``threshold`` or, by default, pipeline.core.spotting.REVIEW_FLOOR."""
    store.check_writable()  # intervals and the report go here: fail before any work
    spot_at = review_threshold(threshold, budget)  # a budget draws from a floor
    model_id = model_id or trained_model_id(store)
    preds = read_model_rows(store, paths.PREDICTIONS, model_id)
    if preds.num_rows == 0:
        raise ValueError(f"model {model_id} has no held-out predictions in {store.uri}")
    videos = read_table(store, paths.VIDEOS)
    truths = {"micro": ground_truth(store, label_kinds), "macro": ground_truth(store, ("macro",))}
    keep = set(
        zip(*(preds.column(c).to_pylist() for c in ("dataset", "subject", "video")), strict=True)
    )
    base = baseline_predictions(store)
    base = base.filter(pc.is_in(base.column("subject"), pa.array(sorted({k[1] for k in keep}))))
    write_model_rows(store, paths.PREDICTIONS, paths.BASELINE_ID, base)
    base_intervals, base_thresholds = baseline_intervals(base, videos, truths["micro"], baseline_p)
    rule = None if window_spots else EXTENTS
    lstm_intervals, lstm_thresholds, window_thresholds = chosen_intervals(
        preds, videos, truths["micro"], rule, spot_at, budget
    )
    methods = {
        f"LSTM ({model_id})": (preds, lstm_intervals, model_id),
        "baseline (feature difference)": (base, base_intervals, paths.BASELINE_ID),
    }
    reports, aucs, curves = {}, {}, {}
    write_spotting(store, model_id, lstm_thresholds, window_thresholds)  # baseline's: per video
    for name, (p, intervals, mid) in methods.items():
        write_model_rows(store, paths.INTERVALS, mid, intervals)
        spotted = [k for k in KINDS if k == "micro" or p.column("macro_score").null_count == 0]
        reports[name] = evaluate_kinds(
            {k: video_results(intervals, videos, truths[k], keep, k) for k in spotted}
        )
        labelled = p.filter(pc.is_valid(p.column("label")))
        fpr, tpr, auc = roc(
            labelled.column("score").to_numpy(),
            np.asarray(labelled.column("label").to_pylist(), bool),
        )
        aucs[name] = auc
        curves[name] = (fpr, tpr, auc)
    setting = (
        f"LSTM threshold {_thresholds(spot_at, lstm_thresholds)}; baseline threshold "
        + (
            f"mean + {baseline_p} x (max - mean) per video"
            if baseline_p is not None
            else _thresholds(None, base_thresholds)
        )
        + f"; ground truth: {', '.join(label_kinds)} movements (micro), macro-expressions "
        f"(macro); LSTM micro spots: {_spot_extent(preds, window_spots)}"
        + (f", the best within {budget:g} of each video." if budget is not None else ".")
    )
    ev = Evaluation(model_id, reports, aucs, {})
    folder = report_folder(model_id, threshold, baseline_p, label_kinds, window_spots, budget)
    ev.paths = _write_report(store, ev, setting, curves, folder)
    return ev


def _spot_extent(preds: pa.Table, window_spots: bool) -> str:
    steps = preds.column("step_scores") if "step_scores" in preds.column_names else None
    if window_spots or steps is None or steps.null_count == preds.num_rows:
        return "window-long (greedy NMS)"
    return "runs of the extent head's profile"


def _thresholds(fixed: float | None, chosen: dict[str, float]) -> str:
    if fixed is not None:
        return (
            f"{fixed:g} (micro; macro runs at each subject's window threshold, chosen on "
            "the others)"
        )
    each = ", ".join(f"{s}: {t:.3g}" for s, t in chosen.items())
    return f"chosen per held-out subject on the other subjects ({each})"


def report_folder(
    model_id: str,
    threshold: float | None,
    baseline_p: float | None,
    kinds: tuple[str, ...],
    window_spots: bool = False,
    budget: float | None = None,
) -> str:
    """Where an evaluation's report goes: ``<model id>`` with the default settings, else
    ``<model id>+<setting>...`` (e.g. ``lstm-1a2b+threshold-0.3``), so that
    evaluations of one model with other settings keep their own reports."""
    name = model_id
    if threshold is not None:
        name += f"+threshold-{threshold:g}"
    if baseline_p is not None:
        name += f"+baseline_p-{baseline_p:g}"
    if tuple(kinds) != ("micro",):
        name += "+kinds-" + "-".join(kinds)
    if window_spots:
        name += "+window-spots"
    if budget is not None:
        name += f"+budget-{budget:g}"
    return name


def _write_report(
    store: Store, ev: Evaluation, setting: str, curves: dict, name: str
) -> dict[str, str]:
    """``reports/<name>/``: report.md, report.json and roc.png."""
    folder = [paths.REPORTS, name]
    md = [f"# mespot evaluation: {ev.model_id}", "", setting, ""]
    md += ev.summary_lines()
    for name, by_kind in ev.reports.items():
        for kind, rep in by_kind.items():
            md += ["", "#" + rep.to_markdown(f"{name}, {kind}")]  # its "# title" one level down
    report = {"model_id": ev.model_id, "auc": ev.aucs}
    report |= {n: {k: r.to_dict() for k, r in by.items()} for n, by in ev.reports.items()}
    out = {
        "markdown": store.write_text("\n".join(md) + "\n", *folder, "report.md"),
        "json": store.write_text(json.dumps(report, indent=2) + "\n", *folder, "report.json"),
    }
    with tempfile.TemporaryDirectory() as d:
        png = Path(d) / "roc.png"
        plot_roc(curves, png)
        out["roc"] = store.put_atomic(png.read_bytes(), *folder, "roc.png")
    return out

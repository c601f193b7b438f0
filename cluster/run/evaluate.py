"""Spot and evaluate a store's LOSO scores beside the feature-difference baseline.

For the LSTM (held-out LOSO scores from ``mespot train``) and for the Moilanen-style
baseline (chi-squared feature difference, per-video threshold), windows are turned into
spotted intervals the same way (greedy NMS) and scored under both true-positive rules
(pipeline.core.metrics). Writes::

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

from cluster.run.spot import spot_table
from cluster.run.training_data import load_dataset
from cluster.store import paths
from cluster.store.models import trained_model_id
from cluster.store.parquet import read_model_rows, read_table, window_predictions, write_model_rows
from cluster.store.store import Store
from pipeline.core.intervals import Interval, Spot
from pipeline.core.metrics import VideoResult, evaluate, plot_roc, roc
from pipeline.learn.baseline import feature_difference, moilanen_threshold


@dataclass
class Evaluation:
    model_id: str
    reports: dict  # method -> Report
    aucs: dict[str, float | None]
    paths: dict[str, str]

    def summary_lines(self) -> list[str]:
        out = ["| method | rule | TP | FP | FN | recall | precision | F1 | footage kept | AUC |"]
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for method, rep in self.reports.items():
            d = rep.to_dict()
            auc = self.aucs.get(method)
            for rule, c in d["rules"].items():
                out.append(
                    f"| {method} | {rule} | {c['tp']} | {c['fp']} | {c['fn']} | "
                    f"{c['recall']:.3f} | {c['precision']:.3f} | {c['f1']:.3f} | "
                    f"{d['footage_fraction']:.3f} | {'-' if auc is None else f'{auc:.3f}'} |"
                )
        return out


def ground_truth(store: Store, kinds: tuple[str, ...]) -> dict[tuple, list[Interval]]:
    """Each video's ground-truth intervals of ``kinds`` (e.g. ("micro",))."""
    ann = read_table(store, paths.ANNOTATIONS)
    ann = ann.filter(pc.is_in(ann.column("kind"), pa.array(list(kinds))))
    truth: dict[tuple, list[Interval]] = {}
    for a in ann.to_pylist():
        truth.setdefault((a["dataset"], a["subject"], a["video"]), []).append(
            Interval(a["onset_frame"], a["offset_frame"])
        )
    return truth


def baseline_predictions(store: Store) -> pa.Table:
    data = load_dataset(store, with_magnitude=True)
    scores, rows = feature_difference(data.table, data.layout, normalised=data.config.normalise)
    used = data.table.take(pa.array(rows))
    return window_predictions(used, scores, paths.BASELINE_ID, "none")


def video_results(
    intervals: pa.Table, videos: pa.Table, truth: dict, keep: set
) -> list[VideoResult]:
    """Each kept video's spotted intervals and ground truth, as metrics.evaluate takes them."""
    spots: dict[tuple, list[Spot]] = {}
    for r in intervals.to_pylist():
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
    threshold: float = 0.5,
    refine: bool = False,
    baseline_p: float = 0.5,
    label_kinds: tuple[str, ...] = ("micro",),
) -> Evaluation:
    """Spot and score the LSTM's held-out predictions and the baseline; write the report."""
    store.check_writable()  # intervals and the report go here: fail before any work
    model_id = model_id or trained_model_id(store)
    preds = read_model_rows(store, paths.PREDICTIONS, model_id)
    if preds.num_rows == 0:
        raise ValueError(f"model {model_id} has no held-out predictions in {store.uri}")
    videos = read_table(store, paths.VIDEOS)
    truth = ground_truth(store, label_kinds)
    keep = set(
        zip(*(preds.column(c).to_pylist() for c in ("dataset", "subject", "video")), strict=True)
    )
    base = baseline_predictions(store)
    base = base.filter(pc.is_in(base.column("subject"), pa.array(sorted({k[1] for k in keep}))))
    write_model_rows(store, paths.PREDICTIONS, paths.BASELINE_ID, base)
    methods = {
        f"LSTM ({model_id})": (preds, threshold, model_id),
        "baseline (feature difference)": (
            base,
            lambda s: moilanen_threshold(s, baseline_p),
            paths.BASELINE_ID,
        ),
    }
    reports, aucs, curves = {}, {}, {}
    for name, (p, thr, mid) in methods.items():
        intervals = spot_table(p, videos, thr, refine=refine)
        write_model_rows(store, paths.INTERVALS, mid, intervals)
        reports[name] = evaluate(video_results(intervals, videos, truth, keep))
        labelled = p.filter(pc.is_valid(p.column("label")))
        fpr, tpr, auc = roc(
            labelled.column("score").to_numpy(),
            np.asarray(labelled.column("label").to_pylist(), bool),
        )
        aucs[name] = auc
        curves[name] = (fpr, tpr, auc)
    setting = (
        f"LSTM threshold {threshold}; baseline threshold mean + {baseline_p} x (max - mean) per "
        f"video; onset/offset refinement {'on' if refine else 'off'}; ground truth: "
        f"{', '.join(label_kinds)} movements."
    )
    ev = Evaluation(model_id, reports, aucs, {})
    folder = report_folder(model_id, threshold, baseline_p, refine, label_kinds)
    ev.paths = _write_report(store, ev, setting, curves, folder)
    return ev


def report_folder(
    model_id: str, threshold: float, baseline_p: float, refine: bool, kinds: tuple[str, ...]
) -> str:
    """Where an evaluation's report goes: ``<model id>`` with the default settings, else
    ``<model id>+<setting>...`` (e.g. ``lstm-1a2b+refine+threshold-0.3``), so that
    evaluations of one model with other settings keep their own reports."""
    name = model_id
    if refine:
        name += "+refine"
    for key, value, default in (("threshold", threshold, 0.5), ("baseline_p", baseline_p, 0.5)):
        if value != default:
            name += f"+{key}-{value:g}"
    if tuple(kinds) != ("micro",):
        name += "+kinds-" + "-".join(kinds)
    return name


def _write_report(
    store: Store, ev: Evaluation, setting: str, curves: dict, name: str
) -> dict[str, str]:
    """``reports/<name>/``: report.md, report.json and roc.png."""
    folder = [paths.REPORTS, name]
    md = [f"# mespot evaluation: {ev.model_id}", "", setting, ""]
    md += ev.summary_lines()
    for name, rep in ev.reports.items():
        md += ["", "#" + rep.to_markdown(name)]  # its "# title" one level down
    report = {"model_id": ev.model_id, "auc": ev.aucs}
    report |= {n: r.to_dict() for n, r in ev.reports.items()}
    out = {
        "markdown": store.write_text("\n".join(md) + "\n", *folder, "report.md"),
        "json": store.write_text(json.dumps(report, indent=2) + "\n", *folder, "report.json"),
    }
    with tempfile.TemporaryDirectory() as d:
        png = Path(d) / "roc.png"
        plot_roc(curves, png)
        out["roc"] = store.put_atomic(png.read_bytes(), *folder, "roc.png")
    return out

"""The feedback simulation's report (cluster.run.feedback): config, curve, table, plot."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from cluster.store import paths
from cluster.store.store import Store
from pipeline.learn.simulation import FeedbackConfig, budget_markdown, curve_markdown, plot_curve

if TYPE_CHECKING:
    from cluster.run.feedback import FeedbackResult


def write_report(store: Store, cfg: FeedbackConfig, res: FeedbackResult, kinds) -> dict[str, str]:
    """The simulation's config, curve (``curve.json``), table (``report.md``) and plot
    (``curve.png``) under ``reports/<sim id>/``; returns their paths."""
    folder = [paths.REPORTS, res.sim_id]
    s = res.split
    curve = {
        "sim_id": res.sim_id,
        "store": store.uri or store.root,
        "config": cfg.to_dict(),
        "split": s.to_dict(),
        "truth_kinds": list(kinds),
        "verdicts": paths.simulation_verdicts(res.sim_id, "<s>"),
        "summary": res.summary,
        "reference": res.reference,
        "rows": res.rows,
        "reference_rows": res.references,
        "control": res.control,
        "control_rows": res.control_rows,
        "stopped": {str(k): v for k, v in res.stopped.items()},
    }
    md = [
        f"# mespot feedback simulation: {res.sim_id}",
        "",
        f"Subjects: labelled {', '.join(s.labelled)} (ground truth used); feedback "
        f"{', '.join(s.feedback)} (reviewed by a simulated annotator, ground truth hidden); "
        f"test {', '.join(s.test)} (evaluation only).",
        "",
        f"{cfg.seeds} seeds x {cfg.rounds} rounds of {cfg.per_round} reviewed intervals "
        f"(review queue {cfg.strategy!r}, none overlapping one reviewed before; spotted at "
        + (
            f"threshold {cfg.threshold}"
            if cfg.threshold is not None
            else "the threshold each fit learns on out-of-fold scores of the labelled subjects"
        )
        + (", on the extent head's profile" if cfg.extent else ", window-long")
        + f"); {cfg.epochs} epochs per fit"
        + (
            f", each round fine-tuning the last for {cfg.finetune_epochs}"
            if cfg.finetune_epochs
            else ""
        )
        + ". The annotator says yes "
        f"when an interval covers >= 80% of a {'/'.join(kinds)} ground-truth movement"
        f"{', marking its extent' if cfg.mark_extent else ''}, misses {cfg.miss_rate:.0%} "
        f"of those and is unsure of {cfg.unsure_rate:.0%} of the intervals. Figures on the "
        "test subjects, "
        "mean ± sample std over seeds; 'GT confirmed' is the fraction of the feedback "
        "subjects' ground truth covered by a yes interval; 'all labelled' trains with the "
        "feedback subjects' full ground truth; 'no verdicts, as long' fine-tunes round 0's "
        "model as many epochs as all the rounds together, without verdicts.",
        "",
        *curve_markdown(res.summary, res.reference, res.control),
    ]
    at_budget = budget_markdown(res.summary, res.reference, res.control)
    if at_budget:
        md += ["", f"At a review budget of {cfg.budget:g} of each test video's footage (the best "
               "micro spots that fit, as `mespot spot --budget`; the same footage for every "
               "model):", "", *at_budget]  # fmt: skip
    md += ["", *(f"- seed {k}: {v}" for k, v in sorted(res.stopped.items()))] if res.stopped else []
    out = {
        "config": store.write_json(cfg.to_dict(), *folder, "feedback_config.json"),
        "curve": store.write_text(json.dumps(curve, indent=2) + "\n", *folder, "curve.json"),
        "markdown": store.write_text("\n".join(md) + "\n", *folder, "report.md"),
    }
    with tempfile.TemporaryDirectory() as d:
        png = plot_curve(res.summary, res.reference, Path(d) / "curve.png", control=res.control,
                         budget=cfg.budget)  # fmt: skip
        out["plot"] = store.put_atomic(png.read_bytes(), *folder, "curve.png")
    return out

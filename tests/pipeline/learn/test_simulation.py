"""The feedback simulation's pure rules: the simulated annotator, the split, the config."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.core.intervals import Interval
from pipeline.learn.simulation import (
    Answer,
    FeedbackConfig,
    annotate,
    answer,
    budget_markdown,
    confirmed,
    curve_markdown,
    mean_std,
    split_subjects,
    summarise,
    summarise_reference,
)


# Coverage rule: an interval is a yes when it holds >= 80% of a ground-truth movement.
#
#   frames   0         10        20        30
#   truth    [0 ..... 9]                              10 frames: needs >= 8 inside
#   a          [2 .............. 20]                  8 of 10 = 0.8 (inclusive) -> yes
#   b           [3 ............. 20]                  7 of 10 -> no
#   truth2                            [25 ... 29]     5 frames: needs >= 4
#   c                        [20 ..... 28]            4 of 5 -> yes (for truth2)
#   d                                   [27 .... 35]  3 of 5 -> no
@pytest.mark.parametrize(
    ("interval", "answer"),
    [((2, 20), "yes"), ((3, 20), "no"), ((20, 28), "yes"), ((27, 35), "no"), ((0, 29), "yes")],
)
def test_annotator_answers_by_the_coverage_rule(interval, answer):
    truth = [Interval(0, 9), Interval(25, 29)]
    assert annotate(Interval(*interval), truth) == answer


def test_annotator_says_no_without_ground_truth():
    assert annotate(Interval(0, 100), []) == "no"


def test_a_simulated_person_marks_extents_misses_some_and_is_unsure_of_some():
    truth = [Interval(0, 9), Interval(25, 29)]
    rng = np.random.default_rng(0)
    # a careful annotator: the coverage rule's answer, and a yes marks the movement
    assert answer(Interval(2, 20), truth, rng) == Answer("yes", Interval(0, 9))
    got = answer(Interval(0, 29), truth, rng)  # covers both: the one it covers most, 0..9
    assert (got.verdict, got.extent) == ("yes", Interval(0, 9))
    assert answer(Interval(3, 20), truth, rng).verdict == "no"
    assert answer(Interval(2, 20), truth, rng, mark_extent=False).extent is None
    # slips, counted over many answers on a true movement
    said = [
        answer(Interval(2, 20), truth, rng, miss_rate=0.2, unsure_rate=0.1).verdict
        for _ in range(4000)
    ]
    share = {v: said.count(v) / len(said) for v in ("yes", "no", "unsure")}
    assert share["unsure"] == pytest.approx(0.1, abs=0.02)
    assert share["no"] == pytest.approx(0.9 * 0.2, abs=0.02)
    # a wrong interval is never a yes, whatever the slips
    assert "yes" not in {answer(Interval(3, 20), truth, rng, unsure_rate=0.5).verdict
                         for _ in range(200)}  # fmt: skip


def test_confirmed_counts_ground_truth_covered_by_a_yes():
    truth = {("d", "s", "v"): [Interval(0, 9), Interval(25, 29)], ("d", "s", "w"): []}
    assert confirmed(truth, {}) == (0, 2)
    assert confirmed(truth, {("d", "s", "v"): [Interval(20, 28)]}) == (1, 2)
    assert confirmed(truth, {("d", "s", "v"): [Interval(2, 20), Interval(24, 30)]}) == (2, 2)


def test_split_config_and_summary_helpers():
    split = split_subjects(["9", "1", "3", "5", "7", "3"], labelled=2, test=2)
    assert (split.labelled, split.feedback, split.test) == (("1", "3"), ("5",), ("7", "9"))
    with pytest.raises(ValueError, match="too few"):
        split_subjects(["1", "2", "3"], labelled=2, test=1)
    cfg = FeedbackConfig(labelled=1, test=1, rounds=2, per_round=3, seeds=1, epochs=2)
    assert FeedbackConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.model_config(4).seed == 4 and cfg.model_config(4).epochs == 2
    # the shipped kind of model, unless told: an extent head, micro spots on its profile
    assert cfg.model_config(0).extent and not FeedbackConfig(extent=False).model_config(0).extent
    bad_ones = ({"per_round": 0}, {"threshold": 1.5}, {"rounds": 1.5}, {"strategy": "random"})
    bad_ones += ({"extent": "yes"}, {"budget": 0.0}, {"budget": 1.5})
    for bad in (*bad_ones, {"miss_rate": 1.0}, {"unsure_rate": -0.1}, {"finetune_epochs": -1}):
        with pytest.raises(ValueError):
            FeedbackConfig(**bad)
    assert mean_std([1.0, 3.0, None]) == {"mean": 2.0, "std": pytest.approx(2**0.5), "n": 2}
    assert mean_std([None]) == {"mean": None, "std": None, "n": 0}


def row(round_: int, recall_hits: int, budget_hits: int | None, threshold: float) -> dict:
    """A simulation row: 10 test movements; ``recall_hits`` of them spotted at the
    threshold (10 spots), ``budget_hits`` at the budget (5 spots), None: no budget."""

    def counts(tp, spots):
        f1 = 2 * tp / (10 + spots)
        return {"tp": tp, "fp": spots - tp, "fn": 10 - tp,
                "recall": tp / 10, "precision": tp / spots, "f1": f1}  # fmt: skip

    out = {"round": round_, "reviewed": 20 * round_, "yes": round_, "confirmed": None,
           "auc": 0.8, "threshold": threshold, "footage": 0.3}  # fmt: skip
    out |= {rule: counts(recall_hits, 10) for rule in ("coverage", "iou")}
    if budget_hits is not None:
        at = {rule: counts(budget_hits, 5) for rule in ("coverage", "iou")}
        out["at_budget"] = at | {"footage": 0.1}
    return out


def test_the_summary_averages_thresholds_and_the_figures_at_the_budget():
    rows = [row(0, 4, 2, 0.2), row(0, 6, 4, 0.4), row(1, 8, 5, 0.3), row(1, 8, 5, 0.5)]
    summary = summarise(rows)
    assert [e["round"] for e in summary] == [0, 1]
    assert summary[0]["threshold"]["mean"] == pytest.approx(0.3)
    assert summary[0]["at_budget.coverage.recall"]["mean"] == pytest.approx(0.3)
    assert summary[1]["at_budget.iou.precision"] == {"mean": 1.0, "std": 0.0, "n": 2}
    reference = summarise_reference([row(0, 9, 5, 0.6)])
    assert reference["at_budget.footage"]["mean"] == 0.1 and "reviewed" not in reference
    table = budget_markdown(summary, reference)
    # head, rule, 2 rounds, the reference (no control)
    assert len(table) == 5 and table[-1].startswith("| all labelled | - | 0.100 ± 0.000 |")
    assert table[2].startswith("| 0 | 0.0 ± 0.0 | 0.100 ± 0.000 | 0.300 ± 0.141 |")
    assert curve_markdown(summary, reference)[2].endswith("| 0.800 ± 0.000 | 0.300 ± 0.141 |")
    # rows without a budget, or from before thresholds were recorded: no table, '-'
    plain = [{k: v for k, v in row(0, 4, None, 0.2).items() if k != "threshold"}]
    assert budget_markdown(summarise(plain), summarise_reference(plain)) == []
    assert curve_markdown(summarise(plain), {})[2].endswith("| 0.800 ± 0.000 | - |")

"""Matching rules, pooled counts, footage fraction, report and ROC on drawn timelines."""

import json

import numpy as np
import pytest

from pipeline.core.curves import plot_roc, roc
from pipeline.core.intervals import Interval, Spot
from pipeline.core.metrics import (
    MIN_COVERAGE,
    MIN_IOU,
    OVERALL,
    RULES,
    Counts,
    VideoResult,
    evaluate,
    evaluate_kinds,
    footage_fraction,
    match,
    spotted_frames,
)

I = Interval  # noqa: E741 (short names keep the timelines readable)


def both(spots, truth):
    """Counts under each rule, as (tp, fp, fn)."""
    return {r: (c.tp, c.fp, c.fn) for r in RULES for c in [match(spots, truth, r)]}


def test_rules_and_thresholds():
    assert set(RULES) == {"coverage", "iou"}
    assert (MIN_COVERAGE, MIN_IOU) == (0.8, 0.5)
    with pytest.raises(ValueError, match="unknown rule"):
        match([], [], "overlap")


#  frames:  0    5    10   15
#  truth:        [======]            5..12 (8 frames)
#  spot A:     [========]      .9    3..12  covers 8/8, IoU 8/10 -> TP
#  spot B:      [=======]      .8    4..12  covers 8/8, IoU 8/9, truth taken -> FP
#  spot C:          [===]      .7    8..12  covers 5/8, IoU 5/8 -> FP under both anyway
def test_one_truth_hit_by_several_spots_is_one_tp():
    spots = [Spot(8, 12, 0.7), Spot(4, 12, 0.8), Spot(3, 12, 0.9)]
    assert both(spots, [I(5, 12)]) == {"coverage": (1, 2, 0), "iou": (1, 2, 0)}


#  frames:  0    5    10   15   20
#  truth:   [=========]                  0..9 (10 frames)
#  spot:    [===================]        0..19  IoU 10/20 = 0.5 exactly -> TP (iou)
#  spot:    [====]                       0..4   IoU 5/10 = 0.5 -> TP (iou), covers 0.5 -> FP
#  spot:    [====================]       0..20  IoU 10/21 < 0.5 -> FP (iou), covers 1.0 -> TP
def test_iou_exactly_half_is_a_tp():
    assert I(0, 19).iou(I(0, 9)) == 0.5
    assert both([Spot(0, 19, 0.9)], [I(0, 9)]) == {"coverage": (1, 0, 0), "iou": (1, 0, 0)}
    assert both([Spot(0, 4, 0.9)], [I(0, 9)]) == {"coverage": (0, 1, 1), "iou": (1, 0, 0)}
    assert both([Spot(0, 20, 0.9)], [I(0, 9)]) == {"coverage": (1, 0, 0), "iou": (0, 1, 1)}


#  frames:  0    5    10   15
#  truth:             [===]          10..14 (5 frames)
#  spot:    [=============]          0..13  covers 4/5 = 0.8 exactly -> TP; IoU 4/15 -> FP
#  spot:    [============]           0..12  covers 3/5 = 0.6 -> FP
def test_coverage_exactly_four_fifths_is_a_tp():
    assert I(0, 13).coverage_of(I(10, 14)) == 0.8
    assert both([Spot(0, 13, 0.9)], [I(10, 14)]) == {"coverage": (1, 0, 0), "iou": (0, 1, 1)}
    assert both([Spot(0, 12, 0.9)], [I(10, 14)]) == {"coverage": (0, 1, 1), "iou": (0, 1, 1)}


#  frames:  0    5    10   15
#  truth:             |              10..10 (1 frame)
#  spot:    [=========]              0..10  touches it at frame 10: intersection 1,
#                                           covers 1/1 -> TP; IoU 1/11 -> FP
#  truth:             [===]          10..14: the same spot covers 1/5 -> FP
def test_touching_at_one_frame_intersects_in_one():
    assert I(0, 10).intersection(I(10, 10)) == 1
    assert both([Spot(0, 10, 0.9)], [I(10, 10)]) == {"coverage": (1, 0, 0), "iou": (0, 1, 1)}
    assert both([Spot(0, 10, 0.9)], [I(10, 14)]) == {"coverage": (0, 1, 1), "iou": (0, 1, 1)}


#  frames:  0    5    10   15
#  truth a: [===]                    0..4
#  truth b:       [===]              6..10
#  spot X:  [=========]        .9    0..10  covers a and b fully: matches one only (the
#                                           earliest of equal coverage, a)
#  spot Y:        [=====]      .5    6..12  covers b 5/5 -> TP
def test_a_spot_over_two_truths_matches_one():
    truth = [I(6, 10), I(0, 4)]
    assert both([Spot(0, 10, 0.9)], truth)["coverage"] == (1, 0, 1)
    assert both([Spot(0, 10, 0.9), Spot(6, 12, 0.5)], truth)["coverage"] == (2, 0, 0)


#  frames:  0    5    10   15
#  truth a: [=========]              0..9   (10 frames)
#  truth b:             [===]        12..16
#  spot X:    [============]   .9    2..16  covers a 8/10, b 5/5 -> takes b (higher)
#  spot Y:  [=========]        .5    0..9   covers a -> TP: 2 TP, none wasted
def test_a_spot_takes_the_truth_it_covers_best():
    truth = [I(0, 9), I(12, 16)]
    assert both([Spot(2, 16, 0.9), Spot(0, 9, 0.5)], truth)["coverage"] == (2, 0, 0)


#  frames:  0    5    10   15
#  truth a: [====]                   0..5
#  truth b:         [====]           8..13  (6 frames)
#  spot X:  [=====]            .9    0..6   covers a 6/6; b 0 -> takes a
#  spot Y:  [=============]    .5    0..13  covers a and b: a is taken, takes b -> TP
#  Matching is greedy by score: X (higher) goes first whatever the input order.
#  spot Z:    [==========]     .8    2..13  (instead of Y) covers a 4/6 -> no; b 6/6 -> TP
def test_spots_are_matched_in_descending_score_order():
    truth = [I(0, 5), I(8, 13)]
    assert both([Spot(0, 13, 0.5), Spot(0, 6, 0.9)], truth)["coverage"] == (2, 0, 0)
    # Y first (higher score) takes a (6/6, earliest of equal coverage); X then finds a taken.
    assert both([Spot(0, 13, 0.95), Spot(0, 6, 0.9)], truth)["coverage"] == (1, 1, 1)
    assert both([Spot(0, 6, 0.9), Spot(2, 13, 0.8)], truth)["coverage"] == (2, 0, 0)


def test_empty_predictions_or_truth():
    assert both([], [I(0, 9), I(20, 29)]) == {"coverage": (0, 0, 2), "iou": (0, 0, 2)}
    assert both([Spot(0, 9, 0.9)], []) == {"coverage": (0, 1, 0), "iou": (0, 1, 0)}
    nothing = match([], [], "iou")
    assert (nothing.tp, nothing.fp, nothing.fn) == (0, 0, 0)
    assert (nothing.recall, nothing.precision, nothing.f1) == (0.0, 0.0, 0.0)
    missed = Counts(tp=0, fp=0, fn=2)
    assert (missed.recall, missed.precision, missed.f1) == (0.0, 0.0, 0.0)


def test_counts_reproduce_the_papers_table_one():
    c = Counts(tp=74, fp=1569, fn=85)
    assert (round(c.recall, 4), round(c.precision, 4), round(c.f1, 4)) == (0.4654, 0.0450, 0.0821)
    assert Counts(1, 2, 3) + Counts(10, 20, 30) == Counts(11, 22, 33)


#  frames:  0    5    10   15   20   25
#  spot:    [=========]                   0..9
#  spot:         [=========]              5..14   shares 5..9 with the first
#  spot:                        [===]     20..24
#  union: 0..14 (15) + 20..24 (5) = 20 of 50 frames -> 0.4
def test_footage_fraction_counts_overlaps_once():
    spots = [Spot(5, 14, 0.5), Spot(20, 24, 0.5), Spot(0, 9, 0.9)]
    assert spotted_frames(spots) == 20
    assert footage_fraction(spots, 50) == 0.4
    assert spotted_frames([Spot(0, 9, 0.5), Spot(2, 4, 0.5)]) == 10  # nested
    assert spotted_frames([Spot(0, 4, 0.5), Spot(5, 9, 0.5)]) == 10  # adjacent
    assert footage_fraction([], 50) == 0.0
    with pytest.raises(ValueError, match="outside"):
        footage_fraction([Spot(40, 50, 0.5)], 50)
    with pytest.raises(ValueError, match="positive"):
        footage_fraction([], 0)


def video(subject, name, spots, truth, n_frames=100):
    return VideoResult("toy", subject, name, n_frames, 30.0, spots, truth)


#  video 1 (subject s1), 100 frames:
#    truth:  [====]            10..19      spot 10..19 -> TP              F1 1.0
#  video 2 (subject s2), 100 frames:
#    truth:  [====]            50..59      9 spots of 5 frames elsewhere, all FP   F1 0.0
#  mean of per-video F1 = 0.5;  pooled: TP 1, FP 9, FN 1 -> F1 = 2 / (2 + 9 + 1) = 1/6
def test_pooling_differs_from_averaging_per_video():
    v1 = video("s1", "a", [Spot(10, 19, 0.9)], [I(10, 19)])
    v2 = video("s2", "b", [Spot(i, i + 4, 0.6) for i in range(0, 45, 5)], [I(50, 59)])
    per_video = [match(v.spots, v.truth, "coverage").f1 for v in (v1, v2)]
    assert per_video == [1.0, 0.0] and np.mean(per_video) == 0.5
    report = evaluate([v2, v1])
    pooled = report.counts["coverage"]
    assert (pooled.tp, pooled.fp, pooled.fn) == (1, 9, 1)
    assert pooled.f1 == pytest.approx(1 / 6)
    assert pooled.recall == 0.5 and pooled.precision == 0.1
    # 10 + 45 spotted frames of 200.
    assert report.footage_fraction == pytest.approx(55 / 200)


def test_report_rows_dict_and_markdown():
    videos = [
        video("s2", "x", [Spot(0, 9, 0.9)], [I(0, 9)]),
        video("s1", "y", [Spot(0, 9, 0.9), Spot(50, 59, 0.8)], [I(0, 9), I(80, 89)]),
        video("s1", "z", [], [I(20, 29)], n_frames=50),
    ]
    report = evaluate(videos)
    assert [r.subject for r in report.subjects] == ["s1", "s2"]
    s1 = report.subjects[0]
    assert (s1.videos, s1.frames, s1.spotted, s1.n_truth, s1.n_spots) == (2, 150, 20, 3, 2)
    assert s1.counts["coverage"] == Counts(tp=1, fp=1, fn=2)
    assert report.total.subject == "TOTAL" and report.counts["iou"] == Counts(tp=2, fp=1, fn=2)
    d = json.loads(json.dumps(report.to_dict()))
    assert d["subject"] == "TOTAL" and d["footage_fraction"] == pytest.approx(30 / 250)
    assert d["rules"]["coverage"]["tp"] == 2 and d["rules"]["iou"]["threshold"] == 0.5
    assert d["subjects"][0]["rules"]["coverage"] == Counts(1, 1, 2).to_dict()
    assert [row["subject"] for row in d["subjects"]] == ["s1", "s2"]
    md = report.to_markdown("Toy corpus")
    assert md.startswith("# Toy corpus")
    assert "| rule | TP | FP | FN | recall | precision | F1 |" in md
    assert md.count("| TOTAL |") == 2  # one per-subject table per rule
    for line in md.splitlines():  # every table row has its columns, absolute values escaped
        if line.startswith("| rule") or line.startswith("| coverage"):
            assert line.replace(r"\|", "").count("|") == 8
    assert "| toy | s1 | 2 | 3 | 2 | 13.33% | 1 | 1 | 2 |" in md
    empty = evaluate([])
    assert empty.total.footage_fraction == 0.0 and empty.subjects == []
    with pytest.raises(ValueError, match="outside"):
        evaluate([video("s1", "bad", [Spot(95, 105, 0.9)], [])])


def test_roc_known_values():
    fpr, tpr, auc = roc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])
    assert auc == 1.0 and tpr[np.searchsorted(fpr, 0.0, side="right") - 1] == 1.0
    assert roc([0.9, 0.8, 0.2, 0.1], [False, False, True, True])[2] == 0.0
    # scikit-learn's own example: one positive ranked below one negative -> 3 of 4 pairs.
    fpr, tpr, auc = roc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    assert auc == 0.75
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])


def test_roc_one_class_and_bad_input():
    fpr, tpr, auc = roc([0.1, 0.9], [1, 1])
    assert auc is None and len(fpr) == len(tpr) == 0
    assert roc([], [])[2] is None
    with pytest.raises(ValueError, match="one length"):
        roc([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="0/1"):
        roc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="finite"):
        roc([np.nan, 0.2], [0, 1])


def test_plot_roc_writes_a_png(tmp_path):
    curves = {
        "lstm": roc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]),
        "one class": roc([0.1, 0.9], [1, 1]),
    }
    out = plot_roc(curves, tmp_path / "plots" / "roc.png", title="toy")
    assert out.exists() and out.stat().st_size > 1000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_kinds_are_scored_apart_and_overall_sums_them():
    # One 100-frame video; micro truth at 10..19, macro truth at 40..89:
    #
    #   frames    0   10   20   30   40   50   60   70   80   90
    #   micro gt       |--|
    #   macro gt                      |========================|
    #   micro      |----|                   |---|                   spots 8..21, 50..59
    #   macro                         |=======================|     spot 40..84
    #
    # Micro: 8..21 covers the micro truth (TP); 50..59 lies on the macro-expression, which is
    # not micro truth (FP). Macro: 40..84 covers 45/50 = 90% (TP), IoU 45/50 (TP).
    micro = VideoResult("d", "s", "v", 100, 100.0, [Spot(8, 21, 0.9), Spot(50, 59, 0.7)],
                        [I(10, 19)])  # fmt: skip
    macro = VideoResult("d", "s", "v", 100, 100.0, [Spot(40, 84, 0.8)], [I(40, 89)])
    reports = evaluate_kinds({"micro": [micro], "macro": [macro]})
    assert set(reports) == {"micro", "macro", OVERALL}
    c = reports["micro"].counts["coverage"]
    assert (c.tp, c.fp, c.fn) == (1, 1, 0)
    c = reports["macro"].counts["iou"]
    assert (c.tp, c.fp, c.fn) == (1, 0, 0)
    for rule in RULES:
        got = reports[OVERALL].counts[rule]
        want = reports["micro"].counts[rule] + reports["macro"].counts[rule]
        assert (got.tp, got.fp, got.fn) == (want.tp, want.fp, want.fn)
    total = reports[OVERALL].total
    assert (total.videos, total.frames, total.n_spots, total.n_truth) == (1, 100, 3, 2)
    # Footage: 8..21 (14 frames) and 40..84 (45; 50..59 lies inside it) = 59 of 100.
    assert total.spotted == 59 and reports[OVERALL].footage_fraction == pytest.approx(0.59)
    assert [r.subject for r in reports[OVERALL].subjects] == ["s"]
    # One kind alone: its report, no overall row.
    assert set(evaluate_kinds({"micro": [micro]})) == {"micro"}

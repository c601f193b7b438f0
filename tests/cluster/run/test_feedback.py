"""Annotators' verdicts as training labels (`mespot train --verdicts`) and the simulation."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from cluster.cli import main
from cluster.run.training_data import load_dataset
from cluster.store import Store
from cluster.store.models import learned_verdicts
from cluster.store.verdict_log import VerdictLog
from pipeline.core.intervals import Interval
from pipeline.core.verdicts import Verdict, labels_from_verdicts
from pipeline.learn.lstm import DEFAULT_THRESHOLD
from pipeline.vision.config import FeatureConfig
from schemas import WINDOW_FEATURES, conform

FC = FeatureConfig(regions=("eyebrows", "mouth_left"), n_bins=4, cells=0, flow_step_s=0.5 / 3)
# T = 3, no cell flow
T, R, B = 3, 2, 4
N_WINDOWS = 8  # window i spans frames 10 i .. 10 i + 20 (21 frames)
FPS = 42.0  # so that a window stands for T x R = 0.5 s = 21 frames (pipeline.core.labels)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def verdict(subject, start, end, answer, annotator="ann", minutes=0, video=None) -> Verdict:
    return Verdict(
        model_id="m",
        dataset="d",
        subject=subject,
        video=video or f"{subject}_1",
        start_frame=start,
        end_frame=end,
        verdict=answer,
        annotator=annotator,
        created_at=T0 + timedelta(minutes=minutes),
    )


# Verdicts on video s2_1 (no ground truth), windows [10 i, 10 i + 20]:
#
#   frames   0    10   20   30   40   50   60   70   80   90
#   yes                     [30 ... 45]                        ann: no, then yes (latest wins)
#   no                                     [60 ....... 80]
#   tie       [0 .. 20]                                        a1 yes, a2 no: undecided
#   unsure                                           [75..85]  nothing learned
#
# yes: window 3 [30, 50] covers all of it -> 1; windows 1, 2, 4 touch it -> unlabelled.
# no: window 6 [60, 80] lies wholly inside -> 0; 5 [50, 70] and 7 [70, 90] reach outside
# it (a movement across its edge is possible) -> unlabelled.
S2_VERDICTS = [
    verdict("s2", 30, 45, "no", minutes=0),
    verdict("s2", 30, 45, "yes", minutes=5),
    verdict("s2", 60, 80, "no", minutes=1),
    verdict("s2", 0, 20, "yes", annotator="a1", minutes=2),
    verdict("s2", 0, 20, "no", annotator="a2", minutes=3),
    verdict("s2", 75, 85, "unsure", minutes=4),
]
S2_WANT = [-1, -1, -1, 1, -1, -1, 0, -1]
S1_TRUTH = [False, True, False, False, False, False, False, False]


def features_rows(subject: str, labels, rng) -> list[dict]:
    return [
        {
            "dataset": "d",
            "subject": subject,
            "video": f"{subject}_1",
            "window": i,
            "start_frame": 10 * i,
            "end_frame": 10 * i + 20,
            "start_s": 10 * i / FPS,
            "end_s": (10 * i + 20) / FPS,
            "face_found": True,
            "skip_reason": None,
            "n_timesteps": T,
            "n_regions": R,
            "n_bins": B,
            "n_cells": 0,
            "hoof": rng.random(T * R * B).astype(np.float32),
            "magnitude": rng.random(T * R).astype(np.float32),
            "label": labels[i],
            "config_id": FC.config_id,
        }
        for i in range(N_WINDOWS)
    ]


def features_store(root: Path, labels: dict[str, list]) -> Store:
    """A store with one video of 8 windows per subject, labelled ``labels[subject]``."""
    st = Store.open(str(root))
    rng = np.random.default_rng(0)
    for subject, subject_labels in labels.items():
        table = conform(features_rows(subject, subject_labels, rng), WINDOW_FEATURES)
        parts = ("features", "dataset=d", f"subject={subject}", f"video={subject}_1")
        st.write_parquet(table, *parts, "part-0.parquet")
    st.write_text(FC.to_json(), "feature_config.json")
    return st


@pytest.fixture
def store(tmp_path) -> Store:
    """Features of s1 (ground truth) and s2 (none), 8 windows each; no verdicts yet."""
    return features_store(tmp_path / "store", {"s1": S1_TRUTH, "s2": [None] * N_WINDOWS})


def by_window(data) -> dict[tuple[str, int], int]:
    windows = data.table.column("window").to_pylist()
    return {(s, w): int(y) for s, w, y in zip(data.subjects, windows, data.y, strict=True)}


# --- verdicts -> labels ----------------------------------------------------------------------


def test_labels_from_verdicts_known_answers():
    n = N_WINDOWS
    starts, ends = np.arange(n) * 10, np.arange(n) * 10 + 20
    cols = (["d"] * 2 * n, ["s1"] * n + ["s2"] * n, ["s1_1"] * n + ["s2_1"] * n)
    other = verdict("s3", 0, 20, "yes")  # a video without windows: ignored
    y = labels_from_verdicts(*cols, np.tile(starts, 2), np.tile(ends, 2), [*S2_VERDICTS, other])
    assert y.dtype == np.int8
    assert y.tolist() == [-1] * n + S2_WANT


def test_load_dataset_labels_only_videos_without_ground_truth(store):
    log = VerdictLog(store)
    for v in S2_VERDICTS:
        log.append(v)
    log.append(verdict("s1", 60, 80, "yes"))  # s1 has ground truth: this must not count
    plain = by_window(load_dataset(store, True))
    assert [plain["s1", i] for i in range(N_WINDOWS)] == [int(t) for t in S1_TRUTH]
    assert [plain["s2", i] for i in range(N_WINDOWS)] == [-1] * N_WINDOWS

    data = load_dataset(store, True, verdicts=log.verdicts())
    got = by_window(data)
    assert [got["s1", i] for i in range(N_WINDOWS)] == [int(t) for t in S1_TRUTH]
    assert [got["s2", i] for i in range(N_WINDOWS)] == S2_WANT
    assert data.verdict_counts == (1, 1)
    assert data.from_verdicts.sum() == 2 and set(data.subjects[data.from_verdicts]) == {"s2"}
    # their timesteps too, for the extent head: window 3 [30, 50] has timestep middles at
    # frames 33.5, 40 and 46.5, of which the yes interval 30..45 holds the first two
    rows = zip(data.subjects, data.table.column("window").to_pylist(), data.steps.tolist(),
               strict=True)  # fmt: skip
    steps = {(s, w): row for s, w, row in rows}
    assert steps["s2", 3] == [1, 1, 0] and steps["s2", 6] == [0, 0, 0]
    assert steps["s2", 0] == [-1, -1, -1] and steps["s1", 1] != [-1, -1, -1]


@pytest.mark.slow
def test_train_with_verdicts_makes_a_fold_of_the_verdict_subject(store, capsys):
    args = ["train", str(store.root), "--epochs", "1", "--executor", "local", "--no-progress"]
    assert main(args) == 2  # without verdicts only s1 has labels
    assert "LOSO needs ground truth for >= 2 subjects" in capsys.readouterr().err
    log = VerdictLog(store)
    for v in S2_VERDICTS:
        log.append(v)
    assert main([*args, "--verdicts"]) == 0
    out = capsys.readouterr().out
    assert "2 LOSO folds on 10 windows (2 micro, 0 macro)" in out
    assert "labels from 6 verdicts: 1 positive and 1 negative windows" in out
    (model_dir,) = Path(store.root, "models").iterdir()
    assert sorted(p.name for p in model_dir.iterdir()) == ["all", "fold=s1", "fold=s2"]
    # the model says what it learned from verdicts, for the review page
    info = json.loads((model_dir / "all" / "model.json").read_text())
    assert info["verdicts"] == {"verdicts": 6, "positive_windows": 1, "negative_windows": 1}
    model_id = model_dir.name
    assert learned_verdicts(store, model_id) == 6
    assert learned_verdicts(store, "no-such-model") is None
    assert "fine-tuned" not in out  # the verdicts' model "m" is not in the store


@pytest.mark.slow
def test_train_with_verdicts_fine_tunes_the_model_they_were_given_on(store, capsys):
    log = VerdictLog(store)
    for v in S2_VERDICTS:
        log.append(v)
    args = ["train", str(store.root), "--epochs", "2", "--executor", "local", "--no-progress"]
    assert main([*args, "--verdicts"]) == 0
    (first,) = (p.name for p in Path(store.root, "models").iterdir())
    # annotators review the new model's intervals: a yes on s2's window 1
    log.append(replace(verdict("s2", 10, 30, "yes", minutes=9), model_id=first))
    capsys.readouterr()
    assert main([*args, "--verdicts", "--finetune-epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert f"fine-tuned from model {first} for 1 epochs" in out
    assert "labels from 7 verdicts: 2 positive and 1 negative windows" in out
    (second,) = {p.name for p in Path(store.root, "models").iterdir()} - {first}
    for fold in ("fold=s1", "fold=s2", "all"):  # each from the same subject's fold
        base = json.loads(Path(store.root, "models", first, fold, "model.json").read_text())
        info = json.loads(Path(store.root, "models", second, fold, "model.json").read_text())
        assert info["training"]["fine_tuned_from"] == base["model_id"]
    info = json.loads(Path(store.root, "models", second, "all", "model.json").read_text())
    assert info["verdicts"]["fine_tuned_from"] == first
    assert learned_verdicts(store, second) == 7
    # --scratch trains new networks on the same labels: another model, not fine-tuned
    assert main([*args, "--verdicts", "--scratch"]) == 0
    assert "fine-tuned" not in capsys.readouterr().out
    assert len(list(Path(store.root, "models").iterdir())) == 3


def test_train_verdicts_refuses_a_store_without_verdicts(store, capsys):
    args = ["train", str(store.root), "--verdicts", "--executor", "local", "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "has no verdicts" in err and "without --verdicts" in err
    assert not Path(store.root, "models").exists()


def test_feedback_refuses_too_few_subjects_with_ground_truth(store, capsys):
    assert main(["feedback", str(store.root), "--labelled", "1", "--test", "1"]) == 2
    err = capsys.readouterr().err
    assert "1 subjects with ground truth (s1) are too few" in err


def test_feedback_refuses_one_class_labelled_subjects(tmp_path, capsys):
    labels = {"a": [False] * N_WINDOWS, "b": S1_TRUTH, "c": S1_TRUTH}
    st = features_store(tmp_path / "store", labels)
    assert main(["feedback", str(st.root), "--labelled", "1", "--test", "1"]) == 2
    err = capsys.readouterr().err
    assert "labelled subjects ['a'] have 0 positive and 8 negative windows" in err


# --- the simulation end to end ----------------------------------------------------------------


def report_folder(out: str) -> Path:
    (line,) = [x for x in out.splitlines() if x.startswith("curve: ")]
    return Path(line.removeprefix("curve: ")).parent


@pytest.mark.slow
def test_simulation_end_to_end(sim_store, capsys):
    store, manifest = sim_store
    k, rounds = 3, 2
    argv = ["feedback", str(store), "--labelled", "1", "--test", "1", "--rounds", str(rounds)]
    argv += ["--per-round", str(k), "--seeds", "1", "--epochs", "2", "--threshold", "0"]
    perfect = ["--strategy", "top", "--miss-rate", "0", "--unsure-rate", "0"]
    perfect += ["--finetune-epochs", "0"]  # retrained from scratch each round
    perfect += ["--window-spots"]  # window-long spots: many at threshold 0, known answers
    assert main([*argv, *perfect, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "labelled 006; feedback 007; test 008" in out

    report = report_folder(out)
    sim_id = report.name
    curve = json.loads((report / "curve.json").read_text())
    assert [r["reviewed"] for r in curve["rows"]] == [0, k, 2 * k]
    assert [r["round"] for r in curve["summary"]] == list(range(rounds + 1))
    assert len(curve["reference_rows"]) == 1 and curve["stopped"] == {}
    assert curve["control_rows"] == []  # retrained from scratch: round 0 is the control
    assert curve["split"] == {"labelled": ["006"], "feedback": ["007"], "test": ["008"]}
    assert json.loads((report / "feedback_config.json").read_text())["per_round"] == k
    md = (report / "report.md").read_text()
    assert sum(line.startswith(("| 0 |", "| 1 |", "| 2 |")) for line in md.splitlines()) == 3
    assert "| all labelled |" in md
    assert (report / "curve.png").stat().st_size > 1000

    # The verdicts: in the simulation's folder only, one per reviewed interval, each what the
    # ground truth (the synthetic manifest's micro events, 1-based) says.
    assert not (store / "verdicts").exists()
    log = VerdictLog(Store.open(str(store)), folder=f"simulations/{sim_id}/seed=0/verdicts")
    verdicts = log.verdicts()
    assert len(verdicts) == 2 * k == len({v.key for v in verdicts})
    assert {v.subject for v in verdicts} == {"007"} and {v.annotator for v in verdicts} == {
        "simulated"
    }
    for v in verdicts:
        truth = [
            Interval(e.onset - 1, e.offset - 1) for e in manifest.events_of(v.video, ("micro",))
        ]
        covered = any(
            min(v.end_frame, t.end) - max(v.start_frame, t.start) + 1 >= 0.8 * t.length
            for t in truth
        )
        assert v.verdict == ("yes" if covered else "no")
        # a yes marks the movement it covers: one of the ground truth's own intervals
        assert (v.extent in truth) if v.verdict == "yes" else v.extent is None
    assert curve["rows"][-1]["yes"] == sum(v.verdict == "yes" for v in verdicts)
    keys = sorted(v.key for v in verdicts)  # never one overlapping another
    assert all(a.end < b.start for a, b in itertools.pairwise(keys) if a.video == b.video)


@pytest.mark.slow
def test_simulation_with_the_mixed_queue_reviews_below_the_threshold(sim_store, capsys):
    store, _ = sim_store
    argv = ["feedback", str(store), "--labelled", "1", "--test", "1", "--rounds", "1"]
    argv += ["--per-round", "8", "--seeds", "1", "--epochs", "2", "--no-progress"]
    argv += ["--finetune-epochs", "1"]  # round 1 fine-tunes round 0's model
    # a 2-epoch model's profile run at the default threshold can span the whole clip (one
    # spot, over every peak): a high one leaves the window scores' peaks below it
    argv += ["--threshold", "0.9", "--budget", "0.2"]
    assert main(argv) == 0  # the defaults: mixed queue, 10% missed, 5% unsure, extent head
    out = capsys.readouterr().out
    sim_id = report_folder(out).name
    curve = json.loads((report_folder(out) / "curve.json").read_text())
    rows = curve["rows"]
    # every model also at the budget: its best micro spots within a fifth of each video
    at_budget = [r["at_budget"] for r in (*rows, *curve["reference_rows"], *curve["control_rows"])]
    assert len(at_budget) == 4 and all(0 < b["footage"] <= 0.2 for b in at_budget)
    assert "At a review budget of 0.2" in (report_folder(out) / "report.md").read_text()
    assert [r["fine_tuned"] for r in rows] == [False, True]
    # the control: round 0's model trained as long (1 round x 1 epoch) without verdicts
    assert len(curve["control_rows"]) == 1 and "| no verdicts, as long |" in out
    assert curve["config"]["extent"] is True
    log = VerdictLog(Store.open(str(store)), folder=f"simulations/{sim_id}/seed=0/verdicts")
    verdicts = log.verdicts()
    pools = [v.note.rsplit(", ", 1)[-1] for v in verdicts]
    assert 1 <= len(verdicts) <= 8  # as many as fit apart on a 6 s video
    assert set(pools) <= {"top", "uncertain", "low"} and "low" in pools
    threshold = curve["config"]["threshold"]
    assert all(v.score < threshold for v, p in zip(verdicts, pools, strict=True) if p == "low")


@pytest.mark.slow
def test_simulation_stops_when_nothing_is_left_to_review(sim_store, capsys):
    store, _ = sim_store
    argv = ["feedback", str(store), "--labelled", "1", "--test", "1", "--rounds", "3"]
    argv += ["--seeds", "1", "--epochs", "1", "--threshold", "1", "--no-progress"]
    argv += ["--strategy", "top"]  # only spotted intervals, and none is
    assert main(argv) == 0  # no window scores 1.0: nothing is ever spotted
    out = capsys.readouterr().out
    assert "seed 0: round 1: no interval left to review" in out
    curve = json.loads((report_folder(out) / "curve.json").read_text())
    assert [r["round"] for r in curve["rows"]] == [0]
    assert "stopped after 0 rounds" in curve["stopped"]["0"]
    assert len(curve["reference_rows"]) == 1


@pytest.mark.slow
def test_simulation_learns_each_fits_threshold_when_told(sim_store, capsys, caplog):
    store, _ = sim_store
    argv = ["feedback", str(store), "--labelled", "1", "--test", "1", "--rounds", "1"]
    argv += ["--per-round", "4", "--seeds", "1", "--epochs", "2", "--no-progress"]
    assert main([*argv, "--finetune-epochs", "1", "--learn-threshold"]) == 0
    folder = report_folder(capsys.readouterr().out)
    curve = json.loads((folder / "curve.json").read_text())
    assert curve["config"]["threshold"] is None
    rows = [*curve["rows"], *curve["reference_rows"], *curve["control_rows"]]
    assert len(rows) == 4 and all(0.0 <= r["threshold"] <= 1.0 for r in rows)
    # round 0: the one labelled subject, held out, leaves its fold nothing to learn from,
    # so the model keeps its default threshold, and says so
    assert rows[0]["threshold"] == DEFAULT_THRESHOLD
    assert "no threshold learnt on the labelled subjects" in caplog.text
    report = (folder / "report.md").read_text()
    assert "the threshold each fit learns" in report and "| AUC | threshold |" in report

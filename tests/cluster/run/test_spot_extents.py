"""Micro spots from the extent head's timestep scores, as spot_table writes them.

One 100-frame video at 50 fps, windows of 10 frames every 5, 5 timesteps of 2 frames each.
A micro-movement runs over frames 44-56, across the end of the one window that scores
high (40-49); every timestep whose middle lies in it scores 0.9, the others 0.05:

    frame      0   ...   40    44 .. 49 .. 56   ...   99
    truth                      [============]
    window 40            [==========]            score 0.9, the others 0.1

The window-long spot 40-49 (greedy NMS) shares 6 of the 17 frames of window and movement
together (IoU 0.35, a miss under MEGC's rule); the run of the per-frame profile starts and
ends with the movement.
"""

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cluster.run.spot import chosen_intervals, chosen_threshold, spot_table
from pipeline.core.extents import step_labels
from pipeline.core.intervals import Interval
from schemas import WINDOW_PREDICTIONS, conform

TRUTH = Interval(44, 56)
STARTS = np.arange(0, 91, 5)
VIDEOS = pa.table({"dataset": ["d"], "subject": ["s"], "video": ["v"], "fps": [50.0]})


def predictions(with_steps: bool = True) -> pa.Table:
    steps = 0.05 + 0.85 * step_labels(STARTS, STARTS + 9, 5, [TRUTH])
    rows = [
        {
            "model_id": "m", "fold": "none", "dataset": "d", "subject": "s", "video": "v",
            "window": i, "start_frame": int(start), "end_frame": int(start) + 9,
            "score": 0.9 if start == 40 else 0.1, "label": None, "macro_score": None,
            "step_scores": steps[i].tolist() if with_steps else None,
        }
        for i, start in enumerate(STARTS)
    ]  # fmt: skip
    return conform(rows, WINDOW_PREDICTIONS)


def micro(table: pa.Table) -> list[Interval]:
    rows = table.filter(pc.equal(table.column("kind"), "micro")).to_pylist()
    return [Interval(r["start_frame"], r["end_frame"]) for r in rows]


def test_the_spot_is_the_movements_run_not_its_window():
    (run,) = micro(spot_table(predictions(), VIDEOS, 0.5))
    (window,) = micro(spot_table(predictions(), VIDEOS, 0.5, extents=None))
    assert window == Interval(40, 49) and window.iou(TRUTH) < 0.5
    # the profile is 0.9 on frames 45..56 (44 sits where a timestep outside meets one
    # inside): that run, padded by 0.08 s (4 frames at 50 fps)
    assert run == Interval(41, 60) and run.iou(TRUTH) >= 0.5 and run.coverage_of(TRUTH) == 1


def test_macro_runs_keep_the_window_threshold():
    preds = predictions().to_pylist()
    for r in preds:
        r["macro_score"] = 0.6 if 70 <= r["start_frame"] <= 80 else 0.0
    table = spot_table(conform(preds, WINDOW_PREDICTIONS), VIDEOS, 0.5, macro_threshold=0.7)
    assert micro(table) == [Interval(41, 60)]
    assert table.filter(pc.equal(table.column("kind"), "macro")).num_rows == 0
    table = spot_table(conform(preds, WINDOW_PREDICTIONS), VIDEOS, 0.5, macro_threshold=0.5)
    macro = table.filter(pc.equal(table.column("kind"), "macro")).to_pylist()
    assert [(r["start_frame"], r["end_frame"]) for r in macro] == [(70, 89)]


def test_predictions_without_timestep_scores_keep_window_long_spots():
    assert micro(spot_table(predictions(with_steps=False), VIDEOS, 0.5)) == [Interval(40, 49)]
    old = predictions().drop_columns(["step_scores"])  # predictions written before the head
    assert micro(spot_table(old, VIDEOS, 0.5)) == [Interval(40, 49)]


def labelled(subject: str) -> list[dict]:
    """``predictions()`` for ``subject``, labelled, with a distractor: windows 70-80 score
    0.6 and their timesteps 0.45."""
    rows = predictions().to_pylist()
    for r in rows:
        r |= {"subject": subject, "video": f"{subject}_1", "fold": subject}
        r["label"] = r["start_frame"] == 40
        if 70 <= r["start_frame"] <= 80:
            r["score"], r["step_scores"] = 0.6, [0.45] * 5
    return rows


def test_the_micro_threshold_is_chosen_on_profile_runs_and_the_window_one_beside_it():
    preds = conform([r for s in "ABC" for r in labelled(s)], WINDOW_PREDICTIONS)
    videos = pa.table(
        {"dataset": ["d"] * 3, "subject": list("ABC"), "video": [f"{s}_1" for s in "ABC"],
         "fps": [50.0] * 3}
    )  # fmt: skip
    truth = {("d", s, f"{s}_1"): [TRUTH] for s in "ABC"}
    chosen = chosen_threshold(preds, truth, videos)
    assert chosen["spots"] == "profile" and chosen["f1"] == 1.0
    assert 0.45 < chosen["threshold"] <= 0.9 and 0.6 < chosen["window_threshold"] <= 0.9
    # without the videos' frame rates (or timestep scores) it is chosen on windows alone,
    # and no window covers 80% of these movements: nothing to choose by
    assert chosen_threshold(preds, truth) is None
    # each held-out subject: both chosen on the others, the profile's for its micro spots
    intervals, per_subject, windows = chosen_intervals(preds, videos, truth)
    assert set(per_subject) == set(windows) == set("ABC")
    assert all(0.6 < windows[s] <= 0.9 for s in "ABC")  # on window scores, as above
    assert micro(intervals) == [Interval(41, 60)] * 3


def test_a_budget_keeps_the_best_micro_spots_that_fit():
    preds = predictions().to_pylist()
    for r in preds:  # a second, weaker movement: the profile 0.7 on frames 10..24
        if r["start_frame"] in (5, 10, 15, 20):
            r["step_scores"] = [0.7] * 5
    preds = conform(preds, WINDOW_PREDICTIONS)
    videos = VIDEOS.append_column("n_frames", pa.array([100], pa.int64()))
    both = micro(spot_table(preds, videos, 0.5))
    assert both == [Interval(6, 28), Interval(41, 60)]  # 23 + 20 frames
    # 43 frames fit in 0.43 of 100; in 0.42 only the better one (20 frames), though the
    # weaker one's 23 frames alone would fit in 0.25: the ranking is cut, not packed
    assert micro(spot_table(preds, videos, 0.5, budget=0.43)) == both
    assert micro(spot_table(preds, videos, 0.5, budget=0.42)) == [Interval(41, 60)]
    assert micro(spot_table(preds, videos, 0.5, budget=0.19)) == []


def test_under_a_budget_a_run_longer_than_a_micro_movement_is_split():
    preds = predictions().to_pylist()
    for r in preds:  # something slow before the movement: the profile 0.7 on frames 0..39
        if r["start_frame"] < 40:
            r["step_scores"] = [0.7] * 5
    preds = conform(preds, WINDOW_PREDICTIONS)
    videos = VIDEOS.append_column("n_frames", pa.array([100], pa.int64()))
    (whole,) = micro(spot_table(preds, videos, 0.5))  # one run, 1.2 s: too long to review
    assert whole.start == 0 and whole.end >= 56 and whole.length > 30
    # Under a budget, pieces of at most 0.6 s (30 frames at 50 fps); all of them fit in
    # the whole video, and together they keep the run's frames but for slivers.
    pieces = micro(spot_table(preds, videos, 0.5, budget=1.0))
    assert len(pieces) >= 2 and all(p.length <= 30 for p in pieces)
    assert all(b.start > a.end for a, b in itertools.pairwise(pieces))
    assert sum(p.length for p in pieces) >= whole.length - 2 * 4  # slivers < min_len (8)
    # The best stretch comes first: a budget of 0.3 keeps the movement, whole. Unsplit,
    # the run (over 30 frames) would not fit, and the budget would keep nothing.
    (best,) = micro(spot_table(preds, videos, 0.5, budget=0.3))
    assert best.coverage_of(TRUTH) == 1 and best.length <= 30

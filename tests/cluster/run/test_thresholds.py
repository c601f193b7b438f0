"""A spotting threshold learnt on held-out scores: which one, and whose labels choose it.

Three subjects, one 105-frame video each, windows of 10 frames every 5. Each video holds
one micro-movement, frames 40-47, which only the window starting at 40 covers fully;
the window at 70 holds a distractor:

    frame      0    ...    40 .. 47    ...    70 .. 79    ...   104
    truth                  [======]
    A, B       0.1         0.9                0.6               0.1
    C          0.1         0.7                0.6               0.1
    D          0.95 everywhere, no ground truth (label null)

On A and B, a threshold in (0.6, 0.9] spots the movement alone (F1 1); at or below 0.6
the distractor is spotted too. C needs one in (0.6, 0.7].
"""

import pyarrow as pa
import pytest

from cluster.run.spot import chosen_intervals, chosen_threshold
from pipeline.core.intervals import Interval
from schemas import WINDOW_PREDICTIONS, conform

STARTS = range(0, 100, 5)
PEAKS = {"A": 0.9, "B": 0.9, "C": 0.7}
TRUTH = {("d", s, f"{s}_1"): [Interval(40, 47)] for s in PEAKS}


def predictions(subjects=("A", "B", "C", "D")) -> pa.Table:
    rows = []
    for s in subjects:
        for i, start in enumerate(STARTS):
            score = {40: PEAKS.get(s), 70: 0.6}.get(start) or 0.1
            rows.append(
                {
                    "model_id": "m", "fold": s, "dataset": "d", "subject": s, "video": f"{s}_1",
                    "window": i, "start_frame": start, "end_frame": start + 9,
                    "score": 0.95 if s == "D" else score,
                    "label": None if s == "D" else start == 40, "macro_score": None,
                }
            )  # fmt: skip
    return conform(rows, WINDOW_PREDICTIONS)


VIDEOS = pa.table(
    {"dataset": ["d"] * 4, "subject": list("ABCD"), "video": [f"{s}_1" for s in "ABCD"],
     "fps": [50.0] * 4}
)  # fmt: skip


def test_the_threshold_is_the_f1_best_on_labelled_videos_only():
    chosen = chosen_threshold(predictions(), TRUTH)
    # D (no ground truth) is left out: its 0.95s would otherwise all be false spots.
    assert chosen["videos"] == 3 and chosen["subjects"] == 3 and chosen["movements"] == 3
    assert 0.6 < chosen["threshold"] <= 0.7 and chosen["f1"] == 1.0


def test_no_threshold_without_movements_to_choose_by():
    assert chosen_threshold(predictions(), {}) is None


def test_each_subject_is_spotted_at_the_threshold_the_others_choose():
    intervals, chosen, windows = chosen_intervals(predictions(("A", "B", "C")), VIDEOS, TRUTH)
    assert windows == chosen  # spots on window scores: one threshold
    # C's own best would be 0.7; A and B choose higher, so C's movement is not spotted.
    assert chosen["C"] == pytest.approx(0.9, abs=1e-6)
    assert 0.6 < chosen["A"] <= 0.7 and 0.6 < chosen["B"] <= 0.7
    micro = intervals.filter(pa.compute.equal(intervals.column("kind"), "micro")).to_pylist()
    spotted = {(r["subject"], r["start_frame"]) for r in micro}
    assert spotted == {("A", 40), ("B", 40)}

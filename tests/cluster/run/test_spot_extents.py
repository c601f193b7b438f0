"""Micro spots fitted to the extent head's timestep scores, as spot_table writes them.

One 100-frame video at 50 fps, windows of 10 frames every 5, 5 timesteps of 2 frames each.
A micro-movement runs over frames 44-52, across the end of the one window that scores
high (40-49); every timestep whose middle lies in it scores 0.9, the others 0.05:

    frame      0   ...   40    44 .. 49  52   ...   99
    truth                      [=========]
    window 40            [==========]            score 0.9, the others 0.1

The window-long spot 40-49 shares 6 of the 13 frames of window and movement together
(IoU 0.46, a miss under MEGC's rule); fitted to the timestep scores it is not.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cluster.run.spot import spot_table
from pipeline.core.extents import step_labels
from pipeline.core.intervals import Interval
from schemas import WINDOW_PREDICTIONS, conform

TRUTH = Interval(44, 52)
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


def test_the_spot_is_fitted_to_the_movement_not_to_its_window():
    (fitted,) = micro(spot_table(predictions(), VIDEOS, 0.5))
    (window,) = micro(spot_table(predictions(), VIDEOS, 0.5, extents=None))
    assert window == Interval(40, 49) and window.iou(TRUTH) < 0.5
    assert fitted.iou(TRUTH) >= 0.5 and fitted.coverage_of(TRUTH) >= 0.8
    assert fitted.end > window.end  # it reached past the window the suppression kept


def test_predictions_without_timestep_scores_keep_window_long_spots():
    assert micro(spot_table(predictions(with_steps=False), VIDEOS, 0.5)) == [Interval(40, 49)]
    old = predictions().drop_columns(["step_scores"])  # predictions written before the head
    assert micro(spot_table(old, VIDEOS, 0.5)) == [Interval(40, 49)]

"""A yes that marks the movement's extent: checks, resolution, labels, storage, old logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cluster.store import Store
from cluster.store.verdict_log import VerdictLog
from pipeline.core.intervals import Interval
from pipeline.core.verdicts import (
    BadVerdict,
    IntervalKey,
    Verdict,
    labels_from_verdicts,
    parse_verdict,
    resolve,
    steps_from_verdicts,
)
from schemas import VERDICTS

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def verdict(annotator, value, minute, start=100, end=151, **kw):
    return Verdict("m", "samm", "s1", "v1", start, end, value, annotator,
                   created_at=T0 + timedelta(minutes=minute), **kw)  # fmt: skip


def test_an_extent_is_both_frames_a_range_and_only_on_a_yes():
    assert verdict("a", "yes", 0, onset_frame=90, offset_frame=130).extent == Interval(90, 130)
    assert verdict("a", "yes", 0).extent is None
    with pytest.raises(BadVerdict, match="both onset and offset"):
        verdict("a", "yes", 0, onset_frame=90)
    with pytest.raises(BadVerdict, match="not a frame range"):
        verdict("a", "yes", 0, onset_frame=130, offset_frame=90)
    with pytest.raises(BadVerdict, match="only a yes"):
        verdict("a", "no", 0, onset_frame=90, offset_frame=130)
    got = parse_verdict({"verdict": "yes", "annotator": "ana", "onset": 90, "offset": 130})
    assert (got.onset, got.offset) == (90, 130)
    for bad, message in (
        ({"onset": 90}, "both onset and offset"),
        ({"onset": "90", "offset": 130}, "onset must be a frame number"),
        ({"onset": True, "offset": 130}, "onset must be a frame number"),
        ({"onset": -1, "offset": 130}, "not a frame range"),
    ):
        with pytest.raises(BadVerdict, match=message):
            parse_verdict({"verdict": "yes", "annotator": "ana", **bad})


def test_the_newest_marked_yes_gives_the_extent():
    log = [
        verdict("ana", "yes", 0, onset_frame=110, offset_frame=140),
        verdict("ben", "yes", 1, onset_frame=105, offset_frame=135),
        verdict("cy", "yes", 2),  # unmarked: says nothing of where
    ]
    (res,) = resolve(log).values()
    assert res.label == "yes" and res.extent == Interval(105, 135)
    ben_again = verdict("ben", "no", 3)  # ben takes it back: ana's extent is what is left
    (res,) = resolve([*log, ben_again]).values()
    assert res.label == "yes" and res.extent == Interval(110, 140)
    (res,) = resolve([verdict("ana", "yes", 0)]).values()
    assert res.extent is None


def test_one_marked_yes_labels_every_window_covering_the_movement():
    # windows of 50 frames every 20: a yes on the window 100..150 marks a movement at
    # 125..150, which the windows starting at 100 and 120 both cover (>= 80% of it)
    starts = np.arange(0, 300, 20)
    ends = starts + 50
    cols = (["samm"] * len(starts), ["s1"] * len(starts), ["v1"] * len(starts), starts, ends)
    unmarked = labels_from_verdicts(*cols, [verdict("a", "yes", 0, 100, 150)])
    assert starts[unmarked == 1].tolist() == [100]  # the interval itself: one window
    marked = verdict("a", "yes", 0, 100, 150, onset_frame=125, offset_frame=150)
    labels = labels_from_verdicts(*cols, [marked])
    assert starts[labels == 1].tolist() == [100, 120]
    assert (labels[(starts != 100) & (starts != 120)] == -1).all()


def test_a_marked_yes_labels_the_timesteps_it_covers():
    # windows of 5 timesteps over frames [s, s + 50]: steps at s + 0-10, 10-20, ... 40-50
    # (middles s + 5, 15, 25, 35, 45). The yes marks 125..150; a no on window 200..250.
    #   window 100..150: middles 105 115 125 135 145 -> 0 0 1 1 1
    #   window 120..170: middles 125 135 145 155 165 -> 1 1 1 0 0
    #   window 200..250 (wholly inside the no): all 0; every other window: -1
    starts = np.arange(0, 300, 20)
    ends = starts + 50
    keys = (["samm"] * len(starts), ["s1"] * len(starts), ["v1"] * len(starts))
    log = [verdict("a", "yes", 0, 100, 150, onset_frame=125, offset_frame=150),
           verdict("a", "no", 1, 200, 250)]  # fmt: skip
    labels = labels_from_verdicts(*keys, starts, ends, log)
    steps = steps_from_verdicts(*keys, starts, ends, labels, log, n_steps=5)
    by_start = dict(zip(starts.tolist(), steps.tolist(), strict=True))
    assert by_start[100] == [0, 0, 1, 1, 1]
    assert by_start[120] == [1, 1, 1, 0, 0]
    assert by_start[200] == [0, 0, 0, 0, 0]
    others = [s for s in by_start if s not in (100, 120, 200)]
    assert all(by_start[s] == [-1] * 5 for s in others)
    # an unmarked yes: the interval stands for the movement
    plain = [verdict("a", "yes", 0, 100, 150)]
    steps = steps_from_verdicts(*keys, starts, ends, labels_from_verdicts(*keys, starts, ends,
                                plain), plain, n_steps=5)  # fmt: skip
    assert steps[starts == 100].tolist() == [[1, 1, 1, 1, 1]]


def test_extents_are_stored_and_old_logs_still_load(tmp_path):
    store = Store.open(str(tmp_path / "store"))
    log = VerdictLog(store)
    marked = verdict("ana", "yes", 0, onset_frame=110, offset_frame=140)
    log.append(marked)
    # a verdict file written before extents existed: the schema without its two columns
    old_schema = pa.schema([f for f in VERDICTS if f.name not in ("onset_frame", "offset_frame")])
    row = {k: v for k, v in verdict("ben", "yes", 1, 200, 251).to_row().items()
           if k in old_schema.names}  # fmt: skip
    folder = tmp_path / "store" / "verdicts" / "dataset=samm" / "subject=s1" / "video=v1"
    pq.write_table(pa.Table.from_pylist([row], schema=old_schema), folder / "old.parquet")
    got = {v.annotator: v for v in VerdictLog(store).verdicts()}
    assert got["ana"] == marked  # the extent survives the round trip
    assert got["ben"].extent is None and got["ben"].verdict == "yes"
    key = IntervalKey("samm", "s1", "v1", 200, 251)
    assert resolve(got.values())[key].label == "yes"  # old rows still count

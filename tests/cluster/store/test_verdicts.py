"""Verdicts: checking what annotators send, resolving the log, labels for training, storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cluster.store import Store
from cluster.store.verdict_log import VerdictLog
from pipeline.core.intervals import Interval
from pipeline.core.labels import verdict_labels
from pipeline.core.verdicts import (
    BadVerdict,
    IntervalKey,
    Verdict,
    normalise_action_units,
    parse_verdict,
    resolve,
)
from schemas import VERDICTS, validate_table

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def verdict(annotator, value, minute, start=100, end=150, video="v1", **kw):
    return Verdict(
        model_id="m",
        dataset="samm",
        subject="s1",
        video=video,
        start_frame=start,
        end_frame=end,
        verdict=value,
        annotator=annotator,
        created_at=T0 + timedelta(minutes=minute),
        **kw,
    )


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("4+7", "4+7"),
        ("AU4 + au7", "4+7"),
        ("r12, L2", "R12+L2"),
        ("AU12A", "12A"),
        ("  ", None),
        (None, None),
    ],
)
def test_action_units_are_normalised_to_samm_style(text, want):
    assert normalise_action_units(text) == want


@pytest.mark.parametrize("text", ["smile", "4+", "AU", "12345", "4;7"])
def test_action_units_that_are_not_facs_codes_are_refused(text):
    with pytest.raises(BadVerdict, match="not FACS codes"):
        normalise_action_units(text)


def test_parse_accepts_a_full_verdict_and_trims_it():
    got = parse_verdict(
        {"verdict": "no", "annotator": " Ana Lee ", "note": " blink ", "action_units": ""}
    )
    assert (got.verdict, got.annotator, got.note, got.action_units) == (
        "no",
        "Ana Lee",
        "blink",
        None,
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("yes", "must be a JSON object"),
        ({"verdict": "Yes", "annotator": "a"}, "verdict must be one of"),
        ({"verdict": 1, "annotator": "a"}, "verdict must be text"),
        ({"verdict": "yes", "annotator": "  "}, "annotator is missing"),
        ({"verdict": "yes", "annotator": "a" * 65}, "at most 64"),
        ({"verdict": "yes", "annotator": "a/../b"}, "annotator"),
        ({"verdict": "yes", "annotator": "a", "note": "x" * 2001}, "at most 2000"),
        ({"verdict": "yes", "annotator": "a", "note": "a\x00b"}, "control characters"),
        ({"verdict": "yes", "annotator": "a", "verdit": "no"}, "unknown fields ['verdit']"),
    ],
)
def test_parse_refuses_malformed_verdicts_saying_why(payload, message):
    with pytest.raises(BadVerdict, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_verdict(payload)


def test_a_verdict_checks_itself():
    with pytest.raises(BadVerdict, match="verdict must be one of"):
        verdict("a", "maybe", 0)
    with pytest.raises(BadVerdict, match="not a frame range"):
        verdict("a", "yes", 0, start=10, end=5)
    with pytest.raises(BadVerdict, match="time zone"):
        Verdict("m", "d", "s", "v", 0, 1, "yes", "a", created_at=datetime(2026, 1, 1))


def test_resolution_takes_each_annotators_latest_then_the_majority():
    log = [
        verdict("ana", "yes", 0),
        verdict("ben", "no", 1),
        verdict("ana", "no", 2),  # ana changes her mind: 100..150 -> no, no
        verdict("ana", "yes", 0, start=200, end=250),
        verdict("ben", "no", 1, start=200, end=250),  # a tie -> undecided
        verdict("ana", "unsure", 0, start=300, end=350),  # only unsure -> undecided
        verdict("ana", "yes", 0, start=400, end=450),
        verdict("ben", "yes", 1, start=400, end=450),
        verdict("cy", "no", 2, start=400, end=450),  # 2 yes vs 1 no -> yes
    ]
    res = resolve(reversed(log))  # the order of the log does not matter, the times do
    got = {(k.start, k.end): r.label for k, r in res.items()}
    assert got == {(100, 150): "no", (200, 250): None, (300, 350): None, (400, 450): "yes"}
    key = IntervalKey("samm", "s1", "v1", 100, 150)
    assert res[key].latest["ana"].verdict == "no"
    assert res[key].counts == {"yes": 0, "no": 2, "unsure": 0}


def test_window_labels_from_resolved_intervals():
    # windows of 50 frames every 20 frames
    starts = np.arange(0, 400, 20)
    ends = starts + 50
    labels = verdict_labels(starts, ends, yes=[Interval(100, 150)], no=[Interval(260, 310)])
    want = np.full(len(starts), -1)
    want[starts == 100] = 1  # covers the yes interval fully
    # 60..90 and 120..140 touch the yes interval without covering 80% of it: unlabelled
    want[starts == 260] = 0  # wholly inside the no interval 260..310
    assert labels.tolist() == want.tolist()
    # 240 and 280 have 31 and 31 of their 51 frames inside it: unlabelled by default,
    # negative when half the frames are enough
    half = verdict_labels(
        starts, ends, yes=[Interval(100, 150)], no=[Interval(260, 310)], negative_overlap=0.5
    )
    want[(starts >= 240) & (starts <= 280)] = 0
    assert half.tolist() == want.tolist()
    assert labels.dtype == np.int8


def test_a_window_touching_a_yes_interval_is_never_a_negative():
    labels = verdict_labels([0, 40], [50, 90], yes=[Interval(60, 90)], no=[Interval(0, 90)])
    assert labels.tolist() == [0, 1]
    labels = verdict_labels([0, 40], [50, 90], yes=[Interval(45, 60)], no=[Interval(0, 90)])
    assert labels.tolist() == [-1, 1]  # 0..50 is inside the no but touches the yes


def test_the_log_keeps_every_verdict_in_its_own_file(tmp_path):
    store = Store.open(str(tmp_path / "store"))
    log = VerdictLog(store)
    assert log.verdicts() == []
    first = verdict("ana", "yes", 0, action_units="4+7", note="brow", score=0.75)
    paths = [
        log.append(first),
        log.append(verdict("ana", "no", 1)),
        log.append(verdict("b", "no", 3, video="v2")),
    ]
    assert len(set(paths)) == 3
    assert all("/verdicts/dataset=samm/subject=s1/video=" in p for p in paths)
    table = log.table()
    validate_table(table, VERDICTS)
    assert table.num_rows == 3
    assert [v.verdict for v in log.verdicts("samm", "s1", "v1")] == ["yes", "no"]
    assert log.verdicts()[0] == first  # every field survives the round trip
    other = VerdictLog(store, folder="simulations/x/verdicts")
    assert other.verdicts() == []


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_log_sees_what_another_writer_adds(tmp_path, where, request):
    root = f"{request.getfixturevalue('s3_bucket')}/store" if where == "s3" else str(tmp_path)
    # two writers as two processes would be: S3 clients of their own (own listing caches)
    options = {"skip_instance_cache": True} if where == "s3" else {}
    mine, theirs = VerdictLog(Store.open(root, **options)), VerdictLog(Store.open(root, **options))
    assert mine.verdicts() == []
    theirs.append(verdict("ben", "no", 0))
    assert [v.annotator for v in mine.verdicts()] == ["ben"]
    theirs.append(verdict("cy", "yes", 1))
    mine.append(verdict("ana", "yes", 2))
    assert [v.annotator for v in mine.verdicts()] == ["ben", "cy", "ana"]
    assert [v.annotator for v in mine.verdicts("samm", "s1", "v1")] == ["ben", "cy", "ana"]
    assert mine.verdicts("samm", "s1", "v2") == []

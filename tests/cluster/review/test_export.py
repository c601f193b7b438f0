"""Export of reviewed intervals: known verdicts -> known CSV rows and a SAMM workbook."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pandas as pd
import pytest

from cluster.cli import main
from cluster.review.export import (
    export_csv,
    export_samm,
    merge_action_units,
    reviewed_intervals,
)
from cluster.store import Store
from cluster.store.verdict_log import VerdictLog
from pipeline.core.verdicts import Verdict
from pipeline.datasets import SAMM_SHEET, SAMM_WORKBOOK, read_samm
from schemas import SPOTTED_INTERVALS, VERDICTS, VIDEOS, conform

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
N_FRAMES = 40
# (subject, video, fps, first frame number): 006_* numbered from 1, 007_1 from 0.
VIDEOS_SPEC = [("006", "006_1", 200.0, 1), ("006", "006_2", 200.0, 1), ("007", "007_1", 100.0, 0)]
# (video, start, end, score) spotted by m1.
SPOTTED = [
    ("006_1", 5, 9, 0.9),
    ("006_1", 20, 24, 0.8),
    ("006_1", 30, 34, 0.7),
    ("006_2", 3, 6, 0.6),
    ("006_2", 10, 15, 0.55),
    ("007_1", 0, 4, 0.95),
]
# (minutes after T0, model, video, start, end, verdict, annotator, action units, note)
VERDICT_SPEC = [
    (1, "m1", "006_1", 5, 9, "yes", "alice", "4+7", "brow lowerer"),  # two agree
    (2, "m1", "006_1", 5, 9, "yes", "bob", "7+12", None),
    (3, "m1", "006_1", 20, 24, "yes", "alice", "4", None),  # disagree: undecided
    (4, "m1", "006_1", 20, 24, "no", "bob", None, "blink"),
    (5, "m1", "006_1", 30, 34, "yes", "alice", "12", None),  # changes her mind: no
    (6, "m1", "006_1", 30, 34, "no", "alice", None, "head turn"),
    (7, "m1", "006_2", 3, 6, "unsure", "carol", None, None),  # only unsure: undecided
    (8, "m1", "007_1", 0, 4, "yes", "alice", "R12", None),  # from frame 0 of a 0-numbered video
    (9, "m2", "006_2", 20, 25, "yes", "bob", "14", None),  # not spotted by m1
    (10, "m2", "006_2", 20, 25, "unsure", "alice", None, None),
    (11, "m2", "006_2", 20, 25, "yes", "dave", "14+17", None),
]
SUBJECT = {v: s for s, v, _, _ in VIDEOS_SPEC}


def _video_rows(root: Path) -> list[dict]:
    return [
        {
            "dataset": "samm",
            "subject": s,
            "video": v,
            "uri": str(root / v),
            "source_kind": "frames",
            "fps": fps,
            "n_frames": N_FRAMES,
            "width": 8,
            "height": 8,
            "first_frame_number": first,
            "fingerprint": "x",
            "variable_rate": False,
        }
        for s, v, fps, first in VIDEOS_SPEC
    ]


def _intervals(model_id: str, spotted=SPOTTED) -> object:
    fps = {v: f for _, v, f, _ in VIDEOS_SPEC}
    return conform(
        [
            {
                "model_id": model_id,
                "dataset": "samm",
                "subject": SUBJECT[v],
                "video": v,
                "start_frame": a,
                "end_frame": b,
                "start_s": a / fps[v],
                "end_s": b / fps[v],
                "score": score,
                "kind": "micro",
            }
            for v, a, b, score in spotted
        ],
        SPOTTED_INTERVALS,
    )


def _verdict(minutes, model, video, start, end, verdict, annotator, aus, note) -> Verdict:
    return Verdict(
        model_id=model,
        dataset="samm",
        subject=SUBJECT[video],
        video=video,
        start_frame=start,
        end_frame=end,
        verdict=verdict,
        annotator=annotator,
        score=0.42 if model == "m2" else None,
        action_units=aus,
        note=note,
        created_at=T0 + timedelta(minutes=minutes),
        verdict_id=f"v{minutes:02d}",
    )


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store.open(str(tmp_path / "store"))
    for row in _video_rows(tmp_path / "corpus"):
        parts = [f"dataset={row['dataset']}", f"subject={row['subject']}", f"video={row['video']}"]
        store.write_parquet(conform([row], VIDEOS), "videos", *parts, "part-0.parquet")
    store.write_parquet(_intervals("m1"), "intervals", "model=m1", "part-0.parquet")
    baseline = _intervals("baseline-moilanen", [("006_1", 1, 2, 0.1)])
    store.write_parquet(baseline, "intervals", "model=baseline-moilanen", "part-0.parquet")
    log = VerdictLog(store)
    for spec in reversed(VERDICT_SPEC):  # appended out of order: created_at decides
        log.append(_verdict(*spec))
    return store


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_merge_action_units_keeps_each_code_once():
    assert merge_action_units(["4+7", None, "7+12", ""]) == "4+7+12"
    assert merge_action_units([]) == ""


def test_reviewed_intervals_resolve_the_log(store):
    df = reviewed_intervals(store)  # m1: the only model besides the baseline
    got = {
        (r.video, r.start_frame, r.end_frame): (
            r.model_id,
            r.label,
            r.n_yes,
            r.n_no,
            r.n_unsure,
            r.annotators,
            r.action_units,
        )
        for r in df.itertuples()
    }
    assert got == {
        ("006_1", 5, 9): ("m1", "yes", 2, 0, 0, "alice;bob", "4+7+12"),
        ("006_1", 20, 24): ("m1", "undecided", 1, 1, 0, "alice;bob", ""),
        ("006_1", 30, 34): ("m1", "no", 0, 1, 0, "alice", ""),
        ("006_2", 3, 6): ("m1", "undecided", 0, 0, 1, "carol", ""),
        ("006_2", 10, 15): ("m1", "unreviewed", 0, 0, 0, "", ""),
        ("006_2", 20, 25): ("m2", "yes", 2, 0, 1, "alice;bob;dave", "14+17"),
        ("007_1", 0, 4): ("m1", "yes", 1, 0, 0, "alice", "R12"),
    }
    keys = list(zip(df["video"], df["start_frame"], strict=True))
    assert keys == sorted(keys)
    first = df.iloc[0]
    assert first["notes"] == "alice: brow lowerer"
    assert first["last_verdict_at"] == "2024-05-01T10:02:00Z"
    assert (first["start_s"], first["end_s"], first["score"]) == (0.025, 0.045, 0.9)
    changed = df[df["start_frame"] == 30].iloc[0]
    assert changed["notes"] == "alice: head turn"
    other = df[df["model_id"] == "m2"].iloc[0]
    assert (other["start_s"], other["end_s"], other["score"]) == (0.1, 0.125, 0.42)
    assert other["last_verdict_at"] == "2024-05-01T10:11:00Z"


def test_export_csv_rows_and_labels(store, tmp_path):
    out = tmp_path / "reviewed.csv"
    assert export_csv(store, str(out)) == 7
    df = _read_csv(out)
    assert list(df["label"]) == ["yes", "undecided", "no", "undecided", "unreviewed", "yes", "yes"]
    assert list(df["video"]) == ["006_1"] * 3 + ["006_2"] * 3 + ["007_1"]
    assert df.loc[4, "last_verdict_at"] == "" and df.loc[4, "score"] == "0.55"


def test_raw_csv_has_every_verdict(store, tmp_path):
    out = tmp_path / "verdicts.csv"
    assert export_csv(store, str(out), raw=True) == len(VERDICT_SPEC)
    df = _read_csv(out)
    assert list(df.columns) == VERDICTS.names
    assert list(df["verdict_id"]) == [f"v{m:02d}" for m, *_ in VERDICT_SPEC]
    assert list(df["verdict"]) == [spec[5] for spec in VERDICT_SPEC]
    assert df.loc[0, "created_at"] == "2024-05-01T10:01:00Z"
    with pytest.raises(ValueError, match="--model-id does not apply"):
        export_csv(store, str(out), model_id="m1", raw=True)


def _corpus_frames(root: Path) -> None:
    for _, video, _, first in VIDEOS_SPEC:
        folder = root / "SAMM_longvideos" / video
        folder.mkdir(parents=True)
        for n in range(first, first + N_FRAMES):
            assert cv2.imwrite(str(folder / f"{video}_{n:04d}.jpg"), np.zeros((8, 8), np.uint8))


def test_samm_workbook_round_trips(store, tmp_path):
    corpus = tmp_path / "corpus"
    _corpus_frames(corpus)
    assert export_samm(store, str(corpus / SAMM_WORKBOOK)) == 3

    ws = openpyxl.load_workbook(corpus / SAMM_WORKBOOK)[SAMM_SHEET]
    rows = [r for r in ws.iter_rows(min_row=11, values_only=True)]
    assert [r[1:8] for r in rows] == [
        ("006_1_1", None, 6, -1, 10, 5, "Micro - 1/2"),
        ("006_2_1", None, 21, -1, 26, 6, "Micro - 1/2"),
        ("007_1_1", None, 0, -1, 4, 5, "Micro - 1/2"),
    ]
    assert "mespot review" in rows[0][9] and "alice;bob" in rows[0][9]

    back = read_samm(str(corpus))
    assert not back.skipped
    got = sorted(
        (a.video, a.onset_frame, a.offset_frame, a.kind, a.apex_frame, a.action_units)
        for a in back.annotations
    )
    assert got == [
        ("006_1", 5, 9, "micro", None, "4+7+12"),
        ("006_2", 20, 25, "micro", None, "14+17"),
        ("007_1", 0, 4, "micro", None, "R12"),
    ]
    assert {(a.subject, a.movement) for a in back.annotations} == {
        ("006", "006_1_1"),
        ("006", "006_2_1"),
        ("007", "007_1_1"),
    }


def test_samm_needs_the_videos_frame_numbering(store, tmp_path):
    store.fs.rm(store.path("videos"), recursive=True)
    with pytest.raises(ValueError, match="first_frame_number"):
        export_samm(store, str(tmp_path / "x.xlsx"))


def test_cli_infers_the_format_from_the_suffix(store, tmp_path, capsys):
    assert main(["export", store.root, str(tmp_path / "a.csv")]) == 0
    assert "wrote 7 intervals" in capsys.readouterr().out
    assert len(_read_csv(tmp_path / "a.csv")) == 7
    assert main(["export", store.root, str(tmp_path / "b.csv"), "--raw"]) == 0
    assert f"wrote {len(VERDICT_SPEC)} verdicts" in capsys.readouterr().out
    assert main(["export", store.root, str(tmp_path / SAMM_WORKBOOK)]) == 0
    assert "wrote 3 yes intervals" in capsys.readouterr().out
    openpyxl.load_workbook(tmp_path / SAMM_WORKBOOK)[SAMM_SHEET]
    assert main(["export", store.root, str(tmp_path / "c.txt"), "--format", "csv"]) == 0
    assert len(_read_csv(tmp_path / "c.txt")) == 7


def test_cli_refuses_an_unknown_suffix(store, tmp_path, capsys):
    assert main(["export", store.root, str(tmp_path / "out.txt")]) == 2
    err = capsys.readouterr().err
    assert "mespot export" in err and "--format" in err
    assert not (tmp_path / "out.txt").exists()
    assert main(["export", store.root, str(tmp_path / "out.xlsx"), "--raw"]) == 2
    assert "--raw" in capsys.readouterr().err


def test_cli_needs_model_id_when_two_models_have_intervals(store, tmp_path, capsys):
    store.write_parquet(_intervals("m2", SPOTTED[:1]), "intervals", "model=m2", "part-0.parquet")
    assert main(["export", store.root, str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert "['m1', 'm2']" in err and "--model-id" in err
    assert main(["export", store.root, str(tmp_path / "out.csv"), "--model-id", "m2"]) == 0
    df = _read_csv(tmp_path / "out.csv")
    assert set(df["model_id"]) == {"m1", "m2"}  # m2's one interval + verdicts on m1's
    assert len(df) == 1 + 5  # reviewed m1 intervals not spotted by m2 still count
    assert main(["export", store.root, str(tmp_path / "out.csv"), "--model-id", "m3"]) == 2
    assert "no intervals of model 'm3'" in capsys.readouterr().err


def test_cli_without_intervals_says_what_to_run(tmp_path, capsys):
    Store.open(str(tmp_path / "empty")).check_writable()
    assert main(["export", str(tmp_path / "empty"), str(tmp_path / "out.csv")]) == 2
    assert "mespot spot" in capsys.readouterr().err


def test_a_marked_extent_is_exported_and_becomes_the_samm_movement(store, tmp_path):
    # bob marks where the movement on 007_1 0..4 is: frames 1..3 (a yes with an extent)
    marked = replace(_verdict(12, "m1", "007_1", 0, 4, "yes", "bob", "R12", None),
                     onset_frame=1, offset_frame=3, verdict_id="v12")  # fmt: skip
    VerdictLog(store).append(marked)
    df = reviewed_intervals(store, "m1")
    row = df[(df["video"] == "007_1") & (df["start_frame"] == 0)].iloc[0]
    assert (row["label"], row["onset_frame"], row["offset_frame"]) == ("yes", 1, 3)
    assert df[df["video"] == "006_1"]["onset_frame"].isna().all()  # none marked there
    export_csv(store, str(tmp_path / "out.csv"))
    got = _read_csv(tmp_path / "out.csv")
    assert got[got["video"] == "007_1"][["onset_frame", "offset_frame"]].values.tolist() == [
        ["1", "3"]
    ]  # whole frame numbers, not 1.0
    corpus = tmp_path / "corpus"
    _corpus_frames(corpus)
    export_samm(store, str(corpus / SAMM_WORKBOOK))
    back = {a.video: a for a in read_samm(str(corpus)).annotations}
    assert (back["007_1"].onset_frame, back["007_1"].offset_frame) == (1, 3)
    assert (back["006_1"].onset_frame, back["006_1"].offset_frame) == (5, 9)  # unmarked

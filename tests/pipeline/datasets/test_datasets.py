"""Dataset readers on fabricated corpora laid out exactly as the releases are."""

from __future__ import annotations

from pathlib import Path

import cv2
import fsspec
import numpy as np
import openpyxl
import pytest

from pipeline.core.records import Annotation
from pipeline.datasets import (
    Corpus,
    annotations_by_video,
    read_casme2,
    read_generic,
    read_samm,
)

SAMM_HEADER = [
    "Subject",
    "Filename",
    "Inducement Code",
    "Onset",
    "Apex",
    "Offset",
    "Duration",
    "Type",
    "Action Units",
    "Notes",
]


def _frames(folder: Path, names: list[str], size: tuple[int, int] = (12, 16)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        assert cv2.imwrite(str(folder / name), np.full(size, 10 + i % 200, np.uint8))


def _samm_workbook(path: Path, rows: list[list], header: list[str] = SAMM_HEADER) -> None:
    wb = openpyxl.Workbook()
    wb.active.title = "Info"  # the release has other sheets before this one
    ws = wb.create_sheet("FACS_Movement_Only")
    ws["A1"] = "SAMM Long Videos - FACS coded movements"
    ws["A3"] = "Title rows 1-9"
    for col, name in enumerate(header, start=1):
        ws.cell(row=10, column=col, value=name)
    for r, row in enumerate(rows, start=11):
        for col, value in enumerate(row, start=1):
            ws.cell(row=r, column=col, value=value)
    wb.save(path)


def _samm_row(filename: str, onset, apex, offset, kind: str = "Micro - 1/2") -> list:
    subject = int(filename.split("_")[0])
    return [subject, filename, 1, onset, apex, offset, None, kind, "4+7", None]


def _by_row(corpus: Corpus) -> dict[int, Annotation]:
    return {a.source_row: a for a in corpus.annotations}


def _skips(corpus: Corpus, text: str) -> list[str]:
    return [f"{s.what}: {s.reason}" for s in corpus.skipped if text in f"{s.what} {s.reason}"]


# ---------------------------------------------------------------- SAMM


@pytest.fixture
def samm_root(tmp_path: Path) -> Path:
    videos = tmp_path / "SAMM_longvideos"
    _frames(videos / "006_1", [f"006_1_{i:04d}.jpg" for i in range(1, 41)])  # 40 frames
    _frames(videos / "006_2", [f"006_2_{i:04d}.jpg" for i in range(1, 31)])  # 30 frames
    _frames(videos / "007_1", ["007_1_0001.jpg", "007_1_0002.jpg", "007_1_0005.jpg"])  # gap
    rows = [
        _samm_row("006_1_1", 5, 7, 10),  # row 11
        _samm_row("006_1_2", 2.5, -1, 20, "Macro"),  # row 12: x.5 rounds up, no apex
        _samm_row("006_1_3", 0, 3, 6),  # row 13: onset 0
        _samm_row("006_2_1", "abc", 3, 6),  # row 14: non-numeric onset
        _samm_row("006_2_2", 25, 28, 35),  # row 15: past the 30 frames
        _samm_row("006_2_3", 10, 7, 5),  # row 16: offset before onset
        _samm_row("006_2_4", 10, 11, 12, "Blink"),  # row 17: unknown type
        _samm_row("008_1_1", 1, 2, 3),  # row 18: no such video folder
        _samm_row("007_1_1", 1, 2, 3),  # row 19: its folder does not open
        [None] * 10,  # row 20: empty, ignored
        _samm_row("006_2_5", 30, 30, 30, "Micro - 2"),  # row 21: the last frame
    ]
    _samm_workbook(tmp_path / "SAMM_LongVideos_V2_Release.xlsx", rows)
    return tmp_path


def test_samm_known_answers(samm_root: Path) -> None:
    corpus = read_samm(str(samm_root))
    assert [v.video for v in corpus.videos] == ["006_1", "006_2"]
    v = corpus.videos[0]
    assert (v.dataset, v.subject, v.source_kind, v.fps) == ("samm", "006", "frames", 200.0)
    assert (v.n_frames, v.width, v.height, v.first_frame_number) == (40, 16, 12, 1)
    assert len(v.fingerprint) == 16 and v.uri.endswith("SAMM_longvideos/006_1")

    got = _by_row(corpus)
    assert sorted(got) == [11, 12, 13, 21]
    a = got[11]  # frame numbers 5, 7, 10 are indices 4, 6, 9
    assert (a.movement, a.subject, a.video, a.kind) == ("006_1_1", "006", "006_1", "micro")
    assert (a.onset_frame, a.apex_frame, a.offset_frame, a.action_units) == (4, 6, 9, "4+7")
    b = got[12]  # 2.5 rounds half up to number 3: index 2 (Python's round would give 2)
    assert (b.onset_frame, b.apex_frame, b.offset_frame, b.kind) == (2, None, 19, "macro")
    c = got[13]
    assert (c.onset_frame, c.apex_frame, c.offset_frame) == (0, 2, 5)
    assert "onset 0" in c.notes
    assert (got[21].onset_frame, got[21].offset_frame) == (29, 29)


def test_samm_bad_rows_are_skipped_with_workbook_and_row(samm_root: Path) -> None:
    corpus = read_samm(str(samm_root))
    xlsx = str(samm_root / "SAMM_LongVideos_V2_Release.xlsx")
    reasons = {s.what: s.reason for s in corpus.skipped}
    assert "non-numeric onset: 'abc'" in reasons[f"{xlsx} row 14"]
    assert "lie outside video 006_2 (frames 0..29)" in reasons[f"{xlsx} row 15"]
    assert "before onset" in reasons[f"{xlsx} row 16"]
    assert "unknown movement type 'Blink'" in reasons[f"{xlsx} row 17"]
    assert "no video folder 008_1" in reasons[f"{xlsx} row 18"]
    assert "007_1 could not be opened" in reasons[f"{xlsx} row 19"]
    gap = _skips(corpus, "007_1_0002.jpg and 007_1_0005.jpg")
    assert len(gap) == 1 and "3..4" in gap[0]
    assert f"{xlsx} row 20" not in reasons


def test_samm_on_a_remote_filesystem(samm_root: Path) -> None:
    mem = fsspec.filesystem("memory")
    for p in samm_root.rglob("*"):
        if p.is_file():
            mem.pipe(f"/bucket/samm/{p.relative_to(samm_root).as_posix()}", p.read_bytes())
    remote, local = read_samm("/bucket/samm", fs=mem), read_samm(str(samm_root))
    assert [v.uri for v in remote.videos] == [
        "/bucket/samm/SAMM_longvideos/006_1",
        "/bucket/samm/SAMM_longvideos/006_2",
    ]
    assert [v.fingerprint for v in remote.videos] == [v.fingerprint for v in local.videos]
    assert [a.to_dict() for a in remote.annotations] == [a.to_dict() for a in local.annotations]
    assert len(remote.skipped) == len(local.skipped)


def test_samm_video_folders_directly_in_root_and_workbook_given(tmp_path: Path) -> None:
    _frames(tmp_path / "data" / "011_2", [f"011_2_{i:04d}.jpg" for i in range(1, 11)])
    _samm_workbook(tmp_path / "labels.xlsx", [_samm_row("011_2_1", 2, 3, 4)])
    corpus = read_samm(str(tmp_path / "data"), xlsx=str(tmp_path / "labels.xlsx"), fps=100)
    assert [(v.subject, v.video, v.fps) for v in corpus.videos] == [("011", "011_2", 100.0)]
    assert [(a.onset_frame, a.offset_frame) for a in corpus.annotations] == [(1, 3)]


def test_samm_single_workbook_in_root_is_found(tmp_path: Path) -> None:
    _frames(tmp_path / "011_2", [f"011_2_{i:04d}.jpg" for i in range(1, 6)])
    _samm_workbook(tmp_path / "SAMM_LongVideos_V3_Release.xlsx", [_samm_row("011_2_1", 2, 3, 4)])
    assert len(read_samm(str(tmp_path)).annotations) == 1


def test_samm_missing_column_names_workbook_sheet_and_column(tmp_path: Path) -> None:
    header = [h for h in SAMM_HEADER if h != "Offset"]
    _samm_workbook(tmp_path / "SAMM_LongVideos_V2_Release.xlsx", [], header=header)
    with pytest.raises(ValueError, match=r"SAMM_LongVideos_V2_Release\.xlsx") as err:
        read_samm(str(tmp_path))
    assert "'FACS_Movement_Only'" in str(err.value) and "['Offset']" in str(err.value)


def test_samm_missing_sheet(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.save(tmp_path / "SAMM_LongVideos_V2_Release.xlsx")
    with pytest.raises(ValueError, match="no sheet 'FACS_Movement_Only'"):
        read_samm(str(tmp_path))


# ---------------------------------------------------------------- CAS(ME)^2


def _casme2_workbook(path: Path, codes: list[list], rule2: list[list] | None = None) -> None:
    wb = openpyxl.Workbook()
    sheets = {
        "CASFEcode_final": codes,
        "naming rule1": [[15, "s15", 1], [16, "s16", 2], [19, "s19", 3]],
        "naming rule2": rule2 or [["0101", "disgust1"], ["0502", "happy1"], [401, "anger1"]],
    }
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    wb.save(path)


def _code(participant, name, onset, apex, offset, kind="micro-expression") -> list:
    return [participant, name, onset, apex, offset, "4+7", "negative", kind, "disgust"]


@pytest.fixture
def casme2_root(tmp_path: Path) -> Path:
    pic = tmp_path / "rawpic"
    _frames(pic / "s15" / "15_0101disgustingteeth", [f"img{i}.jpg" for i in range(1, 31)])
    _frames(pic / "s16" / "16_0502funnyerrors", [f"img{i}.jpg" for i in range(1, 21)])
    _frames(pic / "s19" / "19_0101disgustingteeth", ["img1.jpg", "img3.jpg"])  # gap
    codes = [
        _code(1, "disgust1_1", 3, 5, 9),  # row 1: s15 0101, indices 2..8
        _code(1, "disgust1_2", 10, 12, 0, "macro-expression"),  # row 2: offset 0 -> apex
        _code(2, "happy1_1", 2.5, 4, 8),  # row 3: x.5 rounds up
        _code(2, "happy1_2", "x", 4, 8),  # row 4: non-numeric onset
        _code(2, "happy1_3", 15, 0, 25),  # row 5: past the 20 frames
        _code(1, "anger1_1", 1, 2, 3),  # row 6: no folder 15_0401*
        _code(4, "disgust1_1", 1, 2, 3),  # row 7: participant 4 not in naming rule1
        _code(1, "disgust1_3", 0, -1, 4),  # row 8: onset 0, apex -1
        _code(1, "disgust1_4", 4, 5, 6, "expression"),  # row 9: unknown type
        _code(3, "disgust1_1", 1, 1, 2),  # row 10: its folder does not open
        _code(1, "surprise1_1", 1, 2, 3),  # row 11: not in naming rule2
    ]
    _casme2_workbook(tmp_path / "CAS(ME)^2code_final.xlsx", codes)
    return tmp_path


def test_casme2_known_answers(casme2_root: Path) -> None:
    corpus = read_casme2(str(casme2_root))
    assert [(v.subject, v.video) for v in corpus.videos] == [
        ("s15", "15_0101disgustingteeth"),
        ("s16", "16_0502funnyerrors"),
    ]
    v = corpus.videos[0]
    assert (v.dataset, v.fps, v.n_frames, v.first_frame_number) == ("casme2", 30.0, 30, 1)
    got = _by_row(corpus)
    assert sorted(got) == [1, 2, 3, 8]
    a = got[1]
    assert (a.movement, a.video, a.kind, a.action_units) == (
        "s15_disgust1_1",
        "15_0101disgustingteeth",
        "micro",
        "4+7",
    )
    assert (a.onset_frame, a.apex_frame, a.offset_frame) == (2, 4, 8)
    assert "emotion: negative" in a.notes and "self-report: disgust" in a.notes
    b = got[2]
    assert (b.onset_frame, b.apex_frame, b.offset_frame, b.kind) == (9, 11, 11, "macro")
    assert "offset 0" in b.notes
    c = got[3]
    assert (c.subject, c.video, c.onset_frame, c.offset_frame) == (
        "s16",
        "16_0502funnyerrors",
        2,
        7,
    )
    d = got[8]
    assert (d.onset_frame, d.apex_frame, d.offset_frame) == (0, None, 3)
    assert "onset 0" in d.notes


def test_casme2_bad_rows_are_skipped_with_workbook_and_row(casme2_root: Path) -> None:
    corpus = read_casme2(str(casme2_root))
    xlsx = str(casme2_root / "CAS(ME)^2code_final.xlsx")
    reasons = {s.what: s.reason for s in corpus.skipped}
    assert "non-numeric onset: 'x'" in reasons[f"{xlsx} row 4"]
    assert "outside video 16_0502funnyerrors (frames 0..19)" in reasons[f"{xlsx} row 5"]
    assert "no video folder 15_0401" in reasons[f"{xlsx} row 6"]
    assert "participant 4 is not in 'naming rule1'" in reasons[f"{xlsx} row 7"]
    assert "unknown movement type 'expression'" in reasons[f"{xlsx} row 9"]
    assert "19_0101disgustingteeth could not be opened" in reasons[f"{xlsx} row 10"]
    assert "'surprise1_1' has no video code" in reasons[f"{xlsx} row 11"]
    assert len(_skips(corpus, "missing frame numbers 2 (between img1.jpg and img3.jpg)")) == 1


def test_casme2_numeric_codes_and_misplaced_folder(tmp_path: Path) -> None:
    pic = tmp_path / "rawpic"
    # As in the release: a subject-23 video inside s19; a numeric code in naming rule2.
    _frames(pic / "s19" / "23_0401angrywhole", [f"img{i}.jpg" for i in range(1, 11)])
    _casme2_workbook(
        tmp_path / "CAS(ME)^2code_final.xlsx",
        [_code(5, "anger1_1", 2, 3, 4)],
        rule2=[[401, "anger1"]],
    )
    wb = openpyxl.load_workbook(tmp_path / "CAS(ME)^2code_final.xlsx")
    wb["naming rule1"].append(["23", "s23", "5"])  # numbers stored as text also work
    wb.save(tmp_path / "CAS(ME)^2code_final.xlsx")
    corpus = read_casme2(str(tmp_path))
    assert [(v.subject, v.video) for v in corpus.videos] == [("s23", "23_0401angrywhole")]
    assert [(a.onset_frame, a.offset_frame) for a in corpus.annotations] == [(1, 3)]


def test_casme2_missing_columns_and_sheets(tmp_path: Path) -> None:
    xlsx = tmp_path / "CAS(ME)^2code_final.xlsx"
    _casme2_workbook(xlsx, [[1, "disgust1_1", 3, 5, 9]])
    with pytest.raises(ValueError, match=r"code_final\.xlsx, sheet 'CASFEcode_final'") as err:
        read_casme2(str(tmp_path))
    assert "['AUs', 'emotion', 'type']" in str(err.value)
    wb = openpyxl.load_workbook(xlsx)
    del wb["naming rule2"]
    wb.save(xlsx)
    with pytest.raises(ValueError, match="no sheet 'naming rule2'"):
        read_casme2(str(tmp_path))


# ---------------------------------------------------------------- generic


def _csv(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_generic_folder_with_frame_csv(tmp_path: Path) -> None:
    _frames(tmp_path / "clip", [f"frame_{i:03d}.png" for i in range(10)])
    csv = _csv(
        tmp_path / "gt.csv",
        "video,onset,offset,apex,kind,action_units,notes\n"
        "clip,2,4,3,,12,smile\n"  # line 2
        "clip,5,5,,macro,,\n"  # line 3
        "other,1,2,,,,\n"  # line 4: another video, ignored
        "clip,x,4,,,,\n"  # line 5: non-numeric
        "clip,6,3,,,,\n"  # line 6: offset < onset
        "clip,8,10,,,,\n"  # line 7: past frame 9
        "\n"  # line 8: blank
        "clip,1,1,,wink,,\n",  # line 9: unknown kind
    )
    corpus = read_generic(str(tmp_path / "clip"), fps=30, intervals_csv=csv, subject="p1")
    (v,) = corpus.videos
    assert (v.dataset, v.subject, v.video, v.fps, v.n_frames) == ("folder", "p1", "clip", 30.0, 10)
    got = _by_row(corpus)
    assert sorted(got) == [2, 3]
    a = got[2]
    assert (a.onset_frame, a.apex_frame, a.offset_frame, a.kind) == (2, 3, 4, "micro")
    assert (a.action_units, a.notes, a.movement, a.subject) == ("12", "smile", "clip_1", "p1")
    assert (got[3].kind, got[3].onset_frame, got[3].offset_frame) == ("macro", 5, 5)
    reasons = {s.what: s.reason for s in corpus.skipped}
    assert set(reasons) == {f"{csv} row {n}" for n in (5, 6, 7, 9)}
    assert "non-numeric onset: 'x'" in reasons[f"{csv} row 5"]
    assert "before onset" in reasons[f"{csv} row 6"]
    assert "outside video clip" in reasons[f"{csv} row 7"]
    assert "'wink'" in reasons[f"{csv} row 9"]


def _write_video(path: Path, n: int, fps: float = 25.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (32, 24), False)
    for i in range(n):
        writer.write(np.full((24, 32), i * 8, np.uint8))
    writer.release()


def test_generic_video_with_seconds_csv(tmp_path: Path) -> None:
    _write_video(tmp_path / "talk.avi", 25)
    csv = _csv(
        tmp_path / "gt.csv",
        "video,onset_s,offset_s,apex_s,subject\ntalk,0.2,0.5,0.3,s7\ntalk,0.9,1.5,,s7\n",
    )
    corpus = read_generic(str(tmp_path / "talk.avi"), intervals_csv=csv)
    (v,) = corpus.videos
    assert (v.dataset, v.subject, v.video, v.source_kind) == ("video", "s7", "talk", "video")
    assert (v.fps, v.n_frames, v.width, v.height) == (25.0, 25, 32, 24)
    (a,) = corpus.annotations  # 0.2 s, 0.3 s, 0.5 s at 25 fps: frames 5, 7.5 -> 8, 12.5 -> 13
    assert (a.onset_frame, a.apex_frame, a.offset_frame, a.subject) == (5, 8, 13, "s7")
    (s,) = corpus.skipped  # 1.5 s is frame 38 of 25
    assert s.what == f"{csv} row 3" and "outside video talk" in s.reason


def test_generic_fps_override_and_no_csv(tmp_path: Path) -> None:
    _write_video(tmp_path / "talk.avi", 5)
    corpus = read_generic(str(tmp_path / "talk.avi"), fps=200, dataset="lab", subject="x")
    assert [(v.dataset, v.subject, v.fps) for v in corpus.videos] == [("lab", "x", 200.0)]
    assert corpus.annotations == [] and corpus.skipped == []


def test_generic_folder_needs_fps(tmp_path: Path) -> None:
    _frames(tmp_path / "clip", ["f0.png"])
    with pytest.raises(ValueError, match=r"clip: fps is required"):
        read_generic(str(tmp_path / "clip"))


def test_generic_csv_missing_columns(tmp_path: Path) -> None:
    _frames(tmp_path / "clip", ["f0.png"])
    csv = _csv(tmp_path / "gt.csv", "video,start,offset\nclip,0,0\n")
    with pytest.raises(ValueError, match=r"gt\.csv: missing columns \['onset'\]"):
        read_generic(str(tmp_path / "clip"), fps=30, intervals_csv=csv)


def test_generic_csv_naming_no_row_for_the_video(tmp_path: Path) -> None:
    _frames(tmp_path / "clip", ["f0.png", "f1.png"])
    csv = _csv(tmp_path / "gt.csv", "video,onset,offset\nclip2,0,1\n")
    corpus = read_generic(str(tmp_path / "clip"), fps=30, intervals_csv=csv)
    assert len(corpus.videos) == 1 and corpus.annotations == []
    assert [s.what for s in corpus.skipped] == [csv]
    assert "no row names video 'clip'" in corpus.skipped[0].reason


def test_generic_unreadable_source_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "bad.mp4").write_bytes(b"garbage" * 50)
    corpus = read_generic(str(tmp_path / "bad.mp4"), fps=30)
    assert corpus.videos == [] and "bad.mp4" in corpus.skipped[0].reason


def test_annotations_by_video(samm_root: Path) -> None:
    groups = annotations_by_video(read_samm(str(samm_root)))
    assert {k: [a.movement for a in v] for k, v in groups.items()} == {
        ("samm", "006", "006_1"): ["006_1_1", "006_1_2", "006_1_3"],
        ("samm", "006", "006_2"): ["006_2_5"],
    }

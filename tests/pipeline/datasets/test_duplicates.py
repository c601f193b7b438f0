"""Duplicate and overlapping annotation rows, in every reader (``check_annotation_rows``)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest

from pipeline.core.records import Skipped
from pipeline.datasets import Corpus, read_casme2, read_generic, read_samm, samm_workbook


def _frames(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        assert cv2.imwrite(str(folder / name), np.full((12, 16), 10 + i, np.uint8))


def _rows(corpus: Corpus) -> list[tuple]:
    return [(a.source_row, a.onset_frame, a.offset_frame, a.kind) for a in corpus.annotations]


# ---------------------------------------------------------------- SAMM


def _samm(filename: str, onset, apex, offset, kind="Micro - 1/2", aus="4+7", notes=None) -> list:
    return [filename[:3], filename, 1, onset, apex, offset, None, kind, aus, notes]


def _read_samm(tmp_path: Path, rows: list[list]) -> tuple[Corpus, str]:
    _frames(tmp_path / "SAMM_longvideos" / "006_1", [f"006_1_{i:04d}.jpg" for i in range(1, 41)])
    xlsx = tmp_path / "SAMM_LongVideos_V2_Release.xlsx"
    xlsx.write_bytes(samm_workbook(rows))
    return read_samm(str(tmp_path)), str(xlsx)


def test_samm_three_rows_appended_again_count_once(tmp_path: Path, caplog) -> None:
    original = [
        _samm("006_1_1", 5, 7, 10),  # row 11: frames 4..9
        _samm("006_1_2", 20, 22, 25, aus="12"),  # row 12: frames 19..24
        _samm("006_1_3", 28, 30, 35, kind="Macro"),  # row 13: frames 27..34
    ]
    # The same three intervals appended under new movement numbers, one with a note.
    appended = [
        _samm("006_1_4", 5, 7, 10),  # row 14
        _samm("006_1_5", 20, 22, 25, aus="12", notes="copied"),  # row 15
        _samm("006_1_6", 28, 30, 35, kind="Macro"),  # row 16
    ]
    with caplog.at_level(logging.WARNING, logger="pipeline.datasets.corpus"):
        corpus, xlsx = _read_samm(tmp_path, original + appended)
    assert _rows(corpus) == [(11, 4, 9, "micro"), (12, 19, 24, "micro"), (13, 27, 34, "macro")]
    assert [a.movement for a in corpus.annotations] == ["006_1_1", "006_1_2", "006_1_3"]
    reasons = {s.what: s.reason for s in corpus.skipped}
    assert list(reasons) == [f"{xlsx} row {n}" for n in (14, 15, 16)]
    assert reasons[f"{xlsx} row 14"] == (
        "movement 006_1_4 is a duplicate of row 11 (006_1_1): same video 006_1, "
        "frames 4..9, micro, apex 6, AUs 4+7; dropped"
    )
    assert "duplicate of row 12 (006_1_2)" in reasons[f"{xlsx} row 15"]
    assert "duplicate of row 13 (006_1_3)" in reasons[f"{xlsx} row 16"]
    assert corpus.notes == []  # the originals do not overlap one another
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = warning.getMessage()
    assert "3 duplicate annotation rows dropped" in message and xlsx in message
    for dup, first in [(14, 11), (15, 12), (16, 13)]:
        assert f"row {dup} (duplicate of row {first})" in message


def test_samm_same_interval_with_other_apex_aus_or_type_is_not_a_duplicate(
    tmp_path: Path,
) -> None:
    corpus, xlsx = _read_samm(
        tmp_path,
        [
            _samm("006_1_1", 5, 7, 10),  # row 11
            _samm("006_1_2", 5, 8, 10),  # row 12: another apex
            _samm("006_1_3", 5, 7, 10, aus="12"),  # row 13: other action units
            _samm("006_1_4", 5, 7, 10, kind="Macro"),  # row 14: another type
        ],
    )
    assert [a.source_row for a in corpus.annotations] == [11, 12, 13, 14]
    assert corpus.skipped == []
    # Three micro rows on one interval: every pair is noted; the macro row overlaps no macro.
    assert [n.what for n in corpus.notes] == [
        f"{xlsx} rows 11 and 12",
        f"{xlsx} rows 11 and 13",
        f"{xlsx} rows 12 and 13",
    ]


def test_samm_overlapping_distinct_rows_are_kept_and_noted(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="pipeline.datasets.corpus"):
        corpus, xlsx = _read_samm(
            tmp_path,
            [
                _samm("006_1_1", 5, 7, 10),  # row 11: frames 4..9
                _samm("006_1_2", 8, 12, 15),  # row 12: frames 7..14, overlaps row 11
                _samm("006_1_3", 16, 17, 20),  # row 13: frames 15..19, touches row 12 only
            ],
        )
    assert [a.source_row for a in corpus.annotations] == [11, 12, 13]
    assert corpus.skipped == [] and caplog.records == []
    assert corpus.notes == [
        Skipped(
            f"{xlsx} rows 11 and 12",
            "overlapping micro movements 006_1_1 and 006_1_2 in 006_1: "
            "frames 4..9 and 7..14 (both kept)",
        )
    ]


# ---------------------------------------------------------------- CAS(ME)^2


def _casme2(tmp_path: Path, codes: list[list]) -> tuple[Corpus, str]:
    folder = tmp_path / "rawpic" / "s15" / "15_0101disgustingteeth"
    _frames(folder, [f"img{i}.jpg" for i in range(1, 31)])
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    sheets = {
        "CASFEcode_final": codes,
        "naming rule1": [[15, "s15", 1]],
        "naming rule2": [["0101", "disgust1"]],
    }
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    xlsx = tmp_path / "CAS(ME)^2code_final.xlsx"
    wb.save(xlsx)
    return read_casme2(str(tmp_path)), str(xlsx)


def _code(name, onset, apex, offset, emotion="negative") -> list:
    return [1, name, onset, apex, offset, "4+7", emotion, "micro-expression", "disgust"]


def test_casme2_duplicate_rows_dropped_overlap_noted(tmp_path: Path) -> None:
    corpus, xlsx = _casme2(
        tmp_path,
        [
            _code("disgust1_1", 3, 5, 9),  # row 1: frames 2..8
            _code("disgust1_1", 3, 5, 9),  # row 2: the same row again
            _code("disgust1_2", 3, 5, 9, emotion="others"),  # row 3: same interval, other name
            _code("disgust1_3", 7, 9, 12),  # row 4: frames 6..11, overlaps row 1
            _code("disgust1_4", 20, 22, 0),  # row 5: offset 0 -> apex: frames 19..21
            _code("disgust1_5", 20, 22, 22),  # row 6: the same movement, offset written
        ],
    )
    assert _rows(corpus) == [(1, 2, 8, "micro"), (4, 6, 11, "micro"), (5, 19, 21, "micro")]
    reasons = {s.what: s.reason for s in corpus.skipped}
    assert list(reasons) == [f"{xlsx} row {n}" for n in (2, 3, 6)]
    assert "duplicate of row 1 (s15_disgust1_1)" in reasons[f"{xlsx} row 2"]
    assert "duplicate of row 1 (s15_disgust1_1)" in reasons[f"{xlsx} row 3"]
    assert "duplicate of row 5 (s15_disgust1_4)" in reasons[f"{xlsx} row 6"]
    assert "same video 15_0101disgustingteeth, frames 2..8, micro" in reasons[f"{xlsx} row 2"]
    assert [(n.what, "frames 2..8 and 6..11 (both kept)" in n.reason) for n in corpus.notes] == [
        (f"{xlsx} rows 1 and 4", True)
    ]


# ---------------------------------------------------------------- generic CSV


def _read_csv(tmp_path: Path, text: str) -> tuple[Corpus, str]:
    _frames(tmp_path / "clip", [f"frame_{i:03d}.png" for i in range(20)])
    csv = tmp_path / "gt.csv"
    csv.write_text(text)
    return read_generic(str(tmp_path / "clip"), fps=30, intervals_csv=str(csv)), str(csv)


def test_csv_same_interval_twice_is_one_movement(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="pipeline.datasets.corpus"):
        corpus, csv = _read_csv(
            tmp_path,
            "video,onset,offset,movement\n"
            "clip,2,4,first\n"  # line 2
            "clip,2,4,second\n",  # line 3: the same interval under another name
        )
    assert [(a.movement, a.onset_frame, a.offset_frame) for a in corpus.annotations] == [
        ("first", 2, 4)
    ]
    (s,) = corpus.skipped
    assert s.what == f"{csv} row 3"
    assert s.reason == (
        "movement second is a duplicate of row 2 (first): same video clip, frames 2..4, "
        "micro; dropped"
    )
    assert corpus.notes == []
    assert any(f"{csv}: 1 duplicate annotation rows" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("rows", "notes"),
    [
        ("clip,2,4\nclip,5,6\nclip,7,8,macro\n", []),  # touching, not overlapping
        ("clip,2,4\nclip,4,6\n", ["rows 2 and 3"]),  # one shared frame
        ("clip,2,9\nclip,3,4\nclip,6,7\n", ["rows 2 and 3", "rows 2 and 4"]),  # nested
        ("clip,2,6\nclip,3,5,macro\n", []),  # overlapping, but of different types
    ],
)
def test_csv_overlaps(tmp_path: Path, rows: str, notes: list[str]) -> None:
    corpus, csv = _read_csv(tmp_path, "video,onset,offset,kind\n" + rows)
    assert len(corpus.annotations) == rows.count("\n") and corpus.skipped == []
    assert [n.what for n in corpus.notes] == [f"{csv} {n}" for n in notes]
    assert all(n.reason.endswith("(both kept)") for n in corpus.notes)


def test_no_csv_no_checks(tmp_path: Path) -> None:
    _frames(tmp_path / "clip", ["f0.png", "f1.png"])
    corpus = read_generic(str(tmp_path / "clip"), fps=30)
    assert (corpus.annotations, corpus.skipped, corpus.notes) == ([], [], [])

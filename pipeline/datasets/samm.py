"""Reader of SAMM long videos (``read_samm``): frame folders and the SAMM workbook.

Layout: ``root/SAMM_longvideos/006_1/006_1_0001.jpg`` (the video folders may also sit directly
in ``root``); workbook ``SAMM_LongVideos_V2_Release.xlsx``, sheet ``FACS_Movement_Only``, title
rows 1-9, header row 10 (found by its names in the first 20 rows): Subject | Filename |
Inducement Code | Onset | Apex | Offset | Duration | Type | Action Units | Notes. Filename
``006_1_2`` is movement 2 of video ``006_1``, subject "006". Type ``Macro`` -> "macro",
``Micro - 1/2`` (anything starting "Micro") -> "micro". The rules shared with CAS(ME)^2
(frame numbers, rounding, skipped rows) are in the package docstring.
"""

from __future__ import annotations

import re
from typing import Any

import fsspec

from pipeline.core.records import Skipped
from pipeline.datasets.corpus import (
    AnnotationRow,
    Corpus,
    add_result,
    annotate,
    base_name,
    cell_text,
    check_annotation_rows,
    find_workbook,
    load_workbook,
    open_folders,
    sheet_rows,
    subfolders,
)
from pipeline.datasets.workbook import SAMM_COLUMNS, SAMM_FIELDS, SAMM_SHEET, SAMM_WORKBOOK


def _samm_header(rows: list[tuple], xlsx: str) -> tuple[int, dict[str, int]]:
    """(index of the header row, normalised column name -> column index)."""
    want = {c.lower() for c in SAMM_COLUMNS}
    best: tuple[int, dict[str, int]] = (9, {})
    for i, row in enumerate(rows[:20]):
        names = {" ".join(str(v).split()).lower(): j for j, v in enumerate(row) if v is not None}
        if len(want & names.keys()) > len(want & best[1].keys()):
            best = (i, names)
    missing = [c for c in SAMM_COLUMNS if c.lower() not in best[1]]
    if missing:
        raise ValueError(
            f"workbook {xlsx}, sheet {SAMM_SHEET!r}: missing columns {missing} "
            f"(header row {best[0] + 1})"
        )
    return best


def read_samm(
    root: str,
    fs: fsspec.AbstractFileSystem | None = None,
    fps: float = 200.0,
    xlsx: str | None = None,
) -> Corpus:
    """Read SAMM long videos (layout in the module docstring, rules in the package's)."""
    fs = fs if fs is not None else fsspec.filesystem("file")
    root = root.rstrip("/")
    xlsx = xlsx or find_workbook(fs, root, SAMM_WORKBOOK)
    rows = sheet_rows(load_workbook(fs, xlsx), [SAMM_SHEET], xlsx)
    header, cols = _samm_header(rows, xlsx)
    videos_dir = f"{root}/SAMM_longvideos" if fs.isdir(f"{root}/SAMM_longvideos") else root
    folders = {
        (base_name(p).split("_")[0], base_name(p)): p
        for p in subfolders(fs, videos_dir)
        if re.fullmatch(r"\d+_\d+", base_name(p))
    }
    records, corpus = open_folders(fs, folders, "samm", fps)
    failed = {video: path for (_, video), path in folders.items() if video not in records}

    def cell(row: tuple, name: str) -> Any:
        j = cols.get(name.lower())
        return row[j] if j is not None and j < len(row) else None

    for i, row in enumerate(rows[header + 1 :], start=header + 2):
        if all(cell_text(v) is None for v in row):
            continue
        where = f"{xlsx} row {i}"
        filename = cell_text(cell(row, "Filename")) or ""
        video, _, number = filename.rpartition("_")
        if not video or not number:
            corpus.skipped.append(Skipped(where, f"Filename {filename!r} is not <video>_<n>"))
            continue
        if video not in records:
            reason = (
                f"video folder {failed[video]} could not be opened"
                if video in failed
                else f"no video folder {video} in {videos_dir}"
            )
            corpus.skipped.append(Skipped(where, f"movement {filename}: {reason}"))
            continue
        notes = [n] if (n := cell_text(cell(row, "Notes"))) else []
        r = AnnotationRow(
            xlsx, i, filename, notes=notes, **{k: cell(row, c) for k, c in SAMM_FIELDS.items()}
        )
        add_result(corpus, annotate(records[video], r, workbook=True))
    check_annotation_rows(corpus, xlsx)
    return corpus

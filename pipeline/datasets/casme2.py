"""Reader of CAS(ME)^2 (``read_casme2``): ``rawpic`` frame folders and the release's workbook.

Read the way public spotting code reads the release (an xlrd ``ME2`` dataset class, pandas
``load_excel`` helpers, an IoU evaluation script; all agree on the layout below):
``root/rawpic/s15/15_0101disgustingteeth/img1.jpg`` (numbers not zero-padded), workbook
``CAS(ME)^2code_final.xlsx`` with three sheets, none with a header row:

- ``CASFEcode_final`` (some copies: ``CASMEcode_final``), one row per movement, columns
  A participant number (1..22), B expression name + "_" + ordinal (``disgust1_1``),
  C onset, D apex, E offset (0: the offset is the apex), F action units, G estimated
  emotion, H type (``micro-expression`` / ``macro-expression``), I self-reported emotion;
- ``naming rule1``: A subject number (15), B subject folder (``s15``), C participant number
  as in column A above;
- ``naming rule2``: A video code (``0101``, text or number), B expression name
  (``disgust1``).

A row's video is the folder named ``<subject number>_<video code>...`` (``15_0101...``);
its subject is ``s<subject number>``, video id the folder name, movement id
``<subject>_<column B>``. Emotions go to ``notes``. A folder whose name's subject number
differs from its parent (public code reports ``s19/23_0502funnyerrors`` in the release)
counts under the number in its name; if two folders share a subject number and code, the
one outside its ``s<number>`` folder is skipped. The rules shared with SAMM (frame numbers,
rounding, skipped rows) are in the package docstring.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import fsspec

from pipeline.core.records import Annotation, Skipped, VideoRecord
from pipeline.datasets.corpus import (
    AnnotationRow,
    Corpus,
    add_result,
    annotate,
    base_name,
    cell_number,
    cell_text,
    check_annotation_rows,
    find_workbook,
    load_workbook,
    open_folders,
    require_columns,
    sheet_rows,
    subfolders,
)

CASME2_WORKBOOK = "CAS(ME)^2code_final.xlsx"
CASME2_SHEETS = ("CASFEcode_final", "CASMEcode_final")
#: CASFEcode_final columns A-H (column I, the self-reported emotion, is optional).
CASME2_COLUMNS = tuple("participant expression onset apex offset AUs emotion type".split())


@dataclass
class _Naming:
    """The naming-rule sheets as lookups."""

    subject_of: dict[int, int]  # participant number -> subject number
    code_of: dict[str, str]  # expression name -> 4-digit video code


@dataclass
class _Folders:
    """The video folders under ``pic``, one per (subject number, video code)."""

    pic: str
    folders: dict[tuple[str, str], str] = field(default_factory=dict)  # (s<n>, name) -> path
    video_of: dict[tuple[int, str], str] = field(default_factory=dict)  # (n, code) -> name
    duplicates: list[Skipped] = field(default_factory=list)


def _casme2_code(value: Any) -> str | None:
    """A naming-rule-2 video code as 4 digits ("0101"), whether stored as text or number."""
    x = cell_number(value)
    return None if x is None or x != int(x) else f"{int(x):04d}"


def _read_sheets(fs: fsspec.AbstractFileSystem, xlsx: str) -> tuple[list[tuple], _Naming]:
    """The CASFEcode_final rows and the naming rules; ValueError if a sheet or column is missing."""
    wb = load_workbook(fs, xlsx)
    codes = sheet_rows(wb, CASME2_SHEETS, xlsx)
    rule1 = sheet_rows(wb, ["naming rule1"], xlsx)
    rule2 = sheet_rows(wb, ["naming rule2"], xlsx)
    require_columns(codes, CASME2_COLUMNS, xlsx, CASME2_SHEETS[0])
    require_columns(rule1, ("subject number", "folder", "participant"), xlsx, "naming rule1")
    require_columns(rule2, ("video code", "expression name"), xlsx, "naming rule2")
    numbers = [(cell_number(p), cell_number(s)) for s, _, p, *_ in rule1]  # participant -> subject
    subject_of = {int(p): int(s) for p, s in numbers if p is not None and s is not None}
    code_of = {str(n).strip(): code for c, n, *_ in rule2 if (code := _casme2_code(c)) and n}
    return codes, _Naming(subject_of, code_of)


def _find_folders(fs: fsspec.AbstractFileSystem, pic: str) -> _Folders:
    """The ``<number>_<code>...`` folders two levels under ``pic``, duplicates set aside."""
    by_key: dict[tuple[int, str], list[str]] = defaultdict(list)
    for subject_dir in subfolders(fs, pic):
        for path in subfolders(fs, subject_dir):
            if m := re.match(r"(\d+)_(\d{4})", base_name(path)):
                by_key[(int(m[1]), m[2])].append(path)
    found = _Folders(pic)
    for (number, code), paths in by_key.items():
        # Prefer the folder inside its own s<number> folder; report the others.
        paths.sort(key=lambda p, n=number: base_name(p.rsplit("/", 1)[0]) != f"s{n}")
        found.folders[(f"s{number}", base_name(paths[0]))] = paths[0]
        found.video_of[(number, code)] = base_name(paths[0])
        found.duplicates += [
            Skipped(p, f"same subject and video code as {paths[0]}") for p in paths[1:]
        ]
    return found


def _read_movement(
    row: tuple,
    i: int,
    xlsx: str,
    naming: _Naming,
    found: _Folders,
    records: dict[str, VideoRecord],
) -> Annotation | Skipped:
    """CASFEcode_final row ``i`` (Excel, 1-based) -> Annotation, or Skipped saying why."""
    where = f"{xlsx} row {i}"
    participant, name, onset, apex, offset, aus, emotion, kind, *rest = (*row, None)
    expression = cell_text(name) or ""
    p = cell_number(participant)
    number = naming.subject_of.get(int(p)) if p is not None and p == int(p) else None
    code = naming.code_of.get(expression.split("_")[0])
    if number is None or code is None:
        what = (
            f"participant {participant!r} is not in 'naming rule1'"
            if number is None
            else f"expression {expression!r} has no video code in 'naming rule2'"
        )
        return Skipped(where, what)
    video = found.video_of.get((number, code))
    if video is None or video not in records:
        reason = (
            f"no video folder {number}_{code}* in {found.pic}"
            if video is None
            else f"video folder {found.folders[(f's{number}', video)]} could not be opened"
        )
        return Skipped(where, f"movement {expression}: {reason}")
    notes = [
        f"{label}: {t}"
        for label, v in [("emotion", emotion), ("self-report", rest[0])]
        if (t := cell_text(v))
    ]
    r = AnnotationRow(xlsx, i, f"s{number}_{expression}", onset, offset, apex, kind, aus, notes)
    return annotate(records[video], r, workbook=True, offset_zero_is_apex=True)


def read_casme2(
    root: str,
    fs: fsspec.AbstractFileSystem | None = None,
    fps: float = 30.0,
    xlsx: str | None = None,
) -> Corpus:
    """Read CAS(ME)^2 (layout in the module docstring, rules in the package's)."""
    fs = fs if fs is not None else fsspec.filesystem("file")
    root = root.rstrip("/")
    xlsx = xlsx or find_workbook(fs, root, CASME2_WORKBOOK)
    codes, naming = _read_sheets(fs, xlsx)
    pic = f"{root}/rawpic" if fs.isdir(f"{root}/rawpic") else root
    found = _find_folders(fs, pic)
    records, corpus = open_folders(fs, found.folders, "casme2", fps)
    corpus.skipped[:0] = found.duplicates
    for i, row in enumerate(codes, start=1):
        if all(cell_text(v) is None for v in row):
            continue
        add_result(corpus, _read_movement(row, i, xlsx, naming, found, records))
    check_annotation_rows(corpus, xlsx)
    return corpus

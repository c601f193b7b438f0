"""Readers for the corpora users bring: SAMM long videos, CAS(ME)^2, and generic footage.

Each reader returns a ``Corpus``: one ``VideoRecord`` per video that opened, the ground-truth
``Annotation``s (frames 0-based into the decoded sequence, inclusive; see
``schemas.tables``) and a ``Skipped`` entry, with its reason, for every row or video left
out. Bad rows never stop a read; a workbook or CSV whose sheet or columns are missing does
(ValueError naming the file, sheet and columns).

Workbook frames are 1-based frame NUMBERS as in the file names; they become indices by
subtracting the folder's first frame number. Rules shared by both workbooks: a non-integer
frame rounds half up (12.5 -> 13); onset 0 is taken as the first frame (with a note); an
apex of -1 or 0 means no apex; a non-numeric onset/offset, offset < onset or an unknown
type skips the row; so does an interval outside its video.

SAMM long videos (``read_samm``): ``root/SAMM_longvideos/006_1/006_1_0001.jpg`` (the video
folders may also sit directly in ``root``); workbook ``SAMM_LongVideos_V2_Release.xlsx``,
sheet ``FACS_Movement_Only``, title rows 1-9, header row 10 (found by its names in the first
20 rows): Subject | Filename | Inducement Code | Onset | Apex | Offset | Duration | Type |
Action Units | Notes. Filename ``006_1_2`` is movement 2 of video ``006_1``, subject "006".
Type ``Macro`` -> "macro", ``Micro - 1/2`` (anything starting "Micro") -> "micro".

CAS(ME)^2 (``read_casme2``), read the way public spotting code reads the release (an
xlrd ``ME2`` dataset class, pandas ``load_excel`` helpers, an IoU evaluation script; all
agree on the layout below):
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
one outside its ``s<number>`` folder is skipped.

Generic (``read_generic``): one frame folder (fps required) or video file, with a CSV of
``video,onset,offset`` (0-based frame indices, inclusive) or ``video,onset_s,offset_s``
(seconds; frame = s * fps rounded half up), optional ``apex``/``apex_s``, ``kind``
(default "micro"), ``subject``, ``action_units``, ``notes``, ``movement``. Rows naming
another video are ignored, so one CSV can serve many videos (a CSV with no row for this
video adds one Skipped entry saying so).
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import fsspec
import openpyxl
import pandas as pd

from pipeline.frames import FolderFrames, FrameError, Frames, open_frames
from pipeline.records import Annotation, Skipped, VideoRecord, validate_annotations

SAMM_WORKBOOK = "SAMM_LongVideos_V2_Release.xlsx"
SAMM_SHEET = "FACS_Movement_Only"
SAMM_COLUMNS = ("Filename", "Onset", "Apex", "Offset", "Type")  # the ones read needs
#: Every column of the sheet, in SAMM's order (what writers of the layout put in row 10).
SAMM_COLUMNS_ALL = (
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
)
SAMM_HEADER_ROW = 10  # 1-based, as in SAMM: rows 1-9 are titles
SAMM_TYPES = {"micro": "Micro - 1/2", "macro": "Macro"}  # Type values writers use
SAMM_FIELDS = {
    "onset": "Onset",
    "offset": "Offset",
    "apex": "Apex",
    "kind": "Type",
    "action_units": "Action Units",
}


def samm_workbook(rows: Sequence[Sequence], titles: Sequence[str] = ()) -> bytes:
    """An .xlsx in the SAMM long-videos layout that :func:`read_samm` reads.

    Sheet ``SAMM_SHEET``; ``titles`` in rows 1.., the header (``SAMM_COLUMNS_ALL``) in row
    ``SAMM_HEADER_ROW``, then ``rows`` in that column order. openpyxl stamps the save time
    into docProps and the zip entries; both are pinned so the same rows give the same bytes.
    """
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = SAMM_SHEET
    for r, title in enumerate(titles[: SAMM_HEADER_ROW - 1], start=1):
        ws.cell(r, 1, title)
    for col, name in enumerate(SAMM_COLUMNS_ALL, start=1):
        ws.cell(SAMM_HEADER_ROW, col, name)
    for r, row in enumerate(rows, start=SAMM_HEADER_ROW + 1):
        for col, value in enumerate(row, start=1):
            ws.cell(r, col, value)
    buf = io.BytesIO()
    wb.save(buf)
    pinned = io.BytesIO()
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(pinned, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*",
                    rb"\g<1>2000-01-01T00:00:00Z",
                    data,
                )
            dst.writestr(
                zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)),
                data,
                zipfile.ZIP_DEFLATED,
            )
    return pinned.getvalue()


CASME2_WORKBOOK = "CAS(ME)^2code_final.xlsx"
CASME2_SHEETS = ("CASFEcode_final", "CASMEcode_final")
#: CASFEcode_final columns A-H (column I, the self-reported emotion, is optional).
CASME2_COLUMNS = tuple("participant expression onset apex offset AUs emotion type".split())

VideoKey = tuple[str, str, str]


@dataclass
class Corpus:
    """What a reader found: videos that opened, their annotations, and what was left out."""

    videos: list[VideoRecord] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def annotations_by_video(corpus: Corpus) -> dict[VideoKey, list[Annotation]]:
    """Annotations grouped by (dataset, subject, video), each list in source order."""
    out: dict[VideoKey, list[Annotation]] = defaultdict(list)
    for a in corpus.annotations:
        out[(a.dataset, a.subject, a.video)].append(a)
    return dict(out)


# ---------------------------------------------------------------- shared helpers


def _number(value: Any) -> float | None:
    """A cell as a finite float, or None when blank or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _round_half_up(x: float) -> int:
    # Python's round() rounds half to even (12.5 -> 12); the annotators' 12.5 means 13.
    return math.floor(x + 0.5)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    s = str(value).strip()
    return s or None


def _kind(value: Any) -> str | None:
    t = (_text(value) or "").lower()
    return "micro" if t.startswith("micro") else "macro" if t.startswith("macro") else None


_FROM_FRAMES = ("uri", "source_kind", "n_frames", "width", "height", "first_frame_number")


def _record(frames: Frames, dataset: str, subject: str, video: str, fps: float) -> VideoRecord:
    attrs = {k: getattr(frames, k) for k in _FROM_FRAMES}
    return VideoRecord(
        dataset, subject, video, fps=float(fps), fingerprint=frames.fingerprint, **attrs
    )


def _open_folders(
    fs: fsspec.AbstractFileSystem, folders: dict[tuple[str, str], str], dataset: str, fps: float
) -> tuple[dict[str, VideoRecord], Corpus]:
    """Open each (subject, video) -> folder; a folder that fails becomes a Skipped entry."""
    records, corpus = {}, Corpus()
    for (subject, video), path in sorted(folders.items(), key=lambda kv: kv[0][1]):
        try:
            with FolderFrames(path, fs=fs, fps=fps) as frames:
                records[video] = _record(frames, dataset, subject, video, fps)
        except FrameError as e:
            corpus.skipped.append(Skipped(path, str(e)))
    corpus.videos = list(records.values())
    return records, corpus


@dataclass
class _Row:
    """One annotation row as written: frames are cell values, not yet indices."""

    source: str  # the workbook or CSV
    row: int  # Excel row / CSV line, 1-based
    movement: str
    onset: Any
    offset: Any
    apex: Any = None
    kind: Any = None
    action_units: Any = None
    notes: list[str] = field(default_factory=list)


def _annotate(
    record: VideoRecord, r: _Row, *, workbook: bool, offset_zero_is_apex: bool = False
) -> Annotation | Skipped:
    """A row -> Annotation with 0-based frames, or Skipped saying why (file and row).

    ``workbook``: frames are 1-based numbers as in the file names (minus
    ``first_frame_number`` gives the index), onset 0 means the first frame and apex <= 0 no
    apex. Otherwise frames are already 0-based indices.
    """
    where = f"{r.source} row {r.row}"
    on, off, ap = _number(r.onset), _number(r.offset), _number(r.apex)
    base = record.first_frame_number if workbook else 0
    if workbook and ap is not None and ap <= 0:
        ap = None  # SAMM writes -1 (CAS(ME)^2 0) where no apex was coded
    if offset_zero_is_apex and off == 0 and ap is not None:
        off = ap
        r.notes.append("offset 0 in the workbook: the apex taken as the offset")
    if on is None or off is None:
        name, value = ("onset", r.onset) if on is None else ("offset", r.offset)
        return Skipped(where, f"non-numeric {name}: {value!r}")
    kind = _kind(r.kind) if _text(r.kind) or workbook else "micro"
    if kind is None:
        return Skipped(where, f"unknown movement type {r.kind!r} (expected micro or macro)")
    on_i, off_i = _round_half_up(on), _round_half_up(off)
    if workbook and on == 0:
        on_i = base
        r.notes.append("onset 0 in the workbook taken as the first frame")
    if off_i < on_i:
        return Skipped(where, f"offset {r.offset!r} is before onset {r.onset!r}")
    a = Annotation(
        dataset=record.dataset,
        subject=record.subject,
        video=record.video,
        movement=r.movement,
        onset_frame=on_i - base,
        offset_frame=off_i - base,
        kind=kind,
        apex_frame=None if ap is None else _round_half_up(ap) - base,
        action_units=_text(r.action_units),
        notes="; ".join(r.notes) or None,
        source_row=r.row,
    )
    ok, skipped = validate_annotations([a], record.n_frames, source=r.source)
    return ok[0] if ok else skipped[0]


def _add(corpus: Corpus, result: Annotation | Skipped) -> None:
    (corpus.annotations if isinstance(result, Annotation) else corpus.skipped).append(result)


def _load_workbook(fs: fsspec.AbstractFileSystem, path: str) -> openpyxl.Workbook:
    # Cached values, not formulas (Duration is a formula in some releases).
    return openpyxl.load_workbook(io.BytesIO(fs.cat_file(path)), data_only=True)


def _sheet_rows(wb: openpyxl.Workbook, names: Sequence[str], xlsx: str) -> list[tuple]:
    """Rows of the first sheet named in ``names``, index i = Excel row i + 1."""
    for name in names:
        if name in wb.sheetnames:
            return list(wb[name].iter_rows(min_row=1, values_only=True))
    raise ValueError(f"workbook {xlsx}: no sheet {names[0]!r} (sheets: {wb.sheetnames})")


def _find_workbook(fs: fsspec.AbstractFileSystem, root: str, default: str) -> str:
    root = root.rstrip("/")
    if fs.isfile(f"{root}/{default}"):
        return f"{root}/{default}"
    found = [p for p in fs.glob(f"{root}/*.xlsx") if not p.rsplit("/", 1)[-1].startswith("~$")]
    if len(found) != 1:
        raise ValueError(f"{root}: expected {default} or a single .xlsx workbook, found {found}")
    return found[0]


def _subfolders(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    return sorted(e["name"] for e in fs.ls(path, detail=True) if e["type"] == "directory")


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


# ---------------------------------------------------------------- SAMM long videos


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
    """Read SAMM long videos (layout and rules in the module docstring)."""
    fs = fs if fs is not None else fsspec.filesystem("file")
    root = root.rstrip("/")
    xlsx = xlsx or _find_workbook(fs, root, SAMM_WORKBOOK)
    rows = _sheet_rows(_load_workbook(fs, xlsx), [SAMM_SHEET], xlsx)
    header, cols = _samm_header(rows, xlsx)
    videos_dir = f"{root}/SAMM_longvideos" if fs.isdir(f"{root}/SAMM_longvideos") else root
    folders = {
        (_name(p).split("_")[0], _name(p)): p
        for p in _subfolders(fs, videos_dir)
        if re.fullmatch(r"\d+_\d+", _name(p))
    }
    records, corpus = _open_folders(fs, folders, "samm", fps)
    failed = {video: path for (_, video), path in folders.items() if video not in records}

    def cell(row: tuple, name: str) -> Any:
        j = cols.get(name.lower())
        return row[j] if j is not None and j < len(row) else None

    for i, row in enumerate(rows[header + 1 :], start=header + 2):
        if all(_text(v) is None for v in row):
            continue
        where = f"{xlsx} row {i}"
        filename = _text(cell(row, "Filename")) or ""
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
        notes = [n] if (n := _text(cell(row, "Notes"))) else []
        r = _Row(
            xlsx, i, filename, notes=notes, **{k: cell(row, c) for k, c in SAMM_FIELDS.items()}
        )
        _add(corpus, _annotate(records[video], r, workbook=True))
    return corpus


# ---------------------------------------------------------------- CAS(ME)^2


def _casme2_code(value: Any) -> str | None:
    """A naming-rule-2 video code as 4 digits ("0101"), whether stored as text or number."""
    x = _number(value)
    return None if x is None or x != int(x) else f"{int(x):04d}"


def _require_columns(rows: list[tuple], names: Sequence[str], xlsx: str, sheet: str) -> None:
    width = max((len(r) for r in rows), default=0)
    if width < len(names):
        raise ValueError(
            f"workbook {xlsx}, sheet {sheet!r}: missing columns {list(names[width:])} "
            f"(expected {len(names)} columns without a header row, found {width})"
        )


def read_casme2(
    root: str,
    fs: fsspec.AbstractFileSystem | None = None,
    fps: float = 30.0,
    xlsx: str | None = None,
) -> Corpus:
    """Read CAS(ME)^2 (layout and rules in the module docstring)."""
    fs = fs if fs is not None else fsspec.filesystem("file")
    root = root.rstrip("/")
    xlsx = xlsx or _find_workbook(fs, root, CASME2_WORKBOOK)
    wb = _load_workbook(fs, xlsx)
    codes = _sheet_rows(wb, CASME2_SHEETS, xlsx)
    rule1 = _sheet_rows(wb, ["naming rule1"], xlsx)
    rule2 = _sheet_rows(wb, ["naming rule2"], xlsx)
    _require_columns(codes, CASME2_COLUMNS, xlsx, CASME2_SHEETS[0])
    _require_columns(rule1, ("subject number", "folder", "participant"), xlsx, "naming rule1")
    _require_columns(rule2, ("video code", "expression name"), xlsx, "naming rule2")
    numbers = [(_number(p), _number(s)) for s, _, p, *_ in rule1]  # participant -> subject
    subject_of = {int(p): int(s) for p, s in numbers if p is not None and s is not None}
    code_of = {str(n).strip(): code for c, n, *_ in rule2 if (code := _casme2_code(c)) and n}

    pic = f"{root}/rawpic" if fs.isdir(f"{root}/rawpic") else root
    by_key: dict[tuple[int, str], list[str]] = defaultdict(list)
    for subject_dir in _subfolders(fs, pic):
        for path in _subfolders(fs, subject_dir):
            if m := re.match(r"(\d+)_(\d{4})", _name(path)):
                by_key[(int(m[1]), m[2])].append(path)
    duplicates, folders, video_of = [], {}, {}
    for (number, code), paths in by_key.items():
        # Prefer the folder inside its own s<number> folder; report the others.
        paths.sort(key=lambda p, n=number: _name(p.rsplit("/", 1)[0]) != f"s{n}")
        folders[(f"s{number}", _name(paths[0]))] = paths[0]
        video_of[(number, code)] = _name(paths[0])
        duplicates += [Skipped(p, f"same subject and video code as {paths[0]}") for p in paths[1:]]
    records, corpus = _open_folders(fs, folders, "casme2", fps)
    corpus.skipped[:0] = duplicates

    for i, row in enumerate(codes, start=1):
        if all(_text(v) is None for v in row):
            continue
        where = f"{xlsx} row {i}"
        participant, name, onset, apex, offset, aus, emotion, kind, *rest = (*row, None)
        expression = _text(name) or ""
        p = _number(participant)
        number = subject_of.get(int(p)) if p is not None and p == int(p) else None
        code = code_of.get(expression.split("_")[0])
        if number is None or code is None:
            what = (
                f"participant {participant!r} is not in 'naming rule1'"
                if number is None
                else f"expression {expression!r} has no video code in 'naming rule2'"
            )
            corpus.skipped.append(Skipped(where, what))
            continue
        video = video_of.get((number, code))
        if video is None or video not in records:
            reason = (
                f"no video folder {number}_{code}* in {pic}"
                if video is None
                else f"video folder {folders[(f's{number}', video)]} could not be opened"
            )
            corpus.skipped.append(Skipped(where, f"movement {expression}: {reason}"))
            continue
        notes = [
            f"{label}: {t}"
            for label, v in [("emotion", emotion), ("self-report", rest[0])]
            if (t := _text(v))
        ]
        r = _Row(xlsx, i, f"s{number}_{expression}", onset, offset, apex, kind, aus, notes)
        _add(corpus, _annotate(records[video], r, workbook=True, offset_zero_is_apex=True))
    return corpus


# ---------------------------------------------------------------- generic


def read_generic(
    path: str,
    fs: fsspec.AbstractFileSystem | None = None,
    fps: float | None = None,
    intervals_csv: str | None = None,
    dataset: str | None = None,
    subject: str | None = None,
) -> Corpus:
    """One frame folder or video file, with an optional CSV of intervals (module docstring).

    ``dataset`` defaults to "folder" or "video"; ``subject`` to the CSV's ``subject`` value
    for this video, else the video name (the folder name or file stem).
    """
    fs = fs if fs is not None else fsspec.filesystem("file")
    if fs.isdir(path) and fps is None:
        raise ValueError(f"frame folder {path}: fps is required for a folder of frames")
    corpus = Corpus()
    try:
        frames = open_frames(path, fs=fs, fps=fps)
    except FrameError as e:
        corpus.skipped.append(Skipped(path, str(e)))
        return corpus
    with frames:
        if frames.fps is None:
            raise ValueError(f"video {path}: the container gives no frame rate; pass fps")
        video = _name(path) if frames.source_kind == "frames" else _name(path).rsplit(".", 1)[0]
        table = _read_intervals(fs, intervals_csv) if intervals_csv else None
        rows = table[table["video"].str.strip() == video] if table is not None else None
        if subject is None and rows is not None and "subject" in rows:
            named = Counter(s for s in rows["subject"].str.strip() if s)
            subject = named.most_common(1)[0][0] if named else None
        dataset = dataset or ("folder" if frames.source_kind == "frames" else "video")
        record = _record(frames, dataset, subject or video, video, frames.fps)
    corpus.videos.append(record)
    if rows is None:
        return corpus
    if rows.empty and not table.empty:  # type: ignore[union-attr]
        names = sorted(set(table["video"]))[:5]  # type: ignore[index]
        corpus.skipped.append(Skipped(intervals_csv, f"no row names video {video!r} ({names})"))
    for ordinal, (line, row) in enumerate(rows.iterrows(), start=1):
        r = _csv_row(row, int(line), ordinal, record, intervals_csv)
        _add(corpus, _annotate(record, r, workbook=False))
    return corpus


def _read_intervals(fs: fsspec.AbstractFileSystem, csv: str) -> pd.DataFrame:
    """The CSV as strings, indexed by 1-based line number (the header is line 1)."""
    with fs.open(csv, "rb") as f:
        table = pd.read_csv(f, dtype=str, keep_default_na=False, skip_blank_lines=False)
    table.columns = [c.strip() for c in table.columns]
    frames_cols, seconds_cols = {"video", "onset", "offset"}, {"video", "onset_s", "offset_s"}
    if not (frames_cols <= set(table.columns) or seconds_cols <= set(table.columns)):
        missing = sorted(frames_cols - set(table.columns))
        raise ValueError(
            f"intervals CSV {csv}: missing columns {missing} (or onset_s/offset_s in seconds); "
            f"found {list(table.columns)}"
        )
    table.index = table.index + 2
    return table[[any(v.strip() for v in r) for r in table.itertuples(index=False)]]


def _csv_row(row: pd.Series, line: int, ordinal: int, record: VideoRecord, csv: str) -> _Row:
    """A CSV row as a ``_Row`` of 0-based frames; times in seconds become ``s * fps``."""

    def frame(name: str) -> Any:
        # ``apex`` (frames) may accompany seconds; a non-number is passed on for the message.
        if name in row and (name != "apex" or _number(row[name]) is not None):
            return row[name]
        x = _number(row.get(f"{name}_s"))
        return row.get(f"{name}_s") if x is None else x * record.fps

    notes = [n] if (n := _text(row.get("notes"))) else []
    movement = _text(row.get("movement")) or f"{record.video}_{ordinal}"
    cells = {k: row.get(k) for k in ("kind", "action_units")}
    return _Row(
        csv, line, movement, frame("onset"), frame("offset"), frame("apex"), **cells, notes=notes
    )

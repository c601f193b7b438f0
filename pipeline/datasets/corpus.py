"""What the readers return (``Corpus``) and the helpers they share (cells, rows, workbooks).

The rules shared by the readers (frame numbers, rounding, skipped rows) are in the package
docstring (``pipeline.datasets``); ``annotate`` applies them.
"""

from __future__ import annotations

import io
import logging
import math
import zipfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import fsspec
import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

from pipeline.core.records import Annotation, Skipped, VideoRecord, validate_annotations
from pipeline.vision.frames import FolderFrames, FrameError, Frames

VideoKey = tuple[str, str, str]

logger = logging.getLogger(__name__)


@dataclass
class Corpus:
    """What a reader found: videos that opened, their annotations, and what was left out.

    ``skipped``: every row or video left out, with its reason. ``notes``: things kept but
    worth a look, in the same ``Skipped(what, reason)`` form (today: overlapping movements of
    one type in one video, from ``check_annotation_rows``).
    """

    videos: list[VideoRecord] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[Skipped] = field(default_factory=list)


def annotations_by_video(corpus: Corpus) -> dict[VideoKey, list[Annotation]]:
    """Annotations grouped by (dataset, subject, video), each list in source order."""
    out: dict[VideoKey, list[Annotation]] = defaultdict(list)
    for a in corpus.annotations:
        out[(a.dataset, a.subject, a.video)].append(a)
    return dict(out)


# ---------------------------------------------------------------- cells


def cell_number(value: Any) -> float | None:
    """A cell as a finite float, or None when blank or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def round_half_up(x: float) -> int:
    """``x`` rounded half up (12.5 -> 13)."""
    # Python's round() rounds half to even (12.5 -> 12); the annotators' 12.5 means 13.
    return math.floor(x + 0.5)


def cell_text(value: Any) -> str | None:
    """A cell as stripped text, or None when blank (or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    s = str(value).strip()
    return s or None


def _kind(value: Any) -> str | None:
    t = (cell_text(value) or "").lower()
    return "micro" if t.startswith("micro") else "macro" if t.startswith("macro") else None


# ---------------------------------------------------------------- videos

_FROM_FRAMES = (
    "uri",
    "source_kind",
    "n_frames",
    "width",
    "height",
    "first_frame_number",
    "variable_rate",
)


def video_record(frames: Frames, dataset: str, subject: str, video: str, fps: float) -> VideoRecord:
    """The ``VideoRecord`` of opened ``frames``."""
    attrs = {k: getattr(frames, k) for k in _FROM_FRAMES}
    return VideoRecord(
        dataset, subject, video, fps=float(fps), fingerprint=frames.fingerprint, **attrs
    )


def open_folders(
    fs: fsspec.AbstractFileSystem, folders: dict[tuple[str, str], str], dataset: str, fps: float
) -> tuple[dict[str, VideoRecord], Corpus]:
    """Open each (subject, video) -> folder; a folder that fails becomes a Skipped entry."""
    records, corpus = {}, Corpus()
    for (subject, video), path in sorted(folders.items(), key=lambda kv: kv[0][1]):
        try:
            with FolderFrames(path, fs=fs, fps=fps) as frames:
                records[video] = video_record(frames, dataset, subject, video, fps)
        except FrameError as e:
            corpus.skipped.append(Skipped(path, str(e)))
    corpus.videos = list(records.values())
    return records, corpus


def subfolders(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    """The folders directly in ``path``, sorted."""
    return sorted(e["name"] for e in fs.ls(path, detail=True) if e["type"] == "directory")


def base_name(path: str) -> str:
    """The last component of ``path``."""
    return path.rstrip("/").rsplit("/", 1)[-1]


# ---------------------------------------------------------------- annotation rows


@dataclass
class AnnotationRow:
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


def annotate(
    record: VideoRecord, r: AnnotationRow, *, workbook: bool, offset_zero_is_apex: bool = False
) -> Annotation | Skipped:
    """A row -> Annotation with 0-based frames, or Skipped saying why (file and row).

    ``workbook``: frames are 1-based numbers as in the file names (minus
    ``first_frame_number`` gives the index), onset 0 means the first frame and apex <= 0 no
    apex. Otherwise frames are already 0-based indices.
    """
    where = f"{r.source} row {r.row}"
    on, off, ap = cell_number(r.onset), cell_number(r.offset), cell_number(r.apex)
    base = record.first_frame_number if workbook else 0
    if workbook and ap is not None and ap <= 0:
        ap = None  # SAMM writes -1 (CAS(ME)^2 0) where no apex was coded
    if offset_zero_is_apex and off == 0 and ap is not None:
        off = ap
        r.notes.append("offset 0 in the workbook: the apex taken as the offset")
    if on is None or off is None:
        name, value = ("onset", r.onset) if on is None else ("offset", r.offset)
        return Skipped(where, f"non-numeric {name}: {value!r}")
    kind = _kind(r.kind) if cell_text(r.kind) or workbook else "micro"
    if kind is None:
        return Skipped(where, f"unknown movement type {r.kind!r} (expected micro or macro)")
    on_i, off_i = round_half_up(on), round_half_up(off)
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
        apex_frame=None if ap is None else round_half_up(ap) - base,
        action_units=cell_text(r.action_units),
        notes="; ".join(r.notes) or None,
        source_row=r.row,
    )
    ok, skipped = validate_annotations([a], record.n_frames, source=r.source)
    return ok[0] if ok else skipped[0]


def add_result(corpus: Corpus, result: Annotation | Skipped) -> None:
    """Append ``result`` to the corpus's annotations or its skipped entries."""
    (corpus.annotations if isinstance(result, Annotation) else corpus.skipped).append(result)


# ---------------------------------------------------------------- duplicate and overlapping rows


def same_movement(a: Annotation) -> tuple:
    """What makes two annotation rows one movement: ``check_annotation_rows`` compares these.

    The video (dataset, subject, video), the frames as read (0-based onset and offset, apex
    or None), the type and the action units (stripped text, compared exactly). Not the
    movement name, the notes or the row: SAMM's ``006_1_3`` and ``006_1_7`` with the same
    cells are one interval written twice.
    """
    return (
        a.dataset,
        a.subject,
        a.video,
        a.onset_frame,
        a.offset_frame,
        a.kind,
        a.apex_frame,
        a.action_units,
    )


def _where(source: str, a: Annotation) -> str:
    return f"{source} row {a.source_row}" if a.source_row is not None else a.movement


def _frames(a: Annotation) -> str:
    return f"frames {a.onset_frame}..{a.offset_frame}"


def check_annotation_rows(corpus: Corpus, source: str) -> None:
    """Drop exact duplicate rows of ``source`` and note overlapping ones, in place.

    A row whose ``same_movement`` equals an earlier row's (lowest ``source_row`` first) is
    dropped: a ``Skipped`` entry names it and the row it repeats, and one warning lists them
    all. Rows of one type in one video whose intervals intersect but are not duplicates are
    all kept; each such pair gets an entry in ``corpus.notes``.
    """
    _drop_duplicates(corpus, source)
    _note_overlaps(corpus, source)


def _drop_duplicates(corpus: Corpus, source: str) -> None:
    first: dict[tuple, Annotation] = {}
    dropped: set[int] = set()
    found: list[str] = []
    in_order = sorted(corpus.annotations, key=lambda a: (a.source_row is None, a.source_row or 0))
    for a in in_order:
        kept = first.setdefault(same_movement(a), a)
        if kept is a:
            continue
        dropped.add(id(a))
        apex = "" if a.apex_frame is None else f", apex {a.apex_frame}"
        aus = f", AUs {a.action_units}" if a.action_units else ""
        reason = (
            f"movement {a.movement} is a duplicate of row {kept.source_row} ({kept.movement}): "
            f"same video {a.video}, {_frames(a)}, {a.kind}{apex}{aus}; dropped"
        )
        corpus.skipped.append(Skipped(_where(source, a), reason))
        found.append(f"row {a.source_row} (duplicate of row {kept.source_row})")
    if found:
        corpus.annotations = [a for a in corpus.annotations if id(a) not in dropped]
        logger.warning(
            "%s: %d duplicate annotation rows dropped: %s", source, len(found), ", ".join(found)
        )


def _note_overlaps(corpus: Corpus, source: str) -> None:
    groups: dict[tuple, list[Annotation]] = defaultdict(list)
    for a in corpus.annotations:
        groups[(a.dataset, a.subject, a.video, a.kind)].append(a)
    pairs = []
    for group in groups.values():
        group.sort(key=lambda a: (a.onset_frame, a.source_row or 0))
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if b.onset_frame > a.offset_frame:
                    break  # sorted by onset: no later row reaches back to ``a``
                pairs.append(sorted((a, b), key=lambda m: m.source_row or 0))
    pairs.sort(key=lambda p: (p[0].source_row or 0, p[1].source_row or 0))
    for x, y in pairs:
        what = (
            f"{source} rows {x.source_row} and {y.source_row}"
            if x.source_row is not None and y.source_row is not None
            else f"movements {x.movement} and {y.movement}"
        )
        reason = (
            f"overlapping {x.kind} movements {x.movement} and {y.movement} in {x.video}: "
            f"{_frames(x)} and {y.onset_frame}..{y.offset_frame} (both kept)"
        )
        corpus.notes.append(Skipped(what, reason))
    if pairs:
        logger.info("%s: %d pairs of overlapping annotation rows kept", source, len(pairs))


# ---------------------------------------------------------------- workbooks


def load_workbook(fs: fsspec.AbstractFileSystem, path: str) -> openpyxl.Workbook:
    """The workbook at ``path`` with cached values, not formulas.

    Raises ValueError naming the file when it is not an .xlsx workbook.
    """
    data = fs.cat_file(path)
    try:
        # Cached values, not formulas (Duration is a formula in some releases).
        return openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    except (zipfile.BadZipFile, KeyError, InvalidFileException, OSError) as e:
        raise ValueError(
            f"{path}: not an Excel .xlsx workbook ({type(e).__name__}: {e}); save it as .xlsx"
        ) from e


def sheet_rows(wb: openpyxl.Workbook, names: Sequence[str], xlsx: str) -> list[tuple]:
    """Rows of the first sheet named in ``names``, index i = Excel row i + 1."""
    for name in names:
        if name in wb.sheetnames:
            return list(wb[name].iter_rows(min_row=1, values_only=True))
    raise ValueError(f"workbook {xlsx}: no sheet {names[0]!r} (sheets: {wb.sheetnames})")


def find_workbook(fs: fsspec.AbstractFileSystem, root: str, default: str) -> str:
    """``root/default`` if it exists, else the only .xlsx in ``root`` (ValueError if not one)."""
    root = root.rstrip("/")
    if fs.isfile(f"{root}/{default}"):
        return f"{root}/{default}"
    found = [p for p in fs.glob(f"{root}/*.xlsx") if not p.rsplit("/", 1)[-1].startswith("~$")]
    if len(found) != 1:
        raise ValueError(f"{root}: expected {default} or a single .xlsx workbook, found {found}")
    return found[0]


def require_columns(rows: list[tuple], names: Sequence[str], xlsx: str, sheet: str) -> None:
    """ValueError unless a sheet without a header row has at least ``len(names)`` columns."""
    width = max((len(r) for r in rows), default=0)
    if width < len(names):
        raise ValueError(
            f"workbook {xlsx}, sheet {sheet!r}: missing columns {list(names[width:])} "
            f"(expected {len(names)} columns without a header row, found {width})"
        )

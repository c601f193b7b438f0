"""Reader of generic footage (``read_generic``): one frame folder or video file, intervals in a CSV.

The CSV has ``video,onset,offset`` (0-based frame indices, inclusive) or
``video,onset_s,offset_s`` (seconds; frame = s * fps rounded half up), optional
``apex``/``apex_s``, ``kind`` (default "micro"), ``subject``, ``action_units``, ``notes``,
``movement``. A frame folder needs fps. Rows naming another video are ignored, so one CSV can
serve many videos (a CSV with no row for this video adds one Skipped entry saying so).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import fsspec
import pandas as pd

from pipeline.core.records import Skipped, VideoRecord
from pipeline.datasets.corpus import (
    AnnotationRow,
    Corpus,
    add_result,
    annotate,
    base_name,
    cell_number,
    cell_text,
    check_annotation_rows,
    video_record,
)
from pipeline.vision.frames import FrameError, open_frames


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
        name = base_name(path)
        video = name if frames.source_kind == "frames" else name.rsplit(".", 1)[0]
        table = _read_intervals(fs, intervals_csv) if intervals_csv else None
        rows = table[table["video"].str.strip() == video] if table is not None else None
        if subject is None and rows is not None and "subject" in rows:
            named = Counter(s for s in rows["subject"].str.strip() if s)
            subject = named.most_common(1)[0][0] if named else None
        dataset = dataset or ("folder" if frames.source_kind == "frames" else "video")
        record = video_record(frames, dataset, subject or video, video, frames.fps)
    corpus.videos.append(record)
    if rows is None:
        return corpus
    if rows.empty and not table.empty:  # type: ignore[union-attr]
        names = sorted(set(table["video"]))[:5]  # type: ignore[index]
        corpus.skipped.append(Skipped(intervals_csv, f"no row names video {video!r} ({names})"))
    for ordinal, (line, row) in enumerate(rows.iterrows(), start=1):
        r = _csv_row(row, int(line), ordinal, record, intervals_csv)
        add_result(corpus, annotate(record, r, workbook=False))
    check_annotation_rows(corpus, intervals_csv)
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


def _csv_row(
    row: pd.Series, line: int, ordinal: int, record: VideoRecord, csv: str
) -> AnnotationRow:
    """A CSV row as an ``AnnotationRow`` of 0-based frames; times in seconds become ``s * fps``."""

    def frame(name: str) -> Any:
        # ``apex`` (frames) may accompany seconds; a non-number is passed on for the message.
        if name in row and (name != "apex" or cell_number(row[name]) is not None):
            return row[name]
        x = cell_number(row.get(f"{name}_s"))
        return row.get(f"{name}_s") if x is None else x * record.fps

    notes = [n] if (n := cell_text(row.get("notes"))) else []
    movement = cell_text(row.get("movement")) or f"{record.video}_{ordinal}"
    cells = {k: row.get(k) for k in ("kind", "action_units")}
    return AnnotationRow(
        csv, line, movement, frame("onset"), frame("offset"), frame("apex"), **cells, notes=notes
    )

"""Manifest records: a video to process and its ground-truth movements.

Rows of the ``videos`` and ``annotations`` tables (``schemas.VIDEOS``,
``schemas.ANNOTATIONS``) as small dataclasses with to/from dict. Validation that needs
the video itself (an interval outside it) lives in ``validate_annotations``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.core import configs
from pipeline.core.intervals import Interval


@dataclass(frozen=True)
class VideoRecord:
    """One video: a numbered frame folder (``source_kind="frames"``) or a video file."""

    dataset: str
    subject: str
    video: str
    uri: str
    source_kind: str  # "frames" | "video"
    fps: float
    n_frames: int
    width: int
    height: int
    first_frame_number: int = 0
    fingerprint: str = ""
    variable_rate: bool = False  # frames not evenly spaced: their times come from the container

    def to_dict(self) -> dict:
        return configs.to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "") -> VideoRecord:
        """A ``videos`` row (other columns, e.g. partition keys, are ignored)."""
        return configs.from_dict(cls, d, source=source, extra="ignore")


@dataclass(frozen=True)
class Annotation:
    """One ground-truth movement, frames 0-based into its video, inclusive."""

    dataset: str
    subject: str
    video: str
    movement: str
    onset_frame: int
    offset_frame: int
    kind: str  # "micro" | "macro"
    apex_frame: int | None = None
    action_units: str | None = None
    notes: str | None = None
    source_row: int | None = None

    @property
    def interval(self) -> Interval:
        return Interval(self.onset_frame, self.offset_frame)

    def to_dict(self) -> dict:
        return configs.to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "") -> Annotation:
        """An ``annotations`` row (other columns are ignored)."""
        return configs.from_dict(cls, d, source=source, extra="ignore")


@dataclass(frozen=True)
class Skipped:
    """Something left out of a run, and why (a row, a frame, a video)."""

    what: str
    reason: str


def validate_annotations(
    annotations: Iterable[Annotation], n_frames: int, *, source: str = ""
) -> tuple[list[Annotation], list[Skipped]]:
    """Split annotations into those inside ``[0, n_frames)`` and those skipped, with reasons."""
    ok, skipped = [], []
    for a in annotations:
        where = f"{source} row {a.source_row}" if source and a.source_row else a.movement
        if a.onset_frame < 0 or a.offset_frame >= n_frames:
            skipped.append(
                Skipped(
                    where,
                    f"movement {a.movement} frames {a.onset_frame}..{a.offset_frame} lie outside "
                    f"video {a.video} (frames 0..{n_frames - 1})",
                )
            )
        else:
            ok.append(a)
    return ok, skipped

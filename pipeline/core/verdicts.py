"""Annotators' verdicts on spotted intervals: the small types and rules, no I/O.

A verdict says whether a spotted interval holds a micro-movement: ``yes``, ``no`` or
``unsure``, optionally with FACS action units and a note, signed by an annotator and
timed. A ``yes`` may mark the movement's *extent* (``onset_frame..offset_frame``), which
can reach past the interval; unmarked, the interval stands for it. Verdicts are an
append-only log (``schemas.VERDICTS``): changing one's mind adds a newer verdict. How
the log becomes labels:

- **resolution** (:func:`resolve`): per interval, each annotator's *latest* verdict counts;
  the interval is ``yes`` when more annotators say yes than no, ``no`` when more say no
  than yes, and undecided otherwise (a tie, or only ``unsure``). Undecided intervals teach
  nothing.
- **window labels** (:func:`labels_from_verdicts`): each video's ``yes`` and ``no``
  intervals label its windows by the coverage rule of ``pipeline.core.labels``
  (``verdict_labels``: ``yes`` -> positive, wholly inside a ``no`` -> hard negative,
  everything else unlabelled). A ``yes`` labels by its extent (:attr:`Resolution.extent`)
  where one was marked, as ground truth labels by its movements, so one yes labels every
  window that covers the movement. ``mespot train --verdicts`` and the feedback simulation
  both label windows with it. The same extents label the windows' timesteps
  (:func:`steps_from_verdicts`), for a model's extent head.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np
from numpy.typing import ArrayLike

from pipeline.core import configs
from pipeline.core.extents import step_labels
from pipeline.core.intervals import Interval
from pipeline.core.labels import LABEL_MIN_COVERAGE, verdict_labels
from schemas import VERDICT_VALUES

MAX_NOTE = 2000
MAX_ANNOTATOR = 64

_AU = r"(?:AU)?[LRBTU]?\d{1,2}[A-E]?"
_AU_LIST = re.compile(rf"^{_AU}(?:\s*[+,/ ]\s*{_AU})*$", re.IGNORECASE)
_ANNOTATOR = re.compile(r"^[\w.@' -]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class BadVerdict(ValueError):
    """A verdict that cannot be stored; the message says which field and why."""


@dataclass(frozen=True, order=True, slots=True)
class IntervalKey:
    """A reviewed stretch of one video: frames ``start..end`` inclusive."""

    dataset: str
    subject: str
    video: str
    start: int
    end: int

    @property
    def video_key(self) -> tuple[str, str, str]:
        return (self.dataset, self.subject, self.video)

    @property
    def interval(self) -> Interval:
        return Interval(self.start, self.end)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One verdict as given: a row of ``schemas.VERDICTS``."""

    model_id: str
    dataset: str
    subject: str
    video: str
    start_frame: int
    end_frame: int
    verdict: str
    annotator: str
    score: float | None = None
    action_units: str | None = None
    note: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    verdict_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    onset_frame: int | None = None
    offset_frame: int | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICT_VALUES:
            raise BadVerdict(f"verdict must be one of {list(VERDICT_VALUES)}, got {self.verdict!r}")
        if self.end_frame < self.start_frame or self.start_frame < 0:
            raise BadVerdict(f"interval {self.start_frame}..{self.end_frame} is not a frame range")
        if self.created_at.tzinfo is None:
            raise BadVerdict("created_at must carry a time zone")
        _check_extent(self.verdict, self.onset_frame, self.offset_frame)

    @property
    def extent(self) -> Interval | None:
        """The movement's frames as marked on a yes; None when unmarked."""
        if self.onset_frame is None or self.offset_frame is None:
            return None
        return Interval(self.onset_frame, self.offset_frame)

    @property
    def key(self) -> IntervalKey:
        return IntervalKey(self.dataset, self.subject, self.video, self.start_frame, self.end_frame)

    def to_row(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: Mapping, source: str = "") -> Verdict:
        """A ``verdicts`` row (other columns, e.g. partition keys, are ignored)."""
        return configs.from_dict(cls, row, source=source, extra="ignore")


def _check_extent(verdict: str, onset: object, offset: object) -> None:
    """An extent is both frames or neither, a frame range, and only on a yes."""
    if onset is None and offset is None:
        return
    if onset is None or offset is None:
        raise BadVerdict("an extent needs both onset and offset (or neither)")
    for name, value in (("onset", onset), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise BadVerdict(f"{name} must be a frame number, got {value!r}")
    if onset < 0 or offset < onset:
        raise BadVerdict(f"extent {onset}..{offset} is not a frame range")
    if verdict != "yes":
        raise BadVerdict(f"an extent marks a movement: only a yes has one, not {verdict!r}")


@dataclass(frozen=True, slots=True)
class VerdictInput:
    """What an annotator sends: checked, normalised fields (see :func:`parse_verdict`)."""

    verdict: str
    annotator: str
    action_units: str | None
    note: str | None
    onset: int | None = None
    offset: int | None = None


def _text(payload: Mapping, name: str) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadVerdict(f"{name} must be text, got {type(value).__name__}")
    value = value.strip()
    return value or None


def normalise_action_units(text: str | None) -> str | None:
    """FACS codes in SAMM's style, ``4+7`` or ``R12+L2``: ``"AU4, au7"`` becomes ``4+7``."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if not _AU_LIST.match(text):
        raise BadVerdict(f"action_units {text!r} are not FACS codes like '4+7', 'AU4 AU7' or 'R12'")
    codes = [c for c in re.split(r"[\s+,/]+", text) if c]
    return "+".join(c[2:].upper() if c[:2].lower() == "au" else c.upper() for c in codes)


def parse_verdict(payload: object, *, fields: Iterable[str] = ()) -> VerdictInput:
    """Check an annotator's verdict payload (a JSON object); raise BadVerdict on any fault.

    Accepted keys: ``verdict`` (yes / no / unsure), ``annotator``, ``action_units``,
    ``note``, ``onset`` and ``offset`` (a yes's extent, frames; both or neither), plus
    ``fields`` (the caller's own, e.g. which interval). Unknown keys are refused so a
    misspelt field is not silently dropped.
    """
    if not isinstance(payload, Mapping):
        raise BadVerdict(f"a verdict must be a JSON object, got {type(payload).__name__}")
    known = {"verdict", "annotator", "action_units", "note", "onset", "offset", *fields}
    unknown = sorted(set(payload) - known)
    if unknown:
        raise BadVerdict(f"unknown fields {unknown}; expected some of {sorted(known)}")
    verdict = _text(payload, "verdict")
    if verdict not in VERDICT_VALUES:
        raise BadVerdict(f"verdict must be one of {list(VERDICT_VALUES)}, got {verdict!r}")
    annotator = _text(payload, "annotator")
    if annotator is None:
        raise BadVerdict("annotator is missing: say who gives the verdict")
    if len(annotator) > MAX_ANNOTATOR or not _ANNOTATOR.match(annotator):
        raise BadVerdict(
            f"annotator {annotator[:80]!r} must be at most {MAX_ANNOTATOR} letters, digits, "
            "spaces or . @ ' - _"
        )
    note = _text(payload, "note")
    if note is not None:
        if len(note) > MAX_NOTE:
            raise BadVerdict(f"note is {len(note)} characters long; at most {MAX_NOTE}")
        if _CONTROL.search(note):
            raise BadVerdict("note holds control characters")
    onset, offset = payload.get("onset"), payload.get("offset")
    _check_extent(verdict, onset, offset)
    return VerdictInput(
        verdict,
        annotator,
        normalise_action_units(_text(payload, "action_units")),
        note,
        None if onset is None else int(onset),
        None if offset is None else int(offset),
    )


@dataclass(frozen=True, slots=True)
class Resolution:
    """The resolved state of one interval: its label and each annotator's latest verdict."""

    label: str | None  # "yes" | "no" | None (undecided)
    latest: dict[str, Verdict]  # annotator -> their latest verdict

    @property
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(VERDICT_VALUES, 0)
        for v in self.latest.values():
            out[v.verdict] += 1
        return out

    @property
    def extent(self) -> Interval | None:
        """Where the movement is: the extent of the newest latest-yes that marks one (None:
        no yes marks one, and the interval stands for the movement)."""
        marked = [v for v in self.latest.values() if v.verdict == "yes" and v.extent]
        if not marked:
            return None
        return max(marked, key=lambda v: (v.created_at, v.verdict_id)).extent


def resolve(verdicts: Iterable[Verdict]) -> dict[IntervalKey, Resolution]:
    """Each interval's label: the majority of the annotators' latest verdicts (module doc)."""
    latest: dict[IntervalKey, dict[str, Verdict]] = {}
    for v in verdicts:
        mine = latest.setdefault(v.key, {})
        old = mine.get(v.annotator)
        if old is None or (v.created_at, v.verdict_id) > (old.created_at, old.verdict_id):
            mine[v.annotator] = v
    out = {}
    for key, by in latest.items():
        yes = sum(v.verdict == "yes" for v in by.values())
        no = sum(v.verdict == "no" for v in by.values())
        label = "yes" if yes > no else "no" if no > yes else None
        out[key] = Resolution(label, by)
    return out


VideoKey = tuple[str, str, str]


def labels_from_verdicts(
    datasets: ArrayLike,
    subjects: ArrayLike,
    videos: ArrayLike,
    starts: ArrayLike,
    ends: ArrayLike,
    verdicts: Iterable[Verdict],
    min_coverage: float = LABEL_MIN_COVERAGE,
) -> np.ndarray:
    """Window labels from a verdict log: int8 (N,), 1 / 0 from verdicts, -1 elsewhere.

    The five arrays describe N windows (video key and label span,
    pipeline.core.labels.label_spans). Verdicts on videos that are not among the windows are
    ignored. ``min_coverage``: the store's
    ``FeatureConfig.label_min_coverage``. Whether a video's own ground truth
    should win is the caller's choice (``mespot train --verdicts`` keeps ground truth).
    """
    d, s, v = (np.asarray(a, dtype=object) for a in (datasets, subjects, videos))
    st = np.asarray(starts, np.float64)
    en = np.asarray(ends, np.float64)
    if not len(d) == len(s) == len(v) == len(st) == len(en):
        raise ValueError(
            f"window arrays differ in length: {len(d)}, {len(s)}, {len(v)}, {len(st)}, {len(en)}"
        )
    labels = np.full(len(st), -1, np.int8)
    for (dataset, subject, video), (yes, no) in sorted(_by_video(verdicts).items()):
        mask = (d == dataset) & (s == subject) & (v == video)
        if mask.any():
            labels[mask] = verdict_labels(st[mask], en[mask], yes, no, min_coverage=min_coverage)
    return labels


def _by_video(verdicts: Iterable[Verdict]) -> dict[VideoKey, tuple[list[Interval], list[Interval]]]:
    """Each video's resolved (yes, no) intervals: a yes by its extent where one was marked."""
    by_video: dict[VideoKey, tuple[list[Interval], list[Interval]]] = {}
    for key, res in resolve(verdicts).items():
        if res.label is not None:
            yes, no = by_video.setdefault(key.video_key, ([], []))
            if res.label == "yes":
                yes.append(res.extent or key.interval)
            else:
                no.append(key.interval)
    return by_video


def steps_from_verdicts(
    datasets: ArrayLike,
    subjects: ArrayLike,
    videos: ArrayLike,
    starts: ArrayLike,
    ends: ArrayLike,
    labels: ArrayLike,
    verdicts: Iterable[Verdict],
    n_steps: int,
) -> np.ndarray:
    """Timestep labels (N, n_steps) int8 of the windows verdicts label (``labels`` >= 0, as
    :func:`labels_from_verdicts` gives them), as ground truth's
    (pipeline.core.extents.step_labels): 1 where a timestep's middle lies inside a yes's
    extent (its interval when none was marked), else 0; rows of -1 for unlabelled windows.
    ``starts``/``ends``: the windows' first and last frames (not their label spans)."""
    d, s, v = (np.asarray(a, dtype=object) for a in (datasets, subjects, videos))
    st, en = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    y = np.asarray(labels)
    if not len(d) == len(s) == len(v) == len(st) == len(en) == len(y):
        raise ValueError("window arrays and labels differ in length")
    out = np.full((len(y), n_steps), -1, np.int8)
    for (dataset, subject, video), (yes, _no) in _by_video(verdicts).items():
        rows = np.flatnonzero((d == dataset) & (s == subject) & (v == video) & (y >= 0))
        if len(rows):
            out[rows] = step_labels(st[rows], en[rows], n_steps, yes)
    return out

"""Spotting metrics: true positives under two rules, pooled counts, footage kept, per kind.

ROC curves of window scores are in :mod:`pipeline.core.curves`.

Conventions:

- Frames are 0-based and intervals inclusive at both ends (``Interval(3, 5)`` is 3 frames),
  so two intervals touching at one frame intersect in 1 frame.
- Two true-positive rules, both reported (:data:`RULES`):

  - ``"coverage"``, the paper's condition (1): the spot covers at least
    :data:`MIN_COVERAGE` (80%) of a ground-truth interval, ``|spot ∩ gt| / |gt| >= 0.8``;
  - ``"iou"``, MEGC's: ``|spot ∩ gt| / |spot ∪ gt| >= MIN_IOU`` (0.5).

  Thresholds are inclusive: exactly 0.8 or exactly 0.5 is a hit. (Ratios of frame counts
  that equal the threshold exactly compare equal in floating point, since division is
  correctly rounded.)
- Matching, per video: spots are taken in descending score order (ties: earliest start);
  each matches, among the ground truths not yet matched that it satisfies the rule with, the
  one with the highest measure (ties: earliest). Each ground truth is matched at most once;
  a spot that matches nothing, including one whose only ground truth was already taken, is
  a false positive. FN = number of ground truths - TP.
- Pooling: TP, FP and FN are summed over the corpus (or a subject), then recall, precision
  and F1 are computed once from the sums; this is not the mean of per-video scores.
- Footage fraction: frames inside the union of a video's spots, summed over videos, over
  the total number of frames; overlapping spots count their shared frames once.
- Kinds (:func:`evaluate_kinds`): micro- and macro-expressions are scored each against
  their own ground truth, and MEGC's overall score sums their counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.core.intervals import Interval, Spot
from pipeline.core.labels import LABEL_MIN_COVERAGE

#: The paper's condition (1), the same that labels training windows.
MIN_COVERAGE = LABEL_MIN_COVERAGE
#: MEGC's intersection over union threshold.
MIN_IOU = 0.5


@dataclass(frozen=True)
class Rule:
    """A true-positive rule: ``measure(spot, truth) >= threshold`` (inclusive)."""

    name: str
    measure: Callable[[Interval, Interval], float]
    threshold: float
    description: str

    def accepts(self, spot: Interval, truth: Interval) -> bool:
        """Whether ``spot`` is a true positive for ``truth`` under this rule."""
        return self.measure(spot, truth) >= self.threshold


RULES: dict[str, Rule] = {
    "coverage": Rule(
        "coverage",
        lambda spot, gt: spot.coverage_of(gt),
        MIN_COVERAGE,
        f"|spot ∩ truth| / |truth| >= {MIN_COVERAGE} (paper)",
    ),
    "iou": Rule(
        "iou",
        lambda spot, gt: spot.iou(gt),
        MIN_IOU,
        f"|spot ∩ truth| / |spot ∪ truth| >= {MIN_IOU} (MEGC)",
    ),
}


@dataclass
class Counts:
    """True positives, false positives and false negatives; ``+`` sums them."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 0.0 when there is no ground truth."""
        n = self.tp + self.fn
        return self.tp / n if n else 0.0

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 0.0 when there are no spots."""
        n = self.tp + self.fp
        return self.tp / n if n else 0.0

    @property
    def f1(self) -> float:
        """2 TP / (2 TP + FP + FN), the harmonic mean of the two; 0.0 when all are zero."""
        n = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / n if n else 0.0

    def to_dict(self) -> dict[str, int | float]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "recall": self.recall,
            "precision": self.precision,
            "f1": self.f1,
        }


def match(spots: Sequence[Spot], truth: Sequence[Interval], rule: str) -> Counts:
    """TP/FP/FN of one video's spots against its ground truth (see the module docstring)."""
    try:
        r = RULES[rule]
    except KeyError:
        raise ValueError(f"unknown rule {rule!r}; expected one of {sorted(RULES)}") from None
    gts = sorted(truth)  # earliest first: index order breaks ties between equal measures
    free = [True] * len(gts)
    tp = 0
    for sp in sorted(spots, key=lambda s: (-s.score, s.start, s.end)):
        iv = sp.interval
        hits = [j for j, gt in enumerate(gts) if free[j] and r.accepts(iv, gt)]
        if hits:
            best = max(hits, key=lambda j: (r.measure(iv, gts[j]), -j))
            free[best] = False
            tp += 1
    return Counts(tp=tp, fp=len(spots) - tp, fn=len(gts) - tp)


def spotted_frames(spots: Iterable[Spot | Interval]) -> int:
    """Number of frames in the union of the intervals (shared frames counted once)."""
    total, next_free = 0, None  # next_free: first frame not yet counted
    for start, end in sorted((s.start, s.end) for s in spots):
        lo = start if next_free is None else max(start, next_free)
        if end >= lo:
            total += end - lo + 1
            next_free = end + 1
    return total


def _check_within(spots: Sequence[Spot], n_frames: int) -> None:
    # A spot outside the video means frames were counted against the wrong video or fps;
    # clipping it would hide that.
    if n_frames <= 0:
        raise ValueError(f"n_frames must be positive, got {n_frames}")
    for s in spots:
        if s.start < 0 or s.end >= n_frames:
            raise ValueError(f"spot {s.start}..{s.end} lies outside frames 0..{n_frames - 1}")


def footage_fraction(spots: Sequence[Spot], n_frames: int) -> float:
    """Fraction of a video's ``n_frames`` frames inside the union of its spots."""
    _check_within(spots, n_frames)
    return spotted_frames(spots) / n_frames


@dataclass
class VideoResult:
    """One video's spots and ground truth, as :func:`evaluate` takes them."""

    dataset: str
    subject: str
    video: str
    n_frames: int
    fps: float
    spots: list[Spot]
    truth: list[Interval]


@dataclass
class Row:
    """Pooled results of a group of videos (a subject, or the TOTAL row)."""

    dataset: str
    subject: str
    videos: int = 0
    frames: int = 0
    spotted: int = 0  # frames in the union of spots, summed over videos
    n_spots: int = 0
    n_truth: int = 0
    counts: dict[str, Counts] = field(default_factory=lambda: {r: Counts() for r in RULES})

    @property
    def footage_fraction(self) -> float:
        """Spotted frames / frames; 0.0 for a group without frames."""
        return self.spotted / self.frames if self.frames else 0.0

    @classmethod
    def of_video(cls, v: VideoResult) -> Row:
        """The row of one video, matched under every rule."""
        _check_within(v.spots, v.n_frames)
        return cls(
            dataset=v.dataset,
            subject=v.subject,
            videos=1,
            frames=v.n_frames,
            spotted=spotted_frames(v.spots),
            n_spots=len(v.spots),
            n_truth=len(v.truth),
            counts={name: match(v.spots, v.truth, name) for name in RULES},
        )

    def add(self, other: Row) -> None:
        """Pool ``other`` into this row (sums, so ratios are recomputed from the sums)."""
        self.videos += other.videos
        self.frames += other.frames
        self.spotted += other.spotted
        self.n_spots += other.n_spots
        self.n_truth += other.n_truth
        for name in RULES:
            self.counts[name] = self.counts[name] + other.counts[name]

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "subject": self.subject,
            "videos": self.videos,
            "frames": self.frames,
            "spotted_frames": self.spotted,
            "footage_fraction": self.footage_fraction,
            "spots": self.n_spots,
            "truth": self.n_truth,
            "rules": {name: c.to_dict() for name, c in self.counts.items()},
        }


#: The ``subject`` of the row pooling the whole corpus.
TOTAL = "TOTAL"


@dataclass
class Report:
    """Corpus results: one row per (dataset, subject), sorted, and a pooled TOTAL row."""

    subjects: list[Row]
    total: Row

    @property
    def counts(self) -> dict[str, Counts]:
        """Pooled counts per rule."""
        return self.total.counts

    @property
    def footage_fraction(self) -> float:
        return self.total.footage_fraction

    def to_dict(self) -> dict:
        """JSON-able: the TOTAL row's fields at the top, then ``subjects`` (one row each).

        ``rules`` maps each rule to its pooled counts and ratios, plus the rule's
        ``threshold`` and ``definition``; the per-subject rows have the same fields.
        """
        d = self.total.to_dict()
        for name, rule in RULES.items():
            d["rules"][name] |= {"threshold": rule.threshold, "definition": rule.description}
        return d | {"subjects": [row.to_dict() for row in self.subjects]}

    def to_markdown(self, title: str = "Spotting results") -> str:
        """A rules table (pooled), then one per-subject table per rule ending in TOTAL."""
        t = self.total
        out = [
            f"# {title}",
            "",
            f"{t.videos} videos, {t.n_truth} ground-truth intervals, {t.n_spots} spots; "
            f"footage kept for review: {t.footage_fraction:.2%} ({t.spotted} of {t.frames} "
            "frames). Counts pooled over the corpus; each ground truth matched at most once.",
            "",
            "| rule | TP | FP | FN | recall | precision | F1 |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, rule in RULES.items():
            c = t.counts[name]
            rule_cell = f"{name} ({rule.description})".replace("|", r"\|")  # a bare | splits cells
            out.append(
                f"| {rule_cell} | {c.tp} | {c.fp} | {c.fn} "
                f"| {c.recall:.4f} | {c.precision:.4f} | {c.f1:.4f} |"
            )
        for name in RULES:
            out += [
                "",
                f"## Per subject, rule {name}",
                "",
                "| dataset | subject | videos | truth | spots | footage "
                "| TP | FP | FN | recall | precision | F1 |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for row in [*self.subjects, t]:
                c = row.counts[name]
                out.append(
                    f"| {row.dataset} | {row.subject} | {row.videos} | {row.n_truth} "
                    f"| {row.n_spots} | {row.footage_fraction:.2%} | {c.tp} | {c.fp} | {c.fn} "
                    f"| {c.recall:.4f} | {c.precision:.4f} | {c.f1:.4f} |"
                )
        return "\n".join(out) + "\n"


def evaluate(videos: Sequence[VideoResult]) -> Report:
    """Match every video under every rule and pool the counts per subject and overall."""
    return _pooled([Row.of_video(v) for v in videos])


def _pooled(rows: Iterable[Row]) -> Report:
    """Video rows pooled per (dataset, subject) and into TOTAL."""
    by_subject: dict[tuple[str, str], Row] = {}
    total = Row(dataset="", subject=TOTAL)
    for row in rows:
        by_subject.setdefault((row.dataset, row.subject), Row(row.dataset, row.subject)).add(row)
        total.add(row)
    return Report(subjects=[by_subject[k] for k in sorted(by_subject)], total=total)


#: The row of :func:`evaluate_kinds` that pools every kind.
OVERALL = "overall"


def evaluate_kinds(by_kind: Mapping[str, Sequence[VideoResult]]) -> dict[str, Report]:
    """One report per kind of movement (e.g. "micro", "macro": each kind's spots matched
    against that kind's ground truth only) and, with several kinds, :data:`OVERALL`, MEGC's
    overall score: per video, the kinds' TP, FP and FN summed; its footage is the union of
    every kind's spots (a frame spotted as both counts once)."""
    rows = {kind: [Row.of_video(v) for v in videos] for kind, videos in by_kind.items()}
    reports = {kind: _pooled(kind_rows) for kind, kind_rows in rows.items()}
    if len(by_kind) < 2:
        return reports
    merged: dict[tuple[str, str, str], tuple[Row, list[Spot]]] = {}
    for kind, videos in by_kind.items():
        for v, row in zip(videos, rows[kind], strict=True):
            key = (v.dataset, v.subject, v.video)
            if key not in merged:
                merged[key] = (Row(v.dataset, v.subject, videos=1, frames=v.n_frames), [])
            into, spots = merged[key]
            into.n_spots += row.n_spots
            into.n_truth += row.n_truth
            for name in RULES:
                into.counts[name] = into.counts[name] + row.counts[name]
            spots.extend(v.spots)
    for into, spots in merged.values():
        into.spotted = spotted_frames(spots)
    reports[OVERALL] = _pooled(row for row, _ in merged.values())
    return reports

"""A self-contained HTML report of spotted intervals: one score timeline per video (inline
SVG), a thumbnail of each interval's apex frame (inline JPEG), the footage to review.

One file that opens anywhere, offline, without scripts: what ``mespot spot`` leaves
beside its intervals for someone who wants to see what was found before reviewing it.
:func:`render_html` is pure (the videos' scores, intervals and thumbnails in, text out);
:func:`apex_frame` and :func:`thumbnail` prepare its inputs.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Width and height of a timeline, in SVG user units.
TIMELINE_W, TIMELINE_H = 900, 120


@dataclass(frozen=True)
class VideoSpots:
    """One video's score timeline and its spotted intervals.

    ``frames`` are the frame indices the ``scores`` belong to (a window's centre, or each
    frame of an extent head's profile), ascending; ``intervals`` are (start, end, score),
    frames inclusive, of ``kinds`` (one each: ``micro`` or ``macro``; default all micro);
    ``thumbnails`` one JPEG (or None) per interval."""

    name: str
    fps: float
    n_frames: int
    frames: np.ndarray
    scores: np.ndarray
    threshold: float
    intervals: list[tuple[int, int, float]]
    thumbnails: list[bytes | None] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kinds and len(self.kinds) != len(self.intervals):
            raise ValueError(
                f"{self.name}: {len(self.kinds)} kinds for {len(self.intervals)} intervals"
            )
        if len(self.frames) != len(self.scores):
            raise ValueError(
                f"{self.name}: {len(self.frames)} frames but {len(self.scores)} scores"
            )
        if self.thumbnails and len(self.thumbnails) != len(self.intervals):
            raise ValueError(
                f"{self.name}: {len(self.thumbnails)} thumbnails for "
                f"{len(self.intervals)} intervals"
            )
        if self.n_frames < 1 or self.fps <= 0:
            raise ValueError(f"{self.name}: n_frames {self.n_frames}, fps {self.fps}")

    def kind(self, i: int) -> str:
        return self.kinds[i] if self.kinds else "micro"

    def count(self, kind: str) -> int:
        return sum(self.kind(i) == kind for i in range(len(self.intervals)))

    @property
    def footage(self) -> float:
        """The fraction of the video's frames inside a spotted interval (overlaps once)."""
        kept = np.zeros(self.n_frames, bool)
        for start, end, _ in self.intervals:
            kept[max(start, 0) : min(end, self.n_frames - 1) + 1] = True
        return float(kept.mean())


def apex_frame(start: int, end: int, frames: np.ndarray, scores: np.ndarray) -> int:
    """The frame of the highest score inside [start, end] (the first of ties); the
    interval's middle frame when no score falls inside it."""
    frames, scores = np.asarray(frames), np.asarray(scores, np.float64)
    inside = (frames >= start) & (frames <= end) & np.isfinite(scores)
    if not inside.any():
        return (start + end) // 2
    return int(frames[inside][np.argmax(scores[inside])])


def thumbnail(image: np.ndarray, width: int = 160, quality: int = 80) -> bytes:
    """A JPEG of ``image`` (H x W [x 3] uint8, BGR) shrunk to ``width`` pixels wide."""
    import cv2

    h, w = image.shape[:2]
    if w > width:
        size = (width, max(1, round(h * width / w)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"could not encode a {image.shape} image as JPEG")
    return buf.tobytes()


def _timeline(v: VideoSpots) -> str:
    """The video's scores as a polyline over its frames, the threshold as a dashed line,
    the intervals as shaded bands."""

    def x(frame: float) -> float:
        return round(frame / max(v.n_frames - 1, 1) * TIMELINE_W, 1)

    def y(score: float) -> float:
        return round((1 - min(max(score, 0.0), 1.0)) * TIMELINE_H, 1)

    bands = "".join(
        f'<rect class="spot {v.kind(i)}" x="{x(a)}" y="0" width="{max(x(b) - x(a), 1)}" '
        f'height="{TIMELINE_H}"><title>{v.kind(i)}: frames {a}-{b}, score {s:.2f}</title></rect>'
        for i, (a, b, s) in enumerate(v.intervals)
    )
    scores = np.asarray(v.scores, np.float64)
    finite = np.isfinite(scores)
    frames = np.asarray(v.frames)[finite]
    points = " ".join(f"{x(f)},{y(s)}" for f, s in zip(frames, scores[finite], strict=True))
    return (
        f'<svg class="timeline" viewBox="0 0 {TIMELINE_W} {TIMELINE_H}" '
        f'preserveAspectRatio="none" role="img" aria-label="scores of {html.escape(v.name)}">'
        f"{bands}"
        f'<line class="threshold" x1="0" x2="{TIMELINE_W}" y1="{y(v.threshold)}" '
        f'y2="{y(v.threshold)}"/>'
        f'<polyline class="scores" points="{points}"/></svg>'
    )


def _interval_cells(v: VideoSpots) -> str:
    cards = []
    for i, (start, end, score) in enumerate(v.intervals):
        thumb = v.thumbnails[i] if v.thumbnails else None
        img = (
            f'<img class="apex" alt="apex frame of frames {start}-{end}" '
            f'src="data:image/jpeg;base64,{base64.b64encode(thumb).decode()}">'
            if thumb
            else '<div class="apex missing">no frame</div>'
        )
        cards.append(
            f'<figure class="interval {v.kind(i)}">{img}<figcaption>{v.kind(i)} '
            f"{start / v.fps:.2f}-{(end + 1) / v.fps:.2f} s (frames {start}-{end}), "
            f"score {score:.2f}</figcaption></figure>"
        )
    return "".join(cards) or '<p class="none">nothing spotted</p>'


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
section.video{margin-bottom:2rem}
svg.timeline{width:100%;height:120px;background:#fafafa;border:1px solid #ddd}
rect.spot{fill:#f4a261;fill-opacity:.35}rect.spot.macro{fill:#8ab17d;fill-opacity:.3}
line.threshold{stroke:#c00;stroke-dasharray:6 4;stroke-width:1}
polyline.scores{fill:none;stroke:#1d4e89;stroke-width:1.2}
figure.interval{display:inline-block;vertical-align:top;margin:.3rem;font-size:.8rem;width:170px}
img.apex{display:block;max-width:160px}
table{border-collapse:collapse}td,th{padding:.2rem .6rem;border-bottom:1px solid #eee}
"""


def render_html(videos: Sequence[VideoSpots], title: str, model: str) -> str:
    """The report as one HTML document (no scripts, no external resources)."""
    rows = "".join(
        f"<tr><td>{html.escape(v.name)}</td><td>{v.n_frames / v.fps:.1f} s</td>"
        f"<td>{v.count('micro')}</td><td>{v.count('macro')}</td><td>{v.footage:.1%}</td></tr>"
        for v in videos
    )
    total = sum(v.n_frames for v in videos)
    kept = sum(v.footage * v.n_frames for v in videos)
    sections = "".join(
        f'<section class="video"><h2>{html.escape(v.name)}</h2>'
        f"<p>{v.count('micro')} micro and {v.count('macro')} macro intervals, "
        f"{v.footage:.1%} of the footage to review; micro "
        f"threshold {v.threshold:.3g}</p>{_timeline(v)}"
        f'<div class="intervals">{_interval_cells(v)}</div></section>'
        for v in videos
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>model {html.escape(model)}; "
        f"{kept / total if total else 0:.1%} of all footage to review</p>"
        "<table><thead><tr><th>video</th><th>length</th><th>micro</th><th>macro</th>"
        f"<th>footage</th></tr></thead><tbody>{rows}</tbody></table>{sections}</body></html>"
    )

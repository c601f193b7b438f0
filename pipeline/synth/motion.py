"""Motion of the synthetic corpus: events, head pose and the remap they define.

A synthetic video is one still face (a *canvas*, the size of the output frame) warped
differently in every frame. Output pixel ``q`` of frame ``i`` samples the canvas at

    map_i(q) = H_i^-1(q) - sum_k e_k(i) * d_k(H_i^-1(q))

where ``H_i`` is the head pose (a similarity: slow drift plus quick jerks) taking canvas
pixels to output pixels, ``d_k`` is the displacement field of event ``k`` (a sum of
Gaussian bumps centred on landmarks, canvas pixels) and ``e_k`` its onset -> apex ->
offset envelope. To first order the face content at canvas point ``u`` then shows up
at ``H_i(u + e d(u))``: the bumps move the face by ``d`` and the head moves the result.
The map is exact as written, so tests can read the displacement back from it
(``pipeline.synth.renderer.FrameRenderer`` builds it and renders the frames).

Frames are numbered from 1 in events, file names and the sheet, as in SAMM; arrays
indexed by frame are 0-based (index = number - 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from pipeline.core import configs

#: Event kinds: (duration range in seconds, peak displacement range in pixels).
#: Blinks take their amplitude from the eye opening instead (see ``_blink``).
EVENT_KINDS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "macro": ((1.0, 3.0), (6.0, 12.0)),
    # micro amplitude: "classic" actions only; "au" ones draw SynthConfig.micro_px instead
    "micro": ((0.2, 0.5), (1.0, 3.0)),
    "jerk": ((0.1, 0.3), (3.0, 8.0)),
    "blink": ((0.1, 0.3), (0.0, 0.0)),
}
SHEET_KINDS = ("micro", "macro")  # the annotated ones; blinks and jerks are distractors
GAP_S = 0.3  # least quiet time between two events, and between an event and a video end
MIN_EVENT_FRAMES = 3  # onset, apex and offset distinct
APEX_AT = (0.4, 0.6)  # where the apex falls, as a fraction of the event
BUMP_REACH = 4.0  # bumps are evaluated out to this many sigmas (e^-8 beyond: < 0.01 px)


@dataclass(frozen=True)
class Bump:
    """An axis-aligned Gaussian displacement in canvas pixels: ``vector * g(u - centre)``."""

    centre: tuple[float, float]
    sigma: tuple[float, float]
    vector: tuple[float, float]

    def to_dict(self) -> dict:
        return {k: [round(v, 4) for v in vs] for k, vs in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> Bump:
        return cls(tuple(d["centre"]), tuple(d["sigma"]), tuple(d["vector"]))


@dataclass(frozen=True)
class SynthEvent:
    """One placed event; frames are 1-based NUMBERS (as in file names), inclusive.

    ``amplitude_px`` is the peak displacement at the landmarks (``bumps``' sum there), or
    the jerk's translation (``shift``). ``movement`` is ``n`` in the sheet's Filename
    ``<video>_<n>`` for micro/macro events and None for distractors.
    """

    kind: str
    video: str
    onset: int
    apex: int
    offset: int
    region: str
    amplitude_px: float
    action_units: str = ""
    movement: int | None = None
    notes: str = ""
    bumps: tuple[Bump, ...] = ()
    shift: tuple[float, float] = (0.0, 0.0)

    @property
    def duration(self) -> int:
        return self.offset - self.onset + 1

    @property
    def in_sheet(self) -> bool:
        return self.kind in SHEET_KINDS

    def to_dict(self) -> dict:
        d = asdict(self)
        d["amplitude_px"] = round(self.amplitude_px, 4)
        d["bumps"] = [b.to_dict() for b in self.bumps]
        d["shift"] = [round(v, 4) for v in self.shift]
        return d

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "") -> SynthEvent:
        d = dict(d)
        d["bumps"] = tuple(Bump.from_dict(b) for b in d.get("bumps", ()))
        d["shift"] = tuple(d.get("shift", (0.0, 0.0)))
        return configs.from_dict(cls, d, source=source)


def envelope(index: np.ndarray | int, onset: int, apex: int, offset: int) -> np.ndarray:
    """Raised cosine 0 -> 1 from onset to apex and 1 -> 0 from apex to offset; 0 outside."""
    t = np.asarray(index, dtype=np.float64)
    rise = 0.5 - 0.5 * np.cos(np.pi * (t - onset) / max(apex - onset, 1))
    fall = 0.5 + 0.5 * np.cos(np.pi * (t - apex) / max(offset - apex, 1))
    e = np.where(t <= apex, rise, fall)
    return np.where((t < onset) | (t > offset), 0.0, e)


def displacement_at(points: np.ndarray, bumps: tuple[Bump, ...] | list[Bump]) -> np.ndarray:
    """The summed bump displacement (N, 2) at canvas points (N, 2): the reference field."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    out = np.zeros_like(p)
    for b in bumps:
        g = np.exp(
            -0.5
            * (
                ((p[:, 0] - b.centre[0]) / b.sigma[0]) ** 2
                + ((p[:, 1] - b.centre[1]) / b.sigma[1]) ** 2
            )
        )
        out += g[:, None] * np.asarray(b.vector)
    return out


def bumps_through(
    centres: list[tuple[float, float]],
    sigmas: list[tuple[float, float]],
    wanted: list[tuple[float, float]],
) -> tuple[Bump, ...]:
    """Bumps whose SUM equals ``wanted[j]`` exactly at ``centres[j]``.

    Neighbouring bumps (the two brows) overlap a little; solving the small linear system
    instead of using ``wanted`` as each bump's vector keeps the configured amplitude
    exact at every landmark.
    """
    unit = [Bump(c, s, (1.0, 0.0)) for c, s in zip(centres, sigmas, strict=True)]
    gram = np.array([[displacement_at(np.array(cj), [bk])[0, 0] for bk in unit] for cj in centres])
    vectors = np.linalg.solve(gram, np.asarray(wanted, dtype=np.float64))
    return tuple(
        Bump(tuple(map(float, c)), tuple(map(float, s)), (float(v[0]), float(v[1])))
        for c, s, v in zip(centres, sigmas, vectors, strict=True)
    )


# --- placing events in time ----------------------------------------------------------------


def event_frames(kind: str, fps: float, rng: np.random.Generator) -> int:
    """A duration in frames for ``kind``: uniform in its range, at least MIN_EVENT_FRAMES."""
    (d0, d1), _ = EVENT_KINDS[kind]
    return max(MIN_EVENT_FRAMES, round(float(rng.uniform(d0, d1)) * fps))


def place_events(
    rng: np.random.Generator, n_frames: int, fps: float, counts: dict[str, int]
) -> tuple[list[tuple[str, int, int, int]], int]:
    """(kind, onset, apex, offset) 1-based frame numbers, in time order, and how many did not fit.

    Each event's start is uniform over every start that keeps it GAP_S away from the
    video ends and from events already placed (longest kinds first, so they find room).
    """
    margin = math.ceil(GAP_S * fps)
    free = [(margin, n_frames - 1 - margin)]  # inclusive 0-based index ranges still open
    placed, unplaced = [], 0
    for kind in sorted(counts, key=lambda k: -EVENT_KINDS[k][0][1]):
        for _ in range(counts[kind]):
            length = event_frames(kind, fps, rng)
            starts = [max(0, hi - lo + 2 - length) for lo, hi in free]
            total = sum(starts)
            if total == 0:
                unplaced += 1
                continue
            r = int(rng.integers(total))
            j = 0
            while r >= starts[j]:
                r -= starts[j]
                j += 1
            lo, hi = free[j]
            start, end = lo + r, lo + r + length - 1
            free[j : j + 1] = [
                (a, b) for a, b in ((lo, start - 1 - margin), (end + 1 + margin, hi)) if b >= a
            ]
            apex = start + min(
                length - 2, max(1, round(float(rng.uniform(*APEX_AT)) * (length - 1)))
            )
            placed.append((kind, start + 1, apex + 1, end + 1))
    return sorted(placed, key=lambda e: e[1]), unplaced


def event_counts(
    rng: np.random.Generator, seconds: float, per_10s: dict[str, float]
) -> dict[str, int]:
    """Events per kind: rate * seconds / 10 rounded up or down at random (the mean is exact)."""
    return {k: math.floor(r * seconds / 10.0 + rng.random()) for k, r in per_10s.items()}


# --- head pose -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadMotion:
    """Per-frame similarity canvas -> output about ``centre``: rotation, scale, shift."""

    centre: tuple[float, float]
    angle_deg: np.ndarray = field(repr=False)  # (n,)
    scale: np.ndarray = field(repr=False)  # (n,)
    shift: np.ndarray = field(repr=False)  # (n, 2) pixels

    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        n_frames: int,
        fps: float,
        centre: tuple[float, float],
        jerks: Sequence[SynthEvent] = (),
    ) -> HeadMotion:
        """Drift: two slow sinusoids (periods 2-8 s) per parameter, <= 3 px per axis, <= 1 deg,
        <= 0.4% scale; plus each jerk event's shift under its envelope (out and back)."""
        t = np.arange(n_frames) / fps

        def drift(a0: float, a1: float) -> np.ndarray:
            amps, periods, phases = (
                rng.uniform(a0, a1, 2),
                rng.uniform(2.0, 8.0, 2),
                rng.uniform(0, 2 * np.pi, 2),
            )
            return sum(
                a * np.sin(2 * np.pi * t / p + f)
                for a, p, f in zip(amps, periods, phases, strict=True)
            )

        shift = np.stack([drift(0.5, 1.5), drift(0.5, 1.5)], axis=1)
        angle, scale = drift(0.15, 0.5), 1.0 + drift(0.0005, 0.002)
        index = np.arange(1, n_frames + 1)
        for ev in jerks:
            shift += envelope(index, ev.onset, ev.apex, ev.offset)[:, None] * np.asarray(ev.shift)
        return cls(centre, angle, scale, shift)

    def matrix(self, index: int) -> np.ndarray:
        """Forward 2x3 similarity of frame ``index`` (0-based): canvas -> output pixels."""
        a = math.radians(float(self.angle_deg[index]))
        s = float(self.scale[index])
        rot = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        c = np.asarray(self.centre)
        return np.hstack([rot, (c - rot @ c + self.shift[index])[:, None]])

"""Facial actions of the synthetic corpus: which landmarks an event moves, and how.

With ``actions="au"`` (``mespot synth --realistic``) each micro-movement is one FACS
action unit the spotter must see, drawn with equal odds:

    AU1      inner brow raiser     inner brow ends (21, 22) up
    AU2      outer brow raiser     outer brows (18, 25) up
    AU1+AU2  brow raise            brow arches (19, 24) up
    AU4      brow lowerer          inner brows (20-21, 22-23) down and drawn together
    AU12     lip-corner puller     one corner (48 or 54) out and up
    AU14     dimpler               one corner drawn in, towards the mouth's middle
    AU15     lip-corner depressor  one corner down

Brow actions move both brows or one (SAMM codes one-sided ones with R/L; here the region
says which). Landmark numbers are iBUG 68's, as the face model fits them; "right" is the
subject's right (the image's left). A micro-movement's peak displacement is drawn from
``micro_px`` pixels *at a face 400 px wide* (SAMM's resolution) and scaled to the
rendered face, so a smaller face moves fewer pixels, as in a real recording.
Macro-expressions move brows and both corners together, several times further.
``actions="classic"`` (the default) is the corpus from before: whole brows up or down or
one corner (AU12, AU15), 1-3 px on any face.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.synth.motion import EVENT_KINDS, bumps_through

#: Micro-movement amplitudes are given for a face this wide (SAMM's faces, about 400 px).
REFERENCE_FACE_PX = 400.0
#: Micro-movement peak displacement, pixels at that face: sub-pixel to 3 px.
MICRO_PX = (0.5, 3.0)
MICRO_AUS = ("AU1", "AU2", "AU1+AU2", "AU4", "AU12", "AU14", "AU15")
BROW_AUS = ("AU1", "AU2", "AU1+AU2", "AU4")
SIGMA_OF_FACE = (0.06, 0.10)  # bump sigma, as a fraction of the face width
BROW_WIDEN = 1.5  # brow-arch bumps are wider than tall so the whole brow moves
PART_SIGMA = 0.7  # inner/outer brow bumps are narrower: they move part of the brow

# iBUG 68 indices, [subject's right (image left), subject's left (image right)].
BROW_TOPS = (19, 24)
INNER_BROWS = (21, 22)
OUTER_BROWS = (18, 25)
LOWERED_BROWS = ((20, 21), (22, 23))
MOUTH_CORNERS = (48, 54)
UPPER_LIDS = ((37, 38), (43, 44))
LOWER_LIDS = ((41, 40), (47, 46))
EYES = (slice(36, 42), slice(42, 48))
_BROW_NAMES = ("right_eyebrow", "left_eyebrow")  # pipeline.vision.face names: 17-21, 22-26
_CORNER_NAMES = ("mouth_right", "mouth_left")  # pipeline.vision.face names: 48, 54
_AU_NOTES = {
    "AU1": "inner brow raised",
    "AU2": "outer brow raised",
    "AU1+AU2": "brow raised",
    "AU4": "brow lowered and drawn in",
    "AU12": "corner up and out",
    "AU14": "corner drawn in",
    "AU15": "corner down",
}


def _pt(landmarks: np.ndarray, i: int | tuple[int, ...]) -> tuple[float, float]:
    p = landmarks[list(i) if isinstance(i, tuple) else i]
    p = p.mean(axis=0) if p.ndim == 2 else p
    return float(p[0]), float(p[1])


#: Brow part actions: landmarks per brow (right, left) and unit vectors per brow. AU4
#: moves down and towards the midline (image x: the right brow +, the left one -).
_BROW_PARTS = {
    "AU1": (INNER_BROWS, ((0.0, -1.0), (0.0, -1.0))),
    "AU2": (OUTER_BROWS, ((0.0, -1.0), (0.0, -1.0))),
    "AU4": (LOWERED_BROWS, ((0.5, 0.85), (-0.5, 0.85))),
}


def brow_action(landmarks, sigma: float, amp: float, au: str, which: tuple[int, ...]):
    """(centres, sigmas, vectors) of ``au`` on the brows ``which`` (0: right, 1: left)."""
    if au == "AU1+AU2":
        return _arches(landmarks, sigma, amp, True, which)
    if au not in _BROW_PARTS:
        raise ValueError(f"not a brow action: {au!r}")
    points, units = _BROW_PARTS[au]
    centres = [_pt(landmarks, points[j]) for j in which]
    vectors = [(amp * units[j][0], amp * units[j][1]) for j in which]
    return centres, [(PART_SIGMA * sigma,) * 2] * len(which), vectors


def corner_action(landmarks, sigma: float, amp: float, au: str, which: tuple[int, ...]):
    """(centres, sigmas, vectors) of ``au`` on the mouth corners ``which`` (0: right, 1: left)."""
    out = {0: -1.0, 1: 1.0}  # image x away from the mouth's middle
    vectors = {
        "AU12": lambda j: (0.6 * out[j] * amp, -0.8 * amp),
        "AU14": lambda j: (-out[j] * amp, 0.0),
        "AU15": lambda j: (0.0, amp),
    }
    if au not in vectors:
        raise ValueError(f"not a mouth-corner action: {au!r}")
    centres = [_pt(landmarks, MOUTH_CORNERS[j]) for j in which]
    return centres, [(sigma, sigma)] * len(which), [vectors[au](j) for j in which]


def micro_action(
    au: str, landmarks: np.ndarray, sigma: float, amp: float, side: int | None
) -> dict:
    """Region, notes and bumps of micro-movement ``au``; ``side`` None: both brows."""
    if au in BROW_AUS:
        which = (0, 1) if side is None else (side,)
        c, s, v = brow_action(landmarks, sigma, amp, au, which)
        region = "eyebrows" if side is None else _BROW_NAMES[side]
    else:
        if side is None:
            raise ValueError(f"{au} moves one mouth corner: give its side")
        c, s, v = corner_action(landmarks, sigma, amp, au, (side,))
        region = _CORNER_NAMES[side]
    where = "both brows" if side is None else region.replace("_", " ")
    return dict(region=region, notes=f"{where}: {_AU_NOTES[au]}", bumps=bumps_through(c, s, v))


ACTIONS = ("classic", "au")


def shape_event(
    kind: str,
    rng: np.random.Generator,
    landmarks: np.ndarray,
    face_width: float,
    actions: str = "classic",
    micro_px: tuple[float, float] = MICRO_PX,
) -> dict:
    """Region, action units, notes, amplitude, bumps and shift of one event of ``kind``.

    ``actions``: "au" draws each micro-movement as one of MICRO_AUS, ``micro_px`` pixels at
    a 400 px face; "classic" (the corpus before AUs, drawn exactly as then) moves whole
    brows up or down or one corner (AU12, AU15) by 1-3 px whatever the face's size.
    """
    if actions not in ACTIONS:
        raise ValueError(f"actions must be one of {ACTIONS}, got {actions!r}")
    (_, (a0, a1)) = EVENT_KINDS[kind]
    amp = float(rng.uniform(a0, a1))
    sigma = float(rng.uniform(*SIGMA_OF_FACE)) * face_width
    if kind == "jerk":
        angle = rng.uniform(0.0, 2.0 * np.pi)
        shift = (amp * math.cos(angle), amp * math.sin(angle))
        return dict(region="head", amplitude_px=amp, notes="head jerk", shift=shift)
    if kind == "blink":
        return _blink(landmarks)
    if actions == "classic":
        return _classic(kind, rng, landmarks, sigma, amp)
    if kind == "macro":
        up, pull = bool(rng.integers(2)), bool(rng.integers(2))
        brow_au, corner_au = ("AU1+AU2" if up else "AU4"), ("AU12" if pull else "AU15")
        c1, s1, v1 = brow_action(landmarks, sigma, amp, brow_au, (0, 1))
        c2, s2, v2 = corner_action(landmarks, sigma, amp, corner_au, (0, 1))
        return dict(
            region="eyebrows+mouth_left+mouth_right",
            amplitude_px=amp,
            action_units=f"{brow_au}+{corner_au}",
            notes=f"brows: {_AU_NOTES[brow_au]}; corners: {_AU_NOTES[corner_au]}",
            bumps=bumps_through(c1 + c2, s1 + s2, v1 + v2),
        )
    au = MICRO_AUS[int(rng.integers(len(MICRO_AUS)))]
    amp = float(rng.uniform(*micro_px)) * face_width / REFERENCE_FACE_PX
    side = int(rng.integers(2))
    if au in BROW_AUS and rng.integers(2):
        side = None  # both brows
    return dict(amplitude_px=amp, action_units=au, **micro_action(au, landmarks, sigma, amp, side))


def _arches(landmarks, sigma, amp, up: bool, which: tuple[int, ...]):
    """Whole brows moved up or down at their arches (AU1+AU2 raised; "classic" lowered)."""
    return (
        [_pt(landmarks, BROW_TOPS[j]) for j in which],
        [(BROW_WIDEN * sigma, sigma)] * len(which),
        [(0.0, -amp if up else amp)] * len(which),
    )


def _classic(kind: str, rng: np.random.Generator, landmarks, sigma: float, amp: float) -> dict:
    """Macro- and micro-movements as the corpus drew them before AUs (same random draws)."""
    if kind == "macro":
        up, pull = bool(rng.integers(2)), bool(rng.integers(2))
        c1, s1, v1 = _arches(landmarks, sigma, amp, up, (0, 1))
        c2, s2, v2 = corner_action(landmarks, sigma, amp, "AU12" if pull else "AU15", (0, 1))
        return dict(
            region="eyebrows+mouth_left+mouth_right",
            amplitude_px=amp,
            action_units=("AU1+AU2" if up else "AU4") + ("+AU12" if pull else "+AU15"),
            notes=f"brows {'raised' if up else 'lowered'}, corners {'up' if pull else 'down'}",
            bumps=bumps_through(c1 + c2, s1 + s2, v1 + v2),
        )
    if rng.integers(2):  # the brows (both or one; raised or lowered)
        up, one = bool(rng.integers(2)), bool(rng.integers(2))
        side = int(rng.integers(2))
        c, s, v = _arches(landmarks, sigma, amp, up, (side,) if one else (0, 1))
        region = _BROW_NAMES[side] if one else "eyebrows"
        aus, what = ("AU1+AU2", "raised") if up else ("AU4", "lowered")
        notes = f"{region.replace('_', ' ')} {what}" if one else f"brows {what}"
    else:  # one mouth corner
        pull, side = bool(rng.integers(2)), int(rng.integers(2))
        c, s, v = corner_action(landmarks, sigma, amp, "AU12" if pull else "AU15", (side,))
        region, aus = _CORNER_NAMES[side], ("AU12" if pull else "AU15")
        notes = f"{region.replace('_', ' ')} " + ("up and out" if pull else "down")
    return dict(
        region=region, amplitude_px=amp, action_units=aus, notes=notes, bumps=bumps_through(c, s, v)
    )


def _blink(landmarks: np.ndarray) -> dict:
    """Both upper lids pulled down: the eye region squashed vertically."""
    opening = np.mean(
        [
            np.linalg.norm(np.subtract(_pt(landmarks, u), _pt(landmarks, lo)))
            for u, lo in zip(UPPER_LIDS, LOWER_LIDS, strict=True)
        ]
    )
    width = np.mean([np.ptp(landmarks[e, 0]) for e in EYES])
    amp = max(1.0, 0.7 * float(opening))
    # sigma_y ~ the opening: the lid moves most, the lower lid about a third as much.
    sig = (0.6 * float(width), max(1.5, float(opening)))
    centres = [_pt(landmarks, u) for u in UPPER_LIDS]
    return dict(
        region="eyes",
        amplitude_px=amp,
        notes="blink",
        bumps=bumps_through(centres, [sig, sig], [(0.0, amp)] * 2),
    )

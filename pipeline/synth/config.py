"""What ``mespot synth`` generates: :class:`SynthConfig`, saved in the corpus manifest."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pipeline.core import configs
from pipeline.synth.actions import ACTIONS, MICRO_PX
from pipeline.synth.renderer import HELD_OUT_PHOTOS, MORE_PHOTOS, PHOTOS

FIRST_SUBJECT = 6  # SAMM's subject ids start at 006
#: ``mespot synth --realistic``, the corpus of the held-out spotting benchmark: micro-
#: movements from sub-pixel to 3 px at a SAMM-sized face, faces of varied size and contrast.
REALISTIC = {"actions": "au", "face_scale": (0.7, 1.1), "contrast": (0.5, 1.0)}


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. Rates are events per 10 s of video, per kind, per video."""

    subjects: int = 2
    videos: int = 1  # per subject
    seconds: float = 6.0
    fps: float = 200.0
    width: int = 640
    height: int = 360
    seed: int = 0
    micro_per_10s: float = 3.0
    macro_per_10s: float = 0.7
    blinks_per_10s: float = 3.0
    jerks_per_10s: float = 1.0
    noise_sigma: float = 2.0  # grey levels
    jpeg_quality: int = 90
    # What a real camera adds (pipeline.synth.camera): H.264 compression at this CRF
    # (None: none) and auto-exposure flicker, before the frames are saved as JPEG.
    crf: int | None = None
    flicker: bool = False
    # Photos the subjects cycle through (pipeline/assets); () is the default set, PHOTOS.
    photos: tuple[str, ...] = ()
    # How events move the face (pipeline.synth.actions): "classic" whole brows or one
    # corner, 1-3 px; "au" one action unit of seven per micro-movement, ``micro_px``
    # pixels at a 400 px wide face (SAMM's), scaled to the rendered face.
    actions: str = "classic"
    micro_px: tuple[float, float] = MICRO_PX
    # Per subject, drawn uniformly: the face's size (times the photo's usual size) and its
    # contrast (1: the photo's; 0.5: grey levels halved about mid-grey).
    face_scale: tuple[float, float] = (1.0, 1.0)
    contrast: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        ints = {
            "subjects": (1, 1000 - FIRST_SUBJECT),
            "videos": (1, 99),
            "width": (64, 8192),
            "height": (64, 8192),
            "seed": (0, 2**63 - 1),
            "jpeg_quality": (1, 100),
        }
        known = PHOTOS + MORE_PHOTOS + HELD_OUT_PHOTOS
        if unknown := [p for p in self.photos if p not in known]:
            raise ValueError(f"SynthConfig.photos: unknown {unknown}: {known}")
        if self.crf is not None and (isinstance(self.crf, bool) or not 0 <= self.crf <= 51):
            raise ValueError(f"SynthConfig.crf must be None or in [0, 51], got {self.crf!r}")
        for name, (lo, hi) in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise ValueError(f"SynthConfig.{name} must be an integer, got {v!r}")
            if not lo <= v <= hi:
                raise ValueError(f"SynthConfig.{name} must be in [{lo}, {hi}], got {v}")
        floats = {
            "seconds": (1.0, 24 * 3600.0),
            "fps": (10.0, 1000.0),
            "micro_per_10s": (0.0, 20.0),
            "macro_per_10s": (0.0, 5.0),
            "blinks_per_10s": (0.0, 20.0),
            "jerks_per_10s": (0.0, 20.0),
            "noise_sigma": (0.0, 64.0),
        }
        for name, (lo, hi) in floats.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float | np.number):
                raise ValueError(f"SynthConfig.{name} must be a number, got {v!r}")
            if not (math.isfinite(v) and lo <= v <= hi):
                raise ValueError(f"SynthConfig.{name} must be in [{lo}, {hi}], got {v}")
            object.__setattr__(self, name, float(v))  # 6 and 6.0 save the same
        if self.actions not in ACTIONS:
            raise ValueError(f"SynthConfig.actions must be one of {ACTIONS}, got {self.actions!r}")
        ranges = {"micro_px": (0.0, 50.0), "face_scale": (0.2, 2.0), "contrast": (0.05, 1.0)}
        for name, (lo, hi) in ranges.items():
            v = getattr(self, name)
            ok = isinstance(v, tuple | list) and len(v) == 2
            ok = ok and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
            if not (ok and lo <= v[0] <= v[1] <= hi):
                raise ValueError(
                    f"SynthConfig.{name} must be (low, high) with {lo} <= low <= high <= {hi}, "
                    f"got {v!r}"
                )
            object.__setattr__(self, name, (float(v[0]), float(v[1])))

    def look(self, subject_index: int) -> tuple[float, float]:
        """(face size, contrast) of the 0-based subject, drawn from ``face_scale`` and
        ``contrast`` on the subject's own random stream (seed, subject)."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, subject_index]))
        return float(rng.uniform(*self.face_scale)), float(rng.uniform(*self.contrast))

    @property
    def faces(self) -> tuple[str, ...]:
        return self.photos or PHOTOS

    @property
    def n_frames(self) -> int:
        """Frames per video: round(seconds * fps)."""
        return round(self.seconds * self.fps)

    @property
    def rates_per_10s(self) -> dict[str, float]:
        return {
            "macro": self.macro_per_10s,
            "micro": self.micro_per_10s,
            "jerk": self.jerks_per_10s,
            "blink": self.blinks_per_10s,
        }

    def to_dict(self) -> dict:
        return configs.to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "") -> SynthConfig:
        return configs.from_dict(cls, d, source=source)

"""The feature extractor's configuration: saved beside every output it produced."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.core import configs
from pipeline.core.configs import ConfigError
from pipeline.core.windows import WindowGrid, grid_timesteps

#: The default regions: each brow in halves, inner and outer, per side (AU1 lifts the inner
#: ends, AU2 the outer, AU4 lowers and draws in the inner ones), and each mouth corner.
BROW_HALVES_REGIONS = (
    "right_brow_outer",
    "right_brow_inner",
    "left_brow_inner",
    "left_brow_outer",
    "mouth_left",
    "mouth_right",
)
#: The paper's regions (with ``cells=0``: its features, HOOF of three boxes, and no more).
PAPER_REGIONS = ("eyebrows", "mouth_left", "mouth_right")
#: Regions of interest the extractor knows (see pipeline.vision.face.REGION_LANDMARKS).
#: Eyes, nose and the middle of the mouth are left out on purpose (the paper, III-A).
KNOWN_REGIONS = ("eyebrows", "left_eyebrow", "right_eyebrow", *BROW_HALVES_REGIONS)
FLOW_METHODS = ("dis", "farneback", "tvl1")
DIS_PRESETS = ("ultrafast", "fast", "medium")
STABILISE = ("nose", "similarity", "none")
#: Written into every store's feature_config.json. Older stores are refused
#: (cluster.store.parquet.OLD_FORMATS says why each one is).
FEATURES_FORMAT = "mespot-features/4"
#: Settings added within the format, each with the value that gives the features written
#: before it existed: at that value a setting is left out of the config id, so stores
#: extracted before it keep their ids (a config of another value is another config), and
#: a config mespot wrote without it (one that names its format) reads at that value,
#: whatever the default is now.
ADDED_SETTINGS = {"flow_span": 1, "cell_refine": False, "refine_stride": 1, "detect_every": 1}
#: Settings that change no number unless every setting named beside them is on: left out
#: of the config id then, so configs that give the same features share an id.
ONLY_WITH = {"refine_stride": ("cell_refine", "cells")}


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that decides the numbers in a features table.

    Two runs with equal configs (same ``config_id``) give the same features.
    """

    # Windows on a time grid (pipeline.core.windows): T = ceil(window_s / flow_step_s)
    # timesteps of flow_step_s seconds each, the same at every frame rate. 1/25 s works
    # down to ~24 fps; the paper's 200 fps setting is flow_step_s = 1/50 (T = 25).
    window_s: float = 0.5
    overlap_s: float = 0.3
    flow_step_s: float = 1 / 25
    label_min_coverage: float = 0.8
    # Which annotation kinds make a window positive.
    label_kinds: tuple[str, ...] = ("micro",)
    # Face: detection runs on a copy of the frame scaled so its longest side is at most
    # this many pixels; the box is scaled back to the full frame.
    detect_max_side: int = 640
    detect_upsample: int = 0
    # The face is detected on every detect_every-th window's first frame (its anchor); the
    # windows between fit their landmarks from the anchor's face and detect only when that
    # fit fails a check (pipeline.vision.anchors). 1 = every window detects (stores written
    # before the setting existed). 5 cuts detection's CPU by half (BENCHMARKS.md); it is
    # not the default while the bundled model (pipeline/assets/model) was trained on 1.
    detect_every: int = 1
    # Alignment: eyes levelled and the face scaled to this width (imutils' FaceAligner
    # defaults: 256 px, left eye centre at 35% of the width and height).
    face_width: int = 256
    left_eye_x: float = 0.35
    left_eye_y: float = 0.35
    # Brow halves and mouth corners; the paper's are PAPER_REGIONS (with cells = 0).
    regions: tuple[str, ...] = BROW_HALVES_REGIONS
    # Flow and HOOF.
    flow: str = "dis"
    # DIS preset: "ultrafast", "fast" or "medium" (sub-pixel shifts of 0.3-1 px on face
    # crops come out within 0.07 px with "fast" at a fifth of "medium"'s cost).
    dis_preset: str = "fast"
    # Each timestep's flow spans this many steps back (the window's first frame at most):
    # the displacement from sampled frame k + 1 - flow_span to frame k + 1. 1 = consecutive
    # sampled frames (the paper). DIS's error grows less than the displacement spanned,
    # so a sub-pixel movement stands out more over 3 steps (BENCHMARKS.md, "Flow over
    # three steps by default"); stores written before the setting existed are span 1.
    flow_span: int = 3
    n_bins: int = 8
    # HOOF bins: False (default) keeps each bin's summed magnitude per pixel, so a still
    # face's noise gives small bins and a movement large ones; True normalises each
    # histogram to sum 1 (the paper), which makes noise look like motion.
    normalise: bool = False
    # Cell flow: each region split into cells x cells, and per cell the mean flow vector
    # (pipeline.vision.hoof.cell_means): noise cancels in a mean of vectors, so sub-pixel
    # movements of part of a region stand out. 0 = none (the paper's HOOF alone).
    cells: int = 3
    # Each cell's mean flow refined by one least-squares step over the cell's pixels at full
    # resolution (pipeline.vision.refine): DIS's mean shrinks a sub-pixel movement of part
    # of a region two to five times, the refined one keeps its size (BENCHMARKS.md, "Cell
    # flow refined over each cell"); stores written before the setting existed are False.
    cell_refine: bool = True
    # The refinement's sums run over every refine_stride-th pixel of each cell in both
    # directions. Its images are blurred (sigma 1 px) first, so pixels next to each other
    # say nearly the same thing: every other one gives the same precision at under half
    # the cost (BENCHMARKS.md, "Cell refinement over every other pixel"); stores written
    # before the setting existed are 1 (every pixel).
    refine_stride: int = 2
    # Head-motion compensation (pipeline.vision.stabilise): "nose" subtracts, per timestep,
    # the median flow of the nose ridge (rigid with the skull), which removes a drift;
    # "similarity" subtracts a similarity motion fitted robustly to the whole field, which
    # also removes a turn in the image plane or a scale change; "none" keeps the raw flow
    # (the paper).
    stabilise: str = "nose"
    # JPEG frames can be decoded at 1/2, 1/4 or 1/8 size (faster); 1 = full size.
    decode_reduce: int = 1

    def __post_init__(self) -> None:
        grid_timesteps(self.window_s, self.overlap_s, self.flow_step_s)
        unknown = [r for r in self.regions if r not in KNOWN_REGIONS]
        if unknown or not self.regions:
            raise ValueError(f"unknown regions {unknown}; choose from {KNOWN_REGIONS}")
        if self.flow not in FLOW_METHODS:
            raise ValueError(f"flow must be one of {FLOW_METHODS}, got {self.flow!r}")
        if self.dis_preset not in DIS_PRESETS:
            raise ValueError(f"dis_preset must be one of {DIS_PRESETS}, got {self.dis_preset!r}")
        if self.stabilise not in STABILISE:
            raise ValueError(f"stabilise must be one of {STABILISE}, got {self.stabilise!r}")
        if not 0 <= self.cells <= 8:
            raise ValueError(f"cells must be 0 (none) to 8, got {self.cells}")
        if not 1 <= self.flow_span <= self.timesteps:
            raise ValueError(
                f"flow_span must be 1 to the window's {self.timesteps} timesteps, "
                f"got {self.flow_span}"
            )
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {self.detect_every}")
        if not 1 <= self.refine_stride <= 4:
            raise ValueError(f"refine_stride must be 1 to 4, got {self.refine_stride}")
        if self.n_bins < 2:
            raise ValueError(f"n_bins must be >= 2, got {self.n_bins}")
        if self.decode_reduce not in (1, 2, 4, 8):
            raise ValueError(f"decode_reduce must be 1, 2, 4 or 8, got {self.decode_reduce}")
        if not 0 < self.label_min_coverage <= 1:
            raise ValueError(f"label_min_coverage must be in (0, 1], got {self.label_min_coverage}")

    @property
    def label_span_s(self) -> float:
        """Seconds a window stands for when it is labelled: T x R (pipeline.core.labels)."""
        return self.timesteps * self.flow_step_s

    @property
    def timesteps(self) -> int:
        """T, a window's timesteps (the same at every frame rate)."""
        return grid_timesteps(self.window_s, self.overlap_s, self.flow_step_s)

    def grid(self, fps: float) -> WindowGrid:
        """Window geometry at ``fps`` (ValueError when fps is too low for ``flow_step_s``)."""
        return WindowGrid.from_seconds(fps, self.window_s, self.overlap_s, self.flow_step_s)

    def to_dict(self) -> dict:
        return configs.to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "") -> FeatureConfig:
        """Unknown keys refused (naming ``source``), missing ones defaulted; see core.configs.

        A config mespot wrote (it has a ``format``, as every feature_config.json has) means
        the features it meant then: a setting added since reads at its ADDED_SETTINGS value.
        """
        if isinstance(d, Mapping) and "format" in d:
            d = {**ADDED_SETTINGS, **d}
        return configs.from_dict(cls, d, source=source, ignore=("config_id", "format"))

    @property
    def config_id(self) -> str:
        """A short fingerprint of the settings (stable across runs and machines)."""
        # The format is part of it: features of another format are other numbers.
        d = {
            k: v
            for k, v in self.to_dict().items()
            if k not in ADDED_SETTINGS or v != ADDED_SETTINGS[k]
        }
        for k, needs in ONLY_WITH.items():
            if not all(getattr(self, n) for n in needs):
                d.pop(k, None)
        blob = json.dumps({"format": FEATURES_FORMAT, **d}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def to_json(self) -> str:
        d = {"format": FEATURES_FORMAT, **self.to_dict(), "config_id": self.config_id}
        return json.dumps(d, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "") -> FeatureConfig:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{source or 'feature config'}: not JSON ({e})") from e
        return cls.from_dict(d, source=source)

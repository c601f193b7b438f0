"""Feature tables without video, for benchmarks: schema-valid ``window_features`` rows of the
shape a corpus of N subjects gives, with labelled micro-movements and macro-expressions.

Training cost depends on the shape of the data (windows, timesteps, features, folds), not on
where the flow came from, so training is measured at the size of a real corpus (SAMM: 32
subjects, ~15,000 windows) in minutes instead of after hours of extraction. The values are
random but not meaningless: a micro-movement raises one region's flow for a few timesteps
and turns its histogram toward one direction, a macro-expression does so more strongly and
for longer, so that a network has something to learn and its loss behaves as on real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.learn.layout import FeatureLayout
from schemas import WINDOW_FEATURES, conform


@dataclass(frozen=True)
class TableShape:
    """What to generate. The defaults are SAMM's size at the issue's T = 25."""

    subjects: int = 32
    windows: int = 15_000
    timesteps: int = 25
    regions: tuple[str, ...] = (
        "right_brow_outer", "right_brow_inner", "left_brow_inner", "left_brow_outer",
        "mouth_left", "mouth_right",
    )  # fmt: skip
    bins: int = 8
    cells: int = 3
    fps: float = 200.0
    window_s: float = 0.5
    stride_s: float = 0.2
    micro: float = 0.03  # fraction of windows holding a micro-movement
    macro: float = 0.10  # and a macro-expression
    seed: int = 0
    config_id: str = "synthetic"

    def __post_init__(self) -> None:
        if self.subjects < 2 or self.windows < self.subjects:
            raise ValueError(
                f"need >= 2 subjects and >= 1 window each, got {self.subjects} subjects, "
                f"{self.windows} windows"
            )
        if not (0 <= self.micro and 0 <= self.macro and self.micro + self.macro < 1):
            raise ValueError(f"micro + macro must be a fraction < 1: {self.micro}, {self.macro}")

    def layout(self, with_magnitude: bool = True) -> FeatureLayout:
        """The LSTM input the table gives (pipeline.learn.layout.window_arrays)."""
        return FeatureLayout(
            n_timesteps=self.timesteps, n_regions=len(self.regions), n_bins=self.bins,
            regions=self.regions, with_magnitude=with_magnitude, config_id=self.config_id,
            step_s=self.window_s / self.timesteps, n_cells=self.cells,
            cell_norm="video" if self.cells else "none",
        )  # fmt: skip


@dataclass
class GeneratedWindows:
    """The table and the labels of its windows: ``classes`` (N,) 0 none, 1 micro, 2 macro;
    ``steps`` (N, T) 1 where a timestep lies in the micro-movement."""

    table: pa.Table
    classes: np.ndarray
    steps: np.ndarray


def generate(shape: TableShape = TableShape()) -> GeneratedWindows:
    """Windows of ``shape``: one video per subject, windows every ``stride_s``."""
    rng = np.random.default_rng(shape.seed)
    n, t, r, b, c = shape.windows, shape.timesteps, len(shape.regions), shape.bins, shape.cells
    classes = rng.choice(3, n, p=[1 - shape.micro - shape.macro, shape.micro, shape.macro])
    hist = rng.dirichlet(np.ones(b), (n, t, r)).astype(np.float32)
    mag = rng.lognormal(-3.0, 0.5, (n, t, r)).astype(np.float32)
    cell = rng.normal(0, 0.05, (n, t, r, c, c, 2)).astype(np.float32)
    steps = np.zeros((n, t), np.float32)
    for i in np.flatnonzero(classes > 0):
        length = int(rng.integers(t // 5, t // 2)) if classes[i] == 1 else t
        on = int(rng.integers(0, t - length + 1))
        where, strength = int(rng.integers(r)), 1.0 if classes[i] == 1 else 3.0
        span = slice(on, on + length)
        mag[i, span, where] += 0.3 * strength
        hist[i, span, where] = 0.5 * hist[i, span, where] + 0.5 * np.eye(b)[rng.integers(b)]
        cell[i, span, where] += rng.normal(0, 0.3 * strength, 2).astype(np.float32)
        if classes[i] == 1:
            steps[i, span] = 1.0
    per = -(-n // shape.subjects)
    subject = np.arange(n) // per
    window = np.arange(n) - subject * per
    start = np.round(window * shape.stride_s * shape.fps).astype(np.int64)
    end = start + round(shape.window_s * shape.fps) - 1
    names = np.array([f"{s + 1:03d}" for s in range(shape.subjects)], dtype=object)[subject]

    def lists(a: np.ndarray) -> pa.ListArray:
        flat = a.reshape(n, -1)
        offsets = np.arange(0, flat.size + 1, flat.shape[1], dtype=np.int32)
        return pa.ListArray.from_arrays(offsets, pa.array(flat.ravel(), pa.float32()))

    no_cells = pa.nulls(n, pa.list_(pa.float32()))
    table = pa.table({
        "dataset": pa.array(["synthetic"] * n), "subject": pa.array(names.tolist()),
        "video": pa.array([f"{s}_1" for s in names.tolist()]),
        "window": window.astype(np.int32), "start_frame": start, "end_frame": end,
        "start_s": start / shape.fps, "end_s": (end + 1) / shape.fps,
        "face_found": np.ones(n, bool), "skip_reason": pa.nulls(n, pa.string()),
        "n_timesteps": np.full(n, t, np.int16), "n_regions": np.full(n, r, np.int16),
        "n_bins": np.full(n, b, np.int16), "hoof": lists(hist), "magnitude": lists(mag),
        "n_cells": np.full(n, c, np.int16), "cell_flow": lists(cell) if c else no_cells,
        "label": classes == 1, "config_id": pa.array([shape.config_id] * n),
    })  # fmt: skip
    return GeneratedWindows(conform(table, WINDOW_FEATURES), classes.astype(np.int8), steps)

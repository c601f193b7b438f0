"""What a window's LSTM input is: the feature layout, and the arrays of a features table.

A window of T timesteps (T = ceil(W / R), the same at every frame rate: timestep k is the
flow over R seconds, see pipeline.core.windows) becomes a sequence of T feature vectors;
timestep t holds the HOOF of every region, flattened region-major (``region * n_bins +
bin``), followed, when ``with_magnitude``, by ``log1p`` of each region's mean flow
magnitude (pixels of the aligned face per R seconds), then, when the features have cells,
each region's cell flow (region, cell row, cell column, dx/dy; :data:`CELL_SCALE` x pixels
per R seconds). A model records the
:class:`FeatureLayout` it was trained on and refuses features with another one (another
feature config gives other numbers), raising :class:`LayoutMismatch`; the frame rate is not
part of it, so one model serves videos of any rate its features support.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core import configs
from pipeline.vision.config import FeatureConfig

#: Cell flows enter the LSTM as this many times their pixels: a micro-movement moves a
#: cell 0.05-0.5 px per timestep, which this brings to the HOOF bins' order of size.
CELL_SCALE = 4.0
#: How cell flows are scaled before the LSTM (FeatureLayout.cell_norm): "none", by
#: CELL_SCALE only; "video", each video's cell flows by CELL_NOISE over their median
#: absolute value. Most windows of a recording hold no movement, so that median is the
#: video's flow noise (its camera, lighting, face size and texture), and a movement enters
#: the LSTM as a multiple of it: a face the model never saw then looks like the ones it did.
CELL_NORMS = ("none", "video")
CELL_NOISE = 0.1
_CELL_FLOOR = 1e-3  # a median below this (a flawlessly still synthetic video) is not divided by


class LayoutMismatch(ValueError):
    """Features do not have the layout a model (or a caller) expects."""


@dataclass(frozen=True)
class FeatureLayout:
    """The shape and meaning of one window's LSTM input: (n_timesteps, n_features)."""

    n_timesteps: int
    n_regions: int
    n_bins: int
    regions: tuple[str, ...]
    with_magnitude: bool
    config_id: str
    step_s: float  # seconds per timestep (features of older mespots, counted in frames, lack it)
    n_cells: int = 0  # cells per side of each region's cell-flow grid (0: none)
    cell_norm: str = "none"  # CELL_NORMS; layouts saved before it had "none"

    def __post_init__(self) -> None:
        if self.cell_norm not in CELL_NORMS:
            raise ValueError(f"cell_norm must be one of {CELL_NORMS}, got {self.cell_norm!r}")
        if min(self.n_timesteps, self.n_regions, self.n_bins) < 1:
            raise ValueError(f"layout sizes must be >= 1: {self}")
        if len(self.regions) != self.n_regions:
            raise ValueError(f"{self.n_regions} regions but names {list(self.regions)}")

    @property
    def n_features(self) -> int:
        """Features per timestep: regions * bins (+ regions magnitudes) + cell flows."""
        cells = 2 * self.n_cells * self.n_cells
        return self.n_regions * (self.n_bins + int(self.with_magnitude) + cells)

    def describe(self) -> str:
        mag = " + magnitude" if self.with_magnitude else ""
        if self.n_cells:
            mag += f" + {self.n_cells}x{self.n_cells} cell flow"
            mag += " (scaled per video)" if self.cell_norm == "video" else ""
        return (
            f"T={self.n_timesteps} x {self.step_s * 1000:g} ms x {self.n_features} features "
            f"({self.n_regions} regions {','.join(self.regions)} x {self.n_bins} bins{mag}, "
            f"config {self.config_id})"
        )

    def check(self, other: FeatureLayout, where: str = "") -> None:
        """Raise LayoutMismatch unless ``other`` (what was given) equals self (what is expected)."""
        if other == self:
            return
        diffs = [
            f"{f.name} {getattr(self, f.name)!r} != {getattr(other, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]
        prefix = f"{where}: " if where else ""
        raise LayoutMismatch(
            f"{prefix}expects {self.describe()}, features have {other.describe()} "
            f"(differ in {'; '.join(diffs)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return configs.to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "") -> FeatureLayout:
        if isinstance(d, Mapping) and "n_timesteps" in d and "step_s" not in d:
            raise LayoutMismatch(
                f"{source or 'layout'}: made for features of an older mespot, whose timesteps "
                "were counted in frames (another meaning at every frame rate). Re-extract the "
                "features into a new store (`mespot extract CORPUS NEW_STORE`) and train a "
                "new model on them (`mespot train NEW_STORE`)"
            )
        return configs.from_dict(cls, d, source=source)

    @classmethod
    def from_table(
        cls,
        table: pa.Table,
        feature_config: FeatureConfig,
        with_magnitude: bool,
        cell_norm: str = "video",
    ) -> FeatureLayout:
        """The layout of a ``window_features`` table written with ``feature_config``; like
        ``with_magnitude``, ``cell_norm`` is the model's choice (a model's layout has it).

        T, regions and bins come from the table and must be the same in every row (they are
        for every frame rate under one config), and must agree with the config.
        """
        if table.num_rows == 0:
            raise LayoutMismatch("no windows: an empty table has no layout")
        sizes = {}
        for col in ("n_timesteps", "n_regions", "n_bins", "n_cells"):
            values = pc.unique(table.column(col)).to_pylist()
            if len(values) != 1:
                raise LayoutMismatch(
                    f"{col} differs between windows ({sorted(values)}); "
                    "the table mixes feature configs: split it first"
                )
            sizes[col] = int(values[0])
        ids = pc.unique(table.column("config_id")).to_pylist()
        config_id = feature_config.config_id
        if ids != [config_id]:
            raise LayoutMismatch(f"table has feature configs {ids}, config file says {config_id}")
        regions = tuple(feature_config.regions)
        want = (feature_config.timesteps, len(regions), feature_config.n_bins)
        want += (feature_config.cells,)
        if (sizes["n_timesteps"], sizes["n_regions"], sizes["n_bins"], sizes["n_cells"]) != want:
            raise LayoutMismatch(
                f"table has T={sizes['n_timesteps']} x {sizes['n_regions']} regions x "
                f"{sizes['n_bins']} bins x {sizes['n_cells']} cells, config says "
                f"T={want[0]} x {list(regions)} x {want[2]} bins x {want[3]} cells"
            )
        return cls(
            regions=regions,
            with_magnitude=with_magnitude,
            config_id=config_id,
            step_s=float(feature_config.flow_step_s),
            cell_norm=cell_norm if sizes["n_cells"] else "none",
            **sizes,
        )


def video_index(table: pa.Table) -> np.ndarray:
    """(N,) int: which video each row belongs to (by dataset, subject and video)."""
    if table.num_rows == 0:
        return np.zeros(0, np.int64)
    cols = [pc.cast(table.column(c), pa.string()) for c in ("dataset", "subject", "video")]
    keys = pc.binary_join_element_wise(*cols, "\x1f").to_numpy(zero_copy_only=False)
    return np.unique(keys, return_inverse=True)[1].reshape(-1)


def scale_per_video(cells: np.ndarray, videos: np.ndarray) -> np.ndarray:
    """``cells`` (N, T, C) with each video's rows (``videos``, (N,) int) multiplied by
    CELL_NOISE / their median absolute value (see CELL_NORMS). All of a video's windows
    must be given together: the scale is the whole video's."""
    out = np.array(cells, dtype=np.float32)
    if not len(out):
        return out
    order = np.argsort(videos, kind="stable")  # each video's rows once, not a mask per video
    starts = np.flatnonzero(np.diff(videos[order], prepend=-1))
    for rows in np.split(order, starts[1:]):
        median = float(np.median(np.abs(out[rows])))
        if median > _CELL_FLOOR:
            out[rows] *= CELL_NOISE / median
    return out


def face_rows(table: pa.Table, layout: FeatureLayout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The raw feature blocks of the windows with a face, without Python loops per row.

    Returns (hoof (N, T, R, B) float32, magnitude (N, T, R) float32, rows (N,) int64), where
    ``rows`` are the indices of those windows in ``table``. Raises LayoutMismatch when the
    table's T, regions, bins or cells differ from ``layout``.
    """
    t, r, b = layout.n_timesteps, layout.n_regions, layout.n_bins
    mask = table.column("face_found").to_numpy(zero_copy_only=False).astype(bool)
    rows = np.flatnonzero(mask).astype(np.int64)
    sub = table.take(pa.array(rows))
    sizes = (("n_timesteps", t), ("n_regions", r), ("n_bins", b), ("n_cells", layout.n_cells))
    for col, want in sizes:
        have = sub.column(col).to_numpy(zero_copy_only=False)
        if np.any(have != want):
            bad = sorted(set(have[have != want].tolist()))
            raise LayoutMismatch(f"windows have {col} {bad}, layout expects {want}: {layout}")
    hoof = _fixed_lists(sub.column("hoof"), t * r * b, "hoof").reshape(-1, t, r, b)
    mag = _fixed_lists(sub.column("magnitude"), t * r, "magnitude").reshape(-1, t, r)
    return hoof, mag, rows


def _fixed_lists(column: pa.ChunkedArray, length: int, name: str) -> np.ndarray:
    """A list column whose every row holds ``length`` values, as one (N * length,) array."""
    arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if arr.null_count:
        raise ValueError(f"{arr.null_count} windows with a face have no {name}")
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    if np.any(lengths != length):
        raise LayoutMismatch(
            f"{name} lists of lengths {sorted(set(lengths.tolist()))}, expected {length}"
        )
    # list_flatten honours slices/offsets (arr.values would not).
    values = pc.list_flatten(arr).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return values


def window_arrays(
    table: pa.Table, layout: FeatureLayout
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LSTM inputs of the windows with a face in a ``window_features`` table.

    Returns X float32 (N, T, n_features), y int8 (N,) (1 / 0, -1 where the label is null)
    and rows int64 (N,), the indices of those windows in ``table``. Magnitudes enter as
    ``log1p(pixels)``: they span orders of magnitude (noise ~0.01 px, a head turn ~10 px)
    while the histograms lie in [0, 1]. Cell flows are scaled as ``layout.cell_norm``
    says; with "video", ``table`` must hold every window of each of its videos.
    """
    hoof, mag, rows = face_rows(table, layout)
    n, t = len(rows), layout.n_timesteps
    parts = [hoof.reshape(n, t, layout.n_regions * layout.n_bins)]
    if layout.with_magnitude:
        parts.append(np.log1p(mag))
    if layout.n_cells:
        size = t * layout.n_regions * layout.n_cells**2 * 2
        sub = table.column("cell_flow").take(pa.array(rows))
        cells = CELL_SCALE * _fixed_lists(sub, size, "cell_flow").reshape(n, t, -1)
        if layout.cell_norm == "video":
            keys = table.select(["dataset", "subject", "video"]).take(pa.array(rows))
            cells = scale_per_video(cells, video_index(keys))
        parts.append(cells)
    x = np.concatenate(parts, axis=2).astype(np.float32, copy=False)
    label = table.column("label").take(pa.array(rows))
    y = pc.fill_null(pc.cast(label, pa.int8()), -1).to_numpy(zero_copy_only=False)
    return x, y.astype(np.int8, copy=False), rows


def mirror_region(name: str) -> str:
    """The region a face's mirror image puts where ``name`` was: left and right swap
    ("right_brow_outer" -> "left_brow_outer", "mouth_left" -> "mouth_right"); a region
    without a side ("eyebrows") is its own mirror."""
    swap = {"left": "right", "right": "left"}
    return "_".join(swap.get(part, part) for part in name.split("_"))


def mirror_problem(layout: FeatureLayout) -> str:
    """Why ``layout``'s features have no mirror image ("" when they have one): an odd number
    of HOOF bins, or a region whose mirror is not among the regions (a one-sided set)."""
    if layout.n_bins % 2:
        return f"cannot mirror {layout.n_bins} HOOF bins: needs an even number"
    missing = [r for r in layout.regions if mirror_region(r) not in layout.regions]
    if missing:
        return f"cannot mirror regions {missing}: their mirrors are not in the layout"
    return ""


def mirror_map(layout: FeatureLayout) -> tuple[np.ndarray, np.ndarray]:
    """How a window's features change when the face is mirrored left to right: (F,) source
    indices and (F,) signs, so that ``x[..., index] * sign`` are the mirror image's features
    (:func:`mirrored`). Each region takes its mirror's features; a HOOF bin at angle a takes
    the one at 180 - a (bin b <- bin (B / 2 - b) mod B, exact for the soft binning: both
    neighbours swap with the same weights); magnitudes stay; cell column j takes column
    C - 1 - j, with dx negated. Raises ValueError for an odd number of bins (no bin then
    sits at 180 - a) or regions whose mirror is not in the layout."""
    problem = mirror_problem(layout)
    if problem:
        raise ValueError(problem)
    regions, b, c = list(layout.regions), layout.n_bins, layout.n_cells
    src = [regions.index(mirror_region(r)) for r in regions]
    index, sign = [], []
    for r in range(len(regions)):  # HOOF, region-major
        index += [src[r] * b + (b // 2 - k) % b for k in range(b)]
        sign += [1.0] * b
    offset = len(regions) * b
    if layout.with_magnitude:
        index += [offset + src[r] for r in range(len(regions))]
        sign += [1.0] * len(regions)
        offset += len(regions)
    for r in range(len(regions)):  # cells: region, row, column, (dx, dy)
        for i in range(c):
            for j in range(c):
                base = offset + ((src[r] * c + i) * c + (c - 1 - j)) * 2
                index += [base, base + 1]
                sign += [-1.0, 1.0]
    return np.asarray(index, np.int64), np.asarray(sign, np.float32)


def mirrored(x: np.ndarray, layout: FeatureLayout) -> np.ndarray:
    """Windows' features (N, T, F) as their faces' mirror images would give them."""
    index, sign = mirror_map(layout)
    if x.shape[-1] != len(index):
        raise LayoutMismatch(f"features have {x.shape[-1]} values a timestep, layout {len(index)}")
    return (x[..., index] * sign).astype(np.float32, copy=False)


def with_mirrors(x: np.ndarray, layout: FeatureLayout, *labels: np.ndarray | None) -> tuple:
    """Training windows and their faces' mirror images: (X and :func:`mirrored` X stacked,
    then each of ``labels`` repeated, a None staying None). A window's labels (its class,
    its timesteps') are its mirror image's."""
    doubled = tuple(None if a is None else np.concatenate([a, a]) for a in labels)
    return (np.concatenate([x, mirrored(x, layout)]), *doubled)

"""One versioned pyarrow schema per table.

Conventions shared by all tables:

- ``dataset``, ``subject``, ``video`` are strings and identify a video everywhere.
- Frame numbers are 0-based indices into the video's decoded frame sequence
  (the first file of a numbered folder is frame 0, whatever number its name has)
  and intervals are inclusive at both ends: ``[start_frame, end_frame]``.
- Seconds are ``frame / fps`` (for a variable-rate video, ``fps`` is the mean rate and
  the window tables' ``start_s``/``end_s`` come from the frames' timestamps).
"""

from __future__ import annotations

import pyarrow as pa

# 2: videos.variable_rate; features on a time grid. 3: cell flow; macro scores and kinds.
# 4: window_predictions.step_scores (the extent head's timestep scores).
# 5: verdicts.onset_frame/offset_frame (the movement's extent, marked on a yes).
SCHEMA_VERSION = "5"


class SchemaMismatch(ValueError):
    """A table does not have the columns or types its schema asks for."""


def _schema(name: str, fields: list[pa.Field], doc: str) -> pa.Schema:
    return pa.schema(
        fields,
        metadata={
            "mespot.table": name,
            "mespot.schema_version": SCHEMA_VERSION,
            "mespot.doc": doc,
        },
    )


_VIDEO_KEY = [
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("subject", pa.string(), nullable=False),
    pa.field("video", pa.string(), nullable=False),
]

VIDEOS = _schema(
    "videos",
    [
        *_VIDEO_KEY,
        pa.field("uri", pa.string(), nullable=False),
        pa.field("source_kind", pa.string(), nullable=False),  # "frames" | "video"
        pa.field("fps", pa.float64(), nullable=False),
        pa.field("n_frames", pa.int64(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("first_frame_number", pa.int64(), nullable=False),
        pa.field("fingerprint", pa.string(), nullable=False),
        # True: frames are not evenly spaced at fps (fps is their mean rate); windows take
        # frames by the container's timestamps.
        pa.field("variable_rate", pa.bool_(), nullable=False),
    ],
    "Manifest: one row per video (a numbered frame folder or a video file).",
)

ANNOTATIONS = _schema(
    "annotations",
    [
        *_VIDEO_KEY,
        pa.field("movement", pa.string(), nullable=False),
        pa.field("onset_frame", pa.int64(), nullable=False),
        pa.field("apex_frame", pa.int64()),
        pa.field("offset_frame", pa.int64(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # "micro" | "macro"
        pa.field("action_units", pa.string()),
        pa.field("notes", pa.string()),
        pa.field("source_row", pa.int32()),
    ],
    "Ground truth: one row per annotated movement, frames 0-based and inclusive.",
)

WINDOW_FEATURES = _schema(
    "window_features",
    [
        *_VIDEO_KEY,
        pa.field("window", pa.int32(), nullable=False),
        pa.field("start_frame", pa.int64(), nullable=False),
        pa.field("end_frame", pa.int64(), nullable=False),
        pa.field("start_s", pa.float64(), nullable=False),
        pa.field("end_s", pa.float64(), nullable=False),
        pa.field("face_found", pa.bool_(), nullable=False),
        pa.field("skip_reason", pa.string()),
        pa.field("n_timesteps", pa.int16(), nullable=False),
        pa.field("n_regions", pa.int16(), nullable=False),
        pa.field("n_bins", pa.int16(), nullable=False),
        # (n_timesteps, n_regions, n_bins) flattened row-major; null without a face.
        pa.field("hoof", pa.list_(pa.float32())),
        # (n_timesteps, n_regions): mean flow magnitude in aligned-face pixels.
        pa.field("magnitude", pa.list_(pa.float32())),
        # Cells per side of each region's grid (0: no cell flow).
        pa.field("n_cells", pa.int16(), nullable=False),
        # (n_timesteps, n_regions, n_cells, n_cells, 2): mean flow (dx, dy) per cell, in
        # aligned-face pixels; null without a face or without cells.
        pa.field("cell_flow", pa.list_(pa.float32())),
        # True when the window covers >= 80% of a ground-truth interval;
        # null when the video has no ground truth.
        pa.field("label", pa.bool_()),
        pa.field("config_id", pa.string(), nullable=False),
    ],
    "Per-window HOOF features; region names and bin layout are in feature_config.json.",
)

WINDOW_PREDICTIONS = _schema(
    "window_predictions",
    [
        pa.field("model_id", pa.string(), nullable=False),
        pa.field("fold", pa.string(), nullable=False),
        *_VIDEO_KEY,
        pa.field("window", pa.int32(), nullable=False),
        pa.field("start_frame", pa.int64(), nullable=False),
        pa.field("end_frame", pa.int64(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("label", pa.bool_()),
        # Probability of a macro-expression; null for a model without a macro class.
        pa.field("macro_score", pa.float32()),
        # Per timestep (T values), the probability that it lies inside a micro-movement
        # (the extent head); null for a model without one.
        pa.field("step_scores", pa.list_(pa.float32())),
    ],
    "Per-window model scores (probability of a micro-movement, of a macro-expression, and "
    "per timestep of lying inside a micro-movement).",
)

SPOTTED_INTERVALS = _schema(
    "spotted_intervals",
    [
        pa.field("model_id", pa.string(), nullable=False),
        *_VIDEO_KEY,
        pa.field("start_frame", pa.int64(), nullable=False),
        pa.field("end_frame", pa.int64(), nullable=False),
        pa.field("start_s", pa.float64(), nullable=False),
        pa.field("end_s", pa.float64(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # "micro" or "macro"
    ],
    "Intervals spotted (micro: greedy NMS; macro: runs of windows), for annotators to review.",
)

#: The annotators' verdicts on spotted intervals: an append-only log, one row per verdict
#: given (a changed mind is a newer row, never an overwrite). Resolution rules
#: (latest per annotator, then the majority of annotators) are in pipeline.core.verdicts.
VERDICT_VALUES = ("yes", "no", "unsure")

VERDICTS = _schema(
    "verdicts",
    [
        pa.field("verdict_id", pa.string(), nullable=False),  # uuid4 hex
        pa.field("model_id", pa.string(), nullable=False),  # whose interval was reviewed
        *_VIDEO_KEY,
        pa.field("start_frame", pa.int64(), nullable=False),
        pa.field("end_frame", pa.int64(), nullable=False),
        pa.field("score", pa.float32()),  # the interval's score when reviewed
        pa.field("verdict", pa.string(), nullable=False),  # one of VERDICT_VALUES
        pa.field("action_units", pa.string()),  # FACS codes, e.g. "AU4+AU7" or "R12"
        pa.field("note", pa.string()),
        pa.field("annotator", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        # where the movement is, marked on a yes (frames, inclusive); null: the interval
        # itself (every verdict before schema 5, and a yes left unmarked)
        pa.field("onset_frame", pa.int64()),
        pa.field("offset_frame", pa.int64()),
    ],
    "Annotators' verdicts on spotted intervals (append-only; who said what, when).",
)

TABLES: dict[str, pa.Schema] = {
    s.metadata[b"mespot.table"].decode(): s
    for s in (
        VIDEOS,
        ANNOTATIONS,
        WINDOW_FEATURES,
        WINDOW_PREDICTIONS,
        SPOTTED_INTERVALS,
        VERDICTS,
    )
}


def validate_table(table: pa.Table | pa.Schema, schema: pa.Schema, *, where: str = "") -> None:
    """Raise SchemaMismatch unless ``table`` has exactly ``schema``'s columns and types.

    Nullability is checked through the data: a non-nullable column may not hold nulls.
    """
    got = table if isinstance(table, pa.Schema) else table.schema
    name = schema.metadata[b"mespot.table"].decode()
    prefix = f"{where}: " if where else ""
    problems = []
    if got.names != schema.names:
        missing = [n for n in schema.names if n not in got.names]
        extra = [n for n in got.names if n not in schema.names]
        problems.append(f"columns {got.names} != {schema.names} (missing {missing}, extra {extra})")
    else:
        for want, have in zip(schema, got, strict=True):
            if not want.type.equals(have.type):
                problems.append(f"column {want.name!r} has type {have.type}, expected {want.type}")
    if not problems and isinstance(table, pa.Table):
        for want in schema:
            if not want.nullable and table.column(want.name).null_count:
                problems.append(f"column {want.name!r} holds nulls")
    if problems:
        raise SchemaMismatch(f"{prefix}table {name!r} v{SCHEMA_VERSION}: " + "; ".join(problems))


def conform(data: pa.Table | dict | list[dict], schema: pa.Schema) -> pa.Table:
    """Build a table with exactly ``schema`` from a table, a column dict or row dicts."""
    if isinstance(data, list):
        table = pa.Table.from_pylist(data, schema=schema)
    elif isinstance(data, dict):
        table = pa.Table.from_pydict(data, schema=schema)
    else:
        missing = [n for n in schema.names if n not in data.column_names]
        if missing:
            raise SchemaMismatch(f"missing columns {missing}")
        table = data.select(schema.names).cast(schema)
    table = table.replace_schema_metadata(schema.metadata)
    validate_table(table, schema)
    return table

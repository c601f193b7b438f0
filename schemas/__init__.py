"""Arrow schemas of every table mespot writes: the only place a column is named.

Each schema carries its table name and version in its metadata
(``mespot.table``, ``mespot.schema_version``) so a reader can tell what it holds.
"""

from schemas.tables import (
    ANNOTATIONS,
    SCHEMA_VERSION,
    SPOTTED_INTERVALS,
    TABLES,
    VERDICT_VALUES,
    VERDICTS,
    VIDEOS,
    WINDOW_FEATURES,
    WINDOW_PREDICTIONS,
    SchemaMismatch,
    conform,
    validate_table,
)

__all__ = [
    "ANNOTATIONS",
    "SCHEMA_VERSION",
    "SPOTTED_INTERVALS",
    "TABLES",
    "VERDICTS",
    "VERDICT_VALUES",
    "VIDEOS",
    "WINDOW_FEATURES",
    "WINDOW_PREDICTIONS",
    "SchemaMismatch",
    "conform",
    "validate_table",
]

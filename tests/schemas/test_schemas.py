"""The table schemas: versioned, and validation that names what is wrong."""

import pyarrow as pa
import pytest

from schemas import (
    ANNOTATIONS,
    SCHEMA_VERSION,
    TABLES,
    WINDOW_FEATURES,
    SchemaMismatch,
    conform,
    validate_table,
)


def test_every_table_is_named_and_versioned():
    assert set(TABLES) == {
        "videos",
        "annotations",
        "window_features",
        "window_predictions",
        "spotted_intervals",
        "verdicts",
    }
    for name, schema in TABLES.items():
        assert schema.metadata[b"mespot.table"].decode() == name
        assert schema.metadata[b"mespot.schema_version"].decode() == SCHEMA_VERSION
        assert schema.names[:3] in (
            ["dataset", "subject", "video"],
            ["model_id", "fold", "dataset"],
            ["model_id", "dataset", "subject"],
            ["verdict_id", "model_id", "dataset"],
        )


def annotation_row(**kw):
    row = {
        "dataset": "samm",
        "subject": "006",
        "video": "006_1",
        "movement": "006_1_1",
        "onset_frame": 10,
        "apex_frame": None,
        "offset_frame": 20,
        "kind": "micro",
        "action_units": "AU12",
        "notes": None,
        "source_row": 11,
    }
    row.update(kw)
    return row


def test_conform_builds_a_valid_table():
    t = conform([annotation_row()], ANNOTATIONS)
    validate_table(t, ANNOTATIONS)
    assert t.schema.equals(ANNOTATIONS, check_metadata=True)


def test_missing_column_is_named():
    t = conform([annotation_row()], ANNOTATIONS).drop_columns(["kind"])
    with pytest.raises(SchemaMismatch, match=r"missing \['kind'\]"):
        validate_table(t, ANNOTATIONS, where="x.parquet")


def test_wrong_type_is_named():
    t = conform([annotation_row()], ANNOTATIONS)
    t = t.set_column(4, "onset_frame", pa.array(["10"]))
    with pytest.raises(SchemaMismatch, match="'onset_frame' has type string"):
        validate_table(t, ANNOTATIONS)


def test_nulls_in_required_column_are_refused():
    with pytest.raises((SchemaMismatch, pa.ArrowInvalid), match=r"null|onset_frame"):
        conform([annotation_row(onset_frame=None)], ANNOTATIONS)


def test_features_hold_lists():
    assert WINDOW_FEATURES.field("hoof").type == pa.list_(pa.float32())

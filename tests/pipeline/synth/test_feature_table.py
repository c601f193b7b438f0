"""The benchmark feature tables (pipeline.synth.feature_table): schema-valid windows of the
asked shape whose labels are where they were planted."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.learn.layout import window_arrays
from pipeline.synth.feature_table import TableShape, generate
from schemas import WINDOW_FEATURES, validate_table


def test_the_table_has_the_asked_shape_and_labels():
    shape = TableShape(subjects=4, windows=400, timesteps=7, cells=2, micro=0.1, macro=0.2)
    made = generate(shape)
    validate_table(made.table, WINDOW_FEATURES)
    assert made.table.num_rows == 400
    assert len(set(made.table.column("subject").to_pylist())) == 4
    layout = shape.layout()
    x, y, rows = window_arrays(made.table, layout)
    assert x.shape == (400, 7, layout.n_features) == (400, 7, 6 * (8 + 1 + 8))
    assert (y == (made.classes == 1)).all() and (rows == np.arange(400)).all()
    # about the asked fractions, and timestep labels only in micro windows
    assert abs((made.classes == 1).mean() - 0.1) < 0.05
    assert abs((made.classes == 2).mean() - 0.2) < 0.06
    assert made.steps[made.classes != 1].sum() == 0
    assert (made.steps[made.classes == 1].sum(axis=1) >= 1).all()
    # a planted movement raises its window's flow
    mag = x[:, :, 6 * 8 : 6 * 9].max(axis=(1, 2))
    assert mag[made.classes == 1].mean() > 2 * mag[made.classes == 0].mean()


def test_without_cells_the_paper_features():
    shape = TableShape(subjects=2, windows=20, timesteps=5, cells=0, regions=("mouth_left",) * 3)
    made = generate(shape)
    assert made.table.column("cell_flow").null_count == 20
    x, _, _ = window_arrays(made.table, shape.layout())
    assert x.shape == (20, 5, 27)  # the paper's 3 regions x (8 bins + magnitude)


def test_windows_follow_each_other_in_each_video():
    made = generate(TableShape(subjects=2, windows=10, timesteps=5, fps=100, stride_s=0.2))
    t = made.table
    assert t.column("window").to_pylist() == [0, 1, 2, 3, 4] * 2
    assert t.column("start_frame").to_pylist()[:3] == [0, 20, 40]
    assert t.column("end_frame").to_pylist()[0] == 49


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="subjects"):
        TableShape(subjects=1)
    with pytest.raises(ValueError, match="fraction < 1"):
        TableShape(micro=0.6, macro=0.5)

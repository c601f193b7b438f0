"""The LSTM spotter: feature layouts, window arrays, training on a separable toy problem."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.learn.layout import (
    CELL_NOISE,
    CELL_SCALE,
    FeatureLayout,
    LayoutMismatch,
    window_arrays,
)
from pipeline.learn.lstm import ModelConfig, SpotterModel, limit_threads
from pipeline.vision.config import FeatureConfig
from schemas import WINDOW_FEATURES, conform

REGIONS = ("eyebrows", "mouth_left")
FC = FeatureConfig(regions=REGIONS, n_bins=4, cells=0, flow_step_s=0.5 / 3)  # T = 3
FC_DICT = {**FC.to_dict(), "config_id": FC.config_id}


def features_table(
    hoofs, mags, labels, faces=None, t=3, r=2, b=4, config_id=FC.config_id, cells=None
):
    """A ``window_features`` table: hoofs (N, t, r, b), mags (N, t, r), cells None or
    (N, t, r, c, c, 2); faces False = no face."""
    n = len(labels)
    faces = [True] * n if faces is None else faces
    rows = []
    for i in range(n):
        rows.append(
            {
                "dataset": "d",
                "subject": "s1",
                "video": "v1",
                "window": i,
                "start_frame": 40 * i,
                "end_frame": 40 * i + 100,
                "start_s": 0.2 * i,
                "end_s": 0.2 * i + 0.5,
                "face_found": faces[i],
                "skip_reason": None if faces[i] else "no face",
                "n_timesteps": t,
                "n_regions": r,
                "n_bins": b,
                "hoof": np.asarray(hoofs[i], np.float32).ravel() if faces[i] else None,
                "magnitude": np.asarray(mags[i], np.float32).ravel() if faces[i] else None,
                "n_cells": 0 if cells is None else cells.shape[3],
                "cell_flow": None if cells is None or not faces[i] else cells[i].ravel(),
                "label": labels[i],
                "config_id": config_id,
            }
        )
    return conform(rows, WINDOW_FEATURES)


def layout(t=3, with_magnitude=True, **kw) -> FeatureLayout:
    d = {
        "n_timesteps": t,
        "n_regions": 2,
        "n_bins": 4,
        "regions": REGIONS,
        "with_magnitude": with_magnitude,
        "config_id": FC.config_id,
        "step_s": FC.flow_step_s,
        **kw,
    }
    return FeatureLayout(**d)


# --- layout -------------------------------------------------------------------------------


def test_importing_the_model_module_does_not_import_tensorflow():
    code = (
        "import sys, pipeline.learn.lstm, pipeline.learn.baseline; "
        "sys.exit(('tensorflow' in sys.modules) + 2 * ('keras' in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_layout_from_table_and_dict_round_trip():
    tab = features_table(np.zeros((2, 3, 2, 4)), np.zeros((2, 3, 2)), [True, False])
    lay = FeatureLayout.from_table(tab, FC, with_magnitude=True)
    assert lay == layout()
    assert lay.n_features == 2 * 4 + 2
    assert FeatureLayout.from_table(tab, FC, with_magnitude=False).n_features == 8
    assert FeatureLayout.from_dict(lay.to_dict()) == lay
    # Without the saved id, the config's own fingerprint is used.
    no_id = {k: v for k, v in FC_DICT.items() if k != "config_id"}
    assert FeatureLayout.from_table(tab, FeatureConfig.from_dict(no_id), with_magnitude=True) == lay


def test_layout_from_table_refuses_mixed_or_foreign_tables():
    import pyarrow as pa

    a = features_table(np.zeros((1, 3, 2, 4)), np.zeros((1, 3, 2)), [True])
    b = features_table(np.zeros((1, 5, 2, 4)), np.zeros((1, 5, 2)), [True], t=5)
    with pytest.raises(LayoutMismatch, match=r"n_timesteps differs between windows \(\[3, 5\]\)"):
        FeatureLayout.from_table(pa.concat_tables([a, b]), FC, True)
    other = features_table(np.zeros((1, 3, 2, 4)), np.zeros((1, 3, 2)), [True], config_id="x")
    with pytest.raises(LayoutMismatch, match="feature configs"):
        FeatureLayout.from_table(other, FC, True)
    with pytest.raises(LayoutMismatch, match="empty"):
        FeatureLayout.from_table(a.slice(0, 0), FC, True)


@pytest.mark.parametrize(
    ("other", "words"),
    [
        (layout(t=15), ["T=3", "T=15", "n_timesteps 3 != 15"]),
        (layout(n_bins=8), ["x 4 bins", "x 8 bins", "n_bins 4 != 8"]),
        (layout(config_id="abc"), [f"config {FC.config_id}", "config abc", "config_id"]),
        (layout(with_magnitude=False), ["10 features", "8 features", "with_magnitude"]),
    ],
)
def test_layout_check_names_both_layouts(other, words):
    layout().check(layout())
    with pytest.raises(LayoutMismatch) as e:
        layout().check(other, where="model m1")
    msg = str(e.value)
    assert msg.startswith("model m1: expects T=3 x 166.667 ms x 10 features")
    for w in words:
        assert w in msg


# --- window arrays ------------------------------------------------------------------------


def test_window_arrays_shapes_values_labels_and_faceless_rows():
    rng = np.random.default_rng(1)
    hoofs = rng.random((4, 3, 2, 4)).astype(np.float32)
    mags = rng.random((4, 3, 2)).astype(np.float32) * 5
    tab = features_table(hoofs, mags, [True, None, False, True], faces=[True, True, False, True])
    x, y, rows = window_arrays(tab, layout())
    assert x.dtype == np.float32 and x.shape == (3, 3, 10)
    assert y.dtype == np.int8 and y.tolist() == [1, -1, 1]
    assert rows.tolist() == [0, 1, 3]
    for i, row in enumerate(rows):
        for t in range(3):
            for r in range(2):
                np.testing.assert_array_equal(x[i, t, r * 4 : r * 4 + 4], hoofs[row, t, r])
                assert x[i, t, 8 + r] == pytest.approx(np.log1p(mags[row, t, r]), rel=1e-6)
    x8, y8, rows8 = window_arrays(tab, layout(with_magnitude=False))
    assert x8.shape == (3, 3, 8)
    np.testing.assert_array_equal(x8, x[..., :8])
    assert y8.tolist() == y.tolist() and rows8.tolist() == rows.tolist()


def test_window_arrays_put_each_cell_flow_after_the_magnitudes():
    # 2 windows, T=3, 2 regions, 2x2 cells: cell (i, j) of region r at timestep t moves
    # (dx, dy) = (t + 10 r, i - j) pixels, so every value says where it came from.
    cells = np.zeros((2, 3, 2, 2, 2, 2), np.float32)
    for t in range(3):
        for r in range(2):
            for i in range(2):
                for j in range(2):
                    cells[:, t, r, i, j] = (t + 10 * r, i - j)
    cfg = FeatureConfig(regions=REGIONS, n_bins=4, cells=2, flow_step_s=0.5 / 3)
    tab = features_table(
        np.zeros((2, 3, 2, 4)), np.ones((2, 3, 2)), [True, False], config_id=cfg.config_id,
        cells=cells,
    )  # fmt: skip
    lay = FeatureLayout.from_table(tab, cfg, with_magnitude=True, cell_norm="none")
    assert lay.n_cells == 2 and lay.n_features == 2 * (4 + 1 + 8)
    assert "2x2 cell flow" in lay.describe()
    x, y, _ = window_arrays(tab, lay)
    assert x.shape == (2, 3, 26) and y.tolist() == [1, 0]
    got = x[:, :, 10:].reshape(2, 3, 2, 2, 2, 2) / CELL_SCALE
    np.testing.assert_allclose(got, cells)
    # Features of the same regions without cells are another layout.
    with pytest.raises(LayoutMismatch, match="n_cells 2 != 0"):
        lay.check(layout())
    with pytest.raises(LayoutMismatch, match="n_cells"):
        window_arrays(features_table(np.zeros((1, 3, 2, 4)), np.ones((1, 3, 2)), [True]), lay)


def test_cell_flows_scaled_per_video_to_their_noise():
    # Three videos of 20 windows: A's cells jitter by +-0.05 px with a 0.5 px movement in
    # window 7; B is A four times larger (a bigger, sharper face); C is perfectly still.
    import pyarrow as pa

    rng = np.random.default_rng(0)
    a = np.where(rng.random((20, 3, 2, 2, 2, 2)) < 0.5, -0.05, 0.05).astype(np.float32)
    a[7, 1, 0, 1, 1] = (0.5, 0.0)
    cells = np.concatenate([a, 4 * a, np.zeros_like(a)])
    cfg = FeatureConfig(regions=REGIONS, n_bins=4, cells=2, flow_step_s=0.5 / 3)
    tab = features_table(
        np.zeros((60, 3, 2, 4)), np.ones((60, 3, 2)), [False] * 60, config_id=cfg.config_id,
        cells=cells,
    )  # fmt: skip
    tab = tab.set_column(
        tab.schema.get_field_index("video"), "video", pa.array(["A"] * 20 + ["B"] * 20 + ["C"] * 20)
    )
    lay = FeatureLayout.from_table(tab, cfg, with_magnitude=True)  # a new model's default
    assert lay.cell_norm == "video" and "scaled per video" in lay.describe()
    x, _, _ = window_arrays(tab, lay)
    got = x[:, :, 10:]
    np.testing.assert_allclose(got[20:40], got[:20], rtol=1e-6)  # the face's scale is gone
    np.testing.assert_allclose(np.median(np.abs(got[:20])), CELL_NOISE, rtol=1e-6)
    assert got[:20].max() == pytest.approx(10 * CELL_NOISE)  # the movement: 10x the noise
    assert not got[40:].any()  # nothing to divide a still video by
    plain, _, _ = window_arrays(tab, replace(lay, cell_norm="none"))
    np.testing.assert_allclose(plain[20:40, :, 10:], 4 * plain[:20, :, 10:], rtol=1e-6)
    # A layout without cells has nothing to scale; one from before cell_norm had none.
    assert FeatureLayout.from_table(
        features_table(np.zeros((1, 3, 2, 4)), np.ones((1, 3, 2)), [False]), FC, True
    ).cell_norm == "none"  # fmt: skip
    old = lay.to_dict()
    del old["cell_norm"]
    assert FeatureLayout.from_dict(old) == replace(lay, cell_norm="none")
    with pytest.raises(ValueError, match="cell_norm"):
        replace(lay, cell_norm="frame")


def test_window_arrays_of_chunked_tables_and_wrong_layouts():
    import pyarrow as pa

    rng = np.random.default_rng(2)
    a = features_table(rng.random((2, 3, 2, 4)), rng.random((2, 3, 2)), [False, True])
    b = features_table(rng.random((1, 3, 2, 4)), rng.random((1, 3, 2)), [True])
    both = pa.concat_tables([a, b])
    x, y, rows = window_arrays(both, layout())
    np.testing.assert_array_equal(x[2], window_arrays(b, layout())[0][0])
    assert y.tolist() == [0, 1, 1] and rows.tolist() == [0, 1, 2]
    with pytest.raises(LayoutMismatch, match="n_timesteps"):
        window_arrays(a, layout(t=5))
    none = features_table([None], [None], [None], faces=[False])
    x0, y0, rows0 = window_arrays(none, layout())
    assert x0.shape == (0, 3, 10) and y0.shape == (0,) and rows0.shape == (0,)


# --- model --------------------------------------------------------------------------------

T_TOY, F_TOY = 10, 10
TOY = layout(t=T_TOY)


def toy_problem(n: int, positive_rate: float, seed: int):
    """Noise in [0, 0.5); positives add a bump of 0.6 to feature 2 at timesteps 4-6."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, T_TOY, F_TOY), dtype=np.float32) * 0.5
    y = (rng.random(n) < positive_rate).astype(np.int8)
    x[y == 1, 4:7, 2] += 0.6
    return x, y


@pytest.fixture(scope="module")
def trained():
    limit_threads(1)  # before TensorFlow starts; tests run on one thread like a fold does
    x, y = toy_problem(600, 0.3, seed=0)
    model = SpotterModel.build(TOY, ModelConfig(epochs=30, seed=3, dropout=0.0, extent=False))
    history = model.fit(x, y)
    return model, history


def test_model_learns_a_separable_problem(trained):
    model, history = trained
    assert len(history["loss"]) == 30 and history["loss"][-1] < history["loss"][0]
    x, y = toy_problem(300, 0.3, seed=1)
    scores = model.predict(x)
    assert scores.dtype == np.float32 and scores.shape == (300,)
    assert roc_auc_score(y, scores) > 0.9
    assert model.training["n_windows"] == 600 and model.training["epochs"] == 30
    assert model.predict(np.zeros((0, T_TOY, F_TOY), np.float32)).shape == (0,)


def test_a_layout_from_before_the_time_grid_is_refused_with_how_to_re_extract():
    # model.json of a model trained before timesteps were fixed in seconds: no step_s.
    old = {k: v for k, v in layout().to_dict().items() if k != "step_s"}
    with pytest.raises(LayoutMismatch) as e:
        FeatureLayout.from_dict(old, source="m/model.json layout")
    msg = str(e.value)
    assert msg.startswith("m/model.json layout: made for features of an older mespot")
    assert "mespot extract CORPUS NEW_STORE" in msg and "mespot train NEW_STORE" in msg


def test_same_seed_same_predictions():
    x, y = toy_problem(200, 0.3, seed=4)
    runs = []
    for _ in range(2):
        m = SpotterModel.build(TOY, ModelConfig(epochs=3, seed=7, extent=False))
        m.fit(x, y)
        runs.append((m.predict(x), m.model_id))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-6, atol=1e-7)
    assert runs[0][1] == runs[1][1]


# Keras' own saving code calls np.array(x, copy=False) on its variables (numpy 2 warns).
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_save_load_round_trip_and_layout_refusal(trained, tmp_path):
    model, _ = trained
    model.save(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"model.keras", "model.json"}
    back = SpotterModel.load(tmp_path / "m")
    x, _ = toy_problem(50, 0.3, seed=5)
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    assert back.layout == model.layout and back.config == model.config
    assert back.model_id == model.model_id and back.training == model.training
    # No spotting threshold learnt: 0.5. One learnt after the fit is saved, not in the id.
    assert back.spotting == {} and back.threshold == 0.5
    back.spotting = {"threshold": 0.83}
    back.save(tmp_path / "m2")
    again = SpotterModel.load(tmp_path / "m2")
    assert again.threshold == 0.83 and again.model_id == model.model_id
    with pytest.raises(LayoutMismatch, match=r"expects T=10 .* features have T=15"):
        back.layout.check(layout(t=15), where=f"model {back.model_id}")
    with pytest.raises(LayoutMismatch, match=r"step_s 0.16.* != 0.02"):
        back.layout.check(layout(t=10, step_s=0.02))
    with pytest.raises(LayoutMismatch, match=r"expects X \(N, 10, 10\)"):
        back.predict(np.zeros((2, 15, 10), np.float32))
    tab = features_table(np.zeros((1, 3, 2, 4)), np.zeros((1, 3, 2)), [True])
    with pytest.raises(LayoutMismatch, match=f"model {back.model_id}: expects T=10"):
        back.features(tab, FC)


def test_balanced_class_weights_raise_positive_scores_on_imbalanced_data():
    x, y = toy_problem(400, 0.05, seed=6)
    means = {}
    for cw in ("balanced", "none"):
        m = SpotterModel.build(TOY, ModelConfig(epochs=8, seed=1, class_weight=cw, extent=False))
        m.fit(x, y)
        means[cw] = float(m.predict(x).mean())
    assert means["balanced"] > means["none"] + 0.1


def test_fit_refuses_unlabelled_windows_and_warns_on_one_class():
    m = SpotterModel.build(TOY, ModelConfig(epochs=1, extent=False))
    x, _ = toy_problem(8, 0.5, seed=0)
    with pytest.raises(ValueError, match="labels must be 0, 1 or 2"):
        m.fit(x, np.array([0, 1, -1, 0, 0, 0, 1, 1]))
    with pytest.raises(LayoutMismatch):
        m.fit(x[:, :5], np.zeros(8))
    with pytest.warns(RuntimeWarning, match="without positives or negatives"):
        m.fit(x, np.zeros(8, np.int8))


def test_model_config_round_trip_and_validation():
    cfg = ModelConfig(units=8, class_weight="none", with_magnitude=False)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    bads = ({"units": 0}, {"learning_rate": 0.0}, {"class_weight": "auto"}, {"seed": -1})
    for bad in (*bads, {"dropout": 1.0}, {"dropout": -0.1}):
        with pytest.raises(ValueError):
            ModelConfig(**bad)
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({"unit": 3})
    with pytest.raises(LayoutMismatch, match="with_magnitude"):
        SpotterModel.build(TOY, cfg)


def test_a_three_class_model_tells_a_short_bump_from_a_long_one():
    # Class 1: a bump at timesteps 4-6 of feature 2 (a micro-movement); class 2: a plateau
    # from timestep 3 on, on feature 5 (the start of a macro-expression); 0: noise.
    rng = np.random.default_rng(4)
    x = rng.random((900, T_TOY, F_TOY), dtype=np.float32) * 0.5
    y = rng.choice(3, size=900, p=[0.6, 0.2, 0.2]).astype(np.int8)
    x[y == 1, 4:7, 2] += 0.6
    x[y == 2, 3:, 5] += 0.6
    cfg = ModelConfig(epochs=30, seed=1, classes=3, dropout=0.0, extent=False)
    model = SpotterModel.build(TOY, cfg)
    model.fit(x[:600], y[:600])
    assert model.training["n_macro"] == int((y[:600] == 2).sum())
    probs = model.predict_classes(x[600:])
    assert probs.shape == (300, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    micro, macro = model.predict_kinds(x[600:])
    np.testing.assert_array_equal(micro, probs[:, 1])
    np.testing.assert_array_equal(micro, model.predict(x[600:]))
    test = y[600:]
    assert roc_auc_score(test == 1, micro) > 0.95
    assert roc_auc_score(test == 2, macro) > 0.95
    # A two-class model takes macro windows as negatives, and has no macro score.
    two = SpotterModel.build(TOY, ModelConfig(epochs=5, seed=1, classes=2, extent=False))
    two.fit(x[:600], y[:600])
    assert two.predict_classes(x[:3]).shape == (3, 2)
    assert two.predict_kinds(x[:3])[1] is None
    assert two.training["n_positives"] == int((y[:600] == 1).sum())


def test_a_model_saved_before_the_macro_class_loads_as_two_classes():
    old = ModelConfig(classes=2).to_dict()
    del old["classes"]  # what model.json held before
    assert ModelConfig.from_dict(old).classes == 2
    assert ModelConfig.from_dict(ModelConfig().to_dict()).classes == 3
    with pytest.raises(ValueError, match="classes"):
        ModelConfig(classes=4)


def test_a_model_saved_before_dropout_loads_without_it():
    old = ModelConfig(dropout=0.0).to_dict()
    del old["dropout"]
    assert ModelConfig.from_dict(old) == ModelConfig(dropout=0.0)
    assert ModelConfig.from_dict(ModelConfig().to_dict()).dropout == ModelConfig().dropout > 0


def test_a_model_saved_before_dropout_keeps_its_id_and_loads(tmp_path):
    model = SpotterModel.build(TOY, ModelConfig(dropout=0.0, epochs=1))
    model.save(tmp_path)
    info = json.loads((tmp_path / "model.json").read_text())
    del info["config"]["dropout"]  # what model.json held before
    del info["layout"]["cell_norm"]
    (tmp_path / "model.json").write_text(json.dumps(info))
    loaded = SpotterModel.load(tmp_path)
    assert loaded.model_id == model.model_id and loaded.config.dropout == 0.0
    with_dropout = SpotterModel.build(TOY, ModelConfig(dropout=0.3, epochs=1))
    assert with_dropout.model_id != model.model_id


def test_dropout_acts_in_training_only():
    x = np.random.default_rng(0).random((4, T_TOY, F_TOY), dtype=np.float32)
    model = SpotterModel.build(TOY, ModelConfig(dropout=0.5, seed=2))
    net = model.keras_model
    train_a, train_b = (np.asarray(net(x, training=True)) for _ in range(2))
    assert not np.allclose(train_a, train_b)  # a different half of the inputs each call
    np.testing.assert_array_equal(model.predict_classes(x), model.predict_classes(x))
    np.testing.assert_allclose(model.predict_classes(x), np.asarray(net(x, training=False)),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    plain = SpotterModel.build(TOY, ModelConfig(dropout=0.0, seed=2))
    np.testing.assert_allclose(  # same seed, same weights: dropout changes nothing at inference
        plain.predict_classes(x), model.predict_classes(x), rtol=1e-5, atol=1e-6
    )


def test_limit_threads_is_safe_to_call_again():
    from pipeline.learn.runtime import backend

    if backend() != "tensorflow":
        assert limit_threads(3) is True  # other backends take threads from the environment
        return
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # the runtime has started now
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    if intra:
        assert limit_threads(intra) is True
    with pytest.warns(RuntimeWarning, match="already started"):
        assert limit_threads(intra + 3) is False

"""The extent head: timestep scores that find where in a window a movement lies; and
ensembles of classifier and head (ModelConfig.members)."""

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.learn import extent
from pipeline.learn.layout import FeatureLayout
from pipeline.learn.lstm import ModelConfig, SpotterModel, limit_threads
from pipeline.vision.config import FeatureConfig

REGIONS = ("eyebrows", "mouth_left")
FC = FeatureConfig(regions=REGIONS, n_bins=4, cells=0, flow_step_s=0.05)
T_TOY, F_TOY = 10, 10  # 2 regions x (4 bins + 1 magnitude)
TOY = FeatureLayout(
    n_timesteps=T_TOY, n_regions=2, n_bins=4, regions=REGIONS, with_magnitude=True,
    config_id=FC.config_id, step_s=FC.flow_step_s,
)  # fmt: skip


def bumps(n: int, seed: int, positive_rate: float = 0.5):
    """Noise in [0, 0.5); a share of the windows (half by default) carry a bump of 0.6 on
    feature 2 for 3 timesteps at a random place: those timesteps are the ones labelled
    inside."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, T_TOY, F_TOY), dtype=np.float32) * 0.5
    y = (rng.random(n) < positive_rate).astype(np.int8)
    steps = np.zeros((n, T_TOY), np.int8)
    for i in np.flatnonzero(y):
        at = rng.integers(0, T_TOY - 3)
        x[i, at : at + 3, 2] += 0.6
        steps[i, at : at + 3] = 1
    return x, y, steps


@pytest.fixture(scope="module")
def with_head():
    limit_threads(1)
    x, y, steps = bumps(600, seed=0)
    model = SpotterModel.build(TOY, ModelConfig(units=8, epochs=25, seed=2, dropout=0.0))
    history = model.fit(x, y, steps=steps)
    return model, history


def test_the_head_finds_the_timesteps_of_the_bump(with_head):
    model, history = with_head
    x, _, steps = bumps(300, seed=1)
    q = model.predict_steps(x)
    assert q.shape == (300, T_TOY) and q.dtype == np.float32
    assert roc_auc_score(steps.ravel(), q.ravel()) > 0.95
    assert "extent_loss" in history
    assert model.predict_steps(np.zeros((0, T_TOY, F_TOY), np.float32)).shape == (0, T_TOY)


def test_windows_without_timestep_labels_are_left_out_of_the_heads_training():
    x, y, steps = bumps(40, seed=3)
    steps[:10] = -1  # e.g. videos labelled by verdicts
    model = SpotterModel.build(TOY, ModelConfig(units=4, epochs=1, seed=1))
    model.fit(x, y, steps=steps)  # trains
    steps[:] = -1  # none at all: the model trains without its head, and says so
    with pytest.warns(RuntimeWarning, match="no window has timestep labels"):
        model.fit(x, y, steps=steps)
    assert model.extent_model is None and model.predict_steps(x) is None


def test_fit_needs_timestep_labels_of_the_right_shape_and_values():
    x, y, steps = bumps(8, seed=4)
    model = SpotterModel.build(TOY, ModelConfig(units=4, epochs=1))
    with pytest.raises(ValueError, match="needs timestep labels"):
        model.fit(x, y)
    with pytest.raises(ValueError, match=r"shape \(8, 10\)"):
        model.fit(x, y, steps=steps[:, :5])
    steps[0, 0] = 2
    with pytest.raises(ValueError, match="0 or 1"):
        model.fit(x, y, steps=steps)
    with pytest.raises(ValueError, match="0 or 1"):
        extent.check_steps(np.array([[1, -1] * 5]), 1, T_TOY)  # -1 only as a whole row


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_the_head_is_saved_and_loaded_with_the_model(with_head, tmp_path):
    model, _ = with_head
    model.save(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {
        "model.keras", "extent.keras", "model.json",
    }  # fmt: skip
    back = SpotterModel.load(tmp_path / "m")
    x, _, _ = bumps(20, seed=5)
    np.testing.assert_array_equal(back.predict_steps(x), model.predict_steps(x))
    assert back.model_id == model.model_id and back.config.extent


def test_a_model_from_before_extent_heads_loads_without_one_and_keeps_its_id(tmp_path):
    old = SpotterModel.build(TOY, ModelConfig(units=4, epochs=1, extent=False))
    x, y, _ = bumps(20, seed=6)
    old.fit(x, y)
    assert old.predict_steps(x) is None
    old.save(tmp_path)
    info = json.loads((tmp_path / "model.json").read_text())
    del info["config"]["extent"]  # what model.json held before
    (tmp_path / "model.json").write_text(json.dumps(info))
    back = SpotterModel.load(tmp_path)
    assert not back.config.extent and back.extent_model is None
    assert back.model_id == old.model_id
    headed = SpotterModel.build(TOY, ModelConfig(units=4, epochs=1))
    assert headed.model_id != old.model_id


# --- ensembles (ModelConfig.members): several networks in one Keras model, each from its
# own initial weights and on its own loss; the scores are the members' mean.


def members_out(net, x: np.ndarray) -> np.ndarray:
    return np.asarray(net.predict(x, verbose=0), np.float32)


@pytest.fixture(scope="module")
def ensemble():
    limit_threads(1)
    x, y, steps = bumps(600, seed=0)
    cfg = ModelConfig(units=8, epochs=25, seed=2, dropout=0.0, classes=2, members=3)
    model = SpotterModel.build(TOY, cfg)
    model.fit(x, y, steps=steps)
    return model


def test_every_member_learns_and_the_scores_are_their_mean(ensemble):
    x, y, steps = bumps(300, seed=1)
    each = members_out(ensemble.keras_model, x)  # (N, members, classes)
    assert each.shape == (300, 3, 2)
    for k in range(3):  # each member on its own loss: each one separates the classes
        assert roc_auc_score(y, each[:, k, 1]) > 0.9
    assert not np.allclose(each[:, 0], each[:, 1], atol=1e-3)  # their own initial weights
    np.testing.assert_allclose(ensemble.predict_classes(x), each.mean(axis=1), atol=1e-6)
    assert roc_auc_score(y, ensemble.predict(x)) > 0.9
    heads = members_out(ensemble.extent_model, x)  # (N, T, members)
    assert heads.shape == (300, T_TOY, 3)
    aucs = [roc_auc_score(steps.ravel(), heads[..., k].ravel()) for k in range(3)]
    assert min(aucs) > 0.9
    np.testing.assert_allclose(ensemble.predict_steps(x), heads.mean(axis=-1), atol=1e-6)
    assert roc_auc_score(steps.ravel(), ensemble.predict_steps(x).ravel()) > 0.9


def test_class_weights_reach_every_member():
    x, y, _ = bumps(400, seed=6, positive_rate=0.05)
    means = {}
    for cw in ("balanced", "none"):
        cfg = ModelConfig(epochs=8, seed=1, class_weight=cw, extent=False, members=2)
        m = SpotterModel.build(TOY, cfg)
        m.fit(x, y)
        means[cw] = members_out(m.keras_model, x)[..., 1].mean(axis=0)  # per member
    assert (means["balanced"] > means["none"] + 0.1).all()


# Keras' own saving code calls np.array(x, copy=False) on its variables (numpy 2 warns).
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_an_ensemble_saves_and_loads(ensemble, tmp_path):
    ensemble.save(tmp_path / "m")
    back = SpotterModel.load(tmp_path / "m")
    x, _, _ = bumps(20, seed=5)
    np.testing.assert_array_equal(back.predict_classes(x), ensemble.predict_classes(x))
    np.testing.assert_array_equal(back.predict_steps(x), ensemble.predict_steps(x))
    assert back.config.members == 3 and back.model_id == ensemble.model_id


def test_one_member_is_the_plain_network_and_old_models_keep_their_ids(tmp_path):
    one = SpotterModel.build(TOY, ModelConfig(units=4, epochs=1, members=1))
    assert one.keras_model.output_shape == (None, 3)  # no members axis
    assert one.extent_model.output_shape == (None, T_TOY, 1)
    three = SpotterModel.build(TOY, ModelConfig(units=4, epochs=1, members=3))
    assert three.model_id != one.model_id
    one.save(tmp_path)
    info = json.loads((tmp_path / "model.json").read_text())
    del info["config"]["members"]  # what model.json held before ensembles
    (tmp_path / "model.json").write_text(json.dumps(info))
    loaded = SpotterModel.load(tmp_path)
    assert loaded.config.members == 1 and loaded.model_id == one.model_id
    with pytest.raises(ValueError, match="members"):
        ModelConfig(members=0)

"""Mirrored faces as training data (ModelConfig.mirror): a window's features as its face's
mirror image would give them, checked against features computed from mirrored flow."""

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.learn.layout import FeatureLayout, mirror_map, mirror_region, mirrored, with_mirrors
from pipeline.learn.lstm import ModelConfig, SpotterModel, limit_threads, training_windows
from pipeline.vision.config import BROW_HALVES_REGIONS, FeatureConfig
from pipeline.vision.hoof import cell_means, hoof_batch

FC = FeatureConfig(n_bins=8, cells=3)
LAYOUT = FeatureLayout(
    n_timesteps=2, n_regions=len(FC.regions), n_bins=8, regions=FC.regions,
    with_magnitude=True, config_id=FC.config_id, step_s=FC.flow_step_s, n_cells=3,
)  # fmt: skip


def features(fields: list[np.ndarray]) -> np.ndarray:
    """One timestep's features in the layout's order from one (H, W, 2) flow per region:
    HOOF region-major, magnitudes, then cells (region, row, column, dx/dy)."""
    flows = np.stack(fields)
    hist, mag = hoof_batch(flows, 8, normalise=False)
    cells = cell_means(flows, 3)
    return np.concatenate([hist.ravel(), mag, cells.ravel()]).astype(np.float32)


def flip(field: np.ndarray) -> np.ndarray:
    """A flow field of the mirror image: columns reversed, dx negated."""
    out = field[:, ::-1].copy()
    out[..., 0] *= -1
    return out


def test_regions_swap_sides():
    assert mirror_region("right_brow_outer") == "left_brow_outer"
    assert mirror_region("left_brow_inner") == "right_brow_inner"
    assert mirror_region("mouth_left") == "mouth_right"
    assert mirror_region("eyebrows") == "eyebrows"
    assert sorted(map(mirror_region, BROW_HALVES_REGIONS)) == sorted(BROW_HALVES_REGIONS)


def test_mirrored_features_are_the_features_of_the_mirrored_flow():
    rng = np.random.default_rng(0)
    regions = list(LAYOUT.regions)
    x = np.zeros((1, 2, 6 * (8 + 1 + 18)), np.float32)
    want = np.zeros_like(x)
    for t in range(2):
        fields = [rng.normal(0, 1, (12, 9, 2)).astype(np.float32) for _ in regions]
        x[0, t] = features(fields)
        # in the mirror image, region r holds the flipped flow of its mirror region
        want[0, t] = features([flip(fields[regions.index(mirror_region(r))]) for r in regions])
    np.testing.assert_allclose(mirrored(x, LAYOUT), want, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(mirrored(mirrored(x, LAYOUT), LAYOUT), x, rtol=1e-6)


def test_a_rightward_lift_of_one_corner_becomes_a_leftward_lift_of_the_other():
    regions = list(LAYOUT.regions)
    fields = [np.zeros((9, 9, 2), np.float32) for _ in regions]
    fields[regions.index("mouth_left")][:3, 6:] = (0.5, -0.3)  # top right cell: right and up
    got = mirrored(features(fields)[None, None], LAYOUT)[0, 0]
    cells = got[-6 * 18 :].reshape(6, 3, 3, 2)
    right = regions.index("mouth_right")
    np.testing.assert_allclose(cells[right, 0, 0], (-0.5, -0.3), atol=1e-6)  # top left, left
    assert np.abs(np.delete(cells, right, axis=0)).max() == 0
    hist = got[: 6 * 8].reshape(6, 8)
    # 31 degrees up and right -> 149 degrees: between bin 3 (135) and bin 4 (180)
    assert hist[right, 3] > hist[right, 4] > 0 and hist[right, [0, 1, 2, 5, 6, 7]].max() == 0


def test_layouts_that_cannot_be_mirrored_are_refused():
    one_side = FeatureConfig(regions=("left_eyebrow", "mouth_left"), cells=0)
    layout = FeatureLayout(
        n_timesteps=2, n_regions=2, n_bins=8, regions=one_side.regions, with_magnitude=False,
        config_id=one_side.config_id, step_s=one_side.flow_step_s,
    )  # fmt: skip
    with pytest.raises(ValueError, match="left_eyebrow"):
        mirror_map(layout)
    odd = FeatureLayout(
        n_timesteps=2, n_regions=1, n_bins=5, regions=("eyebrows",), with_magnitude=False,
        config_id="x", step_s=0.04,
    )  # fmt: skip
    with pytest.raises(ValueError, match="even"):
        mirror_map(odd)


def one_sided(n: int, seed: int):
    """Noise; positives carry a rightward push in one cell of mouth_left (feature block of
    the cells) at timesteps 0-1. The mirror of a positive has it, leftward, in mouth_right."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.1, (n, 2, LAYOUT.n_features)).astype(np.float32)
    y = (rng.random(n) < 0.5).astype(np.int8)
    cell = 6 * 9 + (LAYOUT.regions.index("mouth_left") * 9 + 4) * 2  # middle cell's dx
    x[y == 1, :, cell] += 1.0
    return x, y


def test_a_mirror_trained_model_sees_the_movement_on_the_other_side():
    limit_threads(1)
    x, y = one_sided(400, seed=0)
    cfg = dict(units=8, epochs=20, seed=1, dropout=0.0, extent=False)
    plain = SpotterModel.build(LAYOUT, ModelConfig(**cfg, mirror=False))
    plain.fit(x, y)
    both = SpotterModel.build(LAYOUT, ModelConfig(**cfg, mirror=True))
    history = both.fit(x, y)
    assert len(history["loss"]) == 10  # half the epochs over twice the windows
    assert both.training["n_windows"] == 400
    test_x, test_y = one_sided(200, seed=1)
    other_side = mirrored(test_x, LAYOUT)  # the movement on the side never trained on
    assert roc_auc_score(test_y, both.predict(other_side)) > 0.95
    assert roc_auc_score(test_y, both.predict(test_x)) > 0.95
    assert roc_auc_score(test_y, plain.predict(other_side)) < 0.8
    assert both.model_id != plain.model_id


def test_models_saved_before_the_setting_keep_their_ids(tmp_path):
    model = SpotterModel.build(LAYOUT, ModelConfig(units=4, epochs=1, extent=False, mirror=False))
    model.save(tmp_path)
    info = json.loads((tmp_path / "model.json").read_text())
    del info["config"]["mirror"]  # what model.json held before the setting
    (tmp_path / "model.json").write_text(json.dumps(info))
    loaded = SpotterModel.load(tmp_path)
    assert loaded.config.mirror is False and loaded.model_id == model.model_id


def test_with_mirrors_stacks_the_images_and_repeats_the_labels():
    x = np.random.default_rng(2).normal(size=(3, 2, LAYOUT.n_features)).astype(np.float32)
    y, steps = np.array([0, 1, 2]), np.array([[0, 1], [1, 1], [0, 0]])
    x2, y2, none, steps2 = with_mirrors(x, LAYOUT, y, None, steps)
    np.testing.assert_array_equal(x2[:3], x)
    np.testing.assert_array_equal(x2[3:], mirrored(x, LAYOUT))
    assert none is None and y2.tolist() == [0, 1, 2, 0, 1, 2]
    np.testing.assert_array_equal(steps2, np.concatenate([steps, steps]))
    # twice the windows, half the epochs (rounded up), also when fine-tuning for a few
    assert training_windows(ModelConfig(epochs=5, mirror=True), LAYOUT, x, y, None)[3] == 3
    assert training_windows(ModelConfig(epochs=5), LAYOUT, x, y, None, epochs=3)[3] == 2
    assert training_windows(ModelConfig(epochs=5, mirror=False), LAYOUT, x, y, None)[3] == 5


def test_a_layout_without_a_mirror_trains_without_one_and_says_so():
    one_side = FeatureConfig(regions=("eyebrows", "mouth_left"), n_bins=4, cells=0)
    layout = FeatureLayout(
        n_timesteps=2, n_regions=2, n_bins=4, regions=one_side.regions, with_magnitude=True,
        config_id=one_side.config_id, step_s=one_side.flow_step_s,
    )  # fmt: skip
    x = np.random.default_rng(3).normal(size=(40, 2, 10)).astype(np.float32)
    y = np.arange(40) % 2
    model = SpotterModel.build(layout, ModelConfig(units=4, epochs=4, extent=False, mirror=True))
    with pytest.warns(RuntimeWarning, match="without mirror images.*mouth_left"):
        history = model.fit(x, y)
    assert len(history["loss"]) == 4 and model.training["n_windows"] == 40

"""The model shipped in the package: present, loadable, and in step with the default
feature config (when this fails, renew it with the command in its BUNDLE.json)."""

from __future__ import annotations

import numpy as np

from pipeline.learn.bundled import bundle_info, bundled_model, bundled_model_dir
from pipeline.vision.config import FeatureConfig


def test_the_bundled_model_reads_the_default_features():
    model = bundled_model()
    fc = FeatureConfig()
    layout = model.layout
    renew = f"the bundled model is stale: renew it with `{bundle_info()['trained_by']}`"
    assert layout.config_id == fc.config_id, renew
    assert (layout.n_timesteps, layout.regions, layout.n_bins, layout.n_cells) == (
        fc.timesteps, tuple(fc.regions), fc.n_bins, fc.cells,
    ), renew  # fmt: skip
    assert layout.step_s == fc.flow_step_s


def test_the_bundled_model_spots_at_its_own_threshold_and_says_how_it_was_made():
    model, info = bundled_model(), bundle_info()
    assert info["model_id"] == model.model_id
    assert model.config.extent and model.extent_model is not None  # onsets and offsets
    # the threshold chosen on its training folds, the one its held-out figures are at
    assert model.threshold == info["at_threshold"]["threshold"]
    assert 0 < model.threshold < 1 and 0 < model.window_threshold < 1
    assert "synthetic" in info["training_corpus"] and "--export" in info["trained_by"]
    for rule in ("coverage", "iou"):
        counts = info["at_threshold"][rule]
        assert counts["tp"] + counts["fn"] > 0  # figures on movements it never saw
    x = np.zeros((3, model.layout.n_timesteps, model.layout.n_features), np.float32)
    scores, steps = model.predict(x), model.predict_steps(x)
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
    assert steps.shape == (3, model.layout.n_timesteps)


def test_the_bundled_model_is_small_enough_to_ship():
    size = sum(f.stat().st_size for f in bundled_model_dir().iterdir())
    assert size < 4 * 2**20

"""Folds trained stacked (pipeline.learn.stacked): each fold's model is an ordinary
SpotterModel that computes what the stack computed for it, and a fold never learns from its
held-out subject's windows."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.learn import stacked
from pipeline.learn.layout import FeatureLayout
from pipeline.learn.lstm import ModelConfig
from pipeline.learn.stacked import FoldPlan, StackedNetworks, fit_folds, fold_weights

T, F = 5, 27  # 3 regions x (8 bins + magnitude)


def _layout() -> FeatureLayout:
    return FeatureLayout(
        config_id="test", n_timesteps=T, step_s=0.04, n_regions=3, n_bins=8,
        regions=("mouth_left", "mouth_right", "left_brow_inner"), with_magnitude=True,
    )  # fmt: skip


def _data(n: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, T, F)).astype(np.float32) + y[:, None, None]  # learnable
    steps = np.repeat((y == 1)[:, None], T, axis=1).astype(np.float32)
    subjects = np.array([f"s{i % 3}" for i in range(n)])
    return x, y, steps, subjects


CFG = ModelConfig(units=4, epochs=2, batch_size=16, mirror=False, dropout=0.2)


def test_plan_and_class_weights_per_fold():
    y = np.array([0, 0, 1, 2, 0, 1, -1])
    subjects = np.array(["a", "a", "a", "b", "b", "b", "b"])
    plan = FoldPlan.loso(subjects, y >= 0, ["a", "b", None])
    assert plan.train.tolist() == [
        [False, True, True], [False, True, True], [False, True, True], [True, False, True],
        [True, False, True], [True, False, True], [False, False, False],
    ]  # fmt: skip
    w, chosen = fold_weights(y, plan.train, ModelConfig())
    # fold "a" trains on b's windows: one each of none, micro, macro -> weight 1 each
    assert chosen[0] == pytest.approx({0: 1.0, 1: 1.0, 2: 1.0})
    # fold "b" on a's: two none, one micro, no macro (n / (3 n_c))
    assert chosen[1] == pytest.approx({0: 0.5, 1: 1.0})
    assert w[:, 1].tolist() == pytest.approx([0.5, 0.5, 1.0, 0, 0, 0, 0])
    assert (w[6] == 0).all()  # unlabelled: no fold


def test_each_fold_model_computes_what_the_stack_computed():
    x = _data()[0]
    layout, cfg = _layout(), ModelConfig(units=4, epochs=1, batch_size=16, mirror=False)
    nets = StackedNetworks(layout, cfg, folds=3)
    out = nets.predict(x)
    for j in range(3):
        model = nets.model_for(j)
        np.testing.assert_allclose(model.predict_classes(x), out["classes"][:, j], atol=1e-5)
        np.testing.assert_allclose(model.predict_steps(x), out["steps"][:, j], atol=1e-5)
    assert not np.allclose(out["classes"][:, 0], out["classes"][:, 1])  # own weights


def test_unrolled_and_scanned_recurrences_agree(monkeypatch):
    """The recurrence unrolled over T (TensorFlow's way) or scanned (other backends'): the
    same outputs from the same weights (both directions, the extent head's included)."""
    x = _data(40)[0]
    cfg = ModelConfig(units=4, epochs=1, batch_size=16, mirror=False)
    out = {}
    for how, rule in (("unrolled", lambda t: t is not None), ("scanned", lambda t: False)):
        monkeypatch.setattr(stacked, "_unrolled", rule)
        nets = StackedNetworks(_layout(), cfg, folds=2)  # same seed: same weights
        out[how] = nets.predict(x)  # a Keras model traces its layers when it runs
    for key in ("classes", "steps"):
        np.testing.assert_allclose(out["unrolled"][key], out["scanned"][key], atol=1e-5)
        assert out["unrolled"][key].std() > 0.01


def test_a_fold_never_learns_from_its_held_out_subject():
    x, y, steps, subjects = _data()
    plan = FoldPlan.loso(subjects, y >= 0, ["s0", "s1", None])
    first = fit_folds(_layout(), CFG, x, y, steps, plan, "fp")
    x2 = x.copy()
    x2[subjects == "s0"] = 5.0  # only fold s0 must not see the change
    y2 = y.copy()
    y2[subjects == "s0"] = 1
    second = fit_folds(_layout(), CFG, x2, y2, steps, plan, "fp")
    same = [w1 for w1 in first[0].keras_model.get_weights()]
    for a, b in zip(same, second[0].keras_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for a, b in zip(first[0].extent_model.get_weights(), second[0].extent_model.get_weights(),
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(a, b, atol=1e-5)
    moved = [
        np.abs(a - b).max()
        for a, b in zip(first[1].keras_model.get_weights(), second[1].keras_model.get_weights(),
                        strict=True)
    ]  # fmt: skip
    assert max(moved) > 1e-3  # fold s1 trains on s0: it learnt from the change


def test_fold_models_record_their_training_and_learn():
    x, y, steps, subjects = _data(240)
    plan = FoldPlan.loso(subjects, y >= 0, ["s0", None])
    cfg = ModelConfig(units=8, epochs=20, batch_size=16, mirror=False, dropout=0.0)
    held, whole = fit_folds(_layout(), cfg, x, y, steps, plan, "run")
    assert held.training["n_windows"] == int((subjects != "s0").sum())
    assert whole.training["n_windows"] == len(y)
    assert held.training["data_fingerprint"] == "run:s0"
    assert whole.training["data_fingerprint"] == "run:all"
    assert held.training["n_positives"] == int(((subjects != "s0") & (y == 1)).sum())
    test = subjects == "s0"  # never seen by the fold: the classes are separable by offset
    accuracy = (held.predict_classes(x[test]).argmax(axis=1) == y[test]).mean()
    assert accuracy > 0.9


def test_a_fold_without_timestep_labels_has_no_extent_head():
    x, y, steps, subjects = _data()
    steps[subjects != "s2"] = -1  # only s2 has timestep labels: fold s2 has none to learn
    plan = FoldPlan.loso(subjects, y >= 0, ["s0", "s2"])
    with_head, without = fit_folds(_layout(), CFG, x, y, steps, plan, "fp")
    assert with_head.extent_model is not None
    assert without.extent_model is None


def test_ensembles_are_refused():
    x, y, steps, subjects = _data()
    plan = FoldPlan.loso(subjects, y >= 0, ["s0"])
    with pytest.raises(ValueError, match="members"):
        fit_folds(_layout(), ModelConfig(members=2), x, y, steps, plan)

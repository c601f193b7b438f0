"""The simulation's fits learn their threshold as `mespot train` does: on out-of-fold scores
of the labelled subjects, never on the test subjects."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from cluster.run import feedback_models
from cluster.run.evaluate import ground_truth
from cluster.run.feedback_models import SimCorpus, fit, predictions
from cluster.run.spot import chosen_threshold
from cluster.run.training_data import load_dataset
from cluster.store import Store, paths
from cluster.store.parquet import read_table, window_columns
from pipeline.learn.simulation import FeedbackConfig

LABELLED, TEST = ("006", "007"), ("008",)


def corpus(store_path) -> SimCorpus:
    """006 and 007 labelled, 008 test, no feedback subject."""
    store = Store.open(str(store_path))
    data = load_dataset(store, True)
    masks = {
        "labelled": np.isin(data.subjects, LABELLED),
        "feedback": np.zeros(len(data.y), bool),
        "test": np.isin(data.subjects, TEST),
    }
    cols = window_columns(data.table, data.config.label_span_s)
    videos = read_table(store, paths.VIDEOS)
    return SimCorpus(data, cols, videos, ground_truth(store, ("micro",)), masks)


@pytest.fixture
def fits(monkeypatch):
    """Every network fit: (subjects trained on, fine-tuned?, epochs)."""
    calls = []
    real = feedback_models.fit_one

    def recording(c, y, steps, cfg, seed, base=None, epochs=None):
        calls.append((set(c.cols[1][y >= 0]), base is not None, epochs))
        return real(c, y, steps, cfg, seed, base, epochs)

    monkeypatch.setattr(feedback_models, "fit_one", recording)
    return calls


@pytest.mark.slow
def test_a_fit_learns_its_threshold_on_folds_of_the_labelled_subjects(sim_store, fits):
    c = corpus(sim_store[0])
    cfg = FeedbackConfig(labelled=2, test=1, seeds=1, epochs=4, finetune_epochs=1, threshold=None)
    y = np.where(c.masks["labelled"], c.data.y, -1).astype(np.int8)
    steps = np.where((y >= 0)[:, None], c.data.steps, -1).astype(np.int8)

    fitted = fit(c, y, steps, cfg, seed=0)
    # the model on both labelled subjects; one fold model without each; the test subject
    # in none of them
    assert fits == [({"006", "007"}, False, None), ({"007"}, False, None), ({"006"}, False, None)]
    assert sorted(fitted.folds) == list(LABELLED)
    # the threshold is the one chosen on the folds' scores of the subjects they held out,
    # against the labelled subjects' ground truth only
    held_out = pa.concat_tables(predictions(c, fitted.folds[s], c.cols[1] == s) for s in LABELLED)
    labelled_truth = {k: v for k, v in c.truth.items() if k[1] in LABELLED}
    expected = chosen_threshold(held_out, labelled_truth, c.videos)
    assert expected is not None and expected["spots"] == "profile"
    assert fitted.threshold == expected["threshold"]
    assert fitted.window_threshold == expected["window_threshold"]
    assert fitted.model.threshold == expected["threshold"]  # what spots and the queue use

    # a fine-tune fine-tunes the folds along with the model, each from its own fold
    folds = dict(fitted.folds)
    fits.clear()
    again = fit(c, y, steps, cfg, seed=0, base=fitted)
    assert fits == [({"006", "007"}, True, None), ({"007"}, True, None), ({"006"}, True, None)]
    assert again.model is fitted.model and again.folds == folds
    assert all(again.folds[s] is folds[s] for s in LABELLED)


@pytest.mark.slow
def test_a_fixed_threshold_trains_no_fold(sim_store, fits):
    c = corpus(sim_store[0])
    cfg = FeedbackConfig(labelled=2, test=1, seeds=1, epochs=1, threshold=0.42)
    y = np.where(c.masks["labelled"], c.data.y, -1).astype(np.int8)
    fitted = fit(c, y, np.where((y >= 0)[:, None], c.data.steps, -1).astype(np.int8), cfg, 0)
    assert len(fits) == 1 and fitted.folds == {}
    assert fitted.threshold == fitted.window_threshold == 0.42

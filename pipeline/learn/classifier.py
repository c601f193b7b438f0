"""The window classifier's network (pipeline.learn.lstm): the paper's LSTM stack and
softmax, or an ensemble of them in one Keras model (ModelConfig.members), each member from
its own initial weights and on its own loss, their probabilities averaged; and the labels
it trains on (:func:`labels`).

Keras is imported inside the functions, as in pipeline.learn.lstm.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from pipeline.learn.runtime import PREDICT_BATCH


def build(n_timesteps: int, n_features: int, config: Any) -> Any:
    """The uncompiled classifier for a ``ModelConfig``: (N, T, F) -> (N, classes)
    probabilities, or (N, members, classes) for an ensemble. Seed Keras first."""
    import keras

    if config.members == 1:  # the paper's network, as models were saved before ensembles
        return keras.Sequential([keras.Input((n_timesteps, n_features)), *_stack(config)],
                                name="spotter")  # fmt: skip
    inp = keras.Input((n_timesteps, n_features))
    outs = []
    for _ in range(config.members):
        x = inp
        for layer in _stack(config):
            x = layer(x)
        outs.append(keras.layers.Reshape((1, config.classes))(x))
    return keras.Model(inp, keras.layers.Concatenate(axis=1)(outs), name="spotter")


def _stack(config: Any) -> list[Any]:
    """One member's layers: ``config.layers`` LSTMs and a softmax."""
    import keras

    stack: list[Any] = []
    for i in range(config.layers):
        last = i == config.layers - 1
        stack.append(
            keras.layers.LSTM(config.units, dropout=config.dropout, return_sequences=not last)
        )
    stack.append(keras.layers.Dense(config.classes, activation="softmax"))
    return stack


def targets(
    y: np.ndarray, class_weights: dict[int, float] | None, members: int
) -> tuple[np.ndarray, dict[int, float] | None, np.ndarray | None]:
    """(targets, class_weight, sample_weight) for Keras' fit: ``y`` and the class weights
    as they are for one network; for an ensemble, ``y`` once per member (N, members) and
    the class weights as sample weights of the same shape (Keras weighs classes of 1-D
    targets only)."""
    if members == 1:
        return y, class_weights, None
    per_member = np.repeat(y[:, None], members, axis=1)
    if class_weights is None:
        return per_member, None, None
    weight = np.array([class_weights.get(c, 0.0) for c in range(int(y.max()) + 1)], np.float32)
    return per_member, None, weight[per_member]


def predict(net: Any, x: np.ndarray) -> np.ndarray:
    """(N, classes) float32 probabilities: the members' mean for an ensemble."""
    probs = np.asarray(net.predict(x, batch_size=PREDICT_BATCH, verbose=0), np.float32)
    return probs.mean(axis=1) if probs.ndim == 3 else probs


def labels(y: np.ndarray, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """SpotterModel.fit's labels for ``n`` windows as (y, counts per class) for a ``k``-class model
    (two classes: macro windows are negatives); warns when a class of none/micro is absent."""
    y = np.asarray(y).astype(np.int64).ravel()
    if len(y) != n or n == 0:
        raise ValueError(f"need as many labels as windows (> 0): X has {n}, y {y.shape}")
    if not np.isin(y, (0, 1, 2)).all():
        raise ValueError(
            f"labels must be 0, 1 or 2 (drop unlabelled windows), got "
            f"{sorted(set(np.unique(y).tolist()))}"
        )
    if k == 2:
        y = np.where(y == 2, 0, y)
    counts = np.bincount(y, minlength=k)
    if counts[1] == 0 or counts[0] == 0:
        warnings.warn(
            f"training without positives or negatives ({counts[0]} negatives, "
            f"{counts[1]} positives)",
            RuntimeWarning,
            stacklevel=3,
        )
    return y, counts

"""The extent head: for each timestep of a window, the probability that it lies inside a
micro-movement (pipeline.core.extents turns them into micro spots, onset to offset).

A second small network beside the window classifier (pipeline.learn.lstm): two
bidirectional LSTM layers over the window's (T, F) input and a sigmoid per timestep,
trained with binary cross-entropy on timestep labels (pipeline.core.extents.step_labels).
Bidirectional, because whether a timestep starts a movement shows in the steps after it.
It is a network of its own, not a second output of the classifier, so that the window
scores, and the thresholds chosen on them, are the same with it or without it.

Keras is imported inside the functions, as in pipeline.learn.lstm.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.learn.runtime import PREDICT_BATCH, STEPS_PER_EXECUTION


def build(
    n_timesteps: int, n_features: int, units: int, dropout: float, lr: float, members: int = 1
) -> Any:
    """A compiled extent network: (N, T, F) -> (N, T, members) probabilities, one per member
    of an ensemble (pipeline.learn.lstm.ModelConfig.members). Seed Keras first."""
    import keras

    inp = keras.Input((n_timesteps, n_features))
    outs = []
    for _ in range(members):
        x = inp
        for _ in range(2):
            x = keras.layers.Bidirectional(
                keras.layers.LSTM(units, dropout=dropout, return_sequences=True)
            )(x)
        outs.append(keras.layers.TimeDistributed(keras.layers.Dense(1, activation="sigmoid"))(x))
    out = outs[0] if members == 1 else keras.layers.Concatenate(axis=-1)(outs)
    net = keras.Model(inp, out, name="extent")
    net.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="binary_crossentropy",
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    return net


def check_steps(steps: np.ndarray, n_windows: int, n_timesteps: int) -> np.ndarray:
    """Timestep labels as (N, T) float32: rows of 0 and 1, or rows of -1 for windows whose
    timesteps are not labelled (videos labelled by verdicts); a ValueError when the shape
    or values are wrong."""
    s = np.asarray(steps)
    if s.shape != (n_windows, n_timesteps):
        raise ValueError(
            f"need timestep labels of shape ({n_windows}, {n_timesteps}) (one row per "
            f"window), got {s.shape}"
        )
    unlabelled = (s == -1).all(axis=1)
    if not np.isin(s[~unlabelled], (0, 1)).all():
        raise ValueError("timestep labels must be 0 or 1, or a whole row of -1 (unlabelled)")
    return s.astype(np.float32)


def fit(net: Any, x: np.ndarray, steps: np.ndarray, batch_size: int, epochs: int) -> float:
    """Train ``net`` on windows ``x`` (N, T, F) with labelled timesteps (``steps`` (N, T),
    :func:`check_steps`; unlabelled rows are left out); returns the final loss. Shuffled by
    Keras' seed (set it first)."""
    keep = steps[:, 0] >= 0
    members = net.output_shape[-1]  # each member learns the same labels on its own loss
    target = np.repeat(steps[keep][..., None], members, axis=-1)
    hist = net.fit(
        x[keep], target, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0
    )  # fmt: skip
    return float(hist.history["loss"][-1])


def predict(net: Any, x: np.ndarray) -> np.ndarray:
    """(N, T) float32 probabilities that each timestep lies inside a micro-movement (the
    mean of an ensemble's members)."""
    if len(x) == 0:
        return np.zeros((0, x.shape[1]), np.float32)
    q = net.predict(x, batch_size=PREDICT_BATCH, verbose=0)
    return np.asarray(q, np.float32).mean(axis=-1)

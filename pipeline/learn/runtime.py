"""Keras' runtime settings shared by the networks of pipeline.learn: threads, seeds, batch
sizes. The networks are written in Keras 3 and run on its backend (``KERAS_BACKEND``:
TensorFlow by default, JAX or PyTorch too); what only TensorFlow has is behind a backend
check here. Keras and the backend are imported inside the functions."""

from __future__ import annotations

import warnings

PREDICT_BATCH = 4096
# Batches run per call into the compiled training step: the LSTM is so small that Python
# and dispatch overhead dominate a step; 32 cuts fit time by ~40% with identical results.
STEPS_PER_EXECUTION = 32


def backend() -> str:
    """Keras' backend: "tensorflow", "jax" or "torch"."""
    import keras

    return keras.backend.backend()


def limit_threads(n: int = 1) -> bool:
    """Run TensorFlow ops on ``n`` threads (intra- and inter-op), e.g. one per fold.

    TensorFlow takes thread settings only before its runtime starts (the first op or
    model), so call this first. Safe to call again: returns True when ``n`` threads are in
    effect, False (with a warning) when TensorFlow had already started with another setting.
    Other backends take their threads from the environment (XLA_FLAGS, OMP_NUM_THREADS) at
    import: True for them, nothing done.
    """
    if backend() != "tensorflow":
        return True
    import tensorflow as tf

    threading = tf.config.threading
    if (
        threading.get_intra_op_parallelism_threads(),
        threading.get_inter_op_parallelism_threads(),
    ) == (n, n):
        return True
    try:
        threading.set_intra_op_parallelism_threads(n)
        threading.set_inter_op_parallelism_threads(n)
    except RuntimeError as e:  # "... cannot be modified after initialization"
        warnings.warn(
            f"TensorFlow already started, thread limit {n} not applied: {e}",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return True


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and Keras, and make TensorFlow's ops deterministic."""
    import keras

    keras.utils.set_random_seed(seed)
    if backend() != "tensorflow":
        return
    import tensorflow as tf

    # Same seed, same machine -> same weights. Costs nothing measurable for this tiny LSTM
    # on CPU (2000 windows x 50 epochs: 31 s with, 30 s without); process-wide, like the seed.
    tf.config.experimental.enable_op_determinism()

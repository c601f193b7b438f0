"""Many LOSO folds trained as one computation: the folds' networks stacked.

Training the folds of Leave-One-Subject-Out one after another fits dozens of tiny LSTMs, each
far too small to keep a core (let alone a GPU) busy. Here the folds' weights are stacked on a
leading axis (K folds) and one shuffled batch of every window feeds all of them: fold k gives
the windows of its held-out subject zero weight in its loss, so it never learns from them,
and its class weights are its own. The folds share no parameter, and Adam's update of each
weight depends on that weight's gradients alone, so each fold trains as it would on its own,
save that its batches also carry (weightless) windows of its held-out subject.

After training each fold's weights are copied into an ordinary ``SpotterModel``
(pipeline.learn.lstm): the same networks, saved, loaded and scored as the models trained
fold by fold, and ``model_for`` checks that both compute the same.

The networks are those of pipeline.learn.classifier and pipeline.learn.extent: ``layers``
LSTMs and a softmax over the classes; with ``extent``, two bidirectional LSTMs and a sigmoid
per timestep. Both train in one Keras model with two outputs (no weight in common, so as if
apart). Written with ``keras.ops`` only: the same code trains on TensorFlow, JAX or PyTorch
(``KERAS_BACKEND``), on a CPU or a GPU. Keras is imported on first use, as elsewhere in
pipeline.learn.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.learn import extent
from pipeline.learn.layout import FeatureLayout
from pipeline.learn.lstm import ModelConfig, SpotterModel, training_windows
from pipeline.learn.runtime import PREDICT_BATCH, STEPS_PER_EXECUTION, backend, seed_everything


@dataclass(frozen=True)
class FoldPlan:
    """Which windows each fold trains on: ``train`` (N, K) bool, one column per fold (a
    fold without a held-out subject, e.g. the model on every subject, trains on all)."""

    names: tuple[str | None, ...]
    train: np.ndarray

    @classmethod
    def loso(cls, subjects: np.ndarray, labelled: np.ndarray, folds: Sequence[str | None]):
        """One fold per name in ``folds``: the labelled windows of every other subject
        (None: of every subject)."""
        subjects = np.asarray(subjects)
        cols = [labelled & (subjects != f) if f is not None else labelled.copy() for f in folds]
        return cls(tuple(folds), np.stack(cols, axis=1))


def fold_weights(y: np.ndarray, train: np.ndarray, config: ModelConfig) -> tuple[np.ndarray, list]:
    """(N, K) sample weights of the classifier's loss, 0 outside a fold's training windows,
    and each fold's class weights as SpotterModel.fit would choose them on its windows."""
    k = config.classes
    weights = np.zeros(train.shape, np.float32)
    chosen = []
    for j in range(train.shape[1]):
        counts = np.bincount(y[train[:, j]], minlength=k)
        cw = {c: 1.0 for c in range(k)}
        if config.class_weight == "balanced":
            n = int(counts.sum())
            cw = {c: n / (k * int(m)) for c, m in enumerate(counts) if m}
        chosen.append(cw)
        per_class = np.array([cw.get(c, 0.0) for c in range(k)], np.float32)
        weights[:, j] = np.where(train[:, j], per_class[np.clip(y, 0, k - 1)], 0.0)
    return weights, chosen


def _keras():
    import keras

    return keras


def _glorot(rng: np.random.Generator, k: int, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (k, fan_in, fan_out)).astype(np.float32)


def _orthogonal(rng: np.random.Generator, k: int, units: int) -> np.ndarray:
    """(k, units, 4 units): per fold, orthonormal rows (Keras' recurrent initialiser)."""
    out = np.empty((k, units, 4 * units), np.float32)
    for j in range(k):
        q, r = np.linalg.qr(rng.standard_normal((4 * units, units)))
        out[j] = (q * np.sign(np.diag(r))).T
    return out


def _lstm_bias(k: int, units: int) -> np.ndarray:
    bias = np.zeros((k, 4 * units), np.float32)
    bias[:, units : 2 * units] = 1.0  # Keras' unit_forget_bias
    return bias


MAX_UNROLL = 64
"""The longest window (timesteps) whose recurrence is unrolled rather than scanned."""


def _unrolled(timesteps: int | None) -> bool:
    """Whether the recurrence over ``timesteps`` is unrolled: on TensorFlow, up to
    MAX_UNROLL. TensorFlow's scan (a while loop over TensorArrays) costs half of a stack's
    training step on CPU, and unrolled it trains 2x faster; JAX compiles its scan into one
    loop, and unrolled it trains 2-4x slower (BENCHMARKS.md, "The stacked recurrence
    unrolled")."""
    return backend() == "tensorflow" and timesteps is not None and timesteps <= MAX_UNROLL


def layer_classes():
    """The stacked layers (defined on first use: Keras is imported lazily)."""
    if _LAYERS:
        return _LAYERS["lstm"], _LAYERS["dense"]
    keras = _keras()
    ops = keras.ops

    class StackedLSTM(keras.layers.Layer):
        """K independent LSTMs (Keras' gates and initialisers) over (K, B, T, F) inputs, or
        over (B, T, F) shared by all; ``reverse`` runs backwards (outputs in time order).
        The inputs' part of every timestep's gates is one product; the recurrence a scan,
        or on TensorFlow unrolled (``_unrolled``)."""

        def __init__(self, folds, units, dropout, sequences, reverse, rng, **kw):
            super().__init__(**kw)
            self.folds, self.units, self.dropout = folds, units, dropout
            self.sequences, self.reverse, self.rng = sequences, reverse, rng
            self.seed = keras.random.SeedGenerator(int(rng.integers(1 << 30)))

        def build(self, shape):
            k, u, f = self.folds, self.units, shape[-1]
            init = (_glorot(self.rng, k, f, 4 * u), _orthogonal(self.rng, k, u), _lstm_bias(k, u))
            self.kernel, self.recurrent, self.bias = (
                self.add_weight(shape=v.shape, initializer=keras.initializers.Constant(v),
                                name=n)
                for v, n in zip(init, ("kernel", "recurrent_kernel", "bias"), strict=True)
            )  # fmt: skip

        def call(self, x, training=False):
            shared = len(x.shape) == 3
            if training and self.dropout > 0:
                b, f = ops.shape(x)[-3], x.shape[-1]
                keep = keras.random.dropout(
                    ops.ones((self.folds, b, 1, f)), self.dropout, seed=self.seed
                )
                x = (x[None] if shared else x) * keep
                shared = False
            spec = "btf,kfg->kbtg" if shared else "kbtf,kfg->kbtg"
            z = ops.einsum(spec, x, self.kernel) + self.bias[:, None, None, :]
            h = ops.zeros((self.folds, ops.shape(z)[1], self.units), z.dtype)

            def step(carry, zt):
                h, c = carry
                i, f_, cand, o = ops.split(zt + ops.matmul(h, self.recurrent), 4, axis=-1)
                c = ops.sigmoid(f_) * c + ops.sigmoid(i) * ops.tanh(cand)
                h = ops.sigmoid(o) * ops.tanh(c)
                return (h, c), (h, c)  # TensorFlow's scan wants outputs shaped as the carry

            if not _unrolled(z.shape[2]):
                (h, _), (hs, _) = ops.scan(
                    step, (h, h), ops.moveaxis(z, 2, 0), reverse=self.reverse
                )
                return ops.moveaxis(hs, 0, 2) if self.sequences else h
            carry, hs, zs = (h, h), [], ops.unstack(z, axis=2)  # unstack: one gradient op
            for zt in zs[::-1] if self.reverse else zs:
                carry, _ = step(carry, zt)
                hs.append(carry[0])
            if not self.sequences:
                return carry[0]
            return ops.stack(hs[::-1] if self.reverse else hs, axis=2)

    class StackedDense(keras.layers.Layer):
        """K independent dense layers over the last axis of (K, B, [T,] F)."""

        def __init__(self, folds, units, rng, **kw):
            super().__init__(**kw)
            self.folds, self.units, self.rng = folds, units, rng

        def build(self, shape):
            w = _glorot(self.rng, self.folds, shape[-1], self.units)
            self.w = self.add_weight(shape=w.shape, initializer=keras.initializers.Constant(w))
            self.b = self.add_weight(shape=(self.folds, self.units), initializer="zeros")

        def call(self, x):
            if len(x.shape) == 3:
                return ops.einsum("kbf,kfg->kbg", x, self.w) + self.b[:, None, :]
            return ops.einsum("kbtf,kfg->kbtg", x, self.w) + self.b[:, None, None, :]

    _LAYERS.update(lstm=StackedLSTM, dense=StackedDense)
    return StackedLSTM, StackedDense


_LAYERS: dict[str, Any] = {}


def _class_loss(target, probs):
    """Per window, the folds' weighted cross-entropy: ``target`` (B, K, 2) holds the class
    and the weight of each fold, ``probs`` (B, K, C)."""
    ops = _keras().ops
    label, weight = ops.cast(target[..., 0], "int32"), target[..., 1]
    picked = ops.sum(probs * ops.one_hot(label, ops.shape(probs)[-1]), axis=-1)
    return ops.mean(-weight * ops.log(ops.clip(picked, 1e-7, 1.0)), axis=-1)


def _steps_loss(target, probs):
    """Per window, the folds' weighted binary cross-entropy over its timesteps: ``target``
    (B, K, T + 1) holds the timestep labels then the fold's weight, ``probs`` (B, K, T)."""
    ops = _keras().ops
    steps, weight = target[..., :-1], target[..., -1]
    p = ops.clip(probs, 1e-7, 1.0 - 1e-7)
    bce = -(steps * ops.log(p) + (1.0 - steps) * ops.log(1.0 - p))
    return ops.mean(weight * ops.mean(bce, axis=-1), axis=-1)


class StackedNetworks:
    """The classifier (and extent head) of K folds as one compiled Keras model."""

    def __init__(self, layout: FeatureLayout, config: ModelConfig, folds: int) -> None:
        keras = _keras()
        ops = keras.ops
        lstm, dense = layer_classes()
        seed_everything(config.seed)
        rng = np.random.default_rng(config.seed)
        inp = keras.Input((layout.n_timesteps, layout.n_features))
        self.lstms, x = [], inp
        for i in range(config.layers):
            last = i == config.layers - 1
            self.lstms.append(lstm(folds, config.units, config.dropout, not last, False, rng))
            x = self.lstms[-1](x)
        self.dense = dense(folds, config.classes, rng)
        outputs = {"classes": ops.transpose(ops.softmax(self.dense(x), axis=-1), (1, 0, 2))}
        self.bilstms, self.steps_dense, e = [], None, inp
        if config.extent:
            for _ in range(2):
                pair = [lstm(folds, config.units, config.dropout, True, r, rng) for r in (0, 1)]
                self.bilstms.append(pair)
                e = ops.concatenate([pair[0](e), pair[1](e)], axis=-1)
            self.steps_dense = dense(folds, 1, rng)
            q = ops.sigmoid(self.steps_dense(e))[..., 0]
            outputs["steps"] = ops.transpose(q, (1, 0, 2))
        self.net = keras.Model(inp, outputs, name="stacked_folds")
        losses = {"classes": _class_loss, "steps": _steps_loss}
        self.net.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss={k: losses[k] for k in outputs},
            steps_per_execution=STEPS_PER_EXECUTION,
        )
        self.layout, self.config, self.folds = layout, config, folds

    def fold_weights(self, j: int) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Fold ``j``'s weights in the order of the classifier's and the extent head's
        ``set_weights`` (None without an extent head)."""

        to_numpy = _keras().ops.convert_to_numpy

        def take(layer):
            return [to_numpy(w)[j] for w in layer.weights]

        cls_w = [w for layer in (*self.lstms, self.dense) for w in take(layer)]
        if self.steps_dense is None:
            return cls_w, None
        ext_w = [w for pair in self.bilstms for layer in pair for w in take(layer)]
        return cls_w, ext_w + take(self.steps_dense)

    def model_for(self, j: int) -> SpotterModel:
        """Fold ``j`` as an ordinary SpotterModel: its weights in the networks of
        pipeline.learn.classifier and pipeline.learn.extent."""
        model = SpotterModel.build(self.layout, self.config)
        cls_w, ext_w = self.fold_weights(j)
        model.keras_model.set_weights(cls_w)
        if model.extent_model is not None:
            model.extent_model.set_weights(ext_w)
        return model

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every fold's outputs: "classes" (N, K, C), "steps" (N, K, T)."""
        out = self.net.predict(np.asarray(x, np.float32), batch_size=PREDICT_BATCH, verbose=0)
        return {k: np.asarray(v, np.float32) for k, v in out.items()}


def fit_folds(
    layout: FeatureLayout,
    config: ModelConfig,
    x: np.ndarray,
    y: np.ndarray,
    steps: np.ndarray | None,
    plan: FoldPlan,
    fingerprint: str = "",
    verbose: int = 0,
) -> list[SpotterModel]:
    """Train every fold of ``plan`` at once; one SpotterModel per fold, in ``plan``'s order.

    ``y`` (N,) classes (-1: unlabelled, trained on by no fold), ``steps`` (N, T) timestep
    labels (rows of -1: unlabelled) when ``config.extent``. Each model's ``training``
    records what SpotterModel.fit records, its ``data_fingerprint`` being
    ``<fingerprint>:<fold>``.
    """
    if config.members != 1:
        raise ValueError("stacked folds train single networks (members=1); train fold by fold")
    x = np.asarray(x, np.float32)
    y = np.asarray(y).astype(np.int64)
    if config.classes == 2:
        y = np.where(y == 2, 0, y)
    weights, chosen = fold_weights(y, plan.train, config)
    nets = StackedNetworks(layout, config, len(plan.names))
    targets, has_steps = _targets(config, y, steps, weights, plan.train, layout.n_timesteps)
    x, _, _, passes = training_windows(config, layout, x, None, None)
    if len(x) > len(y):  # mirror images, after the windows: the same targets
        targets = {k: np.concatenate([v, v]) for k, v in targets.items()}
    seed_everything(config.seed)
    started = time.perf_counter()
    hist = nets.net.fit(
        x, targets, batch_size=config.batch_size, epochs=passes, shuffle=True, verbose=verbose
    )
    seconds = (time.perf_counter() - started) / len(plan.names)
    final_loss = float(hist.history["loss"][-1])
    models = []
    for j, name in enumerate(plan.names):
        model = nets.model_for(j)
        if not has_steps[j]:
            model.extent_model = None  # as SpotterModel.fit: no timestep labels, no head
        counts = np.bincount(y[plan.train[:, j]], minlength=3)
        model.training = {
            "n_windows": int(plan.train[:, j].sum()),
            "n_positives": int(counts[1]),
            "n_macro": int(counts[2]) if config.classes == 3 else 0,
            "epochs": config.epochs,
            "seconds": round(seconds, 3),
            "final_loss": final_loss,
            "class_weights": {str(c): v for c, v in chosen[j].items()},
            "data_fingerprint": f"{fingerprint}:{name or 'all'}",
            "stacked_folds": len(plan.names),
        }
        models.append(model)
    return models


def _targets(
    config: ModelConfig,
    y: np.ndarray,
    steps: np.ndarray | None,
    weights: np.ndarray,
    train: np.ndarray,
    n_timesteps: int,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The packed targets of the two losses, and which folds have timestep labels."""
    n, k = weights.shape
    out = {"classes": np.stack([np.broadcast_to(np.clip(y, 0, None)[:, None], (n, k)), weights],
                               axis=-1).astype(np.float32)}  # fmt: skip
    has_steps = np.zeros(k, bool)
    if config.extent:
        if steps is None:
            raise ValueError("an extent head needs timestep labels, steps=(N, T)")
        steps = extent.check_steps(steps, n, n_timesteps)
        labelled = steps[:, 0] >= 0
        w = (train & labelled[:, None]).astype(np.float32)
        has_steps = w.any(axis=0)
        packed = np.empty((n, k, steps.shape[1] + 1), np.float32)
        packed[..., :-1] = np.clip(steps, 0, 1)[:, None, :]
        packed[..., -1] = w
        out["steps"] = packed
    return out, has_steps

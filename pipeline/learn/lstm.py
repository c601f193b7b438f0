"""The paper's spotter (III-C): a 2-layer LSTM over a window's per-timestep HOOF features.

Its input is a window's (T, F) array as ``pipeline.learn.layout`` lays it out. The
network (Input(T, F) -> LSTM(units, sequences) -> LSTM(units) -> Dense(classes, softmax),
Adam 1e-3, 50 epochs) says whether the window holds a micro-movement (class 1) and, with
three classes (the default), a macro-expression (class 2; pipeline.core.labels); its score
is the probability of class 1, its macro score that of class 2. A model may carry an extent
head too (pipeline.learn.extent): timestep scores whose runs are its micro spots.

A model records the ``FeatureLayout`` it was trained on and refuses features with
another one, raising ``LayoutMismatch``. TensorFlow is imported lazily, inside the
functions that need it, so importing this module (and the commands that do) stays fast.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.core import configs
from pipeline.learn import classifier, extent
from pipeline.learn.layout import (
    FeatureLayout,
    LayoutMismatch,
    mirror_problem,
    window_arrays,
    with_mirrors,
)
from pipeline.learn.runtime import STEPS_PER_EXECUTION, seed_everything
from pipeline.learn.runtime import limit_threads as limit_threads  # where callers find it
from pipeline.vision.config import FeatureConfig

CLASS_WEIGHTS = ("balanced", "none")
#: The spotting threshold of a model that has none of its own (saved before models learnt
#: theirs, or trained outside ``mespot train``).
DEFAULT_THRESHOLD = 0.5
#: Epochs a fine-tune on new labels (e.g. annotators' verdicts) runs from a trained model.
FINETUNE_EPOCHS = 10


#: ModelConfig settings added after models were first saved, and the value a model saved
#: before them has.
_ADDED_SETTINGS: dict[str, Any] = {"dropout": 0.0, "extent": False, "members": 1, "mirror": False}
_ADDED_LAYOUT: dict[str, Any] = {"cell_norm": "none"}  # the same for FeatureLayout fields


@dataclass(frozen=True)
class ModelConfig:
    """Training settings: the paper's 2-layer LSTM, wider (32 units against its 12) and with
    dropout on each layer's inputs, plus balanced class weights.

    ``units=12, dropout=0.0, classes=2`` is the paper's network. Width and dropout were
    chosen on faces left out of training (BENCHMARKS.md): the paper's overfits the training
    faces' own flow noise. ``dropout`` zeroes that fraction of each LSTM layer's inputs in
    training (not in prediction).

    ``class_weight``: "balanced" weights class c by n / (2 * n_c), so that the rare positive
    windows (~1% on SAMM) count as much as the negatives in the loss; "none" is the paper's
    plain setup. ``with_magnitude`` adds the per-region flow magnitudes to the HOOFs.
    ``classes``: 3 learns none / micro / macro (macro-expressions spotted as their own
    class); 2 is the paper's none / micro, where macro windows are negatives.
    ``extent``: train the extent head too (pipeline.learn.extent, as many units per
    direction), whose timestep scores spot micro-movements from onset to offset
    (pipeline.core.extents); ``fit`` then needs timestep labels.
    ``members``: an ensemble of that many networks, each drawn from its own initial weights
    and trained on its own loss in one Keras model (so in one pass per batch); a window's
    probabilities, and the extent head's timestep scores, are the members' mean.
    ``mirror``: train on every window and on its face's mirror image
    (pipeline.learn.layout.mirrored) for half the epochs (rounded up): as many steps, twice
    the faces (on by default: on faces it never saw a model ranks and spots better,
    BENCHMARKS.md, "Mirrored faces"; models saved before the setting read as off). A
    layout without a mirror image (a one-sided set of regions) trains without, with a
    warning.
    """

    units: int = 32
    layers: int = 2
    dropout: float = 0.3
    epochs: int = 50
    batch_size: int = 64
    learning_rate: float = 1e-3
    class_weight: str = "balanced"
    with_magnitude: bool = True
    seed: int = 0
    classes: int = 3
    extent: bool = True
    members: int = 1
    mirror: bool = True

    def __post_init__(self) -> None:
        for name in ("units", "layers", "epochs", "batch_size", "members"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.class_weight not in CLASS_WEIGHTS:
            raise ValueError(
                f"class_weight must be one of {CLASS_WEIGHTS}, got {self.class_weight!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.classes not in (2, 3):
            raise ValueError(f"classes must be 2 (none, micro) or 3 (+ macro), got {self.classes}")

    def to_dict(self) -> dict[str, Any]:
        return configs.to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "") -> ModelConfig:
        # Models saved before the macro class had two outputs and no "classes" key; those
        # saved before dropout had none.
        d = {"classes": 2, **_ADDED_SETTINGS, **d} if isinstance(d, Mapping) else d
        return configs.from_dict(cls, d, source=source)


def training_windows(
    config: ModelConfig, layout: FeatureLayout, x: np.ndarray, y: Any, steps: Any,
    epochs: int | None = None,
) -> tuple[np.ndarray, Any, Any, int]:  # fmt: skip
    """What a network of ``config`` trains on, and for how many epochs (``epochs``, or
    ``config.epochs``): (X, y, steps, epochs), with the windows' mirror images added under
    ``config.mirror`` (and half the epochs, rounded up). A layout without a mirror image
    keeps its windows, with a warning. ``y`` or ``steps`` may be None."""
    epochs = config.epochs if epochs is None else epochs
    if config.mirror and (problem := mirror_problem(layout)):
        warnings.warn(f"trained without mirror images: {problem}", RuntimeWarning, 3)
    elif config.mirror:  # twice the windows, half the epochs: as many steps
        return (*with_mirrors(x, layout, y, steps), -(-epochs // 2))
    return x, y, steps, epochs


def _without_added(d: dict[str, Any], added: Mapping[str, Any]) -> dict[str, Any]:
    """``d`` less the ``added`` settings that hold the value they had before they existed."""
    return {k: v for k, v in d.items() if k not in added or added[k] != v}


def _digest(*blobs: bytes) -> str:
    h = hashlib.sha256()
    for blob in blobs:
        h.update(len(blob).to_bytes(8, "little"))
        h.update(blob)
    return h.hexdigest()[:12]


class SpotterModel:
    """A trained (or to be trained) LSTM with the layout and config it belongs to.

    ``model_id`` = sha256(config, layout, training data fingerprint)[:12]: the same recipe
    on the same data gives the same id (and, by seed, the same weights on one machine and
    TensorFlow version). The data fingerprint is a hash of X and y unless ``fit`` is given
    one (e.g. a fold name plus the feature tables' fingerprints). Untrained: data "".
    """

    def __init__(
        self,
        keras_model: Any,
        layout: FeatureLayout,
        config: ModelConfig,
        training: dict[str, Any] | None = None,
        spotting: dict[str, Any] | None = None,
        extent_model: Any = None,
    ) -> None:
        self.keras_model = keras_model
        self.extent_model = extent_model  # the extent head's network (config.extent)
        self.layout = layout
        self.config = config
        self.training: dict[str, Any] = dict(training or {})
        # How to spot with it, learnt after training (not part of its id): "threshold" (micro
        # spots) and "window_threshold", chosen by ``mespot train`` on the out-of-fold
        # scores of its training subjects (cluster.run.spot.chosen_threshold).
        self.spotting: dict[str, Any] = dict(spotting or {})

    @property
    def threshold(self) -> float:
        """The micro score at which this model spots: its own, chosen on its training
        subjects' out-of-fold scores, or DEFAULT_THRESHOLD for a model without one."""
        return float(self.spotting.get("threshold", DEFAULT_THRESHOLD))

    @property
    def window_threshold(self) -> float:
        """The window-score threshold (macro runs; micro spots when spotting window-long):
        chosen beside ``threshold``, the same one for a model spotting on windows."""
        return float(self.spotting.get("window_threshold", self.threshold))

    @property
    def model_id(self) -> str:
        # A setting at the value it had before it existed is left out, so that models saved
        # before it keep their ids (and still load).
        recipe = json.dumps(
            {
                "config": _without_added(self.config.to_dict(), _ADDED_SETTINGS),
                "layout": _without_added(self.layout.to_dict(), _ADDED_LAYOUT),
            },
            sort_keys=True,
        )
        return _digest(recipe.encode(), self.training.get("data_fingerprint", "").encode())

    @classmethod
    def build(cls, layout: FeatureLayout, config: ModelConfig | None = None) -> SpotterModel:
        """A fresh, compiled network for ``layout``; weights drawn from ``config.seed``."""
        import keras

        config = config or ModelConfig(with_magnitude=layout.with_magnitude)
        if config.with_magnitude != layout.with_magnitude:
            raise LayoutMismatch(
                f"config with_magnitude={config.with_magnitude} but layout {layout.describe()}"
            )
        seed_everything(config.seed)
        net = classifier.build(layout.n_timesteps, layout.n_features, config)
        net.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss="sparse_categorical_crossentropy",
            steps_per_execution=STEPS_PER_EXECUTION,
        )
        head = None
        if config.extent:
            head = extent.build(
                layout.n_timesteps, layout.n_features, config.units, config.dropout,
                config.learning_rate, config.members,
            )  # fmt: skip
        return cls(net, layout, config, extent_model=head)

    def _check_x(self, x: np.ndarray) -> np.ndarray:
        want = (self.layout.n_timesteps, self.layout.n_features)
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3 or x.shape[1:] != want:
            raise LayoutMismatch(
                f"model {self.model_id} expects X (N, {want[0]}, {want[1]}) "
                f"[{self.layout.describe()}], got {x.shape}"
            )
        return x

    def _checked_steps(self, steps: np.ndarray | None, n: int) -> np.ndarray | None:
        """``fit``'s timestep labels, checked; the extent head is dropped (with a warning)
        when no window has any."""
        if self.extent_model is None:
            return steps
        if steps is None:
            raise ValueError(
                "this model has an extent head (ModelConfig.extent): fit needs timestep "
                "labels, steps=(N, T)"
            )
        steps = extent.check_steps(steps, n, self.layout.n_timesteps)
        if (steps < 0).all():  # e.g. a fold whose labels all come from verdicts
            warnings.warn(
                "no window has timestep labels (they come from ground truth): trained "
                "without the extent head, its micro spots stay window-long",
                RuntimeWarning,
                stacklevel=3,
            )
            self.extent_model = None
        return steps

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        verbose: int = 0,
        data_fingerprint: str | None = None,
        steps: np.ndarray | None = None,
        epochs: int | None = None,
    ) -> dict[str, list[float]]:
        """Train on X (N, T, F) float32 and y (N,) classes (0 none, 1 micro, 2 macro);
        returns Keras' history dict. A two-class model takes macro windows as negatives.
        A model with an extent head needs ``steps`` (N, T): 1 where a timestep lies in a
        micro-movement (pipeline.core.extents.step_labels), else 0.

        Windows without a label (y == -1) must be dropped by the caller. A missing class is
        allowed (a fold may lack positives) but warned about when it is micro. Training
        goes on from the network's weights: a second call fine-tunes (``epochs``: how many
        this time; default ``config.epochs``).
        """
        x = self._check_x(x)
        steps = self._checked_steps(steps, len(x))
        y, counts = classifier.labels(y, len(x), self.config.classes)
        k = self.config.classes
        weights = None
        if self.config.class_weight == "balanced":
            weights = {c: len(y) / (k * int(n)) for c, n in enumerate(counts) if n}
        if data_fingerprint is None:
            blobs = [x.tobytes(), y.astype(np.int8).tobytes()]
            data_fingerprint = _digest(*blobs, *([] if steps is None else [steps.tobytes()]))
        n_windows = len(y)
        x, y, steps, passes = training_windows(self.config, self.layout, x, y, steps, epochs)
        targets, class_weight, sample_weight = classifier.targets(y, weights, self.config.members)
        seed_everything(self.config.seed)  # the shuffle order
        started = time.perf_counter()
        hist = self.keras_model.fit(
            x,
            targets,
            batch_size=self.config.batch_size,
            epochs=passes,
            class_weight=class_weight,
            sample_weight=sample_weight,
            shuffle=True,
            verbose=verbose,
        )
        history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        if self.extent_model is not None:
            seed_everything(self.config.seed)
            bs = self.config.batch_size
            history["extent_loss"] = [extent.fit(self.extent_model, x, steps, bs, passes)]
        self.training = {
            "n_windows": n_windows,
            "n_positives": int(counts[1]),
            "n_macro": int(counts[2]) if k == 3 else 0,
            "epochs": self.config.epochs if epochs is None else epochs,
            "seconds": round(time.perf_counter() - started, 3),
            "final_loss": history["loss"][-1],
            "class_weights": {str(k): v for k, v in (weights or {}).items()},
            "data_fingerprint": data_fingerprint,
        }
        return history

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probability of a micro-movement per window: X (N, T, F) -> (N,) float32."""
        return self.predict_classes(x)[:, 1]

    def predict_classes(self, x: np.ndarray) -> np.ndarray:
        """Probability of each class per window: X (N, T, F) -> (N, classes) float32."""
        x = self._check_x(x)
        if len(x) == 0:
            return np.zeros((0, self.config.classes), np.float32)
        return classifier.predict(self.keras_model, x)

    def predict_steps(self, x: np.ndarray) -> np.ndarray | None:
        """Per timestep, the probability that it lies inside a micro-movement: X (N, T, F)
        -> (N, T) float32; None for a model without an extent head."""
        if self.extent_model is None:
            return None
        return extent.predict(self.extent_model, self._check_x(x))

    def predict_kinds(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(micro, macro) probabilities per window, each (N,) float32, from one pass; macro
        is None for a model of two classes (it has no macro class)."""
        probs = self.predict_classes(x)
        return probs[:, 1], (probs[:, 2] if self.config.classes == 3 else None)

    def features(
        self, table: pa.Table, feature_config: FeatureConfig
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``window_arrays`` of a table after checking its layout against the model's."""
        layout = FeatureLayout.from_table(
            table, feature_config, self.layout.with_magnitude, self.layout.cell_norm
        )
        self.layout.check(layout, where=f"model {self.model_id}")
        return window_arrays(table, layout)

    def save(self, directory: Path) -> None:
        """Write ``model.keras`` (weights), ``extent.keras`` (the extent head, if any) and
        ``model.json`` (config, layout, id, training)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.keras_model.save(directory / "model.keras")
        if self.extent_model is not None:
            self.extent_model.save(directory / "extent.keras")
        info = {
            "model_id": self.model_id,
            "config": self.config.to_dict(),
            "layout": self.layout.to_dict(),
            "training": self.training,
        }
        if self.spotting:
            info["spotting"] = self.spotting
        (directory / "model.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: Path) -> SpotterModel:
        import keras

        directory = Path(directory)
        where = str(directory / "model.json")
        info = json.loads((directory / "model.json").read_text())
        layout = FeatureLayout.from_dict(info["layout"], source=f"{where} layout")
        config = ModelConfig.from_dict(info["config"], source=f"{where} config")
        net = keras.models.load_model(directory / "model.keras")
        has_head = config.extent and (directory / "extent.keras").exists()  # see fit
        head = keras.models.load_model(directory / "extent.keras") if has_head else None
        model = cls(net, layout, config, info.get("training"), info.get("spotting"), head)
        if model.model_id != info["model_id"]:
            raise ValueError(
                f"{directory}: model.json says id {info['model_id']}, "
                f"its contents give {model.model_id}"
            )
        return model

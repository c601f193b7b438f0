"""The model shipped inside the package: spots on day one, with no training step.

Trained on synthetic faces (``mespot synth --realistic``) by
``tests/benchmarks/bench_spotting.py --export pipeline/assets/model``, which records how
and what it scored on held-out synthetic subjects in ``BUNDLE.json`` beside it. Its
feature layout is the default FeatureConfig's (a test fails when they drift apart; rerun
that command to renew it).
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from pipeline.learn.lstm import SpotterModel


def bundled_model_dir() -> Path:
    """The folder of the bundled model (``model.json``, the Keras files, ``BUNDLE.json``)."""
    return Path(str(files("pipeline") / "assets" / "model"))


def bundle_info() -> dict[str, Any]:
    """``BUNDLE.json``: how the bundled model was trained and its held-out figures."""
    return json.loads((bundled_model_dir() / "BUNDLE.json").read_text())


def bundled_model() -> SpotterModel:
    """The bundled model, loaded (with its spotting thresholds)."""
    folder = bundled_model_dir()
    if not (folder / "model.json").exists():
        raise FileNotFoundError(
            f"{folder}: the bundled model is missing from this installation (reinstall "
            "mespot, or give a model of your own with --model)"
        )
    return SpotterModel.load(folder)

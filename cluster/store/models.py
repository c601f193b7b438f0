"""Models in a store: which model ids it holds, saving a trained model, loading one back.

A model folder (``models/<id>/fold=<subject>/`` or ``models/<id>/all/``) holds
``model.keras`` and ``model.json`` (pipeline.learn.lstm.SpotterModel.save). Its id names
its partition in ``predictions`` and ``intervals`` (cluster.store.paths).
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from pathlib import Path

from cluster.store import paths
from cluster.store.store import Store
from pipeline.learn.lstm import SpotterModel

MODEL_FILES = ("model.json", "model.keras")
#: Saved beside them when the model has an extent head (pipeline.learn.lstm.SpotterModel.save).
OPTIONAL_FILES = ("extent.keras",)


def model_ids(store: Store, table: str) -> list[str]:
    """The model ids with rows in ``table`` (``predictions`` or ``intervals``), sorted."""
    return sorted({paths.model_of(p) for p in store.find(table)})


def trained_model_id(store: Store) -> str:
    """The store's only model with LOSO predictions (the baseline aside)."""
    ids = [m for m in model_ids(store, paths.PREDICTIONS) if m != paths.BASELINE_ID]
    if not ids:
        raise FileNotFoundError(
            f"store {store.uri or store.root} has no LOSO predictions: run `mespot train`"
        )
    if len(ids) > 1:
        raise ValueError(f"store holds several models {ids}: choose one with --model-id")
    return ids[0]


def intervals_model_id(store: Store, model_id: str | None = None) -> str:
    """``model_id`` if it has spotted intervals, else the store's only non-baseline one.

    (The baseline's intervals are chosen only by name, or when they are all there is.)
    """
    found = model_ids(store, paths.INTERVALS)
    where = store.uri or store.root
    if model_id is not None:
        if model_id not in found:
            raise FileNotFoundError(
                f"store {where} has no intervals of model {model_id!r} (it has {found or 'none'})"
            )
        return model_id
    ids = [m for m in found if m != paths.BASELINE_ID] or found
    if not ids:
        raise FileNotFoundError(
            f"store {where} has no spotted intervals: run `mespot spot` or `mespot evaluate`"
        )
    if len(ids) > 1:
        raise ValueError(
            f"store {where} holds intervals of several models {ids}: choose one with --model-id"
        )
    return ids[0]


def run_model_id(model: SpotterModel) -> str:
    """The id a model's predictions and intervals go under: the training run's id that
    ``mespot train`` printed (``lstm-...``; ``lstm-...-fold-<subject>`` for a LOSO fold's
    model), else, for a model not trained by ``mespot train``, its own recipe id."""
    run, sep, fold = str(model.training.get("data_fingerprint", "")).rpartition(":")
    if not sep or not run.startswith("lstm-"):
        return model.model_id
    return run if fold == "all" else f"{run}-fold-{fold}"


def pack_model(model: SpotterModel) -> bytes:
    """A saved model as one tar.gz archive (what a worker sends back to the driver)."""
    with tempfile.TemporaryDirectory() as d:
        model.save(Path(d))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for p in sorted(Path(d).iterdir()):
                tar.add(p, arcname=p.name)
    return buf.getvalue()


def unpack_model(archive: bytes, store: Store, *parts: str) -> None:
    """Write a :func:`pack_model` archive's files into the store folder ``parts``."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            data = tar.extractfile(member).read()
            store.put_atomic(data, *parts, member.name)


def saved_folds(store: Store, model_id: str) -> list[str]:
    """The subjects of ``model_id``'s saved LOSO fold models in ``store``, sorted."""
    folder = paths.model_folder(model_id, None)[:-1]
    if not store.exists(*folder):
        return []
    names = (p.rstrip("/").rsplit("/", 1)[-1] for p in store.fs.ls(store.path(*folder)))
    return sorted(n.removeprefix("fold=") for n in names if n.startswith("fold="))


def saved_archive(store: Store, model_id: str, fold: str | None) -> bytes:
    """``model_id``'s saved model of ``fold`` (None: the one trained on every subject) as
    a :func:`pack_model` archive, to send to a worker (:func:`archive_model`)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in _model_files(store, *paths.model_folder(model_id, fold)).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def archive_model(archive: bytes) -> SpotterModel:
    """A :func:`pack_model` or :func:`saved_archive` archive loaded into memory."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        files = {  # flat files only, whatever the archive says
            Path(m.name).name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()
        }
    return _load_files(files, "archive")


def _model_files(store: Store, *parts: str) -> dict[str, bytes]:
    """The files of the saved model in folder ``parts`` of ``store``, by name: MODEL_FILES,
    and OPTIONAL_FILES where saved (without extent.keras a model would spot window-long)."""
    for name in MODEL_FILES:
        if not store.exists(*parts, name):
            raise FileNotFoundError(f"{store.path(*parts, name)}: missing from the model folder")
    names = [*MODEL_FILES, *(n for n in OPTIONAL_FILES if store.exists(*parts, n))]
    return {n: store.fs.cat_file(store.path(*parts, n)) for n in names}


def _load_files(files: dict[str, bytes], where: str) -> SpotterModel:
    """A model from its files (:func:`_model_files`); ``where`` names it in errors."""
    with tempfile.TemporaryDirectory() as d:
        for name, data in files.items():
            (Path(d) / name).write_bytes(data)
        try:
            return SpotterModel.load(Path(d))
        except (ValueError, OSError, KeyError) as e:  # Keras says "File not found: /tmp/..."
            raise ValueError(
                f"model {where} cannot be loaded (model.keras or model.json damaged?): "
                f"{str(e).replace(d, where)}"
            ) from e


def _record(store: Store, model_id: str, key: str, value: dict) -> str:
    """Set ``key`` in the ``model.json`` of ``model_id``'s model trained on every subject."""
    parts = [*paths.model_folder(model_id, None), "model.json"]
    info = json.loads(store.read_text(*parts))
    info[key] = value
    return store.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", *parts)


def record_spotting(store: Store, model_id: str, spotting: dict) -> str:
    """Add ``spotting`` (e.g. the threshold chosen on the folds) to the ``model.json`` of
    ``model_id``'s model trained on every subject; returns the file's path. It is not part
    of the model's id, so the model loads as before, now with its own threshold."""
    return _record(store, model_id, "spotting", spotting)


def record_verdicts(store: Store, model_id: str, verdicts: dict) -> str:
    """Add what the model learned from annotators' verdicts (``{"verdicts": n,
    "positive_windows": p, "negative_windows": q}``) to its ``model.json``, as
    :func:`record_spotting` does: the review page says it."""
    return _record(store, model_id, "verdicts", verdicts)


def learned_verdicts(store: Store, model_id: str) -> int | None:
    """How many verdicts ``model_id``'s model learned from: 0 when trained without them;
    None when the store does not hold the model."""
    parts = [*paths.model_folder(model_id, None), "model.json"]
    if not store.exists(*parts):
        return None
    return int(json.loads(store.read_text(*parts)).get("verdicts", {}).get("verdicts", 0))


def load_model(uri: str) -> SpotterModel:
    """A saved model folder (local path or fsspec URI) loaded into memory."""
    src = Store.open(uri)
    if not src.exists("model.json"):
        raise FileNotFoundError(f"{uri}: no model.json (a model folder from `mespot train`)")
    return _load_files(_model_files(src), uri)

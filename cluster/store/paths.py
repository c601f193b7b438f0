"""Where things lie inside a store: table names, partition keys, per-video files, model ids.

Layout of a store (every path below is built here and nowhere else)::

    feature_config.json                                  the FeatureConfig and its config_id
    videos/dataset=D/subject=S/video=V/part-0.parquet    manifest (schemas.VIDEOS)
    annotations/dataset=D/subject=S/video=V/...          ground truth (schemas.ANNOTATIONS)
    features/dataset=D/subject=S/video=V/...             window features (schemas.WINDOW_FEATURES)
    _commits/D/S/V.json  _leases/D/S/V.json              finished videos, videos in progress
    runs/<run_id>.json                                   each extraction run's summary
    models/<model_id>/fold=<subject>/, models/<model_id>/all/    trained models
    predictions/model=<id>/part-0.parquet                window scores (WINDOW_PREDICTIONS)
    intervals/model=<id>/part-0.parquet                  spotted intervals (SPOTTED_INTERVALS)
    reports/<id>/...                                     evaluation and feedback reports
    verdicts/dataset=D/subject=S/video=V/<time>-<id>.parquet    annotators' verdicts
    simulations/<id>/seed=<s>/verdicts/...               a feedback simulation's verdicts

Partition values are URI-encoded, as pyarrow's hive partitioning expects.
"""

from __future__ import annotations

from urllib.parse import quote

FEATURE_CONFIG = "feature_config.json"
VIDEOS, ANNOTATIONS, FEATURES = "videos", "annotations", "features"
PREDICTIONS, INTERVALS = "predictions", "intervals"
MODELS, REPORTS, RUNS = "models", "reports", "runs"
VERDICTS, SIMULATIONS = "verdicts", "simulations"
COMMITS, LEASES = "_commits", "_leases"
PART = "part-0.parquet"  # the one file of a partition written whole
#: The model id of the feature-difference baseline (cluster.run.evaluate).
BASELINE_ID = "baseline-moilanen"


def _q(value: str) -> str:
    return quote(value, safe="")


def video_partition(dataset: str, subject: str, video: str) -> list[str]:
    """Hive partition folders of one video: ``dataset=D``, ``subject=S``, ``video=V``."""
    return [f"dataset={_q(dataset)}", f"subject={_q(subject)}", f"video={_q(video)}"]


def video_file(folder: str, dataset: str, subject: str, video: str) -> list[str]:
    """``folder/D/S/V.json``: a video's commit marker or lease."""
    return [folder, _q(dataset), _q(subject), f"{_q(video)}.json"]


def model_partition(model_id: str) -> str:
    """The partition folder of one model's rows in ``predictions`` and ``intervals``."""
    return f"model={model_id}"


def model_table(table: str, model_id: str) -> str:
    """``predictions/model=<id>`` (or ``intervals/...``): one model's rows, as a table path."""
    return f"{table}/{model_partition(model_id)}"


def model_of(path: str) -> str:
    """The model id in a path below ``.../model=<id>/...``."""
    return path.rsplit("model=", 1)[1].split("/")[0]


def model_folder(model_id: str, fold: str | None) -> list[str]:
    """``models/<id>/fold=<subject>`` for a LOSO fold, ``models/<id>/all`` for fold None."""
    return [MODELS, model_id, f"fold={fold}" if fold is not None else "all"]


def simulation_verdicts(sim_id: str, seed: int | str) -> str:
    """The verdict folder of one seed of a feedback simulation (never ``verdicts/``)."""
    return f"{SIMULATIONS}/{sim_id}/seed={seed}/{VERDICTS}"

"""The ``mespot`` argument parser: ``build_parser`` from one small function per subcommand.

Imports nothing heavy (no TensorFlow, no Ray), so ``mespot --help`` and parsing stay fast.
"""

from __future__ import annotations

import argparse
import os

from cluster.cli.argtypes import fraction as _fraction
from cluster.cli.feedback_parser import add_feedback as _add_feedback
from cluster.run.demo_config import DemoConfig
from cluster.run.extract import CHUNK_WINDOWS, DATASETS
from pipeline.core.configs import parse_size
from pipeline.core.review_queue import STRATEGIES
from pipeline.core.spotting import REVIEW_FLOOR
from pipeline.learn.lstm import FINETUNE_EPOCHS, ModelConfig
from pipeline.vision.config import FLOW_METHODS

Subparsers = argparse._SubParsersAction


def _size(text: str) -> tuple[int, int]:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mespot", description="Spot facial micro-expressions in long videos."
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="log more, the libraries' logs included"
    )
    p.add_argument(
        "--debug", action="store_true", help="on an error, show the traceback, not one line"
    )
    sub = p.add_subparsers(dest="command", required=True)
    for add in (
        _add_synth,
        _add_extract,
        _add_ingest,
        _add_train,
        _add_spot,
        _add_evaluate,
        _add_export,
        _add_review,
        _add_feedback,
        _add_demo,
    ):
        add(sub)
    return p


def _add_synth(sub: Subparsers) -> None:
    s = sub.add_parser("synth", help="write a synthetic corpus in the SAMM long-video layout")
    s.add_argument("out", help="output folder")
    s.add_argument("--subjects", type=int, default=2)
    s.add_argument("--videos", type=int, default=1, help="videos per subject")
    s.add_argument("--seconds", type=float, default=6.0, help="length of each video")
    s.add_argument("--fps", type=float, default=200.0)
    s.add_argument("--size", type=_size, default=(640, 360), help="WxH, e.g. 2040x1088")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--crf",
        type=int,
        help="pass the frames through H.264 at this CRF (0-51; 18 mild, 28 heavy), as a "
        "camera that records MP4 would",
    )
    s.add_argument(
        "--flicker", action="store_true", help="auto-exposure brightness flicker (<= 2.5%%)"
    )
    s.add_argument(
        "--realistic",
        action="store_true",
        help="each micro-movement one of seven action units (AU1, AU2, AU1+AU2, AU4, AU12, "
        "AU14, AU15) at 0.5-3 px at a 400 px face (sub-pixel on small faces), on faces of "
        "varied size (x0.7-1.1) and contrast (x0.5-1): the held-out benchmark's corpus "
        "(BENCHMARKS.md); default: whole brows or one corner, 1-3 px, one size and contrast",
    )
    s.add_argument(
        "--photos",
        choices=("default", "all"),
        default="default",
        help="faces the subjects cycle through: the four default photos, or all twelve "
        "training photos (five of them small faces upscaled), for a model that must work "
        "on faces it never saw (BENCHMARKS.md)",
    )
    s.add_argument("--no-progress", action="store_true")


def _add_extract(sub: Subparsers) -> None:
    e = sub.add_parser("extract", help="per-window HOOF features of a corpus or video into Parquet")
    e.add_argument("corpus", help="corpus folder, frame folder or video file (path or fsspec URI)")
    e.add_argument("out", help="output store (local path or fsspec URI, e.g. s3://bucket/prefix)")
    e.add_argument("--dataset", choices=DATASETS, default="samm")
    e.add_argument(
        "--fps", type=float, help="frame rate (needed for frame folders; samm 200, casme2 30)"
    )
    e.add_argument("--intervals", help="CSV of ground-truth intervals (folder/video datasets)")
    e.add_argument(
        "--dataset-name",
        help="dataset column of what is extracted (default: the reader's, e.g. samm); lets "
        "two corpora with the same subject ids share a store",
    )
    _add_run_options(e)


def _add_ingest(sub: Subparsers) -> None:
    g = sub.add_parser("ingest", help="extract new recording sessions found under a prefix")
    g.add_argument("source", help="prefix holding sessions: video files or numbered frame folders")
    g.add_argument("store", help="output store (local path or fsspec URI)")
    g.add_argument("--dataset-name", default="sessions", help="dataset column of what is found")
    g.add_argument("--fps", type=float, help="frame rate of frame-folder sessions")
    _add_run_options(g)


def _add_shared_fs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--shared-fs",
        action="store_true",
        help="local paths are on a mount every Ray node sees (else refused on a multi-node "
        "cluster: use object storage)",
    )


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="JSON file of FeatureConfig fields to override")
    p.add_argument("--flow", choices=FLOW_METHODS, help="optical flow method (default dis)")
    p.add_argument(
        "--executor",
        choices=("ray", "local"),
        default="ray",
        help="ray (default: a local Ray, or the cluster at --address / RAY_ADDRESS) or local "
        "(this process only)",
    )
    p.add_argument("--address", help="Ray cluster to join (default: RAY_ADDRESS, else start one)")
    p.add_argument("--num-cpus", type=int, help="CPUs of a Ray started here (default: all)")
    p.add_argument(
        "--chunk-windows", type=int, default=CHUNK_WINDOWS, help="windows per task (default 25)"
    )
    _add_shared_fs(p)
    p.add_argument("--no-progress", action="store_true")


def _add_train(sub: Subparsers) -> None:
    t = sub.add_parser("train", help="LOSO training of the LSTM on a store's labelled features")
    t.add_argument("store", help="store with features and ground truth (from extract)")
    t.add_argument("--epochs", type=int, default=50)
    t.add_argument(
        "--class-weight",
        choices=("balanced", "none"),
        default="balanced",
        help="balanced (default) or none (the paper's plain setup)",
    )
    t.add_argument(
        "--no-magnitude",
        action="store_true",
        help="HOOF only, as in the paper (default adds the flow magnitude)",
    )
    t.add_argument(
        "--classes",
        type=int,
        choices=(2, 3),
        default=3,
        help="3 (default): none / micro / macro, macro-expressions spotted as their own kind; "
        "2: none / micro, as in the paper",
    )
    _add_network_options(t)
    t.add_argument(
        "--no-extent",
        action="store_true",
        help="no extent head: micro spots by greedy NMS over windows, window-long (default "
        "trains one, whose timestep scores spot micro-movements from onset to offset)",
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--executor", choices=("ray", "local"), default="ray")
    t.add_argument(
        "--gpu-fraction",
        type=float,
        default=0.25,
        help="GPU share per fold (per stack, with --stack) when the cluster has GPUs",
    )
    t.add_argument(
        "--stack",
        type=int,
        default=0,
        metavar="K",
        help="train up to K folds as one computation per task (their networks stacked; "
        "keeps a GPU busy); default 0: one task per fold",
    )
    _add_verdict_options(t)
    _add_shared_fs(t)
    t.add_argument("--no-progress", action="store_true")


def _add_network_options(t: argparse.ArgumentParser) -> None:
    """train's options for the networks' shape: units, dropout, ensembles, mirrors."""
    t.add_argument(
        "--units",
        type=int,
        default=ModelConfig.units,
        help=f"LSTM units per layer (default {ModelConfig.units}; the paper's: 12)",
    )
    t.add_argument(
        "--dropout",
        type=float,
        default=ModelConfig.dropout,
        help=f"share of each LSTM layer's inputs dropped in training (default "
        f"{ModelConfig.dropout}; the paper's: 0)",
    )
    t.add_argument(
        "--members",
        type=int,
        default=ModelConfig.members,
        help=f"an ensemble of that many networks trained side by side, their scores "
        f"averaged (default {ModelConfig.members})",
    )
    t.add_argument(
        "--mirror",
        action=argparse.BooleanOptionalAction,
        default=ModelConfig.mirror,
        help="also train on each window's mirror image (left and right swapped), for half "
        f"the epochs (default {'on' if ModelConfig.mirror else 'off'}; --no-mirror: off)",
    )


def _add_verdict_options(t: argparse.ArgumentParser) -> None:
    """train's options for learning from verdicts and fine-tuning."""
    t.add_argument(
        "--verdicts",
        action="store_true",
        help="label videos without ground truth from the store's annotator verdicts, and "
        "fine-tune the model they were given on (when the store holds it)",
    )
    base = t.add_mutually_exclusive_group()
    base.add_argument(
        "--from-model",
        metavar="ID",
        help="fine-tune this model of the store (each fold from its fold of the same "
        "subject) instead of training new networks; its settings replace the ones above",
    )
    base.add_argument(
        "--scratch",
        action="store_true",
        help="with --verdicts: train new networks instead of fine-tuning",
    )
    t.add_argument(
        "--finetune-epochs",
        type=int,
        default=FINETUNE_EPOCHS,
        help=f"epochs of a fine-tune (default {FINETUNE_EPOCHS})",
    )


def _add_spot_options(p: argparse.ArgumentParser) -> None:
    """How micro spots are made, shared by ``spot`` and ``evaluate``."""
    p.add_argument(
        "--window-spots",
        action="store_true",
        help="micro spots as the windows greedy NMS keeps, at the window threshold "
        "(default: runs of the extent head's per-frame profile, where the model has one)",
    )
    p.add_argument(
        "--budget",
        type=_fraction,
        default=None,
        metavar="FRACTION",
        help="review budget: keep only the best micro spots that fit in this fraction of "
        "each video, e.g. 0.1, drawn down to --threshold (default under a budget: the "
        f"review floor, {REVIEW_FLOOR:g}; without a budget: every spot at the threshold); "
        "under a budget, micro spots longer than a micro-movement are split",
    )


def _add_spot(sub: Subparsers) -> None:
    sp = sub.add_parser(
        "spot",
        help="spot videos: `spot VIDEO_OR_FOLDER...` (extract, spot with the bundled model or "
        "--model, write intervals and an HTML report), or `spot MODEL FEATURES OUT` on stores",
    )
    sp.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="video files or folders (of videos, or of frames); or MODEL FEATURES_STORE "
        "OUT_STORE: a model folder (e.g. STORE/models/<id>/all), a store with the videos' "
        "features (from extract or ingest) and the store to write predictions and intervals to",
    )
    sp.add_argument(
        "--model",
        default=None,
        help="model folder, e.g. STORE/models/<id>/all (default: the bundled model, trained "
        "on synthetic faces)",
    )
    sp.add_argument(
        "--out",
        default=None,
        help="folder for the features, intervals.csv/.parquet and report.html (default: "
        "beside the first input, named after it: clip.mp4 -> clip-mespot/)",
    )
    sp.add_argument("--no-progress", action="store_true")
    sp.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="micro threshold: on the extent head's profile, or on window scores with "
        "--window-spots or a model without a head (default: the model's own, chosen by "
        "`mespot train` on its folds; 0.5 for a model without one)",
    )
    _add_spot_options(sp)


def _add_evaluate(sub: Subparsers) -> None:
    ev = sub.add_parser("evaluate", help="spot LOSO scores and the baseline; write the report")
    ev.add_argument("store")
    ev.add_argument("--model-id", help="default: the store's only trained model")
    ev.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="LSTM micro threshold for every subject (default: one per held-out subject, "
        "chosen on the other subjects' held-out scores; macro runs always so)",
    )
    ev.add_argument(
        "--baseline-p",
        type=float,
        default=None,
        help="baseline threshold: Moilanen's mean + p * (max - mean) per video (default: one "
        "threshold per held-out subject, chosen on the other subjects' videos)",
    )
    _add_spot_options(ev)


def _add_export(sub: Subparsers) -> None:
    x = sub.add_parser("export", help="reviewed intervals as CSV or a SAMM workbook")
    x.add_argument("store", help="store with spotted intervals and verdicts")
    x.add_argument(
        "out",
        help="output file (path or fsspec URI): *.csv, or *.xlsx for a SAMM workbook "
        "(name it SAMM_LongVideos_V2_Release.xlsx to drop it into a SAMM-layout corpus)",
    )
    x.add_argument("--format", choices=("csv", "samm"), help="default: from OUT's suffix")
    x.add_argument("--model-id", help="default: the store's only model with intervals")
    x.add_argument("--raw", action="store_true", help="CSV of every verdict (the audit trail)")


def _add_review(sub: Subparsers) -> None:
    r = sub.add_parser("review", help="review spotted intervals in a browser, keep the verdicts")
    r.add_argument("store", help="store with spotted intervals (from spot or evaluate)")
    r.add_argument("--model-id", help="default: the store's only model with intervals")
    r.add_argument(
        "--manifest", help="store holding the videos table, when not STORE (e.g. spot's INPUT)"
    )
    r.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    r.add_argument("--port", type=int, default=8765, help="port (0: any free one)")
    r.add_argument(
        "--token",
        default=os.environ.get("MESPOT_REVIEW_TOKEN"),
        help="required for a non-loopback --host (default: $MESPOT_REVIEW_TOKEN, else generated)",
    )
    r.add_argument("--annotator", default="", help="default annotator name shown on the page")
    r.add_argument("--context", type=float, default=0.5, help="seconds shown around an interval")
    r.add_argument("--frame-width", type=int, default=480, help="frames shrunk to this width")
    r.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="mixed",
        help="the review order: mixed (the surest spots, the ones near the threshold and "
        "peaks below it, each with why) or top (spotted intervals, highest score first)",
    )


def _add_demo(sub: Subparsers) -> None:
    d = sub.add_parser("demo", help="synth, extract (Ray), LOSO train, spot, evaluate")
    d.add_argument("out", nargs="?", default="mespot-demo", help="output folder")
    d.add_argument("--subjects", type=int, default=DemoConfig.subjects)
    d.add_argument("--seconds", type=float, default=DemoConfig.seconds)
    d.add_argument("--epochs", type=int, default=DemoConfig.epochs)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--executor", choices=("ray", "local"), default="ray")
    d.add_argument("--no-progress", action="store_true")

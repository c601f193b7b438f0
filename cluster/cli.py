"""The ``mespot`` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from fsspec.core import url_to_fs

# TensorFlow's C++ start-up chatter (set before any import of it, and inherited by the
# workers of a Ray started from here).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cluster.demo_config import DemoConfig
from cluster.extract import (
    CHUNK_WINDOWS,
    DATASETS,
    ConfigConflict,
    corpus_jobs,
    load_corpus,
    make_executor,
    run_extraction,
)
from cluster.store import Store, StoreError
from pipeline.config import FLOW_METHODS, FeatureConfig
from pipeline.frames import FrameError


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x360, got {text!r}") from None
    return w, h


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mespot", description="Spot facial micro-expressions in long videos."
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write a synthetic corpus in the SAMM long-video layout")
    s.add_argument("out", help="output folder")
    s.add_argument("--subjects", type=int, default=2)
    s.add_argument("--videos", type=int, default=1, help="videos per subject")
    s.add_argument("--seconds", type=float, default=6.0, help="length of each video")
    s.add_argument("--fps", type=float, default=200.0)
    s.add_argument("--size", type=_size, default=(640, 360), help="WxH, e.g. 2040x1088")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-progress", action="store_true")

    e = sub.add_parser("extract", help="per-window HOOF features of a corpus or video into Parquet")
    e.add_argument("corpus", help="corpus folder, frame folder or video file (path or fsspec URI)")
    e.add_argument("out", help="output store (local path or fsspec URI, e.g. s3://bucket/prefix)")
    e.add_argument("--dataset", choices=DATASETS, default="samm")
    e.add_argument(
        "--fps", type=float, help="frame rate (needed for frame folders; samm 200, casme2 30)"
    )
    e.add_argument("--intervals", help="CSV of ground-truth intervals (folder/video datasets)")
    _add_run_options(e)

    g = sub.add_parser("ingest", help="extract new recording sessions found under a prefix")
    g.add_argument("source", help="prefix holding sessions: video files or numbered frame folders")
    g.add_argument("store", help="output store (local path or fsspec URI)")
    g.add_argument("--dataset-name", default="sessions", help="dataset column of what is found")
    g.add_argument("--fps", type=float, help="frame rate of frame-folder sessions")
    _add_run_options(g)

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
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--executor", choices=("ray", "local"), default="ray")
    t.add_argument(
        "--gpu-fraction",
        type=float,
        default=0.25,
        help="GPU share per fold when the cluster has GPUs",
    )
    t.add_argument(
        "--verdicts",
        action="store_true",
        help="label videos without ground truth from the store's annotator verdicts",
    )
    t.add_argument("--no-progress", action="store_true")

    sp = sub.add_parser("spot", help="a trained model on new videos' features: spotted intervals")
    sp.add_argument("model", help="model folder, e.g. STORE/models/<id>/all")
    sp.add_argument("input", help="store with the new videos' features (from extract or ingest)")
    sp.add_argument("store", help="store to write predictions and intervals to")
    sp.add_argument("--threshold", type=float, default=0.5)
    sp.add_argument("--refine", action="store_true", help="refine onsets and offsets")

    ev = sub.add_parser("evaluate", help="spot LOSO scores and the baseline; write the report")
    ev.add_argument("store")
    ev.add_argument("--model-id", help="default: the store's only trained model")
    ev.add_argument("--threshold", type=float, default=0.5)
    ev.add_argument(
        "--baseline-p",
        type=float,
        default=0.5,
        help="baseline threshold: mean + p * (max - mean) per video",
    )
    ev.add_argument("--refine", action="store_true", help="refine onsets and offsets")

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

    fb = sub.add_parser(
        "feedback", help="simulate annotators' verdicts fed back into training; plot the effect"
    )
    fb.add_argument("store", help="store with features and ground truth (from extract)")
    fb.add_argument("--labelled", type=int, default=2, help="subjects trained on with ground truth")
    fb.add_argument("--test", type=int, default=3, help="subjects only evaluated on")
    fb.add_argument("--rounds", type=int, default=4, help="rounds of review and retraining")
    fb.add_argument("--per-round", type=int, default=10, help="intervals reviewed per round")
    fb.add_argument("--seeds", type=int, default=3, help="model seeds 0..S-1")
    fb.add_argument("--epochs", type=int, default=50)
    fb.add_argument("--threshold", type=float, default=0.5, help="spotting threshold")
    fb.add_argument("--no-progress", action="store_true")

    d = sub.add_parser("demo", help="synth, extract (Ray), LOSO train, spot, evaluate")
    d.add_argument("out", nargs="?", default="mespot-demo", help="output folder")
    d.add_argument("--subjects", type=int, default=DemoConfig.subjects)
    d.add_argument("--seconds", type=float, default=DemoConfig.seconds)
    d.add_argument("--epochs", type=int, default=DemoConfig.epochs)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--executor", choices=("ray", "local"), default="ray")
    d.add_argument("--no-progress", action="store_true")
    return p


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
    p.add_argument("--no-progress", action="store_true")


def _feature_config(args) -> FeatureConfig:
    d = FeatureConfig().to_dict()
    if args.config:
        d.update(FeatureConfig.from_json(Path(args.config).read_text()).to_dict())
    if args.flow:
        d["flow"] = args.flow
    return FeatureConfig.from_dict(d)


def cmd_synth(args) -> int:
    from tqdm.auto import tqdm

    from pipeline.synth import SynthConfig, generate_corpus

    cfg = SynthConfig(
        subjects=args.subjects,
        videos=args.videos,
        seconds=args.seconds,
        fps=args.fps,
        width=args.size[0],
        height=args.size[1],
        seed=args.seed,
    )
    total = cfg.subjects * cfg.videos * round(cfg.seconds * cfg.fps)
    with tqdm(total=total, unit="frame", desc="synth", disable=args.no_progress) as bar:
        manifest = generate_corpus(Path(args.out), cfg, progress=bar.update)
    micro = sum(1 for ev in manifest.events if ev.kind == "micro")
    print(f"wrote {len(manifest.videos)} videos with {micro} micro-movements to {args.out}")
    return 0


def _run(args, jobs, store, config, skipped) -> int:
    executor = make_executor(args.executor, args.address, args.num_cpus)
    summary = run_extraction(
        jobs,
        store,
        config,
        executor,
        chunk_windows=args.chunk_windows,
        skipped_inputs=skipped,
        progress=not args.no_progress,
    )
    print("\n".join(summary.lines()))
    print(f"features: {store.path('features')}  (config {config.config_id})")
    return 1 if summary.failed and not summary.done else 0


def cmd_extract(args) -> int:
    config = _feature_config(args)
    store = Store.open(args.out)
    store.check_writable()  # one clear error before any work
    fs, corpus_path = url_to_fs(args.corpus)
    corpus, with_labels = load_corpus(
        corpus_path, args.dataset, fps=args.fps, intervals=args.intervals, fs=fs
    )
    if not corpus.videos:
        reasons = "; ".join(f"{s.what}: {s.reason}" for s in corpus.skipped) or "none found"
        print(f"mespot extract: no readable video in {args.corpus} ({reasons})", file=sys.stderr)
        return 2
    jobs = corpus_jobs(corpus, config, with_labels, fs=fs)
    return _run(args, jobs, store, config, corpus.skipped)


def cmd_ingest(args) -> int:
    from cluster.ingest import discover_sessions

    config = _feature_config(args)
    store = Store.open(args.store)
    store.check_writable()
    corpus = discover_sessions(args.source, dataset=args.dataset_name, fps=args.fps)
    jobs = corpus_jobs(corpus, config, with_labels=False, fs=Store.open(args.source).fs)
    print(f"ingest {args.source}: {len(jobs)} sessions found")
    return _run(args, jobs, store, config, corpus.skipped)


def cmd_train(args) -> int:
    from cluster.train import train_loso
    from pipeline.model import ModelConfig

    cfg = ModelConfig(
        epochs=args.epochs,
        class_weight=args.class_weight,
        with_magnitude=not args.no_magnitude,
        seed=args.seed,
    )
    summary = train_loso(
        Store.open(args.store),
        cfg,
        executor=args.executor,
        gpu_fraction=args.gpu_fraction,
        progress=not args.no_progress,
        use_verdicts=args.verdicts,
    )
    print("\n".join(summary.lines()))
    return 1 if summary.failed else 0


def cmd_spot(args) -> int:
    from cluster.spot import load_model, spot_new_videos

    model = load_model(args.model)
    out = Store.open(args.store)
    out.check_writable()
    _, intervals = spot_new_videos(
        model, Store.open(args.input), out, args.threshold, refine=args.refine
    )
    print(
        f"model {model.model_id}: {intervals.num_rows} intervals spotted -> "
        f"{out.path('intervals', f'model={model.model_id}')}"
    )
    return 0


def cmd_evaluate(args) -> int:
    from cluster.evaluate import evaluate_store

    ev = evaluate_store(
        Store.open(args.store),
        args.model_id,
        threshold=args.threshold,
        refine=args.refine,
        baseline_p=args.baseline_p,
    )
    print("\n".join(ev.summary_lines()))
    print("\n".join(f"{k}: {v}" for k, v in ev.paths.items()))
    return 0


def cmd_export(args) -> int:
    from cluster.export import export_csv, export_samm, infer_format

    fmt = infer_format(args.out, args.format)
    store = Store.open(args.store)
    if fmt == "samm":
        if args.raw:
            raise ValueError("--raw writes a CSV of every verdict; use a .csv output")
        n = export_samm(store, args.out, args.model_id)
        what = "yes intervals (SAMM workbook)"
    else:
        n = export_csv(store, args.out, args.model_id, raw=args.raw)
        what = "verdicts" if args.raw else "intervals"
    print(f"wrote {n} {what} to {args.out}")
    return 0


def cmd_review(args) -> int:
    import secrets

    from cluster.review import ReviewConfig, ReviewSession
    from cluster.review_http import ReviewServer, is_loopback

    store = Store.open(args.store)
    config = ReviewConfig(context_s=args.context, frame_width=args.frame_width)
    manifest = Store.open(args.manifest) if args.manifest else None
    session = ReviewSession(store, args.model_id, config, manifest=manifest)
    token = args.token
    if not is_loopback(args.host) and not token:
        token = secrets.token_urlsafe(24)
    store.check_writable()  # verdicts are written here: fail now, not at the first verdict
    try:
        server = ReviewServer(session, args.host, args.port, token, args.annotator)
    except OSError as e:
        raise ValueError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from e
    progress = session.list_videos()["progress"]
    print(
        f"mespot review: {len(session.videos)} videos, {progress['intervals']} intervals of "
        f"model {session.model_id} ({progress['left']} left to review)"
    )
    print(f"open {server.url}  (Ctrl-C to stop; verdicts are saved as they are given)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nmespot review: stopped")
    finally:
        server.server_close()
        session.close()
    return 0


def cmd_feedback(args) -> int:
    from cluster.feedback import run_feedback
    from pipeline.feedback import FeedbackConfig

    cfg = FeedbackConfig(
        labelled=args.labelled,
        test=args.test,
        rounds=args.rounds,
        per_round=args.per_round,
        seeds=args.seeds,
        epochs=args.epochs,
        threshold=args.threshold,
    )
    result = run_feedback(Store.open(args.store), cfg, progress=not args.no_progress)
    print("\n".join(result.lines()))
    print("\n".join(f"{k}: {v}" for k, v in result.paths.items()))
    return 0


def cmd_demo(args) -> int:
    from cluster.demo import run_demo

    cfg = DemoConfig(
        subjects=args.subjects,
        seconds=args.seconds,
        epochs=args.epochs,
        seed=args.seed,
        executor=args.executor,
    )
    result = run_demo(Path(args.out), cfg, progress=not args.no_progress)
    print("\n".join(result["extraction"].lines()[:1]))
    print("\n".join(result["training"].lines()))
    print()
    print("\n".join(result["evaluation"].summary_lines()))
    print()
    print("report:", result["evaluation"].paths["markdown"])
    print(f"review the spotted intervals in a browser: mespot review {Path(args.out) / 'store'}")
    print("seconds:", result["timings"])
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handlers = {
        "synth": cmd_synth,
        "extract": cmd_extract,
        "ingest": cmd_ingest,
        "train": cmd_train,
        "spot": cmd_spot,
        "evaluate": cmd_evaluate,
        "export": cmd_export,
        "review": cmd_review,
        "feedback": cmd_feedback,
        "demo": cmd_demo,
    }
    try:
        return handlers[args.command](args)
    except (
        ValueError,
        ConfigConflict,
        FileNotFoundError,
        FileExistsError,
        FrameError,
        StoreError,
    ) as e:
        print(f"mespot {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

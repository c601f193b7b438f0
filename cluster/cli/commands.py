"""The ``mespot`` commands: one ``cmd_*`` per subcommand, and ``main`` to dispatch to them.

Heavy modules (TensorFlow, Ray, ...) are imported inside the commands, so the CLI starts fast.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

# TensorFlow's C++ start-up chatter (set before any import of it, and inherited by the
# workers of a Ray started from here).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cluster.cli.errors import describe_error
from cluster.cli.parser import build_parser
from cluster.cli.quiet import native_log_filter
from cluster.run.demo_config import DemoConfig
from cluster.run.executors import WORKER_LOGS_ENV
from cluster.run.extract import RunAborted, corpus_jobs, load_corpus, run_extraction
from cluster.store import Store, paths
from pipeline.vision.config import FeatureConfig

if TYPE_CHECKING:
    from pipeline.learn.simulation import FeedbackConfig

__all__ = ["build_parser", "main"]


def _feature_config(args) -> FeatureConfig:
    d = FeatureConfig().to_dict()
    if args.config:
        text = Path(args.config).read_text()
        d.update(FeatureConfig.from_json(text, source=args.config).to_dict())
    if args.flow:
        d["flow"] = args.flow
    return FeatureConfig.from_dict(d)


def cmd_synth(args) -> int:
    from tqdm.auto import tqdm

    from pipeline.synth.config import REALISTIC
    from pipeline.synth.generate import SynthConfig, generate_corpus
    from pipeline.synth.renderer import MORE_PHOTOS, PHOTOS

    cfg = SynthConfig(
        subjects=args.subjects,
        videos=args.videos,
        seconds=args.seconds,
        fps=args.fps,
        width=args.size[0],
        height=args.size[1],
        seed=args.seed,
        crf=args.crf,
        flicker=args.flicker,
        photos=PHOTOS + MORE_PHOTOS if args.photos == "all" else (),
        **(REALISTIC if args.realistic else {}),
    )
    total = cfg.subjects * cfg.videos * round(cfg.seconds * cfg.fps)
    with tqdm(total=total, unit="frame", desc="synth", disable=args.no_progress) as bar:
        manifest = generate_corpus(Path(args.out), cfg, progress=bar.update)
    micro = sum(1 for ev in manifest.events if ev.kind == "micro")
    print(f"wrote {len(manifest.videos)} videos with {micro} micro-movements to {args.out}")
    return 0


def _run(args, jobs, store, config, corpus):
    """Extract ``jobs`` on the chosen executor; print and return the run summary."""
    from cluster.run.executors import make_executor

    executor = make_executor(args.executor, args.address, args.num_cpus)
    try:
        summary = run_extraction(
            jobs,
            store,
            config,
            executor,
            chunk_windows=args.chunk_windows,
            skipped_inputs=corpus.skipped,
            notes=corpus.notes,
            progress=not args.no_progress,
            shared_fs=args.shared_fs,
        )
    except RunAborted as e:
        print("\n".join(e.summary.lines()))
        raise
    print("\n".join(summary.lines()))
    print(f"features: {store.path(paths.FEATURES)}  (config {config.config_id})")
    return summary


def cmd_extract(args) -> int:
    config = _feature_config(args)
    store = Store.open(args.out)
    store.check_writable()  # one clear error before any work
    source = Store.open(args.corpus)
    corpus, with_labels = load_corpus(
        source, args.dataset, fps=args.fps, intervals=args.intervals, name=args.dataset_name
    )
    if not corpus.videos:
        reasons = "; ".join(f"{s.what}: {s.reason}" for s in corpus.skipped) or "none found"
        print(f"mespot extract: no readable video in {args.corpus} ({reasons})", file=sys.stderr)
        return 2
    jobs = corpus_jobs(corpus, config, with_labels, source)
    summary = _run(args, jobs, store, config, corpus)
    return 1 if summary.failed and not summary.done else 0


def cmd_ingest(args) -> int:
    from cluster.run.ingest import discover_sessions

    config = _feature_config(args)
    store = Store.open(args.store)
    store.check_writable()
    source = Store.open(args.source)
    corpus = discover_sessions(source, dataset=args.dataset_name, fps=args.fps)
    jobs = corpus_jobs(corpus, config, with_labels=False, source=source)
    print(f"ingest {args.source}: {len(jobs)} sessions found")
    summary = _run(args, jobs, store, config, corpus)
    unusable = [s for s in corpus.skipped if not s.reason.startswith("empty")]
    return ingest_status(summary, found=len(jobs) + len(unusable))


def ingest_status(summary, found: int) -> int:
    """Exit status of ``mespot ingest`` for a scheduler: 1 when any session failed, or
    when sessions were found and none could be processed (all skipped); else 0.

    ``found``: sessions found, usable or not (empty folders are not sessions)."""
    usable = summary.done or summary.already_done or summary.truth_updated
    if summary.failed or (found and not usable and not summary.in_progress_elsewhere):
        return 1
    return 0


def cmd_train(args) -> int:
    from cluster.run.train import train_loso
    from pipeline.learn.lstm import ModelConfig

    cfg = ModelConfig(
        epochs=args.epochs,
        class_weight=args.class_weight,
        with_magnitude=not args.no_magnitude,
        seed=args.seed,
        classes=args.classes,
        units=args.units,
        dropout=args.dropout,
        extent=not args.no_extent,
        members=args.members,
        mirror=args.mirror,
    )
    summary = train_loso(
        Store.open(args.store),
        cfg,
        executor=args.executor,
        gpu_fraction=args.gpu_fraction,
        progress=not args.no_progress,
        use_verdicts=args.verdicts,
        shared_fs=args.shared_fs,
        base_model=args.from_model,
        scratch=args.scratch,
        finetune_epochs=args.finetune_epochs,
        stack=args.stack,
    )
    print("\n".join(summary.lines()))
    return 1 if summary.failed else 0


def cmd_spot(args) -> int:
    if (
        len(args.paths) == 3
        and args.model is None
        and Store.open(args.paths[0]).exists("model.json")
    ):
        args.model, args.input, args.store = args.paths
        return _spot_stores(args)
    return _spot_videos(args)


def _spot_videos(args) -> int:
    """``spot VIDEO_OR_FOLDER...``: extract, spot, write the intervals and the report."""
    from pathlib import Path

    from cluster.run.spot_videos import default_out, spot_videos
    from cluster.store.models import load_model
    from pipeline.core.spotting import review_threshold
    from pipeline.learn.bundled import bundled_model

    if args.window_spots:
        raise ValueError("--window-spots: spot on windows with `spot MODEL FEATURES OUT`")
    model = bundled_model() if args.model is None else load_model(args.model)
    out = Path(args.out) if args.out else default_out(args.paths)
    threshold = review_threshold(args.threshold, args.budget)
    found = spot_videos(args.paths, model, out, threshold=threshold, budget=args.budget,
                        progress=not args.no_progress)  # fmt: skip
    which = "the bundled model (synthetic faces)" if args.model is None else args.model
    print(f"model {model.model_id}: {which}")
    print("\n".join(found.lines()))
    return 0


def _spot_stores(args) -> int:
    """``spot MODEL FEATURES_STORE OUT_STORE``: a model on features already extracted."""
    from cluster.run.spot import EXTENTS, spot_new_videos
    from cluster.store.models import load_model, run_model_id
    from pipeline.core.spotting import review_threshold

    model = load_model(args.model)
    out = Store.open(args.store)
    out.check_writable()
    extents = None if args.window_spots else EXTENTS
    own = model.window_threshold if args.window_spots else model.threshold
    given = review_threshold(args.threshold, args.budget)  # a budget draws from a floor
    threshold = own if given is None else given
    _, intervals = spot_new_videos(
        model, Store.open(args.input), out, threshold, extents, args.budget
    )
    kinds = intervals.column("kind").to_pylist()
    counts = ", ".join(f"{kinds.count(k)} {k}" for k in ("micro", "macro") if k in kinds)
    if args.threshold is not None:
        whose = ""
    elif given is not None:
        whose = " (the review floor)"
    else:
        whose = " (the model's own)" if model.spotting else ""
    whose += f", micro spots within {args.budget:g} of each video" if args.budget else ""
    print(
        f"model {run_model_id(model)}, threshold {threshold:.3g}{whose}: "
        f"{intervals.num_rows} intervals spotted{f' ({counts})' if counts else ''} -> "
        f"{out.path(paths.model_table(paths.INTERVALS, run_model_id(model)))}"
    )
    return 0


def cmd_evaluate(args) -> int:
    from cluster.run.evaluate import evaluate_store

    ev = evaluate_store(
        Store.open(args.store),
        args.model_id,
        threshold=args.threshold,
        baseline_p=args.baseline_p,
        window_spots=args.window_spots,
        budget=args.budget,
    )
    print("\n".join(ev.summary_lines()))
    print("\n".join(f"{k}: {v}" for k, v in ev.paths.items()))
    return 0


def cmd_export(args) -> int:
    from cluster.review.export import export_csv, export_samm, infer_format

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

    from cluster.review.server import ReviewServer, is_loopback
    from cluster.review.session import ReviewConfig, ReviewSession

    store = Store.open(args.store)
    config = ReviewConfig(context_s=args.context, frame_width=args.frame_width)
    manifest = Store.open(args.manifest) if args.manifest else None
    session = ReviewSession(store, args.model_id, config, manifest=manifest, strategy=args.strategy)
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


def feedback_config(args) -> FeedbackConfig:
    """The FeedbackConfig of ``mespot feedback``'s options (bench_feedback.py's too)."""
    from pipeline.learn.simulation import FeedbackConfig

    return FeedbackConfig(
        labelled=args.labelled,
        test=args.test,
        rounds=args.rounds,
        per_round=args.per_round,
        seeds=args.seeds,
        epochs=args.epochs,
        threshold=None if args.learn_threshold else args.threshold,
        strategy=args.strategy,
        miss_rate=args.miss_rate,
        unsure_rate=args.unsure_rate,
        mark_extent=not args.no_extent,
        finetune_epochs=args.finetune_epochs,
        extent=not args.window_spots,
        budget=args.budget,
    )


def cmd_feedback(args) -> int:
    from cluster.run.feedback import run_feedback

    cfg = feedback_config(args)
    result = run_feedback(Store.open(args.store), cfg, progress=not args.no_progress)
    print("\n".join(result.lines()))
    print("\n".join(f"{k}: {v}" for k, v in result.paths.items()))
    return 0


def cmd_demo(args) -> int:
    from cluster.run.demo import run_demo

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


HANDLERS = {
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
#: Commands that load TensorFlow, whose native log lines are filtered unless -v.
WITH_TENSORFLOW = {"train", "spot", "evaluate", "feedback", "demo"}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.verbose:  # Ray workers' own output (TensorFlow's logs among it) on the terminal
        os.environ[WORKER_LOGS_ENV] = "1"
    quiet = not args.verbose and args.command in WITH_TENSORFLOW
    try:
        with native_log_filter(quiet):
            return HANDLERS[args.command](args)
    except Exception as e:
        if args.debug:
            raise
        print(f"mespot {args.command}: {describe_error(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

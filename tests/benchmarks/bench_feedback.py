"""Annotator feedback, simulated: does reviewing the model's intervals help? (run by hand)

    python tests/benchmarks/bench_feedback.py --workdir /tmp/mespot-feedback

Synthesizes a corpus (pipeline.synth.generate; 8 subjects x 60 s at 100 fps, 640x360, by default),
extracts its features (cluster.run.extract, a local Ray by default), then runs the feedback
simulation (cluster.run.feedback): subjects split 2 labelled / 3 feedback / 3 test, 5 rounds
of 10 reviewed intervals, 3 seeds, 50 epochs, each round fine-tuning the last round's model
for 10 epochs, the mixed review queue and an annotator who marks extents, misses 10% and is
unsure of 5% (``--strategy top --miss-rate 0 --unsure-rate 0 --no-extent
--finetune-epochs 0``: the study as first run). The corpus and the features are reused on a
second run. Prints the per-round table (mean ± std over seeds) and where the report and
the plot are.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", default="/tmp/mespot-feedback")
    p.add_argument("--subjects", type=int, default=8)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--fps", type=float, default=100.0)
    p.add_argument("--executor", choices=("ray", "local"), default="ray")
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray")
    p.add_argument("--labelled", type=int, default=2)
    p.add_argument("--test", type=int, default=3)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--per-round", type=int, default=10)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--threshold", type=float, default=0.3)
    p.add_argument("--learn-threshold", action="store_true", help="each fit learns its own")
    p.add_argument("--budget", type=float, default=None, help="also figures at this budget")
    p.add_argument("--window-spots", action="store_true", help="models without the extent head")
    p.add_argument("--strategy", choices=("mixed", "top"), default="mixed")
    p.add_argument("--miss-rate", type=float, default=0.1)
    p.add_argument("--unsure-rate", type=float, default=0.05)
    p.add_argument("--no-extent", action="store_true")
    p.add_argument("--finetune-epochs", type=int, default=10)
    p.add_argument("--corpus-seed", type=int, default=0, help="the synthetic corpus' seed")
    p.add_argument(
        "--prepare-only",
        action="store_true",
        help="synthesize the corpus and extract its features, nothing else (to fix a "
        "held-out corpus before any tuning)",
    )
    p.add_argument(
        "--realistic",
        action="store_true",
        help="the AU-coded corpus of `mespot synth --realistic` on every training photo "
        "(sub-pixel movements, small and low-contrast faces) instead of the classic one",
    )
    args = p.parse_args()

    from cluster.cli.commands import feedback_config
    from cluster.run.executors import make_executor
    from cluster.run.extract import corpus_jobs, load_corpus, run_extraction
    from cluster.run.feedback import run_feedback
    from cluster.store import Store
    from pipeline.synth.generate import SynthConfig, generate_corpus
    from pipeline.vision.config import FeatureConfig

    work = Path(args.workdir)
    corpus, store_dir = work / "corpus", work / "store"
    synth = SynthConfig(
        subjects=args.subjects,
        seconds=args.seconds,
        fps=args.fps,
        width=640,
        height=360,
        seed=args.corpus_seed,
        micro_per_10s=4.0,
    )
    if args.realistic:
        from dataclasses import replace

        from pipeline.synth.config import REALISTIC
        from pipeline.synth.renderer import MORE_PHOTOS, PHOTOS

        synth = replace(synth, photos=PHOTOS + MORE_PHOTOS, **REALISTIC)
    timings = {}
    t = time.perf_counter()
    if (corpus / "synth_config.json").exists():
        old = json.loads((corpus / "synth_config.json").read_text())["config"]
        if SynthConfig.from_dict(old) != synth:
            raise SystemExit(f"{corpus} holds another synthetic corpus: use another --workdir")
    else:
        generate_corpus(corpus, synth)
    timings["synth"] = time.perf_counter() - t

    t = time.perf_counter()
    store = Store.open(str(store_dir))
    config = FeatureConfig()
    data, with_labels = load_corpus(Store.open(str(corpus)), "samm")
    executor = make_executor(args.executor, num_cpus=args.num_cpus)
    summary = run_extraction(
        corpus_jobs(data, config, with_labels), store, config, executor, progress=False
    )
    executor.close()
    if args.executor == "ray":  # give the cores back to the fits
        import ray

        ray.shutdown()
    timings["extract"] = time.perf_counter() - t
    print(summary.lines()[0])
    if args.prepare_only:
        print("seconds:", {k: round(v, 1) for k, v in timings.items()})
        return

    cfg = feedback_config(args)
    t = time.perf_counter()
    result = run_feedback(store, cfg, progress=False)
    timings["simulate"] = time.perf_counter() - t
    fits = sum(r["seconds"] for r in result.rows)
    micro = dict(sorted(result_truth(store).items()))
    print(f"corpus: {synth.to_dict()}")
    print(f"micro-movements per subject: {micro}")
    print(f"simulation: {cfg.to_dict()}")
    print()
    print("\n".join(result.lines()))
    print()
    last = [r for r in result.rows if r["round"] == max(x["round"] for x in result.rows)]
    for r in last:
        print(
            f"seed {r['seed']}: round {r['round']}: {r['verdict_positive_windows']} positive and "
            f"{r['verdict_negative_windows']} negative windows from verdicts, "
            f"{r['train_windows']} training windows in all"
        )
    print("\n".join(f"{k}: {v}" for k, v in result.paths.items()))
    print("seconds:", {k: round(v, 1) for k, v in timings.items()}, f"(rounds {fits:.1f})")


def result_truth(store) -> dict[str, int]:
    """Micro-movements per subject in the store's ground truth."""
    from cluster.run.feedback import ground_truth

    out: dict[str, int] = {}
    for (_d, subject, _v), ivs in ground_truth(store, ("micro",)).items():
        out[subject] = out.get(subject, 0) + len(ivs)
    return out


if __name__ == "__main__":
    main()

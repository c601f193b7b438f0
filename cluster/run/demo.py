"""``mespot demo``: the whole job end to end on the embedded default.

A synthetic corpus (``mespot synth``), features on a local Ray (``mespot extract``),
LOSO training with folds in parallel (``mespot train``), spotting and the evaluation
report beside the baseline (``mespot evaluate``). The default size finishes in a few
minutes on 2 cores.
"""

from __future__ import annotations

import time
from pathlib import Path

from cluster.run.demo_config import DemoConfig
from cluster.run.evaluate import evaluate_store
from cluster.run.executors import make_executor
from cluster.run.extract import corpus_jobs, load_corpus, run_extraction
from cluster.run.train import train_loso
from cluster.store import Store
from pipeline.learn.lstm import ModelConfig
from pipeline.vision.config import FeatureConfig


def run_demo(out: Path, cfg: DemoConfig, progress: bool = True) -> dict:
    from pipeline.synth.generate import MANIFEST_FILE, SynthConfig, SynthManifest, generate_corpus

    t0 = time.perf_counter()
    timings = {}
    corpus = out / "corpus"
    synth = SynthConfig(
        subjects=cfg.subjects,
        seconds=cfg.seconds,
        fps=cfg.fps,
        width=cfg.width,
        height=cfg.height,
        seed=cfg.seed,
        micro_per_10s=cfg.micro_per_10s,
    )
    if (corpus / MANIFEST_FILE).exists():
        if SynthManifest.load(corpus).config != synth:
            raise ValueError(f"{corpus} holds another synthetic corpus: use another OUT")
    else:
        generate_corpus(corpus, synth)
    timings["synth"] = time.perf_counter() - t0

    t = time.perf_counter()
    store = Store.open(str(out / "store"))
    config = FeatureConfig()
    source = Store.open(str(corpus))
    data, with_labels = load_corpus(source, "samm")
    executor = make_executor(cfg.executor)
    jobs = corpus_jobs(data, config, with_labels, source)
    extraction = run_extraction(jobs, store, config, executor, progress=progress)
    timings["extract"] = time.perf_counter() - t

    t = time.perf_counter()
    model_cfg = ModelConfig(epochs=cfg.epochs, seed=cfg.seed)
    training = train_loso(store, model_cfg, executor=cfg.executor, progress=progress)
    timings["train"] = time.perf_counter() - t

    t = time.perf_counter()
    ev = evaluate_store(store, training.model_id)
    timings["evaluate"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return {
        "extraction": extraction,
        "training": training,
        "evaluation": ev,
        "timings": {k: round(v, 1) for k, v in timings.items()},
    }

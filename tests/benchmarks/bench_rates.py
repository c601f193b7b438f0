"""Cross-rate spotting: train at one frame rate, spot at every other (run by hand).

    python tests/benchmarks/bench_rates.py --workdir /tmp/mespot-rates

The same synthetic subjects (pipeline.synth.generate, one seed: same faces, same event
draws) are rendered at each rate (200, 100, 60, 30 and 25 fps by default; 9 subjects x
60 s, 640x360, 4 micro-movements per 10 s) and their features extracted on a local Ray
with the default FeatureConfig (the time grid: 13 timesteps of 40 ms at every rate). The
first 6 subjects (sorted) train, the last 3 are held out. For each training rate and seed a
model (default ModelConfig, 50 epochs) is trained on the training subjects at that rate,
then scores the held-out subjects at every rate; intervals are spotted at 0.5 with greedy
NMS and matched to the micro-movements under both rules. Corpora and stores are reused on
a second run. Prints markdown tables (mean ± std over seeds) and writes ``rates.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_store(work: Path, fps: float, args) -> Path:
    """The rate's corpus and features (made once)."""
    from cluster.run.executors import make_executor
    from cluster.run.extract import corpus_jobs, load_corpus, run_extraction
    from cluster.store import Store
    from pipeline.synth.generate import SynthConfig, generate_corpus
    from pipeline.vision.config import FeatureConfig

    corpus, store_dir = work / f"corpus-{fps:g}", work / f"store-{fps:g}"
    synth = SynthConfig(
        subjects=args.subjects, seconds=args.seconds, fps=fps, width=640, height=360, seed=0,
        micro_per_10s=4.0,
    )  # fmt: skip
    t = time.perf_counter()
    if not (corpus / "synth_config.json").exists():
        generate_corpus(corpus, synth)
    elif json.loads((corpus / "synth_config.json").read_text())["config"] != synth.to_dict():
        raise SystemExit(f"{corpus} holds another synthetic corpus: use another --workdir")
    made = time.perf_counter() - t
    t = time.perf_counter()
    config = FeatureConfig()
    data, with_labels = load_corpus(Store.open(str(corpus)), "samm")
    executor = make_executor("ray", num_cpus=args.num_cpus)
    summary = run_extraction(
        corpus_jobs(data, config, with_labels), Store.open(str(store_dir)), config, executor,
        progress=False,
    )  # fmt: skip
    executor.close()
    print(f"{fps:g} fps: synth {made:.0f} s, extract {time.perf_counter() - t:.0f} s;", end=" ")
    print(summary.lines()[0])
    return store_dir


def held_out(store_dir: Path, n_train: int):
    """(dataset, train rows X/y, test rows table/X, videos table, micro truth) of a store."""
    from cluster.run.evaluate import ground_truth
    from cluster.run.training_data import load_dataset
    from cluster.store import Store, paths
    from cluster.store.parquet import read_table

    store = Store.open(str(store_dir))
    data = load_dataset(store, with_magnitude=True)
    subjects = sorted(set(data.subjects))
    train = np.isin(data.subjects, subjects[:n_train]) & (data.y >= 0)
    test = np.isin(data.subjects, subjects[n_train:])
    return {
        "data": data,
        "train": train,
        "test": test,
        "videos": read_table(store, paths.VIDEOS),
        "truth": ground_truth(store, ("micro",)),
        "test_subjects": subjects[n_train:],
    }


def score(split, scores: np.ndarray, threshold: float) -> dict:
    """Spot the held-out videos from window scores; both rules, pooled."""
    from pipeline.core.metrics import VideoResult, evaluate
    from pipeline.core.spotting import spot_intervals

    rows = split["data"].table.filter(split["test"])
    cols = (rows.column(c).to_pylist() for c in ("dataset", "subject", "video"))
    keys = list(zip(*cols, strict=True))
    starts = rows.column("start_frame").to_numpy()
    ends = rows.column("end_frame").to_numpy()
    results = []
    for v in split["videos"].to_pylist():
        key = (v["dataset"], v["subject"], v["video"])
        if v["subject"] not in split["test_subjects"]:
            continue
        mine = np.asarray([k == key for k in keys])
        spots = spot_intervals(starts[mine], ends[mine], scores[mine], threshold)
        results.append(
            VideoResult(*key, v["n_frames"], v["fps"], spots, split["truth"].get(key, []))
        )
    report = evaluate(results)
    out = {"footage": report.footage_fraction}
    for rule, c in report.counts.items():
        out[rule] = {
            "tp": c.tp, "fp": c.fp, "fn": c.fn, "recall": c.recall, "precision": c.precision,
            "f1": c.f1,
        }  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", default="/tmp/mespot-rates")
    p.add_argument("--rates", default="200,100,60,30,25")
    p.add_argument("--subjects", type=int, default=9)
    p.add_argument("--train", type=int, default=6, help="subjects trained on (the rest held out)")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--num-cpus", type=int, default=2)
    args = p.parse_args()
    work = Path(args.workdir)
    rates = [float(r) for r in args.rates.split(",")]
    stores = {r: make_store(work, r, args) for r in rates}
    import ray

    ray.shutdown()
    from pipeline.learn.lstm import ModelConfig, SpotterModel, limit_threads

    limit_threads(args.num_cpus)
    splits = {r: held_out(stores[r], args.train) for r in rates}
    results: dict[str, dict] = {}
    for r_train in rates:
        tr = splits[r_train]
        x, y = tr["data"].X[tr["train"]], tr["data"].y[tr["train"]]
        for seed in range(args.seeds):
            t = time.perf_counter()
            model = SpotterModel.build(
                tr["data"].layout, ModelConfig(epochs=args.epochs, seed=seed)
            )
            model.fit(x, y)
            for r_test in rates:
                te = splits[r_test]
                te["data"].layout.check(model.layout, where="held-out features")
                scores = model.predict(te["data"].X[te["test"]])
                key = f"{r_train:g}->{r_test:g}"
                results.setdefault(key, {})[str(seed)] = score(te, scores, args.threshold)
            print(f"trained at {r_train:g} fps, seed {seed}: {time.perf_counter() - t:.0f} s")
    (work / "rates.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    print_tables(results, rates)


def print_tables(results: dict, rates: list[float]) -> None:
    for rule in ("coverage", "iou"):
        for metric in ("recall", "precision", "f1"):
            print(f"\n{metric} ({rule} rule): rows train fps, columns spot fps\n")
            print("| train \\ spot | " + " | ".join(f"{r:g}" for r in rates) + " |")
            print("|---" * (len(rates) + 1) + "|")
            for a in rates:
                cells = []
                for b in rates:
                    v = [s[rule][metric] for s in results[f"{a:g}->{b:g}"].values()]
                    cells.append(f"{np.mean(v):.3f} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.3f}")
                print(f"| {a:g} | " + " | ".join(cells) + " |")
    print("\nrecall (coverage) minus the own-rate model's, same spot rate (mean over seeds):\n")
    print("| train \\ spot | " + " | ".join(f"{r:g}" for r in rates) + " |")
    print("|---" * (len(rates) + 1) + "|")
    mean = {k: np.mean([s["coverage"]["recall"] for s in v.values()]) for k, v in results.items()}
    for a in rates:
        cells = [f"{mean[f'{a:g}->{b:g}'] - mean[f'{b:g}->{b:g}']:+.3f}" for b in rates]
        print(f"| {a:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

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

A held-out check no setting was tuned on: ``--seed 1 --test-photos
heldout-multi_face.jpg,heldout-2008_002506.jpg`` draws new events and noise, and renders the
held-out subjects from two faces that no default corpus uses (pipeline/assets/SOURCES.md).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HELD_OUT = "heldout"  # dataset name of the held-out corpus (--test-photos)


def make_corpus(path: Path, synth) -> float:
    """Write the synthetic corpus at ``path`` unless it is there; seconds spent."""
    from pipeline.synth.generate import SynthConfig, generate_corpus

    t = time.perf_counter()
    manifest = path / "synth_config.json"
    if not manifest.exists():
        generate_corpus(path, synth)
    elif SynthConfig.from_dict(json.loads(manifest.read_text())["config"]) != synth:
        raise SystemExit(f"{path} holds another synthetic corpus: use another --workdir")
    return time.perf_counter() - t


def make_store(work: Path, fps: float, args) -> Path:
    """The rate's corpora and features (made once): all subjects in one corpus, or, with
    ``--test-photos``, the training subjects and a held-out corpus (dataset ``heldout``) of
    people from those photos."""
    from dataclasses import replace

    from cluster.run.executors import make_executor
    from cluster.run.extract import corpus_jobs, load_corpus, renamed, run_extraction
    from cluster.store import Store
    from pipeline.synth.generate import SynthConfig
    from pipeline.vision.config import FeatureConfig

    store_dir = work / f"store-{fps:g}"
    synth = SynthConfig(
        subjects=args.subjects, seconds=args.seconds, fps=fps, width=640, height=360,
        seed=args.seed, micro_per_10s=4.0,
    )  # fmt: skip
    corpora = {"samm": (work / f"corpus-{fps:g}", synth)}
    if args.test_photos:
        test = replace(synth, subjects=args.subjects - args.train, photos=args.test_photos)
        corpora = {
            "samm": (work / f"corpus-{fps:g}", replace(synth, subjects=args.train)),
            HELD_OUT: (work / f"corpus-{fps:g}-heldout", test),
        }
    made = sum(make_corpus(path, cfg) for path, cfg in corpora.values())
    t = time.perf_counter()
    config = FeatureConfig()
    executor = make_executor("ray", num_cpus=args.num_cpus)
    for name, (path, _) in corpora.items():
        data, with_labels = load_corpus(Store.open(str(path)), "samm")
        summary = run_extraction(
            corpus_jobs(renamed(data, name), config, with_labels), Store.open(str(store_dir)),
            config, executor, progress=False,
        )  # fmt: skip
    executor.close()
    print(f"{fps:g} fps: synth {made:.0f} s, extract {time.perf_counter() - t:.0f} s;", end=" ")
    print(summary.lines()[0])
    return store_dir


def held_out(store_dir: Path, n_train: int):
    """The store's dataset, its training and held-out rows, videos and micro truth. Held out:
    the ``heldout`` dataset when there is one, else the subjects after the first ``n_train``."""
    from cluster.run.evaluate import ground_truth
    from cluster.run.training_data import load_dataset
    from cluster.store import Store, paths
    from cluster.store.parquet import read_table

    store = Store.open(str(store_dir))
    data = load_dataset(store, with_magnitude=True)
    datasets = np.asarray(data.table.column("dataset").to_pylist(), dtype=object)
    subjects = sorted(set(data.subjects))
    test = np.isin(data.subjects, subjects[n_train:])
    if HELD_OUT in set(datasets):
        test = datasets == HELD_OUT
    return {
        "data": data,
        "train": ~test & (data.y >= 0),
        "test": test,
        "videos": read_table(store, paths.VIDEOS),
        "truth": ground_truth(store, ("micro",)),
    }


def spot_videos(rows, scores: np.ndarray, threshold: float) -> dict:
    """(dataset, subject, video) -> the spots greedy NMS keeps from that video's windows
    (``rows`` of a features table, ``scores`` one per row)."""
    from pipeline.core.spotting import spot_intervals

    cols = (rows.column(c).to_pylist() for c in ("dataset", "subject", "video"))
    keys = list(zip(*cols, strict=True))
    starts, ends = (rows.column(c).to_numpy() for c in ("start_frame", "end_frame"))
    out = {}
    for key in sorted(set(keys)):
        mine = np.asarray([k == key for k in keys])
        out[key] = spot_intervals(starts[mine], ends[mine], scores[mine], threshold)
    return out


def score(split, scores: np.ndarray, threshold: float) -> dict:
    """Spot the held-out videos from window scores; both rules, pooled."""
    from pipeline.core.metrics import VideoResult, evaluate

    rows = split["data"].table.filter(split["test"])
    videos = {(v["dataset"], v["subject"], v["video"]): v for v in split["videos"].to_pylist()}
    results = [
        VideoResult(
            *key, videos[key]["n_frames"], videos[key]["fps"], spots, split["truth"].get(key, [])
        )
        for key, spots in spot_videos(rows, scores, threshold).items()
    ]
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
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic corpora")
    p.add_argument(
        "--test-photos",
        type=lambda t: tuple(t.split(",")),
        default=(),
        help="held-out people: the held-out subjects are drawn from these photos "
        "(e.g. heldout-multi_face.jpg,heldout-2008_002506.jpg), the others from the default",
    )
    p.add_argument(
        "--pool",
        type=lambda t: [Path(d) for d in t.split(",")],
        help="only print tables pooled over these workdirs' rates.json (one corpus seed each)",
    )
    args = p.parse_args()
    if args.pool:
        return print_pooled(args.pool)
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
                tr["data"].layout, ModelConfig(epochs=args.epochs, seed=seed, extent=False)
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


def print_pooled(workdirs: list[Path]) -> None:
    """Recall (coverage rule) per pair over several corpus seeds: each corpus counts once (its
    mean over model seeds); mean ± std over corpora, then each corpus's gap to the own-rate
    model."""
    runs = [json.loads((w / "rates.json").read_text()) for w in workdirs]
    rates = [float(r) for r in runs[0]["args"]["rates"].split(",")]
    pairs = [(a, b) for a in rates for b in rates]

    def recall(run, a, b):
        return np.mean([s["coverage"]["recall"] for s in run["results"][f"{a:g}->{b:g}"].values()])

    per = {(a, b): np.array([recall(run, a, b) for run in runs]) for a, b in pairs}
    seeds = ", ".join(str(run["args"]["seed"]) for run in runs)
    head = (
        "| train \\ spot | "
        + " | ".join(f"{r:g}" for r in rates)
        + " |\n"
        + "|---" * (len(rates) + 1)
        + "|"
    )
    print(f"\nrecall (coverage rule), corpus seeds {seeds}: mean ± std over corpora\n\n{head}")
    for a in rates:
        cells = [f"{per[a, b].mean():.3f} ± {per[a, b].std(ddof=1):.3f}" for b in rates]
        print(f"| {a:g} | " + " | ".join(cells) + " |")
    print(f"\nminus the own-rate model's: mean over corpora [per corpus]\n\n{head}")
    for a in rates:
        gaps = [per[a, b] - per[b, b] for b in rates]
        cells = [f"{g.mean():+.3f} [{' '.join(f'{x:+.2f}' for x in g)}]" for g in gaps]
        print(f"| {a:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

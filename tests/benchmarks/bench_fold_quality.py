"""Spotting quality of the ways to train the LOSO folds, side by side (run by hand; see
BENCHMARKS.md, "LOSO at SAMM size").

    python tests/benchmarks/bench_fold_quality.py --store mespot-demo/store --workdir W

For each way and seed, copies the store's inputs (features, annotations, videos) into a
fresh store, runs ``mespot train`` there (``--executor local``) and ``mespot evaluate``, and
reads the report: micro F1 under the coverage and the IoU rules, and window AUC. Ways:
``folds`` (one fold at a time, the default), ``stacked`` (every fold in one stack,
``--stack 99``), each on the Keras backend given with ``--backend`` (``jax`` needs jax
installed). Prints one row per run and each way's mean and standard deviation.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

INPUTS = ("features", "feature_config.json", "annotations", "videos")


def fresh_store(source: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in INPUTS:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        elif src.exists():
            shutil.copy(src, dest / name)
    return dest


def run(store: Path, way: str, seed: int, backend: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend}
    cli = [sys.executable, "-m", "cluster.cli"]
    train = [*cli, "train", str(store), "--executor", "local", "--no-progress"]
    train += ["--seed", str(seed)] + (["--stack", "99"] if way == "stacked" else [])
    out = subprocess.run(train, env=env, check=True, capture_output=True, text=True).stdout
    subprocess.run([*cli, "evaluate", str(store)], env=env, check=True, capture_output=True)
    (report,) = (store / "reports").glob("*/report.json")
    r = json.loads(report.read_text())
    lstm = next(k for k in r if k.startswith("LSTM"))
    micro = r[lstm]["micro"]["rules"]
    seconds = float(out.split(" windows (")[1].split(" in ")[1].split(" s")[0])
    return {
        "way": way, "backend": backend, "seed": seed, "train_s": seconds,
        "f1_cov": micro["coverage"]["f1"], "f1_iou": micro["iou"]["f1"],
        "auc": r["auc"][lstm],
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", default="mespot-demo/store")
    p.add_argument("--workdir", default="/tmp/mespot-fold-quality")
    p.add_argument("--ways", default="folds,stacked")
    p.add_argument("--backend", default="tensorflow")
    p.add_argument("--seeds", default="0,1,2")
    args = p.parse_args()
    rows = []
    for way in args.ways.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            dest = Path(args.workdir) / f"{way}-{args.backend}-{seed}" / "store"
            rows.append(run(fresh_store(Path(args.store), dest), way, seed, args.backend))
            print(json.dumps(rows[-1]), flush=True)
    print("| way | backend | seeds | micro F1 (coverage) | micro F1 (IoU) | AUC | train s |")
    print("|---|---|---|---|---|---|---|")
    for way in args.ways.split(","):
        mine = [r for r in rows if r["way"] == way]

        def ms(key: str, rows=mine) -> str:
            v = [r[key] for r in rows]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            return f"{statistics.mean(v):.3f} ± {sd:.3f}"

        print(f"| {way} | {args.backend} | {len(mine)} | {ms('f1_cov')} | {ms('f1_iou')} | "
              f"{ms('auc')} | {ms('train_s')} |")  # fmt: skip


if __name__ == "__main__":
    main()

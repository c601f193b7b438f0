"""LOSO training time per fold and for all folds, 1 and 2 folds in parallel (run by hand).

    python tests/benchmarks/bench_train.py --store mespot-demo/store

Needs a store with labelled features (``mespot demo`` makes one: 5 subjects, 745
windows). Each setting runs as its own process: in-process folds one after another, then
folds as Ray tasks on a local Ray with 1 and 2 CPUs. Per-fold seconds are measured inside
the fold (fit + predict + save); "wall" is the whole ``train_loso`` call (6 fits: 5 folds
and the model on all subjects), without Ray's start-up.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys, time
from cluster.store import Store
from cluster.run.train import train_loso
from pipeline.learn.lstm import ModelConfig
executor, cpus, store = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if executor == "ray":
    import ray
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
s = train_loso(Store.open(store), ModelConfig(), executor=executor, progress=False)
print(json.dumps({"folds": s.folds, "wall": s.wall_seconds, "windows": s.windows}))
"""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", default="mespot-demo/store")
    args = p.parse_args()
    rows = []
    for label, executor, cpus in (
        ("in-process, sequential", "local", 1),
        ("Ray tasks, 1 CPU", "ray", 1),
        ("Ray tasks, 2 CPUs", "ray", 2),
    ):
        env_cmd = [sys.executable, "-c", CHILD, executor, str(cpus), args.store]
        out = subprocess.run(env_cmd, check=True, capture_output=True, text=True, cwd=ROOT)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        folds = list(r["folds"].values())
        rows.append((label, sum(folds) / len(folds), r["wall"], r["windows"]))
    print(f"{rows[0][3]} labelled windows, 5 LOSO folds + 1 model on all subjects, 50 epochs")
    print("| how | mean s per fold | wall s, all folds | speed-up |\n|---|---|---|---|")
    for label, per_fold, wall, _ in rows:
        print(f"| {label} | {per_fold:.1f} | {wall:.1f} | {rows[0][2] / wall:.2f}x |")


if __name__ == "__main__":
    main()

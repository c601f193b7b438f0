"""One training step of stacked folds, the recurrence scanned or unrolled (run by hand; see
BENCHMARKS.md, "The stacked recurrence unrolled").

    taskset -c 0 python tests/benchmarks/bench_stack_step.py --folds 1,8,16
    KERAS_BACKEND=jax taskset -c 0 python tests/benchmarks/bench_stack_step.py --folds 16

Trains pipeline.learn.stacked's networks (the paper's: 2 x 12 LSTM on 27 features, T = 25,
batch 64, one thread) for one epoch of ``--windows`` random windows after a warm-up epoch,
with K folds stacked, once with the recurrence as the backend's default
(``stacked._unrolled``) and once forced the other way, and prints milliseconds per step and
what 50 epochs of SAMM's 15,000 windows would take one stack at that rate.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PAPER_REGIONS = ("right_brow_inner", "left_brow_inner", "mouth_left")
BATCH, T = 64, 25


def step_ms(k: int, unrolled: bool, windows: int) -> float:
    import numpy as np

    from pipeline.learn import stacked
    from pipeline.learn.lstm import ModelConfig
    from pipeline.synth.feature_table import TableShape

    layout = TableShape(subjects=32, timesteps=T, regions=PAPER_REGIONS, cells=0).layout()
    cfg = ModelConfig(units=12, dropout=0.0, classes=2, extent=False, mirror=False,
                      class_weight="none")  # fmt: skip
    rng = np.random.default_rng(0)
    x = rng.standard_normal((windows, T, layout.n_features)).astype(np.float32)
    y = rng.integers(0, 2, windows)
    subjects = np.array([f"{i % 32:03d}" for i in range(windows)], object)
    plan = stacked.FoldPlan.loso(subjects, y >= 0, [f"{i:03d}" for i in range(k)])
    weights, _ = stacked.fold_weights(y, plan.train, cfg)
    targets, _ = stacked._targets(cfg, y, None, weights, plan.train, T)
    default = stacked._unrolled
    stacked._unrolled = lambda t: unrolled
    try:
        nets = stacked.StackedNetworks(layout, cfg, k)
        warm = {key: v[: 10 * BATCH] for key, v in targets.items()}
        nets.net.fit(x[: 10 * BATCH], warm, batch_size=BATCH, epochs=1, verbose=0)
        t0 = time.perf_counter()
        nets.net.fit(x, targets, batch_size=BATCH, epochs=1, verbose=0)
        return 1000 * (time.perf_counter() - t0) / (windows // BATCH)
    finally:
        stacked._unrolled = default


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--folds", default="1,8,16", help="stack sizes K, comma-separated")
    p.add_argument("--windows", type=int, default=6400)
    args = p.parse_args()
    from pipeline.learn.lstm import limit_threads
    from pipeline.learn.runtime import backend

    limit_threads(1)
    steps_50 = 50 * 15_000 // BATCH
    for k in (int(f) for f in args.folds.split(",")):
        for unrolled in (False, True):
            ms = step_ms(k, unrolled, args.windows)
            how = "unrolled" if unrolled else "scanned"
            print(f"{backend()} K={k} {how}: {ms:.1f} ms/step; 50 epochs of 15,000 windows "
                  f"{ms * steps_50 / 1000:.0f} s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

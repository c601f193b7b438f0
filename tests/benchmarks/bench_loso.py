"""LOSO training at SAMM's size on a generated feature table (run by hand; see BENCHMARKS.md).

    KERAS_BACKEND=jax python tests/benchmarks/bench_loso.py --net paper --how stacked --cpus 2
    python tests/benchmarks/bench_loso.py --net default --how folds --cpus 2 --folds 4 --epochs 4

Generates (pipeline.synth.feature_table) a table of ``--subjects`` subjects and ``--windows``
windows of T = ``--timesteps``, reads it as training does (window_arrays), then trains the
LOSO folds (one per subject, plus the model on every subject) with the project's training
code, as ``mespot train`` runs it: ``--how folds`` one task per fold
(cluster.run.train.fit_fold), ``--how stacked`` the folds split into ``--cpus`` stacks
(cluster.run.train_stacked.fit_fold_group). Tasks run in ``--cpus`` worker processes, one
thread each, as Ray runs them on that many CPUs (without Ray's start-up). The backend is
Keras' (``KERAS_BACKEND``).

``--folds N`` trains only the first N fits and ``--epochs E`` fewer epochs, to time a setting
that takes too long in full: the line "extrapolated" then scales the measured training time
(compilation left out, measured apart) to every fold and the recipe's epochs.

``--net paper`` is the paper's network on the paper's features (2 x 12 LSTM, no dropout, two
classes, no extent head, no mirrors, 3 regions x (8 bins + magnitude) = 27 features);
``--net default`` is ModelConfig() on the default features (6 regions, 3 x 3 cells: 162).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PAPER_REGIONS = ("right_brow_inner", "left_brow_inner", "mouth_left")


def _setup(shape_kw: dict, net: str, epochs: int | None):
    """(X, y, steps, subjects, layout, cfg) in a worker, from the same seed as the parent."""
    import numpy as np

    from pipeline.learn.layout import window_arrays
    from pipeline.learn.lstm import ModelConfig
    from pipeline.synth.feature_table import TableShape, generate

    shape = TableShape(**shape_kw)
    made = generate(shape)
    layout = shape.layout()
    x, _, _ = window_arrays(made.table, layout)
    subjects = np.asarray(made.table.column("subject").to_pylist(), dtype=object)
    cfg = ModelConfig()
    if net == "paper":
        cfg = ModelConfig(units=12, dropout=0.0, classes=2, extent=False, mirror=False,
                          class_weight="none")  # fmt: skip
    if epochs is not None:
        from dataclasses import replace

        cfg = replace(cfg, epochs=epochs)
    return x, made.classes.astype(np.int64), made.steps, subjects, layout, cfg


_DATA: dict = {}


def _init(shape_kw: dict, net: str, epochs: int | None) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _DATA["args"] = _setup(shape_kw, net, epochs)


def _task(how: str, folds: tuple) -> dict:
    from cluster.run.train import fit_fold
    from cluster.run.train_stacked import fit_fold_group

    t0 = time.perf_counter()
    args = (*_DATA["args"], "bench")
    if how == "stacked":
        out = fit_fold_group(*args, folds)
        fits = [o[3] for o in out]
    else:
        out = [fit_fold(*args, f) for f in folds]
        fits = [o[2] for o in out]
    return {"folds": len(folds), "seconds": time.perf_counter() - t0, "fit_s": fits}


def _warm(how: str) -> float:
    """Seconds one fold on 2 epochs of 256 windows takes: start-up and compilation."""
    from dataclasses import replace

    from cluster.run.train import fit_fold
    from cluster.run.train_stacked import fit_fold_group

    x, y, steps, subjects, layout, cfg = _DATA["args"]
    pick = slice(None, None, max(1, len(x) // 256))  # windows of every subject
    small = (x[pick], y[pick], steps[pick], subjects[pick], layout, replace(cfg, epochs=2), "w")
    t0 = time.perf_counter()
    if how == "stacked":
        fit_fold_group(*small, (subjects[0], None))
    else:
        fit_fold(*small, subjects[0])
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--subjects", type=int, default=32)
    p.add_argument("--windows", type=int, default=15_000)
    p.add_argument("--timesteps", type=int, default=25)
    p.add_argument("--net", choices=("paper", "default"), default="paper")
    p.add_argument("--how", choices=("folds", "stacked"), default="stacked")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--folds", type=int, default=0, help="train only this many fits (0: all)")
    p.add_argument("--epochs", type=int, default=None, help="fewer epochs than the recipe's")
    args = p.parse_args()
    from pipeline.learn.lstm import ModelConfig
    from pipeline.learn.runtime import backend

    shape_kw = {"subjects": args.subjects, "windows": args.windows, "timesteps": args.timesteps}
    if args.net == "paper":
        shape_kw.update(regions=PAPER_REGIONS, cells=0)
    names = [f"{s + 1:03d}" for s in range(args.subjects)] + [None]
    fits = names[: args.folds] if args.folds else names
    groups = [tuple(fits[i :: args.cpus]) for i in range(args.cpus)]
    if args.how == "folds":
        groups = [(f,) for f in fits]
    ctx = get_context("spawn")
    init = (shape_kw, args.net, args.epochs)
    with ProcessPoolExecutor(args.cpus, mp_context=ctx, initializer=_init, initargs=init) as pool:
        warm = max(pool.map(_warm, [args.how] * args.cpus))  # every worker compiled once
        t0 = time.perf_counter()
        done = list(pool.map(_task, [args.how] * len(groups), groups))
        wall = time.perf_counter() - t0
    recipe = ModelConfig().epochs
    scale = (len(names) / len(fits)) * (recipe / (args.epochs or recipe))
    result = {
        "backend": backend(), "net": args.net, "how": args.how, "cpus": args.cpus,
        "shape": shape_kw, "fits": len(fits), "epochs": args.epochs or recipe,
        "wall_s": round(wall, 1), "warm_s": round(warm, 1),
        "task_s": sorted(round(d["seconds"], 1) for d in done),
        "extrapolated_s": round(wall * scale, 1) if scale != 1 else None,
    }  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()

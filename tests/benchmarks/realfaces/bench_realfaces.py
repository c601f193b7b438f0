"""False positives on real faces: spot the real clips and count spots per marked stretch.

    python tests/benchmarks/realfaces/fetch_realfaces.py --out /tmp/realfaces
    python tests/benchmarks/realfaces/bench_realfaces.py --clips /tmp/realfaces \\
        --model mespot-demo/store/models/<id>/all --workdir /tmp/realfaces-bench

Ingests every clip into a store (``mespot ingest``: the feature config of the model's
store, each clip's own frame rate), scores its windows with ``--model`` (``mespot spot``),
spots micro intervals at each of ``--thresholds`` as ``mespot spot`` does (runs of the
extent head's profile, or greedy NMS over windows for a model without one or with
``--window-spots``) and matches
them to the hand-marked stretches of ``clips.csv``: a spot counts on a still stretch when
it lies wholly inside it (a false positive on a still face), on any other stretch when at
least half of its frames lie inside it. Prints, per kind of stretch
(still, blink, expression, talking, head motion), the seconds marked, the spots on them and
spots per minute, and per clip the spots on all of its footage; writes ``realfaces.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent


def marks(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["start_frame"], r["end_frame"] = int(r["start_frame"]), int(r["end_frame"])
    return rows


def run(args) -> dict:
    """Ingest and spot the clips; spots per kind of stretch and per clip at each threshold."""
    import pyarrow.dataset as ds

    from cluster.cli import main as mespot

    store = Path(args.workdir) / "store"
    local = ["--executor", args.executor, "--no-progress"]
    # The features the model was trained on: its store's feature config.
    config = Path(args.model).resolve().parents[2] / "feature_config.json"
    if config.exists():
        local += ["--config", str(config)]
    if mespot(["ingest", str(args.clips), str(store), "--dataset-name", "real", *local]) != 0:
        raise SystemExit("ingest failed")
    if mespot(["spot", args.model, str(store), str(store)]) != 0:
        raise SystemExit("spot failed")
    videos, preds = (
        ds.dataset(store / name, format="parquet").to_table() for name in ("videos", "predictions")
    )
    by_clip = {Path(v["uri"]).name: v for v in videos.to_pylist()}
    return {
        f"{t:g}": spots_at(
            micro_spots(preds, videos, t, args.window_spots), by_clip, marks(Path(args.marks)),
            args.clips,
        )
        for t in args.thresholds
    }  # fmt: skip


def micro_spots(preds, videos, threshold: float, window_spots: bool) -> dict:
    """(subject, video) -> its micro spots (start, end, score) at ``threshold``, as
    ``mespot spot`` spots them (cluster.run.spot.spot_table)."""
    import pyarrow.compute as pc

    from cluster.run.spot import EXTENTS, spot_table

    table = spot_table(preds, videos, threshold, extents=None if window_spots else EXTENTS)
    spots = defaultdict(list)
    for r in table.filter(pc.equal(table.column("kind"), "micro")).to_pylist():
        spots[(r["subject"], r["video"])].append((r["start_frame"], r["end_frame"], r["score"]))
    return spots


def spots_at(spots: dict, by_clip: dict, rows: list[dict], clips: str) -> dict:
    """Spots on each marked stretch (>= half inside; wholly inside a still one) and per clip."""
    kinds: dict[str, dict] = defaultdict(lambda: {"stretches": 0, "seconds": 0.0, "spots": 0})
    for m in rows:
        v = by_clip.get(m["clip"])
        if v is None:
            raise SystemExit(f"{m['clip']}: in clips.csv but not ingested from {clips}")
        lo, hi = m["start_frame"], m["end_frame"]
        # A spot is a false positive on a still face only when it lies wholly inside the
        # still stretch (one reaching into the next stretch may hold an expression's onset);
        # on the other kinds a spot counts when at least half of it lies inside.
        need = 1.0 if m["kind"] == "still" else 0.5
        inside = [
            s
            for s in spots.get((v["subject"], v["video"]), [])
            if min(s[1], hi) - max(s[0], lo) + 1 >= need * (s[1] - s[0] + 1)
        ]
        k = kinds[m["kind"]]
        k["stretches"] += 1
        k["seconds"] += (hi - lo + 1) / v["fps"]
        k["spots"] += len(inside)
    for k in kinds.values():
        k["spots_per_min"] = 60 * k["spots"] / k["seconds"] if k["seconds"] else 0.0
    per_clip = {}
    for name, v in by_clip.items():
        n, seconds = len(spots.get((v["subject"], v["video"]), [])), v["n_frames"] / v["fps"]
        per_clip[name] = {"fps": v["fps"], "seconds": seconds, "spots": n}
        per_clip[name]["spots_per_min"] = 60 * n / seconds
    return {"kinds": dict(kinds), "clips": per_clip}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--clips", required=True, help="folder from fetch_realfaces.py")
    p.add_argument("--model", required=True, help="model folder, e.g. STORE/models/<id>/all")
    p.add_argument("--workdir", default="/tmp/realfaces-bench")
    p.add_argument("--marks", default=str(HERE / "clips.csv"))
    p.add_argument("--thresholds", default="0.5,0.7,0.9", help="spotting thresholds to report")
    p.add_argument("--executor", choices=("ray", "local"), default="local")
    p.add_argument("--window-spots", action="store_true", help="greedy NMS over windows")
    args = p.parse_args()
    args.thresholds = [float(t) for t in args.thresholds.split(",")]
    out = run(args)
    kinds = sorted({k for r in out.values() for k in r["kinds"]})
    print("\nspots per minute on each kind of marked stretch (seconds marked), by threshold\n")
    print("| threshold | " + " | ".join(kinds) + " |")
    print("|---" * (len(kinds) + 1) + "|")
    first = next(iter(out.values()))["kinds"]
    print("| (seconds) | " + " | ".join(f"{first[k]['seconds']:.1f}" for k in kinds) + " |")
    for t, r in out.items():
        cells = [f"{r['kinds'][k]['spots_per_min']:.1f} ({r['kinds'][k]['spots']})" for k in kinds]
        print(f"| {t} | " + " | ".join(cells) + " |")
    names = sorted(first_clips := next(iter(out.values()))["clips"])
    print("\nspots per minute on each whole clip, by threshold\n")
    print("| clip | fps | seconds | " + " | ".join(out) + " |")
    print("|---" * (len(out) + 3) + "|")
    for n in names:
        c = first_clips[n]
        cells = [f"{r['clips'][n]['spots_per_min']:.1f}" for r in out.values()]
        print(f"| {n} | {c['fps']:.3f} | {c['seconds']:.1f} | " + " | ".join(cells) + " |")
    path = Path(args.workdir) / "realfaces.json"
    path.write_text(json.dumps({"args": vars(args), "by_threshold": out}, indent=1))
    print(f"\n{path}")


if __name__ == "__main__":
    main()

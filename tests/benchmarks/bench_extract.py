"""Feature extraction cost on a synthetic SAMM-like video (run by hand; see BENCHMARKS.md).

    python tests/benchmarks/bench_extract.py --workdir /tmp/mespot-bench

Makes (once) 2040x1088, 200 fps synthetic videos of 20 s and 60 s, then, each in a
fresh subprocess pinned to one core:

- CPU seconds per second of video, split by stage (decode, detect + landmarks, warp,
  flow, HOOF), for the 20 s video;
- a decode-only pass over exactly the frames the windows read, and the ratio;
- peak resident memory of extracting the 20 s and the 60 s video;
- with ``--compare-paper``, the features from before issue 13 (the paper's three regions,
  no cell flow, nose-ridge compensation, one-step flow) on the same video, alternating with the
  default's and the default's without the cell refinement, median of 3 runs each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def make_video(workdir: Path, seconds: float) -> Path:
    from pipeline.synth.generate import SynthConfig, generate_corpus

    out = workdir / f"corpus-{int(seconds)}s"
    if not (out / "synth_config.json").exists():
        t0 = time.perf_counter()
        generate_corpus(
            out,
            SynthConfig(subjects=1, videos=1, seconds=seconds, fps=200, width=2040, height=1088),
        )
        print(f"synthesised {seconds:.0f} s in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return out


def child(corpus: str, mode: str, reduce: int, detect_every: int = 1) -> dict:
    """Runs in the pinned subprocess: extract (or only decode) the corpus's one video."""
    import cv2

    cv2.setNumThreads(1)
    from pipeline.datasets import read_samm
    from pipeline.vision.config import PAPER_REGIONS, FeatureConfig
    from pipeline.vision.features import StageTimer, WindowExtractor, extract_video
    from pipeline.vision.frames import open_frames

    cfg = FeatureConfig(decode_reduce=reduce, detect_every=detect_every)
    if mode == "paper":
        # The features before issue 13: the paper's regions, no cells, nose-ridge
        # compensation, flow between consecutive steps.
        cfg = FeatureConfig(
            decode_reduce=reduce, regions=PAPER_REGIONS, cells=0, stabilise="nose", flow_span=1
        )
    elif mode == "unrefined":  # the default's cells as the dense flow's means alone
        cfg = FeatureConfig(decode_reduce=reduce, cell_refine=False)
    rec = read_samm(corpus, fps=200.0).videos[0]
    windows = cfg.grid(rec.fps).windows(rec.n_frames)
    t0 = time.process_time()
    timer = StageTimer()
    if mode == "decode":
        frames = sorted({i for w in windows for i in w.sample_frames()})
        with open_frames(rec.uri, fps=rec.fps, reduce=reduce) as src:
            for _ in src.read_many(frames):
                pass
        n_rows = n_face = len(frames)
    else:
        extractor = WindowExtractor(cfg)
        t0 = time.process_time()  # model loading is once per worker, not per video
        table = extract_video(rec, [], extractor, timer=timer)
        n_rows, n_face = table.num_rows, sum(table.column("face_found").to_pylist())
    cpu = time.process_time() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "process_s": usage.ru_utime + usage.ru_stime,  # the whole process, imports included
        "video_s": rec.n_frames / rec.fps,
        "cpu_s": cpu,
        "stages": dict(timer.seconds),
        "rows": n_rows,
        "with_face": n_face,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


#: The core every measurement is pinned to (``--core``).
CORE = [0]
#: FeatureConfig.detect_every of every run (``--detect-every``).
DETECT_EVERY = [1]


def run_child(corpus: Path, mode: str, reduce: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = [
        "taskset",
        "-c",
        str(CORE[0]),
        sys.executable,
        __file__,
        "--child",
        str(corpus),
        mode,
        str(reduce),
        str(DETECT_EVERY[0]),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", default="/tmp/mespot-bench")
    p.add_argument("--reduce", type=int, default=1, help="JPEG decode reduction (1, 2, 4, 8)")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--compare-paper", action="store_true", help="default vs paper features")
    p.add_argument("--detect-every", type=int, default=1, help="FeatureConfig.detect_every")
    p.add_argument("--core", type=int, default=0, help="the core to pin every run to")
    p.add_argument("--runs", type=int, default=1, help="runs of each, alternating (median)")
    p.add_argument("--no-long", action="store_true", help="skip the 60 s video (memory)")
    args = p.parse_args()
    CORE[0] = args.core
    DETECT_EVERY[0] = args.detect_every
    if args.child:
        print(
            json.dumps(child(args.child[0], args.child[1], int(args.child[2]), int(args.child[3])))
        )
        return
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    if args.compare_paper:
        compare_paper(make_video(work, 20), args.reduce)
        return
    c20 = make_video(work, 20)
    full, dec = median_runs(c20, args.reduce, args.runs)
    vs = full["video_s"]
    print(f"video: 2040x1088, 200 fps, {vs:.0f} s; decode reduce {args.reduce}; core {args.core}")
    print(f"windows: {full['rows']} ({full['with_face']} with a face)")
    print("| stage | CPU s per video s |\n|---|---|")
    for k in ("decode", "detect", "warp", "flow", "hoof", "refine"):
        print(f"| {k} | {full['stages'].get(k, 0.0) / vs:.3f} |")
    print(f"| **total** | **{full['cpu_s'] / vs:.3f}** |")
    print(f"decode-only pass: {dec['cpu_s'] / vs:.3f} CPU s per video s ({dec['rows']} frames)")
    print(f"ratio extract / decode-only: {full['cpu_s'] / dec['cpu_s']:.2f}")
    print(
        f"whole processes (imports, face model): extract {full['process_s']:.2f} CPU s, "
        f"decode-only {dec['process_s']:.2f}, ratio {full['process_s'] / dec['process_s']:.2f}"
    )
    if args.no_long:
        print(f"peak RSS: {full['peak_rss_mb']:.0f} MB for 20 s")
        return
    long = run_child(make_video(work, 60), "extract", args.reduce)
    print(
        f"peak RSS: {full['peak_rss_mb']:.0f} MB for 20 s, {long['peak_rss_mb']:.0f} MB for "
        f"{long['video_s']:.0f} s ({100 * (long['peak_rss_mb'] / full['peak_rss_mb'] - 1):+.1f}%)"
    )


def median_runs(corpus: Path, reduce: int, runs: int) -> tuple[dict, dict]:
    """The extract and decode-only runs (alternating) of median CPU time, stages medians."""
    import statistics

    got = {"extract": [], "decode": []}
    for _ in range(runs):
        for mode, out in got.items():
            out.append(run_child(corpus, mode, reduce))
    for mode, out in got.items():
        print(f"{mode} CPU s: " + ", ".join(f"{r['cpu_s']:.2f}" for r in out), file=sys.stderr)
    full, dec = (sorted(out, key=lambda r: r["cpu_s"])[len(out) // 2] for out in got.values())
    stages = {
        k: statistics.median(r["stages"].get(k, 0.0) for r in got["extract"])
        for k in got["extract"][0]["stages"]
    }
    return {**full, "stages": stages}, dec


def compare_paper(corpus: Path, reduce: int) -> None:
    """CPU s per video s of the default features and the paper's, runs alternating."""
    import statistics

    runs = {"extract": [], "paper": [], "unrefined": []}
    stages = {mode: [] for mode in runs}
    for _ in range(3):
        for mode, out in runs.items():
            res = run_child(corpus, mode, reduce)
            out.append(res["cpu_s"] / res["video_s"])
            stages[mode].append({k: v / res["video_s"] for k, v in res["stages"].items()})
    med = {mode: statistics.median(v) for mode, v in runs.items()}
    print("| features | CPU s per video s (median of 3) | runs | stages (median) |")
    print("|---|---|---|---|")
    before = "before (3 regions, no cells, nose, one-step flow)"
    names = (("paper", before), ("unrefined", "default, cells unrefined"), ("extract", "default"))
    for mode, name in names:
        per = {k: statistics.median(s[k] for s in stages[mode]) for k in stages[mode][0]}
        split = ", ".join(f"{k} {v:.3f}" for k, v in per.items())
        each = ", ".join(f"{x:.3f}" for x in runs[mode])
        print(f"| {name} | {med[mode]:.3f} | {each} | {split} |")
    print(f"default / before: {med['extract'] / med['paper']:.3f}")


if __name__ == "__main__":
    main()

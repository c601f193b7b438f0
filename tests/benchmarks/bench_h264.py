"""Feature extraction from a 1080p H.264 file against a plain decode of it (run by hand).

    python tests/benchmarks/bench_h264.py --workdir /tmp/mespot-bench

Makes (once) a 1920x1080 H.264 file (libx264, CRF 20, yuv420p, 50 fps, 20 s) from every 4th
frame of bench_extract.py's 200 fps synthetic video, then, each in a fresh subprocess pinned
to one core with OpenCV on one thread, alternating, ``--runs`` times:

- ``decode``: a plain decode of every frame with OpenCV (``VideoCapture.read``), the reader
  extraction uses;
- ``extract``: the default features of every window (pipeline.vision.features.extract_video).

Every frame of an H.264 file must be decoded whichever frames the windows read, so the plain
decode is the floor. Reports CPU seconds of the work (after imports and the face model's
load) and of the whole process, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from bench_extract import make_video  # noqa: E402


def make_h264(workdir: Path) -> Path:
    import av
    import cv2

    out = workdir / "samm-1080p-50fps.mp4"
    if out.exists():
        return out
    frames = sorted((make_video(workdir, 20) / "SAMM_longvideos").glob("*/*.jpg"))[::4]
    tmp = out.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=50)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for path in frames:
            grey = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (1920, 1080),
                              interpolation=cv2.INTER_AREA)  # fmt: skip
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB), "rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    tmp.rename(out)
    return out


def child(path: str, mode: str) -> dict:
    import cv2

    cv2.setNumThreads(1)
    from pipeline.datasets.corpus import video_record
    from pipeline.vision.config import FeatureConfig
    from pipeline.vision.features import WindowExtractor, extract_video
    from pipeline.vision.frames import open_frames

    with open_frames(path) as frames:
        record = video_record(frames, "bench", "s", "v", frames.fps)
    n = 0
    if mode == "decode":
        t0 = time.process_time()
        cap = cv2.VideoCapture(path)
        while cap.read()[0]:
            n += 1
        cap.release()
    else:
        extractor = WindowExtractor(FeatureConfig())
        t0 = time.process_time()
        n = extract_video(record, [], extractor).num_rows
    work = time.process_time() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"work_s": work, "process_s": usage.ru_utime + usage.ru_stime, "n": n,
            "video_s": record.n_frames / record.fps}  # fmt: skip


def run_child(path: Path, mode: str, core: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = ["taskset", "-c", str(core), sys.executable, __file__, "--child", str(path), mode]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", default="/tmp/mespot-bench")
    p.add_argument("--core", type=int, default=0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    path = make_h264(Path(args.workdir))
    runs: dict[str, list[dict]] = {"decode": [], "extract": []}
    for _ in range(args.runs):
        for mode, out in runs.items():
            out.append(run_child(path, mode, args.core))
    med = {m: {k: statistics.median(r[k] for r in rs) for k in ("work_s", "process_s")}
           for m, rs in runs.items()}  # fmt: skip
    vs = runs["decode"][0]["video_s"]
    n_frames, n_windows = runs["decode"][0]["n"], runs["extract"][0]["n"]
    print(f"{path.name}: {vs:.0f} s, {n_frames} frames, {n_windows} windows; median of "
          f"{args.runs}, core {args.core}")  # fmt: skip
    print("| | work CPU s | whole process CPU s | work CPU s per video s |\n|---|---|---|---|")
    for m in ("decode", "extract"):
        print(f"| {m} | {med[m]['work_s']:.2f} | {med[m]['process_s']:.2f} | "
              f"{med[m]['work_s'] / vs:.3f} |")  # fmt: skip
    ext, dec = med["extract"], med["decode"]
    print(f"ratio extract / decode: work {ext['work_s'] / dec['work_s']:.2f}, "
          f"whole process {ext['process_s'] / dec['process_s']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()

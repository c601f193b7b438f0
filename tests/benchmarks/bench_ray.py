"""Extraction of one corpus in-process vs on a local Ray with 1 and 2 CPUs (run by hand).

    python tests/benchmarks/bench_ray.py --workdir /tmp/mespot-bench

Uses the two SAMM-like videos of bench_extract.py (2040x1088, 200 fps, 20 s and 60 s;
made if missing) as two recording sessions and runs ``mespot ingest`` on them three
ways, each into a fresh store, each as its own process. Reports the whole command's
wall time (including Ray's start) and the run's own wall time (from its summary:
planning, extraction and commits, with the cluster already up).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_extract import make_video  # noqa: E402


def run(sessions: Path, store: Path, *extra: str) -> tuple[float, dict]:
    cmd = [
        sys.executable,
        "-m",
        "cluster.cli",
        "ingest",
        str(sessions),
        str(store),
        "--fps",
        "200",
        "--no-progress",
        *extra,
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=HERE.parents[1])
    wall = time.perf_counter() - t0
    (summary,) = (store / "runs").glob("*.json")
    return wall, json.loads(summary.read_text())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", default="/tmp/mespot-bench")
    args = p.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    sessions = work / "sessions"
    sessions.mkdir(exist_ok=True)
    for seconds, name in ((20, "s20"), (60, "s60")):
        corpus = make_video(work, seconds)
        link = sessions / name
        if not link.exists():
            link.symlink_to(corpus / "SAMM_longvideos" / "006_1")
    rows = []
    for label, extra in (
        ("single process", ["--executor", "local"]),
        ("Ray, 1 CPU", ["--executor", "ray", "--num-cpus", "1"]),
        ("Ray, 2 CPUs", ["--executor", "ray", "--num-cpus", "2"]),
    ):
        store = work / f"store-{int(time.time())}-{label.replace(' ', '').replace(',', '')}"
        wall, summary = run(sessions, store, *extra)
        rows.append(
            (label, wall, summary["wall_seconds"], summary["windows"], summary["video_seconds"])
        )
    base_wall, base_run = rows[0][1], rows[0][2]
    print(
        f"corpus: 2 sessions, {rows[0][4]:.0f} s of 2040x1088 200-fps video, {rows[0][3]} windows"
    )
    print("| how | command wall s | run wall s | speed-up (command) | speed-up (run) |")
    print("|---|---|---|---|---|")
    for label, wall, run_s, _, _ in rows:
        speedups = f"{base_wall / wall:.2f}x | {base_run / run_s:.2f}x"
        print(f"| {label} | {wall:.1f} | {run_s:.1f} | {speedups} |")


if __name__ == "__main__":
    main()

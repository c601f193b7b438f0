"""Ray fan-out: same features as in-process, reruns skip, killed workers and drivers."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest

from cluster.cli import main
from cluster.run.jobs import compute_chunk

pytestmark = pytest.mark.slow
TASK = f"ray::{compute_chunk.__name__}"


def features(store: Path):
    t = ds.dataset(store / "features", format="parquet").to_table()
    return t.sort_by([("video", "ascending"), ("window", "ascending")])


def extract(corpus: Path, store: Path, *extra: str) -> int:
    return main(["extract", str(corpus), str(store), "--no-progress", *extra])


@pytest.fixture(scope="module")
def clean_store(tiny_corpus, tmp_path_factory):
    """The tiny corpus extracted in-process: the reference every other run must match."""
    store = tmp_path_factory.mktemp("clean") / "store"
    assert extract(tiny_corpus, store, "--executor", "local") == 0
    return store


def assert_same_windows(store: Path, reference: Path) -> None:
    got, want = features(store), features(reference)
    assert got.num_rows == want.num_rows
    keys = list(zip(got.column("video").to_pylist(), got.column("window").to_pylist(), strict=True))
    assert len(set(keys)) == len(keys), "duplicate windows"
    assert keys == list(
        zip(want.column("video").to_pylist(), want.column("window").to_pylist(), strict=True)
    )
    assert got.column("face_found").to_pylist() == want.column("face_found").to_pylist()
    for a, b in zip(got.column("hoof").to_pylist(), want.column("hoof").to_pylist(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert not [p for p in store.rglob("*") if p.name.endswith(".partial")]


def test_ray_chunks_give_the_features_of_one_process(ray_local, tiny_corpus, clean_store, tmp_path):
    store = tmp_path / "ray"
    # 3 windows per task: each video is split over several tasks and workers.
    assert extract(tiny_corpus, store, "--executor", "ray", "--chunk-windows", "3") == 0
    assert_same_windows(store, clean_store)


def test_rerun_skips_done_videos(ray_local, tiny_corpus, tmp_path, capsys):
    store = tmp_path / "s"
    assert extract(tiny_corpus, store, "--executor", "ray") == 0
    capsys.readouterr()
    assert extract(tiny_corpus, store, "--executor", "ray") == 0
    out = capsys.readouterr().out
    assert "0 videos extracted, 2 already done" in out


def _worker_pids() -> list[int]:
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if cmd.strip() == TASK:
            pids.append(int(pid))
    return pids


def test_killed_worker_is_retried_and_nothing_is_lost(
    ray_local, tiny_corpus, clean_store, tmp_path
):
    store = tmp_path / "k"
    killed: list[int] = []
    stop = threading.Event()

    def killer():
        while not stop.is_set() and not killed:
            for pid in _worker_pids():
                os.kill(pid, signal.SIGKILL)  # as the OS's OOM killer would
                killed.append(pid)
                break
            time.sleep(0.005)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        assert extract(tiny_corpus, store, "--executor", "ray", "--chunk-windows", "1") == 0
    finally:
        stop.set()
        thread.join()
    assert killed, "no worker was caught running a chunk"
    assert_same_windows(store, clean_store)


def test_killed_driver_then_rerun_gives_a_clean_result(tiny_corpus, clean_store, tmp_path):
    # Four videos so that the run is caught between commits.
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    videos = corpus / "SAMM_longvideos"
    for src in sorted(videos.iterdir()):
        dst = videos / f"{src.name[:3]}_2"
        dst.mkdir()
        for f in src.iterdir():
            shutil.copy(f, dst / f.name.replace(src.name, dst.name))
    store = tmp_path / "d"
    cmd = [
        sys.executable,
        "-m",
        "cluster.cli",
        "extract",
        str(corpus),
        str(store),
        "--executor",
        "local",
        "--no-progress",
        "--chunk-windows",
        "2",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    commits = store / "_commits"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if commits.exists() and len(list(commits.rglob("*.json"))) >= 1:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(commits.rglob("*.json")))
    assert 1 <= done_before < 4
    # What a reader sees now is only whole videos.
    partial = features(store)
    assert set(partial.column("video").to_pylist()) <= {"006_1", "007_1", "006_2", "007_2"}
    assert extract(corpus, store, "--executor", "local") == 0
    reference = tmp_path / "ref"
    assert extract(corpus, reference, "--executor", "local") == 0
    assert_same_windows(store, reference)
    # The copies of 006_1 / 007_1 have the same frames, hence the same windows.
    t = features(store)
    assert t.num_rows == 2 * features(clean_store).num_rows

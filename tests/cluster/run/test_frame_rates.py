"""Frame rates: one store and one LOSO over corpora of 200 and 30 fps, a variable-rate video
windowed by its timestamps, a rate too low for the flow step, and stores from before the
time grid refused with how to re-extract."""

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import pyarrow.dataset as ds
import pytest

from cluster.cli import main
from pipeline.vision.config import PAPER_REGIONS, FeatureConfig

LOCAL = ["--executor", "local", "--no-progress"]
ASSETS = Path(__file__).resolve().parents[3] / "pipeline" / "assets"


def table(out: Path, name: str):
    return ds.dataset(out / name, format="parquet").to_table()


def face_video(path: Path, times_ms: list[int]) -> Path:
    """A still face (a real photo) with a frame at each of ``times_ms``, in Matroska."""
    img = cv2.imread(str(ASSETS / "0-f15-hao-ph.jpg"), cv2.IMREAD_COLOR)
    frame = cv2.resize(img, (320, 320))[:, :, ::-1].copy()
    tb = Fraction(1, 1000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4")
        stream.width, stream.height, stream.pix_fmt = 320, 320, "yuv420p"
        stream.time_base = stream.codec_context.time_base = tb
        for t in times_ms:
            f = av.VideoFrame.from_ndarray(frame, format="rgb24")
            f.pts, f.time_base = t, tb
            container.mux(stream.encode(f))
        container.mux(stream.encode(None))
    return path


def test_a_variable_rate_video_is_windowed_by_its_timestamps(tmp_path):
    # ~30 fps for 1.5 s with frames dropped: 10 consecutive frames missing after 0.5 s.
    times = [round(i * 1000 / 30) for i in range(46) if not 15 <= i < 25]
    video = face_video(tmp_path / "vfr.mkv", times)
    out = tmp_path / "store"
    assert main(["extract", str(video), str(out), "--dataset", "video", *LOCAL]) == 0
    (rec,) = table(out, "videos").to_pylist()
    assert rec["variable_rate"] is True and rec["n_frames"] == len(times)
    rows = sorted(table(out, "features").to_pylist(), key=lambda r: r["window"])
    assert rows and all(r["n_timesteps"] == 13 for r in rows)
    for r in rows:  # seconds come from the timestamps, not from frame / mean fps
        assert r["start_s"] == pytest.approx(times[r["start_frame"]] / 1000, abs=1e-3)
        assert r["end_s"] == pytest.approx(times[r["end_frame"]] / 1000, abs=1e-3)
    # Windows start every 0.2 s of time, at the frame nearest to it: 0, 0.2 and 0.4 s, then
    # 0.467 s (the last frame before the gap is nearest to 0.6 s), 0.833 s (the first after
    # it, nearest to 0.8 s); then a tail window ending on the last frame (1.5 s).
    starts = [round(r["start_s"], 3) for r in rows]
    assert starts == [0.0, 0.2, 0.4, 0.467, 0.833, 0.967]
    assert all(r["face_found"] for r in rows)
    assert rows[-1]["end_frame"] == len(times) - 1


def test_a_frame_rate_too_low_for_the_flow_step_is_skipped_with_why(tmp_path, capsys):
    video = face_video(tmp_path / "slow.mkv", [50 * i for i in range(30)])  # 20 fps
    out = tmp_path / "store"
    assert main(["extract", str(video), str(out), "--dataset", "video", *LOCAL]) == 0
    said = capsys.readouterr().out
    assert "skipped video/slow/slow: 20 fps is too low for a flow step of 0.04 s" in said
    assert "needs about 24 fps or more" in said


def test_a_store_from_before_the_time_grid_is_refused_with_how_to_re_extract(tmp_path, capsys):
    store = tmp_path / "old"
    store.mkdir()
    old = FeatureConfig(flow_step_s=1 / 50).to_dict()  # as mespot wrote it: no "format"
    (store / "feature_config.json").write_text(json.dumps({**old, "config_id": "0123456789ab"}))
    assert main(["train", str(store), "--executor", "local", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "features from an older mespot" in err and "counted in frames" in err
    assert "mespot extract CORPUS NEW_STORE" in err


@pytest.mark.parametrize(
    ("fmt", "why"),
    [
        ("mespot-features/2", "labels counted a window's frames"),
        ("mespot-features/3", "they lack the cell flow"),
    ],
)
def test_a_store_of_an_older_format_is_refused_with_how_to_re_extract(tmp_path, capsys, fmt, why):
    store = tmp_path / "old"
    store.mkdir()
    old = {"format": fmt, **FeatureConfig(regions=PAPER_REGIONS, cells=0).to_dict()}
    (store / "feature_config.json").write_text(json.dumps(old))
    assert main(["train", str(store), "--executor", "local", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"format '{fmt}'" in err and why in err
    assert "mespot extract CORPUS NEW_STORE" in err


@pytest.mark.slow
def test_one_loso_over_a_corpus_of_200_and_30_fps_subjects(tmp_path, capsys):
    out = tmp_path / "store"
    for fps, seconds in ((200, 4), (30, 8)):
        corpus = tmp_path / f"synth{fps}"
        synth = ["synth", str(corpus), "--subjects", "2", "--seconds", str(seconds)]
        assert main([*synth, "--fps", str(fps), "--seed", str(fps), "--no-progress"]) == 0
        extract = ["extract", str(corpus), str(out), "--dataset-name", f"synth{fps}"]
        assert main([*extract, *LOCAL]) == 0
    feats = table(out, "features")
    assert set(feats.column("n_timesteps").to_pylist()) == {13}  # one layout for both rates
    rates = {(r["dataset"], r["fps"]) for r in table(out, "videos").to_pylist()}
    assert rates == {("synth200", 200.0), ("synth30", 30.0)}
    capsys.readouterr()
    assert main(["train", str(out), "--epochs", "2", *LOCAL]) == 0
    said = capsys.readouterr().out
    assert "4 LOSO folds" in said
    folds = {p.name for p in (out / "models").glob("*/fold=*")}
    assert folds == {f"fold=synth{f}:{s}" for f in (200, 30) for s in ("006", "007")}
    preds = table(out, "predictions")
    assert set(preds.column("dataset").to_pylist()) == {"synth200", "synth30"}


def test_spots_of_a_variable_rate_video_take_their_frames_own_times():
    from cluster.run.spot import frame_seconds, spot_table
    from schemas import VIDEOS, WINDOW_FEATURES, WINDOW_PREDICTIONS, conform

    # Two windows of one video whose frame 10 is at 0.9 s (frames 0..10 uneven in time).
    key = {"dataset": "d", "subject": "s", "video": "v"}
    windows = [(0, 6, 0.0, 0.5, 0.9), (4, 10, 0.3, 0.9, 0.2)]  # start, end, s0, s1, score
    feats = conform(
        [
            {**key, "window": i, "start_frame": a, "end_frame": b, "start_s": s0, "end_s": s1,
             "face_found": False, "n_timesteps": 13, "n_regions": 6, "n_bins": 8, "n_cells": 3,
             "config_id": "x"}
            for i, (a, b, s0, s1, _) in enumerate(windows)
        ],
        WINDOW_FEATURES,
    )  # fmt: skip
    preds = conform(
        [
            {**key, "model_id": "m", "fold": "none", "window": i, "start_frame": a,
             "end_frame": b, "score": p}
            for i, (a, b, _, _, p) in enumerate(windows)
        ],
        WINDOW_PREDICTIONS,
    )  # fmt: skip
    videos = conform(
        [{**key, "uri": "v.mkv", "source_kind": "video", "fps": 11.0, "n_frames": 11,
          "width": 8, "height": 8, "first_frame_number": 0, "fingerprint": "f",
          "variable_rate": True}],
        VIDEOS,
    )  # fmt: skip
    plain = spot_table(preds, videos, 0.5).to_pylist()
    timed = spot_table(preds, videos, 0.5, seconds=frame_seconds(feats)).to_pylist()
    assert [(r["start_frame"], r["end_frame"]) for r in timed] == [(0, 6)]
    assert (plain[0]["start_s"], plain[0]["end_s"]) == (0.0, pytest.approx(6 / 11))
    assert (timed[0]["start_s"], timed[0]["end_s"]) == (0.0, 0.5)  # frame 6's own time

"""Frame times from the container: constant vs variable frame rate, a missing or wrong rate,
and the reconciling of timestamps with the frame count, on videos written here with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import fsspec
import numpy as np
import pytest

from pipeline.datasets.generic import read_generic
from pipeline.vision import frame_times as ft
from pipeline.vision import video_frames
from pipeline.vision.frames import FolderFrames, FrameError, VideoFrames, open_frames

# Irregular presentation times (ms): gaps of one, two and four 1/30 s frames.
VFR_MS = [0, 33, 66, 133, 166, 300, 333, 366, 500, 533]
VFR_MEAN_FPS = (len(VFR_MS) - 1) / 0.533
H, W = 48, 64


def _image(i: int) -> np.ndarray:
    """RGB (H, W, 3), a distinct smooth image per i."""
    y, x = np.mgrid[0:H, 0:W]
    grey = ((x * 3 + y * 2 + i * 20) % 200 + 20).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _write(
    path: Path,
    pts: list[int],
    time_base: Fraction,
    codec: str = "mpeg4",
    rate: int | None = None,
    fmt: str | None = None,
) -> Path:
    """Encode len(pts) frames, frame i at pts[i] * time_base seconds."""
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate) if rate else container.add_stream(codec)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.time_base = stream.codec_context.time_base = time_base
        for i, t in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(_image(i), format="rgb24")
            frame.pts, frame.time_base = t, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _cfr(path: Path, n: int = 10, fps: int = 30) -> Path:
    return _write(path, list(range(n)), Fraction(1, fps), rate=fps)


def _vfr(path: Path) -> Path:
    return _write(path, VFR_MS, Fraction(1, 1000))


def _opencv_stamps_ms(path: Path) -> list[float]:
    """CAP_PROP_POS_MSEC of every frame OpenCV decodes."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    stamps = []
    while cap.grab():
        stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
    cap.release()
    return stamps


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_constant_rate_video_has_no_frame_times(tmp_path: Path, ext: str) -> None:
    # Matroska keeps milliseconds: frames at 0, 33, 67, 100 ... ms, off 1/30 s by < 0.5 ms.
    path = _cfr(tmp_path / f"cfr.{ext}")
    with VideoFrames(str(path)) as v:
        assert v.n_frames == 10 and v.fps == pytest.approx(30.0)
        assert v.frame_times() is None and v.variable_rate is False
        assert [i for i, _ in v.read_many(range(10))] == list(range(10))


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_variable_rate_video_gives_the_written_times(tmp_path: Path, ext: str) -> None:
    path = _vfr(tmp_path / f"vfr.{ext}")
    with VideoFrames(str(path)) as v:
        times = v.frame_times()
        assert times is not None and v.variable_rate is True
        assert times.dtype == np.float64 and times[0] == 0.0
        np.testing.assert_allclose(times, np.array(VFR_MS) / 1000, atol=1e-3)
        assert v.fps == pytest.approx(VFR_MEAN_FPS)
        # OpenCV decodes exactly these frames (Matroska declares no count, and OpenCV's
        # duration x rate guess is not 10), at the same times.
        stamps = _opencv_stamps_ms(path)
        assert v.n_frames == len(times) == len(stamps)
        np.testing.assert_allclose(np.array(stamps) - stamps[0], times * 1000, atol=1.0)
        assert [i for i, _ in v.read_many(range(v.n_frames))] == list(range(v.n_frames))
        assert v.frame_times() is times  # computed once
        assert not times.flags.writeable


def test_timestamps_are_demuxed_once(tmp_path: Path, monkeypatch) -> None:
    path = _vfr(tmp_path / "vfr.mp4")
    calls = []

    def counting(local: str) -> ft.Timestamps:
        calls.append(local)
        return ft.read_timestamps(local)

    monkeypatch.setattr(video_frames, "read_timestamps", counting)
    with VideoFrames(str(path)) as v:
        v.frame_times(), v.frame_times(), v.variable_rate
    assert calls == [str(path)]


def test_fps_given_by_the_caller_overrides_the_container(tmp_path: Path, monkeypatch) -> None:
    path = _vfr(tmp_path / "vfr.mp4")

    def never(local: str) -> ft.Timestamps:
        raise AssertionError("timestamps read although the caller gave fps")

    monkeypatch.setattr(video_frames, "read_timestamps", never)
    with open_frames(str(path), fps=25) as v:
        assert v.fps == 25.0 and v.frame_times() is None and v.variable_rate is False


def test_folder_of_frames_has_no_frame_times(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(3):
        assert cv2.imwrite(str(folder / f"img{i}.png"), _image(i)[:, :, 0])
    with FolderFrames(str(folder), fps=200) as f:
        assert f.frame_times() is None and f.variable_rate is False


def test_variable_rate_video_on_a_remote_filesystem(tmp_path: Path) -> None:
    mem = fsspec.filesystem("memory")
    mem.pipe("/remote/vfr.mkv", _vfr(tmp_path / "vfr.mkv").read_bytes())
    with VideoFrames("/remote/vfr.mkv", fs=mem) as v:
        np.testing.assert_allclose(v.frame_times(), np.array(VFR_MS) / 1000, atol=1e-3)


def test_wrong_container_rate_is_replaced_by_the_timestamps_rate(tmp_path: Path) -> None:
    # A raw MPEG-4 stream: FFmpeg's raw demuxer reports its default 25 fps to OpenCV, but
    # the bitstream's own timing (which the parser turns into timestamps) says 30.
    path = _write(tmp_path / "raw.m4v", list(range(10)), Fraction(1, 30), rate=30, fmt="m4v")
    with VideoFrames(str(path)) as v:
        assert v._container_fps != pytest.approx(30.0)
        assert v.fps == pytest.approx(30.0) and v.frame_times() is None


def test_missing_container_rate_comes_from_the_timestamps(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(video_frames, "usable_fps", lambda fps: None)  # as CAP_PROP_FPS 0
    with VideoFrames(str(_cfr(tmp_path / "cfr.mp4", fps=24))) as v:
        assert v.fps == pytest.approx(24.0) and v.frame_times() is None
    with VideoFrames(str(_vfr(tmp_path / "vfr.mp4"))) as v:
        assert v.fps == pytest.approx(VFR_MEAN_FPS) and v.variable_rate


def _raw_h264(path: Path) -> Path:
    if "libx264" not in av.codecs_available:
        pytest.skip("this PyAV wheel has no libx264")
    return _write(path, list(range(10)), Fraction(1, 30), codec="libx264", rate=30, fmt="h264")


def test_no_rate_and_no_timestamps_asks_for_fps(tmp_path: Path, monkeypatch) -> None:
    path = _raw_h264(tmp_path / "clip.h264")
    # A raw H.264 stream carries no timestamps at all...
    assert ft.read_timestamps(str(path)).times.size == 0
    # ...but FFmpeg's raw demuxer gives it a default rate (25), which OpenCV reports: then
    # the frames are evenly spaced at it.
    with VideoFrames(str(path)) as v:
        assert v.fps is not None and v.frame_times() is None
    # With no rate from the container either (patched: every raw format tried gets 25):
    # the video still opens, fps is None, and asking for times says to pass the rate.
    monkeypatch.setattr(video_frames, "usable_fps", lambda fps: None)
    with VideoFrames(str(path)) as v:
        assert v.fps is None and v.n_frames == 10 and v.variable_rate is False
        with pytest.raises(FrameError, match=r"clip\.h264: .*pass the frame rate \(--fps\)"):
            v.frame_times()
    with pytest.raises(ValueError, match=r"clip\.h264: the container gives no frame rate"):
        read_generic(str(path))
    with VideoFrames(str(path), fps=30) as v:  # the caller's rate settles it
        assert v.fps == 30.0 and v.frame_times() is None


def test_generic_reader_accepts_a_variable_rate_video(tmp_path: Path) -> None:
    corpus = read_generic(str(_vfr(tmp_path / "vfr.mp4")))
    (record,) = corpus.videos
    assert record.fps == pytest.approx(VFR_MEAN_FPS) and record.n_frames == 10


def test_unreadable_by_pyav_means_no_timestamps(tmp_path: Path) -> None:
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    assert ft.read_timestamps(str(tmp_path / "junk.mp4")) is ft.NO_TIMESTAMPS
    assert ft.read_timestamps(str(tmp_path / "missing.mp4")) is ft.NO_TIMESTAMPS


def test_reconcile_counts() -> None:
    t = np.array([0.0, 0.1, 0.2, 0.4, 0.5])
    np.testing.assert_array_equal(ft.reconcile(t, 3, "v.mp4"), [0.0, 0.1, 0.2])
    np.testing.assert_allclose(ft.reconcile(t, 7, "v.mp4"), [0, 0.1, 0.2, 0.4, 0.5, 0.6, 0.7])
    with pytest.raises(FrameError, match=r"v\.mp4: its container timestamps 5 frames .* 8"):
        ft.reconcile(t, 8, "v.mp4")
    with pytest.raises(FrameError, match=r"v\.mp4: frame 2 has the same timestamp as frame 1"):
        ft.reconcile(np.array([0.0, 0.1, 0.1, 0.2]), 4, "v.mp4")


def test_fits_rate_bounds_each_frame_not_each_interval() -> None:
    ms = np.round(np.arange(300) * 1000 / 30) / 1000  # 30 fps rounded to Matroska's 1 ms
    assert ft.fits_rate(ms, 30.0, 0.001)
    assert not ft.fits_rate(ms, 29.9, 0.001)
    # 29.97 fps footage declared 30: each interval is only 0.1% long, but after an hour
    # the frames are 3.6 s late.
    ntsc = np.arange(108_000) * 1001 / 30000
    assert not ft.fits_rate(ntsc, 30.0, 1 / 30000)
    assert ft.fits_rate(ntsc, 30000 / 1001, 1 / 30000)
    jittered = np.arange(10) / 30 + np.array([0, 0, 0, 0.004, 0, 0, 0, 0, 0, 0])
    assert not ft.fits_rate(jittered, 30.0, 1 / 90000)


@pytest.mark.parametrize(
    "fps, expected",
    [(30.0, 30.0), (0.0, None), (float("nan"), None), (-1.0, None), (90000.0, None), (None, None)],
)
def test_usable_fps(fps: float | None, expected: float | None) -> None:
    assert ft.usable_fps(fps) == expected


def test_mean_rate() -> None:
    assert ft.mean_rate(np.array([0.0, 0.5, 1.0])) == 2.0
    assert ft.mean_rate(np.array([0.0])) is None
    assert ft.mean_rate(np.array([0.0, 0.0])) is None

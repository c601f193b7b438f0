"""Frame sources: numbered folders and video files, read back with known answers."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import fsspec
import numpy as np
import pytest

from pipeline.vision import frames as frames_module
from pipeline.vision.frames import FolderFrames, FrameError, VideoFrames, open_frames

NO_FACE = Path(__file__).parents[2] / "data" / "no_face.mp4"


def _image(i: int, h: int = 24, w: int = 32) -> np.ndarray:
    """A distinct smooth grey image per i (JPEG keeps it within a few levels)."""
    y, x = np.mgrid[0:h, 0:w]
    return ((x * 3 + y * 2 + i * 20) % 200 + 20).astype(np.uint8)


def _write_folder(folder: Path, names: list[str], h: int = 24, w: int = 32) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    images = [_image(i, h, w) for i in range(len(names))]
    for name, img in zip(names, images, strict=True):
        assert cv2.imwrite(str(folder / name), img)
    return images


def _write_video(
    path: Path, n: int, fourcc: str = "MJPG", fps: float = 25.0, h: int = 48, w: int = 64
) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h), False)
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((h, w), i * 8, np.uint8))  # frame i has grey level 8 i
    writer.release()


class _Counting:
    """Wraps cv2.imdecode or a VideoCapture and counts decodes."""

    def __init__(self, target: object, method: str | None = None) -> None:
        self.target, self.method, self.calls = target, method, 0

    def __call__(self, *args: object) -> object:
        self.calls += 1
        return self.target(*args)  # type: ignore[operator]

    def __getattr__(self, name: str) -> object:
        attr = getattr(self.target, name)
        if name != self.method:
            return attr

        def counted(*args: object) -> object:
            self.calls += 1
            return attr(*args)

        return counted


# ---------------------------------------------------------------- folders


def test_png_folder_reads_back_exactly(tmp_path: Path) -> None:
    names = [f"frame_{i:03d}.png" for i in range(5)]
    written = _write_folder(tmp_path / "v", names)
    (tmp_path / "v" / "notes.txt").write_text("not a frame")
    with FolderFrames(str(tmp_path / "v"), fps=30) as f:
        assert (f.n_frames, f.width, f.height, f.fps) == (5, 32, 24, 30.0)
        assert f.first_frame_number == 0 and list(f.frame_numbers) == [0, 1, 2, 3, 4]
        for i in range(5):
            got = f.read(i)
            assert got.dtype == np.uint8 and got.shape == (24, 32)
            np.testing.assert_array_equal(got, written[i])


def test_numbers_sort_numerically_not_lexically(tmp_path: Path) -> None:
    names = [f"img{i}.jpg" for i in range(1, 13)]  # CAS(ME)^2: img1 .. img12, no padding
    written = _write_folder(tmp_path / "v", names)
    f = FolderFrames(str(tmp_path / "v"))
    assert f.first_frame_number == 1 and list(f.frame_numbers) == list(range(1, 13))
    assert f.file_name(1) == "img2.jpg" and f.file_name(9) == "img10.jpg"
    for i in (0, 1, 9, 11):  # JPEG: close, not equal
        assert np.abs(f.read(i).astype(int) - written[i]).mean() < 3


def test_samm_style_names(tmp_path: Path) -> None:
    _write_folder(tmp_path / "006_1", [f"006_1_{i:04d}.jpg" for i in range(1, 4)])
    f = FolderFrames(str(tmp_path / "006_1"))
    assert f.first_frame_number == 1 and f.n_frames == 3


def test_read_many_decodes_only_requested_frames(tmp_path: Path, monkeypatch) -> None:
    written = _write_folder(tmp_path / "v", [f"f{i}.png" for i in range(20)])
    f = FolderFrames(str(tmp_path / "v"))
    counter = _Counting(cv2.imdecode)
    monkeypatch.setattr(frames_module.cv2, "imdecode", counter)
    got = list(f.read_many([2, 7, 15]))
    assert [i for i, _ in got] == [2, 7, 15]
    assert counter.calls == 3
    np.testing.assert_array_equal(got[1][1], written[7])


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_reduce_2_gives_half_size(tmp_path: Path, ext: str) -> None:
    written = _write_folder(tmp_path / "v", [f"f{i}.{ext}" for i in range(2)], h=61, w=101)
    f = FolderFrames(str(tmp_path / "v"), reduce=2)
    assert (f.width, f.height) == (51, 31)  # ceil(101 / 2), ceil(61 / 2): as libjpeg
    small = f.read(1)
    assert small.shape == (31, 51)
    expected = cv2.resize(written[1], (51, 31), interpolation=cv2.INTER_AREA)
    # The test image has sharp steps (x % 200) where DCT scaling and INTER_AREA differ.
    assert np.median(np.abs(small.astype(int) - expected)) < 3


def test_reduce_must_be_a_known_factor(tmp_path: Path) -> None:
    _write_folder(tmp_path / "v", ["f0.png"])
    with pytest.raises(ValueError, match="reduce"):
        FolderFrames(str(tmp_path / "v"), reduce=3)


@pytest.mark.parametrize(
    "names, match",
    [
        ([], "no image files"),
        (["img1.jpg", "img2.jpg", "img5.jpg"], r"3\.\.4 \(between img2\.jpg and img5\.jpg\)"),
        (["img1.jpg", "img2.jpg", "img4.jpg"], r"missing frame numbers 3 \(between img2"),
        (["img1.jpg", "img01.png"], "duplicate frame numbers.*img01.png.*img1.jpg"),
        (["img1.jpg", "frame2.jpg"], "mixed prefixes.*'frame' \\(frame2.jpg\\)"),
        (["img1.jpg", "cover.jpg"], "without a frame number.*cover.jpg"),
    ],
)
def test_bad_folders_name_the_folder_and_files(tmp_path: Path, names: list[str], match: str):
    folder = tmp_path / "bad"
    _write_folder(folder, names)
    (folder / "readme.txt").write_text("ignored")
    with pytest.raises(FrameError, match=match) as err:
        FolderFrames(str(folder))
    assert str(folder) in str(err.value)


def test_a_file_is_not_a_frame_folder(tmp_path: Path) -> None:
    _write_folder(tmp_path / "v", ["img1.jpg"])
    with pytest.raises(FrameError, match=r"img1\.jpg: no such folder"):
        FolderFrames(str(tmp_path / "v" / "img1.jpg"))


def test_hidden_files_are_not_frames(tmp_path: Path) -> None:
    _write_folder(tmp_path / "v", ["img1.jpg", "img2.jpg"])
    (tmp_path / "v" / "._img1.jpg").write_bytes(b"macOS resource fork")
    assert FolderFrames(str(tmp_path / "v")).n_frames == 2


def test_corrupt_and_truncated_frames_name_file_and_index(tmp_path: Path) -> None:
    folder = tmp_path / "v"
    _write_folder(folder, [f"img{i}.jpg" for i in range(1, 5)])
    (folder / "img3.jpg").write_bytes(b"this is not an image")
    data = (folder / "img4.jpg").read_bytes()
    (folder / "img4.jpg").write_bytes(data[: len(data) // 2])
    f = FolderFrames(str(folder))
    with pytest.raises(FrameError, match=r"frame 2 \(img3\.jpg\): cannot be decoded"):
        f.read(2)
    with pytest.raises(FrameError, match=r"frame 3 \(img4\.jpg\): truncated JPEG") as err:
        list(f.read_many([0, 3]))
    assert str(folder) in str(err.value)


def test_frame_of_another_size_is_an_error(tmp_path: Path) -> None:
    _write_folder(tmp_path / "v", ["f0.png", "f1.png"])
    cv2.imwrite(str(tmp_path / "v" / "f1.png"), np.zeros((10, 10), np.uint8))
    with pytest.raises(FrameError, match=r"frame 1 \(f1\.png\): size 10x10"):
        FolderFrames(str(tmp_path / "v")).read(1)


def test_index_outside_folder(tmp_path: Path) -> None:
    _write_folder(tmp_path / "v", ["f0.png"])
    with pytest.raises(IndexError, match=r"frame 1 is outside 0\.\.0"):
        FolderFrames(str(tmp_path / "v")).read(1)


def test_folder_fingerprint_is_stable_and_sees_changes(tmp_path: Path) -> None:
    _write_folder(tmp_path / "v", [f"f{i}.png" for i in range(4)])
    fp = FolderFrames(str(tmp_path / "v")).fingerprint
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert FolderFrames(str(tmp_path / "v")).fingerprint == fp
    cv2.imwrite(str(tmp_path / "v" / "f3.png"), _image(9))
    assert FolderFrames(str(tmp_path / "v")).fingerprint != fp


def test_folder_on_a_remote_filesystem(tmp_path: Path) -> None:
    written = _write_folder(tmp_path / "v", [f"img{i}.png" for i in range(1, 4)])
    mem = fsspec.filesystem("memory")
    for p in sorted((tmp_path / "v").iterdir()):
        mem.pipe(f"/corpus/v/{p.name}", p.read_bytes())
    f = open_frames("/corpus/v", fs=mem, fps=200)
    assert isinstance(f, FolderFrames) and f.n_frames == 3 and f.fps == 200.0
    np.testing.assert_array_equal(f.read(2), written[2])


# ---------------------------------------------------------------- videos


@pytest.mark.parametrize("fourcc, ext", [("MJPG", "avi"), ("mp4v", "mp4")])
def test_video_reads_known_frames(tmp_path: Path, fourcc: str, ext: str) -> None:
    path = tmp_path / f"v.{ext}"
    _write_video(path, 30, fourcc)
    with VideoFrames(str(path)) as v:
        assert (v.n_frames, v.width, v.height, v.fps) == (30, 64, 48, 25.0)
        assert v.first_frame_number == 0 and len(v.frame_numbers) == 30
        got = dict(v.read_many([0, 3, 4, 17, 29]))
        assert sorted(got) == [0, 3, 4, 17, 29]
        for i, img in got.items():
            assert img.shape == (48, 64) and img.dtype == np.uint8
            assert abs(float(img.mean()) - 8 * i) < 3
        # Backward: seeks with CAP_PROP_POS_FRAMES.
        assert abs(float(v.read(5).mean()) - 40) < 3


def test_video_read_many_retrieves_only_requested(tmp_path: Path) -> None:
    _write_video(tmp_path / "v.avi", 30)
    v = VideoFrames(str(tmp_path / "v.avi"))
    v._cap = counting = _Counting(v._cap, "retrieve")
    assert [i for i, _ in v.read_many([2, 9, 10, 25])] == [2, 9, 10, 25]
    assert counting.calls == 4
    v.close()


def test_video_reduce_and_fps_override(tmp_path: Path) -> None:
    _write_video(tmp_path / "v.avi", 5, h=50, w=66)  # MJPG wants even sides
    v = open_frames(str(tmp_path / "v.avi"), fps=200, reduce=2)
    assert isinstance(v, VideoFrames)
    assert (v.width, v.height, v.fps) == (33, 25, 200.0)
    assert v.read(3).shape == (25, 33)


def test_video_shorter_than_its_header(tmp_path: Path) -> None:
    path = tmp_path / "cut.avi"
    _write_video(path, 30)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])  # the AVI header still says 30 frames
    v = VideoFrames(str(path))
    assert v.n_frames == 30
    seen = []
    with pytest.raises(FrameError, match=r"cut\.avi ended at frame (\d+), header says 30") as err:
        for i, _ in v.read_many(range(v.n_frames)):
            seen.append(i)
    ended = int(str(err.value).split("ended at frame ")[1].split(",")[0])
    assert 0 < ended < 30 and seen == list(range(ended))


@pytest.mark.skipif(not NO_FACE.exists(), reason="tests/data/no_face.mp4 not present")
def test_real_video_ends_before_its_header_count() -> None:
    with VideoFrames(str(NO_FACE)) as v:
        assert (v.n_frames, v.width, v.height) == (98, 960, 540)
        assert v.fps == pytest.approx(23.67, abs=0.01)
        seen = []
        with pytest.raises(FrameError, match=r"no_face\.mp4 ended at frame 95, header says 98"):
            for i, img in v.read_many(range(v.n_frames)):
                assert img.shape == (540, 960)
                seen.append(i)
        assert seen == list(range(95))


def test_unreadable_video_fails_at_open(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"not a video at all" * 100)
    with pytest.raises(FrameError, match=r"broken\.mp4"):
        VideoFrames(str(path))
    with pytest.raises(FrameError, match=r"missing\.mp4: no such file"):
        VideoFrames(str(tmp_path / "missing.mp4"))


def test_remote_video_is_copied_locally_and_cleaned_up(tmp_path: Path) -> None:
    _write_video(tmp_path / "v.avi", 10)
    mem = fsspec.filesystem("memory")
    mem.pipe("/remote/v.avi", (tmp_path / "v.avi").read_bytes())
    v = VideoFrames("/remote/v.avi", fs=mem)
    local_dir = v._tmpdir
    assert local_dir is not None and os.path.isdir(local_dir)
    assert v.n_frames == 10 and abs(float(v.read(6).mean()) - 48) < 3
    local = VideoFrames(str(tmp_path / "v.avi"))
    assert v.fingerprint == local.fingerprint and len(v.fingerprint) == 16
    v.close()
    local.close()
    assert not os.path.exists(local_dir)
    forgotten = VideoFrames("/remote/v.avi", fs=mem)
    local_dir = forgotten._tmpdir
    del forgotten  # never closed: the copy still goes
    assert local_dir is not None and not os.path.exists(local_dir)


def test_video_fingerprint_sees_changes(tmp_path: Path) -> None:
    _write_video(tmp_path / "a.avi", 10)
    _write_video(tmp_path / "b.avi", 11)
    with VideoFrames(str(tmp_path / "a.avi")) as a, VideoFrames(str(tmp_path / "b.avi")) as b:
        assert a.fingerprint != b.fingerprint


def test_open_frames_of_nothing(tmp_path: Path) -> None:
    with pytest.raises(FrameError, match="nothing-here: no such file or folder"):
        open_frames(str(tmp_path / "nothing-here"))

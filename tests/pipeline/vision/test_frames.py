"""Frame sources: numbered folders and video files, read back with known answers."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import fsspec
import numpy as np
import pytest

from pipeline.vision import frames as frames_module
from pipeline.vision.containers import container_shortfall
from pipeline.vision.frames import FolderFrames, FrameError, VideoFrames, open_frames
from pipeline.vision.video_frames import out_of_place

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
        assert v.fps == pytest.approx(24.0, abs=0.01)  # header says 23.67; frames are 1/24 s apart
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


# ---------------------------------------------------------------- videos cut short

WOLFGANG = Path(__file__).parents[2] / "data" / "WolfgangLanger_Pexels.mp4"
needs_wolfgang = pytest.mark.skipif(
    not WOLFGANG.exists(), reason="tests/data/WolfgangLanger_Pexels.mp4 not present"
)


def _cut_copy(src: Path, dst: Path, size: int) -> Path:
    dst.write_bytes(src.read_bytes()[:size])
    return dst


def _decoded(path: Path) -> list[np.ndarray]:
    """Every frame plain OpenCV returns, grey, as VideoFrames converts them."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    cap.release()
    return out


def _textured_video(path: Path, fourcc: str, n: int = 30, h: int = 48, w: int = 64) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25.0, (w, h), False)
    assert writer.isOpened()
    y, x = np.mgrid[0:h, 0:w]
    for i in range(n):
        writer.write(((x * 3 + y * 2 + i * 7) % 200 + 20).astype(np.uint8))
    writer.release()


def _read_until_error(v: VideoFrames) -> tuple[list[int], FrameError]:
    seen = []
    with pytest.raises(FrameError) as err:
        for i, _ in v.read_many(range(v.n_frames)):
            seen.append(i)
    return seen, err.value


@needs_wolfgang
def test_mp4_cut_in_half_frame_at_the_cut_counts_as_missing(tmp_path: Path) -> None:
    data = WOLFGANG.read_bytes()
    # The moov atom (with every frame's size and offset) comes first, so the header of the
    # cut copy still announces all 472 frames.
    assert data.find(b"moov") < data.find(b"mdat")
    cut = _cut_copy(WOLFGANG, tmp_path / "WolfgangLanger_cut.mp4", len(data) // 2)
    intact = _decoded(WOLFGANG)
    raw = _decoded(cut)
    # What OpenCV does: 228 frames, the last of them not frame 227 (H.264 with B-frames:
    # frame 228 comes back in its place, the B-frame 227 being beyond the cut).
    assert len(intact) == 472 and len(raw) == 228
    assert not np.array_equal(raw[227], intact[227])
    with VideoFrames(str(cut)) as v:
        assert v.n_frames == 472
        got = []
        with pytest.raises(FrameError) as err:
            for i, img in v.read_many(range(v.n_frames)):
                got.append(i)
                assert np.array_equal(img, intact[i]), i
        assert got == list(range(227))
        message = str(err.value)
        assert str(cut) in message
        assert "ended at frame 227, header says 472 frames" in message
        assert "frame 227" in message and "partly decoded" in message
        assert "has the timestamp of frame 228" in message
        for index in (227, 300, 471):  # at the cut and past it: the same error
            with pytest.raises(FrameError, match=r"WolfgangLanger_cut\.mp4 ended at frame 227"):
                v.read(index)
        assert np.array_equal(v.read(226), intact[226])  # seeks back to a frame before the cut


@needs_wolfgang
def test_mp4_cut_with_two_frames_out_of_place(tmp_path: Path) -> None:
    # 439179 bytes end exactly after the 121st video sample (in decoding order) of the clip:
    # OpenCV returns 121 frames, of which 119 and 120 are later frames out of place.
    cut = _cut_copy(WOLFGANG, tmp_path / "w.mp4", 439179)
    intact = _decoded(WOLFGANG)
    assert len(_decoded(cut)) == 121
    with VideoFrames(str(cut)) as v:
        seen, err = _read_until_error(v)
        assert seen == list(range(119))
        for i in (0, 60, 118):
            assert np.array_equal(v.read(i), intact[i])
    message = str(err)
    assert "w.mp4 ended at frame 119, header says 472 frames" in message
    assert "frames 119..120" in message and "frame 119 has the timestamp of frame 120" in message
    assert "frame 120, the last decoded before the cut, may be only partly decoded" in message


@needs_wolfgang
def test_whole_mp4_still_reads_every_frame() -> None:
    intact = _decoded(WOLFGANG)
    with VideoFrames(str(WOLFGANG)) as v:
        assert v.n_frames == len(intact) == 472
        got = 0
        for i, img in v.read_many(range(v.n_frames)):
            assert np.array_equal(img, intact[i]), i
            got += 1
        assert got == 472 and v._cut is None


@pytest.mark.parametrize("fourcc, ext", [("MJPG", "avi"), ("MJPG", "mkv")])
def test_cut_avi_and_mkv_lose_their_last_decoded_frame(
    tmp_path: Path, fourcc: str, ext: str
) -> None:
    whole = tmp_path / f"whole.{ext}"
    _textured_video(whole, fourcc)
    data = whole.read_bytes()
    cut = _cut_copy(whole, tmp_path / f"cut.{ext}", int(len(data) * 0.6))
    intact, raw = _decoded(whole), _decoded(cut)
    assert 1 < len(raw) < 30
    with VideoFrames(str(cut)) as v:
        assert v.n_frames == 30
        seen, err = _read_until_error(v)
        assert seen == list(range(len(raw) - 1))
        for i in seen:
            assert np.array_equal(v.read(i), intact[i])
    last = len(raw) - 1
    assert f"cut.{ext} ended at frame {last}, header says 30 frames" in str(err)
    assert f"frame {last}, the last decoded before the cut, may be only partly decoded" in str(err)
    with VideoFrames(str(whole)) as v:  # the whole file: every frame
        assert [i for i, _ in v.read_many(range(30))] == list(range(30))


def test_cut_video_on_a_remote_filesystem(tmp_path: Path) -> None:
    _textured_video(tmp_path / "v.avi", "MJPG")
    data = (tmp_path / "v.avi").read_bytes()
    raw = _decoded(_cut_copy(tmp_path / "v.avi", tmp_path / "cut.avi", int(len(data) * 0.6)))
    mem = fsspec.filesystem("memory")
    mem.pipe("/remote/cut.avi", data[: int(len(data) * 0.6)])
    with VideoFrames("/remote/cut.avi", fs=mem) as v:
        with pytest.raises(FrameError, match=rf"/remote/cut\.avi ended at frame {len(raw) - 1}"):
            v.read(len(raw) - 1)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


@pytest.mark.parametrize("fourcc, ext", [("MJPG", "avi"), ("MJPG", "mkv"), ("mp4v", "mp4")])
def test_container_shortfall_of_written_files(tmp_path: Path, fourcc: str, ext: str) -> None:
    path = tmp_path / f"v.{ext}"
    _textured_video(path, fourcc)
    data = path.read_bytes()
    assert container_shortfall(str(path)) is None
    for size in (len(data) - 1, len(data) // 2, 200):
        _cut_copy(path, path, size)
        got = container_shortfall(str(path))
        assert got is not None and got[0] == size and size < got[1] <= len(data)
        path.write_bytes(data)


def test_container_shortfall_of_hand_made_files(tmp_path: Path) -> None:
    path = tmp_path / "f"
    ftyp = _box(b"ftyp", b"isom\x00\x00\x02\x00")
    big_mdat = struct.pack(">I4sQ", 1, b"mdat", 16 + 100) + bytes(100)  # 64-bit box size
    path.write_bytes(ftyp + big_mdat)
    assert container_shortfall(str(path)) is None
    path.write_bytes(ftyp + big_mdat[:60])
    assert container_shortfall(str(path)) == (len(ftyp) + 60, len(ftyp) + 116)
    path.write_bytes(ftyp + struct.pack(">I4s", 0, b"mdat") + bytes(50))  # "to end of file"
    assert container_shortfall(str(path)) is None
    for junk in (b"not a video at all" * 10, b"", b"RIF"):
        path.write_bytes(junk)
        assert container_shortfall(str(path)) is None
    # A Matroska segment of unknown size (live recordings) cannot be checked.
    ebml = bytes.fromhex("1a45dfa3") + bytes([0x80 | 4]) + b"abcd"
    path.write_bytes(ebml + bytes.fromhex("18538067") + bytes([0xFF]) + bytes(20))
    assert container_shortfall(str(path)) is None
    path.write_bytes(ebml + bytes.fromhex("18538067") + bytes([0x80 | 40]) + bytes(20))
    assert container_shortfall(str(path)) == (len(ebml) + 5 + 20, len(ebml) + 5 + 40)


@pytest.mark.parametrize(
    "stamps, fps, expected",
    [
        ([0, 40, 80, 120, 160], 25.0, None),
        ([0, 40, 80, 120, 200], 25.0, 4),  # the last frame is one later than its place
        ([0, 40, 80, 160, 240], 25.0, 3),  # two, as in test_mp4_cut_with_two_frames...
        ([0, 40, 120, 200], 25.0, 2),  # mostly out of place: fps keeps the interval right
        ([0, 40, 80, 80, 120], 25.0, 3),  # a repeated timestamp
        ([0, 0, 0, 0], None, None),  # no timestamps: nothing to tell
        ([0], 25.0, None),
        # A gap before the last 16 frames is not looked at (variable frame rates).
        ([0, 100] + [100 + 40 * k for k in range(1, 17)], 25.0, None),
        ([0, 100] + [100 + 40 * k for k in range(1, 16)], 25.0, 1),
    ],
)
def test_out_of_place(stamps: list[float], fps: float | None, expected: int | None) -> None:
    assert out_of_place(stamps, fps) == expected


@needs_wolfgang
def test_window_on_the_frame_at_the_cut_is_flagged_not_computed(tmp_path: Path) -> None:
    from pipeline.vision.anchors import anchor_starts
    from pipeline.vision.config import FeatureConfig
    from pipeline.vision.features import WindowExtractor

    cut = _cut_copy(WOLFGANG, tmp_path / "w.mp4", WOLFGANG.stat().st_size // 2)
    extractor = WindowExtractor(FeatureConfig())
    cfg = extractor.config
    with VideoFrames(str(WOLFGANG), reduce=cfg.decode_reduce) as v:
        windows = cfg.grid(v.fps).windows(v.n_frames)
        # 42 ends at frame 223, 43 at 228 (past the frame at the cut, 227), 45 starts at 225.
        chosen = [w for w in windows if w.index in (42, 43, 44, 45)]
        assert [(w.start, w.end) for w in chosen][:2] == [(210, 223), (215, 228)]
        anchors = anchor_starts(windows, chosen, cfg.detect_every)  # with detect_every > 1
        whole = list(extractor.video(v.read_many, chosen, anchor_starts=anchors))
    with VideoFrames(str(cut), reduce=cfg.decode_reduce) as v:
        broken = list(extractor.video(v.read_many, chosen, anchor_starts=anchors))
    assert all(r.face_found for r in whole)
    assert broken[0].face_found
    np.testing.assert_array_equal(broken[0].hoof, whole[0].hoof)
    for r in broken[1:]:
        assert not r.face_found and r.hoof is None
        assert "w.mp4 ended at frame 227" in r.skip_reason
        assert "partly decoded" in r.skip_reason

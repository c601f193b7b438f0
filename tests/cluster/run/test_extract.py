"""`mespot extract` end to end: real videos, a synthetic corpus, bad input."""

import json
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from cluster.cli import main
from pipeline.core.intervals import Interval
from pipeline.vision.config import FeatureConfig
from schemas import ANNOTATIONS, VIDEOS, WINDOW_FEATURES, validate_table

DATA = Path(__file__).parents[2] / "data"


def table(out: Path, name: str):
    return ds.dataset(out / name, format="parquet").to_table()


def features(out: Path):
    return table(out, "features")


def summary(out: Path) -> dict:
    (run,) = (out / "runs").glob("*.json")
    return json.loads(run.read_text())


def leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.startswith(".tmp-")]


@pytest.mark.slow
def test_real_face_video_has_a_face_in_nearly_every_window(tmp_path):
    out = tmp_path / "wl"
    assert (
        main(
            [
                "extract",
                str(DATA / "WolfgangLanger_Pexels.mp4"),
                str(out),
                "--dataset",
                "video",
                "--no-progress",
            ]
        )
        == 0
    )
    t = features(out)
    validate_table(t, WINDOW_FEATURES)
    faces = sum(t.column("face_found").to_pylist())
    assert t.num_rows >= 90 and faces / t.num_rows >= 0.95
    row = t.slice(0, 1).to_pylist()[0]
    assert len(row["hoof"]) == row["n_timesteps"] * row["n_regions"] * row["n_bins"] == 13 * 6 * 8
    assert len(row["cell_flow"]) == 13 * 6 * row["n_cells"] ** 2 * 2 == 13 * 6 * 9 * 2
    assert row["label"] is None  # no ground truth given
    cfg = FeatureConfig.from_json((out / "feature_config.json").read_text())
    assert cfg == FeatureConfig() and row["config_id"] == cfg.config_id
    assert not leftovers(out)


def test_video_without_a_face_gives_flagged_windows(tmp_path):
    out = tmp_path / "nf"
    assert (
        main(
            [
                "extract",
                str(DATA / "no_face.mp4"),
                str(out),
                "--dataset",
                "video",
                "--executor",
                "local",
                "--no-progress",
            ]
        )
        == 0
    )
    t = features(out)
    validate_table(t, WINDOW_FEATURES)
    assert t.num_rows > 10 and not any(t.column("face_found").to_pylist())
    reasons = t.column("skip_reason").to_pylist()
    assert all(reasons)
    assert "no face" in reasons[0]
    # The header claims 98 frames, 95 decode: the last window is flagged for that.
    assert "ended at frame 95" in reasons[-1]
    assert summary(out)["windows_without_face"] == t.num_rows


@pytest.mark.slow
def test_synth_then_extract(tmp_path):
    corpus, out = tmp_path / "corpus", tmp_path / "store"
    assert (
        main(
            [
                "synth",
                str(corpus),
                "--subjects",
                "2",
                "--seconds",
                "3",
                "--fps",
                "100",
                "--size",
                "320x240",
                "--seed",
                "3",
                "--no-progress",
            ]
        )
        == 0
    )
    assert main(["extract", str(corpus), str(out), "--executor", "local", "--no-progress"]) == 0
    t = features(out)
    validate_table(t, WINDOW_FEATURES)
    validate_table(table(out, "videos"), VIDEOS)
    ann = table(out, "annotations")
    validate_table(ann, ANNOTATIONS)
    # 3 s at 100 fps: 300 frames; T 13 flows of 4 frames (40 ms), span 52, stride 20:
    # 13 full windows (starts 0..240) + a tail window ending on frame 299.
    assert t.num_rows == 2 * 14
    assert sum(t.column("face_found").to_pylist()) == t.num_rows
    assert set(t.column("n_timesteps").to_pylist()) == {13}
    labels = t.column("label").to_pylist()
    assert None not in labels
    micro = [a for a in ann.to_pylist() if a["kind"] == "micro"]
    assert micro and any(labels)
    # Every micro-movement (<= 0.5 s) has a positive window, as the paper guarantees.
    rows = t.select(["video", "start_frame", "end_frame", "label"]).to_pylist()
    for a in micro:
        truth = Interval(a["onset_frame"], a["offset_frame"])
        assert any(
            r["label"] and Interval(r["start_frame"], r["end_frame"]).coverage_of(truth) >= 0.8
            for r in rows
            if r["video"] == a["video"]
        )
    assert not leftovers(out)


def test_another_config_into_the_same_output_is_refused(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "feature_config.json").write_text(FeatureConfig(n_bins=6).to_json())
    rc = main(
        [
            "extract",
            str(DATA / "no_face.mp4"),
            str(out),
            "--dataset",
            "video",
            "--executor",
            "local",
            "--no-progress",
        ]
    )
    assert rc == 2
    assert "feature_config.json holds config" in capsys.readouterr().err


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        main(
            [
                "extract",
                str(empty),
                str(tmp_path / "o1"),
                "--dataset",
                "folder",
                "--fps",
                "30",
                "--no-progress",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "empty" in err
    assert (
        main(["extract", str(empty), str(tmp_path / "o2"), "--dataset", "folder", "--no-progress"])
        == 2
    )
    assert "fps" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synth", str(tmp_path / "s"), "--size", "big"])


@pytest.mark.slow
def test_corpus_and_store_behind_fsspec_uris(tmp_path):
    import fsspec

    corpus = tmp_path / "corpus"
    assert (
        main(
            [
                "synth",
                str(corpus),
                "--subjects",
                "1",
                "--seconds",
                "2",
                "--fps",
                "50",
                "--size",
                "320x240",
                "--no-progress",
            ]
        )
        == 0
    )
    mem = fsspec.filesystem("memory")
    mem.put(str(corpus), "/uri-corpus", recursive=True)
    try:
        args = ["--executor", "local", "--no-progress"]
        assert main(["extract", "memory://uri-corpus", "memory://uri-store", *args]) == 0
        assert main(["extract", str(corpus), str(tmp_path / "local"), *args]) == 0
        (run,) = mem.find("/uri-store/runs")
        with mem.open(run) as f:
            remote = json.load(f)
        local = summary(tmp_path / "local")
        assert remote["windows"] == local["windows"] > 0 and remote["done"] == ["samm/006/006_1"]
        files = mem.find("/uri-store/features")
        assert [f.rsplit("/", 4)[1:] for f in files] == [
            ["dataset=samm", "subject=006", "video=006_1", "part-0.parquet"]
        ]
    finally:
        mem.rm("/uri-corpus", recursive=True)
        mem.rm("/uri-store", recursive=True)

"""Reruns: ground truth that changes, sessions that cannot be used, what a scheduler sees."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pyarrow.dataset as ds
import pytest

from cluster.cli import main
from cluster.cli.commands import ingest_status
from cluster.run.extract import RunSummary
from pipeline.datasets import SAMM_COLUMNS_ALL, SAMM_HEADER_ROW, SAMM_TYPES, SAMM_WORKBOOK

LOCAL = ["--executor", "local", "--no-progress"]


def table(out: Path, name: str):
    return (
        ds.dataset(out / name, format="parquet")
        .to_table()
        .sort_by(
            [("video", "ascending"), ("window", "ascending")]
            if name == "features"
            else [("video", "ascending"), ("onset_frame", "ascending")]
        )
    )


def last_summary(out: Path) -> dict:
    runs = sorted((out / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(runs[-1].read_text())


def _add_micro_row(xlsx: Path, onset) -> int:
    """Append a micro-movement of video 006_1 at frame numbers onset..20 (1-based)."""
    wb = openpyxl.load_workbook(xlsx)
    ws = wb.active
    row = ws.max_row + 1
    values = ["006", "006_1_99", 1, onset, 15, 20, None, SAMM_TYPES["micro"], "4", "added"]
    for col, name in enumerate(SAMM_COLUMNS_ALL, start=1):
        assert ws.cell(SAMM_HEADER_ROW, col).value == name
        ws.cell(row, col, values[col - 1])
    wb.save(xlsx)
    return row


def _set_onset(xlsx: Path, row: int, value) -> None:
    wb = openpyxl.load_workbook(xlsx)
    ws = wb.active
    ws.cell(row, SAMM_COLUMNS_ALL.index("Onset") + 1, value)
    wb.save(xlsx)


def test_a_corrected_workbook_row_reaches_annotations_and_labels(tiny_corpus, tmp_path, capsys):
    corpus, store, fresh = tmp_path / "corpus", tmp_path / "store", tmp_path / "fresh"
    shutil.copytree(tiny_corpus, corpus)
    xlsx = corpus / SAMM_WORKBOOK
    row = _add_micro_row(xlsx, "not a frame")
    assert main(["extract", str(corpus), str(store), *LOCAL]) == 0
    before_ann, before = table(store, "annotations"), table(store, "features")
    assert any(f"row {row}" in s["what"] for s in last_summary(store)["skipped_inputs"])
    capsys.readouterr()

    _set_onset(xlsx, row, 11)  # the annotator fixes the cell and reruns
    assert main(["extract", str(corpus), str(store), *LOCAL]) == 0
    out = capsys.readouterr().out
    assert "0 videos extracted" in out and "ground truth changed for 1 videos" in out
    summary = last_summary(store)
    assert summary["done"] == [] and len(summary["truth_updated"]) == 1
    after_ann, after = table(store, "annotations"), table(store, "features")
    assert after_ann.num_rows == before_ann.num_rows + 1
    # Features are kept as they were; only labels follow the new truth...
    assert after.column("hoof").equals(before.column("hoof"))
    assert after.column("label").to_pylist() != before.column("label").to_pylist()
    # ...and equal those of a clean extraction of the corrected corpus.
    assert main(["extract", str(corpus), str(fresh), *LOCAL]) == 0
    assert after.column("label").equals(table(fresh, "features").column("label"))
    assert after_ann.drop_columns(["source_row"]).equals(
        table(fresh, "annotations").drop_columns(["source_row"])
    )
    # A third run has nothing to do.
    assert main(["extract", str(corpus), str(store), *LOCAL]) == 0
    assert last_summary(store)["truth_updated"] == []


def test_intervals_added_to_a_folder_label_it_without_new_features(tiny_corpus, tmp_path, capsys):
    folder, store = tiny_corpus / "SAMM_longvideos" / "006_1", tmp_path / "store"
    args = ["extract", str(folder), str(store), "--dataset", "folder", "--fps", "50", *LOCAL]
    assert main(args) == 0
    assert not (store / "annotations").exists()
    assert table(store, "features").column("label").null_count == table(store, "features").num_rows
    csv = tmp_path / "iv.csv"
    csv.write_text("video,onset,offset,kind\n006_1,10,19,micro\n")
    capsys.readouterr()
    assert main([*args, "--intervals", str(csv)]) == 0
    assert "ground truth changed for 1 videos" in capsys.readouterr().out
    ann = table(store, "annotations")
    assert (ann.column("onset_frame").to_pylist(), ann.column("offset_frame").to_pylist()) == (
        [10],
        [19],
    )
    feats = table(store, "features")
    starts, ends = (feats.column(c).to_numpy() for c in ("start_frame", "end_frame"))
    labels = np.asarray(feats.column("label").to_pylist(), bool)
    # Known answer: a window is positive iff it covers >= 80% of frames 10..19.
    inter = np.clip(np.minimum(ends, 19) - np.maximum(starts, 10) + 1, 0, None)
    assert np.array_equal(labels, inter / 10 >= 0.8) and labels.any()


def test_ingest_exit_status_tells_a_scheduler(tiny_corpus, tmp_path, capsys):
    src, store = tmp_path / "incoming", tmp_path / "store"
    src.mkdir()
    # Frame folders without --fps: found, but none can be processed.
    shutil.copytree(tiny_corpus / "SAMM_longvideos" / "006_1", src / "a")
    (src / "lab" / "empty-session").mkdir(parents=True)
    assert main(["ingest", str(src), str(store), *LOCAL]) == 1
    out = capsys.readouterr().out
    assert "empty session folder" in out and "empty-session" in out
    # With --fps it is processed: 0.
    assert main(["ingest", str(src), str(store), "--fps", "50", *LOCAL]) == 0
    # Nothing new: still 0 (already done is fine).
    assert main(["ingest", str(src), str(store), "--fps", "50", *LOCAL]) == 0


def test_ingest_status_rules():
    s = RunSummary("r")
    assert ingest_status(s, found=0) == 0  # nothing there: nothing wrong
    assert ingest_status(s, found=2) == 1  # found, none usable
    s.already_done = ["a"]
    assert ingest_status(s, found=2) == 0
    s.failed = {"b": "FrameError: ..."}
    assert ingest_status(s, found=2) == 1


def test_a_clip_shorter_than_one_window_is_listed_as_skipped(tiny_corpus, tmp_path, capsys):
    src, store = tmp_path / "incoming", tmp_path / "store"
    short = src / "lab" / "short"
    short.mkdir(parents=True)
    frames = sorted((tiny_corpus / "SAMM_longvideos" / "006_1").glob("*.jpg"))
    for f in frames[:10]:  # 10 frames at 50 fps: 0.2 s, a window needs 0.5 s
        shutil.copy(f, short / f.name)
    assert main(["ingest", str(src), str(store), "--fps", "50", *LOCAL]) == 1
    out = capsys.readouterr().out
    assert "0 videos extracted" in out and "shorter than one window" in out
    (skipped,) = last_summary(store)["skipped_inputs"]
    assert skipped["what"] == "sessions/lab/short" and "10 frames at 50 fps" in skipped["reason"]


def test_a_source_with_only_an_empty_session_folder_is_not_a_failure(tmp_path, capsys):
    src = tmp_path / "incoming"
    (src / "lab" / "being-recorded").mkdir(parents=True)
    assert main(["ingest", str(src), str(tmp_path / "store"), *LOCAL]) == 0
    assert "empty session folder" in capsys.readouterr().out


@pytest.mark.slow
def test_frames_lost_to_a_cut_video_are_named_in_the_summary(tmp_path, capsys):
    clip = Path(__file__).parents[2] / "data" / "WolfgangLanger_Pexels.mp4"
    data = clip.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # the header still announces every frame
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 4])
    out = tmp_path / "store"
    assert main(["extract", str(cut), str(out), "--dataset", "video", *LOCAL]) == 0
    assert "frames missing in video/cut/cut:" in capsys.readouterr().out
    (why,) = last_summary(out)["frames_missing"].values()
    assert ("cut short" in why and "counts as missing" in why) or "count as missing" in why
    feats = table(out, "features")
    flagged = [r for r in feats.to_pylist() if (r["skip_reason"] or "").startswith("frames")]
    assert flagged and not any(r["face_found"] for r in flagged)
    assert int(why.split(" windows")[0]) == len(flagged)

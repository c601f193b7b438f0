"""`mespot spot VIDEO`: extract, spot with the bundled model, write intervals and a report,
on the repository's real clip (tests/data/SOURCES.md)."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cluster.cli import main
from cluster.run.spot_videos import default_out

CLIP = Path(__file__).parents[2] / "data" / "WolfgangLanger_Pexels.mp4"


def test_the_default_output_folder_is_beside_the_input():
    assert default_out(["rec/clip.mp4"]) == Path("rec/clip-mespot")
    assert default_out(["rec/sessions/", "other.mp4"]) == Path("rec/sessions-mespot")


def test_a_missing_input_is_named(tmp_path, capsys):
    assert main(["spot", str(tmp_path / "nothing.mp4"), "--out", str(tmp_path / "o")]) != 0
    assert "nothing.mp4: no such video file or folder" in capsys.readouterr().err


@pytest.mark.slow
def test_spot_a_real_clip_with_the_bundled_model(tmp_path, capsys, chrome):
    from selenium.webdriver.common.by import By

    out = tmp_path / "clip-out"
    assert main(["spot", str(CLIP), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "the bundled model (synthetic faces)" in printed
    table = pq.read_table(out / "intervals.parquet")
    with open(out / "intervals.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == table.num_rows > 0
    assert {r["video"] for r in rows} == {"WolfgangLanger_Pexels"}
    kinds = table.column("kind").to_pylist()
    micro, macro = kinds.count("micro"), kinds.count("macro")
    # the printed table: one line per interval, and the micro count with the footage
    assert sum(line.startswith("| WolfgangLanger_Pexels |") for line in printed.splitlines()) == (
        table.num_rows
    )
    assert f"\nWolfgangLanger_Pexels: {micro} micro and {macro} macro intervals" in printed
    # the report: one timeline, one thumbnail per interval, no console error
    chrome.get((out / "report.html").as_uri())
    assert len(chrome.find_elements(By.CSS_SELECTOR, "svg.timeline")) == 1
    images = chrome.find_elements(By.CSS_SELECTOR, "img.apex")
    assert len(images) == table.num_rows
    assert all(chrome.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images)
    assert [e for e in chrome.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []
    # a rerun reuses the features extracted the first time
    assert main(["spot", str(CLIP), "--out", str(out), "--no-progress"]) == 0
    assert pq.read_table(out / "intervals.parquet").num_rows == table.num_rows

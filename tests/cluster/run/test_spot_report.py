"""The spotting report: apex frames, footage, thumbnails and the HTML, by hand and in a
real browser."""

from __future__ import annotations

from html.parser import HTMLParser

import cv2
import numpy as np
import pytest

from cluster.run.spot_report import VideoSpots, apex_frame, render_html, thumbnail

#   frame    0    10    20    30
#   score   0.1  0.9   0.5   0.9
FRAMES, SCORES = np.array([0, 10, 20, 30]), np.array([0.1, 0.9, 0.5, 0.9])


@pytest.mark.parametrize(
    ("start", "end", "apex"),
    [(5, 35, 10), (12, 28, 20), (0, 9, 0), (21, 40, 30), (1, 5, 3)],  # last: no score inside
)
def test_the_apex_is_the_best_scored_frame_inside(start, end, apex):
    assert apex_frame(start, end, FRAMES, SCORES) == apex


def test_footage_counts_each_frame_once_and_stays_in_the_video():
    v = VideoSpots("d/s/v", 100.0, 100, FRAMES, SCORES, 0.5, [(10, 19, 0.9), (15, 24, 0.8)])
    assert v.footage == pytest.approx(0.15)  # frames 10..24
    edge = VideoSpots("d/s/v", 100.0, 100, FRAMES, SCORES, 0.5, [(90, 130, 0.9)])
    assert edge.footage == pytest.approx(0.10)  # frames 90..99
    with pytest.raises(ValueError, match="4 frames but 3 scores"):
        VideoSpots("d/s/v", 100.0, 100, FRAMES, SCORES[:3], 0.5, [])
    two = [(1, 2, 1.0), (5, 6, 1.0)]
    with pytest.raises(ValueError, match="1 kinds for 2 intervals"):
        VideoSpots("d/s/v", 100.0, 100, FRAMES, SCORES, 0.5, two, [], ["micro"])
    with pytest.raises(ValueError, match="1 thumbnails for 2 intervals"):
        VideoSpots("d/s/v", 100.0, 100, FRAMES, SCORES, 0.5, two, [b"x"])


def test_a_thumbnail_is_a_small_jpeg_of_the_frame():
    image = np.zeros((180, 320, 3), np.uint8)
    image[:, 160:] = (0, 0, 255)  # right half red (BGR)
    decoded = cv2.imdecode(np.frombuffer(thumbnail(image), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (90, 160, 3)
    assert decoded[45, 120, 2] > 200 and decoded[45, 40].max() < 40


class _Count(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def count(self, tag: str, cls: str) -> int:
        return sum(t == tag and cls in (a.get("class") or "").split() for t, a in self.tags)


def videos() -> list[VideoSpots]:
    image = np.full((120, 200, 3), 128, np.uint8)
    spots = [(10, 19, 0.9), (40, 45, 0.7), (70, 79, 0.6)]
    first = VideoSpots("samm/006/006_1", 100.0, 100, FRAMES * 3, SCORES, 0.5, spots,
                       [thumbnail(image)] * 3, ["micro", "macro", "micro"])  # fmt: skip
    second = VideoSpots("samm/007/007_1<b>", 50.0, 200, FRAMES, SCORES, 0.5, [])
    return [first, second]


def test_the_html_has_a_timeline_per_video_and_a_thumbnail_per_interval():
    text = render_html(videos(), "mespot spots", "bundled")
    page = _Count()
    page.feed(text)
    assert page.count("svg", "timeline") == 2
    assert page.count("img", "apex") == 3 and page.count("rect", "spot") == 3
    assert page.count("rect", "macro") == 1 and page.count("figure", "macro") == 1
    assert all(a["src"].startswith("data:image/jpeg;base64,") for t, a in page.tags if t == "img")
    assert "nothing spotted" in text and "007_1&lt;b&gt;" in text  # names escaped
    # frames 10..19, 40..45 and 70..79: 26 of 100, and none of 200: 26 / 300 of all footage
    assert "2 micro and 1 macro intervals, 26.0% of the footage" in text
    assert "0 micro and 0 macro intervals" in text
    assert "8.7% of all footage to review" in text
    assert "<script" not in text and "http" not in text  # self-contained


@pytest.mark.slow
def test_the_report_opens_in_a_browser_without_errors(tmp_path, chrome):
    from selenium.webdriver.common.by import By

    path = tmp_path / "report.html"
    path.write_text(render_html(videos(), "mespot spots", "bundled"), encoding="utf-8")
    chrome.get(path.as_uri())
    assert len(chrome.find_elements(By.CSS_SELECTOR, "svg.timeline")) == 2
    images = chrome.find_elements(By.CSS_SELECTOR, "img.apex")
    assert len(images) == 3
    # every thumbnail decoded: a natural width, as thumbnail() made it
    assert all(chrome.execute_script("return arguments[0].naturalWidth", i) == 160 for i in images)
    errors = [e for e in chrome.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []

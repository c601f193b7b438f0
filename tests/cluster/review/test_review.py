"""mespot review: the session, the HTTP API and its guards, and the page in a real browser.

The store is drawn by hand: one 300-frame video (a numbered JPEG folder at 100 fps whose
frame n is painted with grey level 10 + (n % 24) * 10, so a served frame tells which frame
it is), window scores with two bumps, and the intervals greedy NMS makes of them.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import cv2
import numpy as np
import pytest

from cluster.cli import main
from cluster.review import server as review_server
from cluster.review.server import COOKIE, MAX_BODY, TOKEN_HEADER, allowed_hosts, start
from cluster.review.session import MAX_CLIP_FRAMES, ReviewConfig, ReviewSession
from cluster.run.spot import spot_table
from cluster.store import Store
from cluster.store.models import intervals_model_id
from cluster.store.parquet import (
    read_model_rows,
    spotting_thresholds,
    window_predictions,
    write_spotting,
)
from cluster.store.verdict_log import VerdictLog
from pipeline.core.verdicts import Verdict, resolve
from schemas import VIDEOS, conform

FPS, N_FRAMES, MODEL = 100.0, 300, "lstm-test"
SPAN, STRIDE = 50, 20


def grey_of(frame: int) -> int:
    return 10 + (frame % 24) * 10


def window_scores(low_bump: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    starts = np.arange(0, N_FRAMES - SPAN, STRIDE)
    ends = starts + SPAN
    scores = np.full(len(starts), 0.1)
    scores[starts == 100] = 0.9  # interval 100..150, the best
    scores[starts == 80] = 0.6  # overlaps it: suppressed
    scores[starts == 220] = 0.7  # interval 220..270
    if low_bump:  # a peak below the threshold (0.5) between the two: 160..210
        scores[starts == 160] = 0.3
    return starts, ends, scores


def build_store(root, store_uri: str | None = None, low_bump: bool = False) -> Store:
    frames = root / "corpus" / "s1_1"
    frames.mkdir(parents=True)
    for n in range(N_FRAMES):
        image = np.full((120, 160), grey_of(n), np.uint8)
        cv2.imwrite(str(frames / f"s1_1_{n + 1:04d}.jpg"), image)
    store = Store.open(store_uri or str(root / "store"))
    row = {
        "dataset": "samm",
        "subject": "s1",
        "video": "s1_1",
        "uri": str(frames),
        "source_kind": "frames",
        "fps": FPS,
        "n_frames": N_FRAMES,
        "width": 160,
        "height": 120,
        "first_frame_number": 1,
        "fingerprint": "x",
        "variable_rate": False,
    }
    videos = conform([row], VIDEOS)
    store.write_parquet(videos, "videos", "part-0.parquet")
    import pyarrow as pa

    starts, ends, scores = window_scores(low_bump)
    n = len(starts)
    rows = pa.table(
        {
            "dataset": ["samm"] * n,
            "subject": ["s1"] * n,
            "video": ["s1_1"] * n,
            "window": pa.array(range(n), pa.int32()),
            "start_frame": pa.array(starts, pa.int64()),
            "end_frame": pa.array(ends, pa.int64()),
            "label": pa.array([None] * n, pa.bool_()),
        }
    )
    preds = window_predictions(rows, scores, MODEL, "none")
    store.write_parquet(preds, "predictions", f"model={MODEL}", "part-0.parquet")
    intervals = spot_table(preds, videos, 0.5)
    store.write_parquet(intervals, "intervals", f"model={MODEL}", "part-0.parquet")
    return store


@pytest.fixture
def store(tmp_path) -> Store:
    return build_store(tmp_path)


@pytest.fixture
def server(store):
    session = ReviewSession(store)
    srv = start(session, annotator="default-name")
    yield srv
    srv.shutdown()
    srv.server_close()
    session.close()


def request(srv, path, *, method="GET", body=None, headers=None, host=None):
    url = f"http://127.0.0.1:{srv.server_port}{path}"
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if host:
        req.add_unredirected_header("Host", host)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def post_verdict(srv, payload, headers=None):
    h = {"Content-Type": "application/json", **(headers or {})}
    status, _, body = request(srv, "/api/verdicts", method="POST", body=payload, headers=h)
    return status, json.loads(body)


# --- the session ---------------------------------------------------------------------------


def test_intervals_come_by_score_with_the_timeline_and_progress(store):
    session = ReviewSession(store)
    assert session.model_id == MODEL
    detail = session.video_detail("v0")
    assert [(i["start"], i["end"], i["score"]) for i in detail["intervals"]] == [
        (100, 150, 0.9),
        (220, 270, 0.7),
    ]
    # A model without a macro class spots micro-movements only.
    assert [i["kind"] for i in detail["intervals"]] == ["micro", "micro"]
    assert detail["windows"]["start"][:3] == [0, 20, 40]
    assert detail["progress"] == {
        "intervals": 2,
        "reviewed": 0,
        "left": 2,
        "spotted_s": 1.02,  # 51 + 51 frames at 100 fps
        "reviewed_s": 0.0,
        "left_s": 1.02,
        "recording_s": 3.0,
    }


def test_a_clip_is_the_interval_with_context_on_both_sides(store):
    session = ReviewSession(store, config=ReviewConfig(context_s=0.5))
    clip = session.clip("v0", 100, 150)
    assert clip["frames"] == list(range(50, 201))  # 0.5 s = 50 frames each side
    assert clip["stride"] == 1
    wide = ReviewSession(store, config=ReviewConfig(context_s=2.0)).clip("v0", 220, 270)
    assert wide["frames"][0] == 20 and wide["frames"][-1] <= N_FRAMES - 1  # clipped at the end
    assert len(wide["frames"]) <= MAX_CLIP_FRAMES and wide["stride"] == 2


def test_served_frames_are_the_right_frames(store):
    session = ReviewSession(store)
    for n in (0, 57, 123, 299):
        image = cv2.imdecode(np.frombuffer(session.frame_jpeg("v0", n), np.uint8), 0)
        assert abs(float(image.mean()) - grey_of(n)) < 3, n


def test_a_cache_smaller_than_a_clip_still_serves_every_frame(store):
    session = ReviewSession(store, config=ReviewConfig(cache_frames=3))
    assert len(session.clip("v0", 100, 150)["frames"]) == 151
    for n in (5, 6, 7, 8, 120, 5):
        image = cv2.imdecode(np.frombuffer(session.frame_jpeg("v0", n), np.uint8), 0)
        assert abs(float(image.mean()) - grey_of(n)) < 3, n


def test_frames_of_a_video_file_come_in_any_order(tmp_path):
    from pathlib import Path

    from pipeline.vision.frames import open_frames

    mp4 = Path(__file__).parents[2] / "data" / "WolfgangLanger_Pexels.mp4"
    with open_frames(str(mp4)) as src:
        fps, n, w, h = src.fps, src.n_frames, src.width, src.height
        want = {i: img for i, img in src.read_many([5, 40, 41, 90])}
    store = build_store(tmp_path)
    row = {**store.read_parquet("videos", "part-0.parquet").to_pylist()[0]}
    row.update(uri=str(mp4), source_kind="video", fps=fps, n_frames=n, width=w, height=h)
    store.write_parquet(conform([row], VIDEOS), "videos", "part-0.parquet")
    session = ReviewSession(store, config=ReviewConfig(frame_width=w))  # no shrinking
    for i in (90, 5, 41, 40):  # backwards too: the decoder seeks back
        got = cv2.imdecode(np.frombuffer(session.frame_jpeg("v0", i), np.uint8), 0)
        assert np.abs(got.astype(int) - want[i]).mean() < 3, i
    session.close()


def test_a_corrupt_frame_gives_a_clear_error_and_the_rest_still_works(store, tmp_path):
    (tmp_path / "corpus" / "s1_1" / "s1_1_0061.jpg").write_bytes(b"not a jpeg")  # frame 60
    srv = start(ReviewSession(store))
    try:
        status, _, body = request(srv, "/api/videos/v0/clip?start=100&end=150")
        assert status == 500 and "frame 60 (s1_1_0061.jpg)" in json.loads(body)["error"]
        assert request(srv, "/frames/v0/61.jpg")[0] == 200
        ok = {"video": "v0", "start": 100, "end": 150, "verdict": "unsure", "annotator": "a"}
        assert post_verdict(srv, ok)[0] == 201  # a verdict can still be given
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_model_must_be_named_when_there_are_several(store):
    store.write_parquet(
        store.read_parquet("intervals", f"model={MODEL}", "part-0.parquet"),
        "intervals",
        "model=lstm-other",
        "part-0.parquet",
    )
    with pytest.raises(ValueError, match="several models"):
        intervals_model_id(store, None)
    assert intervals_model_id(store, "lstm-other") == "lstm-other"
    with pytest.raises(FileNotFoundError, match="no intervals of model 'nope'"):
        intervals_model_id(store, "nope")


def test_cli_refuses_a_store_without_intervals(tmp_path, capsys):
    assert main(["review", str(tmp_path / "empty")]) == 2
    assert "no spotted intervals" in capsys.readouterr().err


# --- the HTTP API and its guards -------------------------------------------------------------


def test_verdict_is_stored_before_the_page_hears_back(server, store):
    status, body = post_verdict(
        server,
        {
            "video": "v0",
            "start": 100,
            "end": 150,
            "verdict": "yes",
            "annotator": "ana",
            "action_units": "AU4 + 7",
            "note": "brow lowerer",
        },
    )
    assert status == 201, body
    assert body["verdict"] == "yes" and body["action_units"] == "4+7"
    files = store.find("verdicts", "dataset=samm", "subject=s1", "video=s1_1")
    assert len(files) == 1 and files[0].endswith(f"{body['verdict_id']}.parquet")
    (v,) = VerdictLog(store).verdicts()
    assert (v.start_frame, v.end_frame, v.annotator, v.model_id) == (100, 150, "ana", MODEL)
    assert v.score == pytest.approx(0.9)
    status, _, raw = request(server, "/api/videos/v0?annotator=ana")
    detail = json.loads(raw)
    assert detail["intervals"][0]["mine"]["verdict"] == "yes"
    assert detail["intervals"][1]["mine"] is None
    assert detail["progress"]["reviewed"] == 1 and detail["progress"]["left_s"] == 0.51


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({"video": "v0", "start": 100, "end": 150, "verdict": "maybe", "annotator": "a"}, 400,
         "verdict must be one of"),
        ({"video": "v0", "start": 100, "end": 150, "verdict": "yes"}, 400, "annotator is missing"),
        ({"video": "v0", "start": 101, "end": 150, "verdict": "yes", "annotator": "a"}, 400,
         "no interval 101..150"),
        ({"video": "v0", "start": "100", "end": 150, "verdict": "yes", "annotator": "a"}, 400,
         "must be frame numbers"),
        ({"video": "v9", "start": 100, "end": 150, "verdict": "yes", "annotator": "a"}, 404,
         "no video 'v9'"),
        ({"video": "v0", "start": 100, "end": 150, "verdict": "yes", "annotator": "a",
          "action_units": "smile"}, 400, "are not FACS codes"),
        ({"video": "v0", "start": 100, "end": 150, "verdict": "yes", "annotator": "a",
          "score": 1}, 400, "unknown fields ['score']"),
        ({"video": "v0", "start": 100, "end": 150, "verdict": "yes", "annotator": "<b>x</b>"},
         400, "annotator"),
        ([1, 2], 400, "must be a JSON object"),
    ],
)  # fmt: skip
def test_malformed_verdicts_are_refused_with_a_reason(server, store, payload, status, message):
    got, body = post_verdict(server, payload)
    assert got == status and message in body["error"], body
    assert store.find("verdicts") == []


def test_requests_that_are_not_clean_json_from_the_page_are_refused(server, store):
    ok = {"video": "v0", "start": 100, "end": 150, "verdict": "no", "annotator": "a"}
    s, _, b = request(server, "/api/verdicts", method="POST", body=b"{nope",
                      headers={"Content-Type": "application/json"})  # fmt: skip
    assert s == 400 and b"not valid JSON" in b
    s, _, _ = request(server, "/api/verdicts", method="POST", body=ok,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert s == 415
    s, body = post_verdict(server, ok, headers={"Origin": "http://evil.example"})
    assert s == 403 and "evil.example" in body["error"]
    s, _, _ = request(server, "/api/verdicts", method="POST", body=b"x" * 20000,
                      headers={"Content-Type": "application/json"})  # fmt: skip
    assert s == 413
    assert store.find("verdicts") == []


@pytest.mark.parametrize(
    "path",
    [
        "/frames/v0/300.jpg",  # past the last frame
        "/frames/v1/0.jpg",  # no such video
        "/frames/../../etc/passwd",
        "/frames/v0/%2e%2e%2fvideos.jpg",
        "/static/../review.py",
        "/static/evil.js",
        "/api/videos/s1_1",  # a video's name is not an id
        "/etc/passwd",
    ],
)
def test_only_registered_videos_frames_and_known_files_are_served(server, path):
    status, headers, _ = request(server, path)
    assert status == 404
    assert headers["Content-Type"] == "application/json"


def test_frames_and_page_are_served(server):
    status, headers, body = request(server, "/frames/v0/57.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert abs(float(cv2.imdecode(np.frombuffer(body, np.uint8), 0).mean()) - grey_of(57)) < 3
    status, headers, body = request(server, "/")
    assert status == 200 and b"mespot review" in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]


def test_a_foreign_host_header_is_refused_on_loopback(server):
    assert request(server, "/api/videos", host="attacker.example:80")[0] == 403
    assert request(server, "/api/videos", host=f"localhost:{server.server_port}")[0] == 200


def test_a_non_loopback_bind_needs_a_token(store):
    session = ReviewSession(store)
    with pytest.raises(ValueError, match="needs a token"):
        start(session, host="0.0.0.0")
    srv = start(session, host="0.0.0.0", token="s3cret-token-0123456789")
    try:
        assert request(srv, "/api/videos")[0] == 401
        assert request(srv, "/api/videos", headers={TOKEN_HEADER: "wrong"})[0] == 401
        assert (
            request(srv, "/api/videos", headers={TOKEN_HEADER: "s3cret-token-0123456789"})[0] == 200
        )
        status, headers, _ = request(srv, "/?token=s3cret-token-0123456789")
        assert status == 200 and headers["Set-Cookie"].startswith(
            f"{COOKIE}=s3cret-token-0123456789;"
        )
        assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
        cookie = {"Cookie": f"{COOKIE}=s3cret-token-0123456789"}
        assert request(srv, "/frames/v0/1.jpg", headers=cookie)[0] == 200
        assert srv.url.endswith("?token=s3cret-token-0123456789")
    finally:
        srv.shutdown()
        srv.server_close()


def raw_post(srv, extra_headers: str, host: str | None = None) -> bytes:
    """The head of a POST /api/verdicts as sent on the wire, with extra_headers in it."""
    return (
        "POST /api/verdicts HTTP/1.1\r\n"
        f"Host: {host or f'127.0.0.1:{srv.server_port}'}\r\n"
        "Content-Type: application/json\r\n"
        f"{extra_headers}"
        "\r\n"
    ).encode()


def read_until_closed(sock: socket.socket) -> bytes:
    """All the server sends until it closes the connection (a timeout fails the test)."""
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except ConnectionError:  # closed with bytes of ours unread: a reset after the answer
        pass
    return got


def raw_exchange(srv, data: bytes, wait_s: float = 10.0) -> tuple[bytes, float]:
    """Send data as is; the server's answer up to its close, and how long that took."""
    with socket.create_connection(("127.0.0.1", srv.server_port), timeout=wait_s) as sock:
        t0 = time.monotonic()
        sock.sendall(data)
        return read_until_closed(sock), time.monotonic() - t0


def smuggled(srv) -> bytes:
    """A body that is a whole request: answered only if the server parses the body as one."""
    return f"GET /api/videos HTTP/1.1\r\nHost: 127.0.0.1:{srv.server_port}\r\n\r\n".encode()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ("Content-Length: -1\r\n", 400),  # once read as 'the whole body', past the cap
        ("Content-Length: ten\r\n", 400),
        ("Content-Length: 1_0\r\n", 400),  # int() takes it; HTTP does not
        ("Content-Length: +10\r\n", 400),
        ("Content-Length: 10\r\nContent-Length: 10\r\n", 400),
        ("", 411),
        ("Transfer-Encoding: chunked\r\n", 411),
        ("Transfer-Encoding: chunked\r\nContent-Length: 10\r\n", 411),
        (f"Content-Length: {MAX_BODY + 1}\r\n", 413),
        ("Content-Length: 99999999999999999999999\r\n", 413),
    ],
)
def test_a_bad_content_length_is_refused_before_the_body_and_closes(server, store, headers, status):
    verdict = {"video": "v0", "start": 100, "end": 150, "verdict": "yes", "annotator": "a"}
    for body in (json.dumps(verdict).encode(), smuggled(server)):
        got, took = raw_exchange(server, raw_post(server, headers) + body)  # never half-closed
        assert got.startswith(f"HTTP/1.1 {status} ".encode()), got
        assert got.count(b"HTTP/1.1 ") == 1, got  # the body was not taken for a request
        assert b"Connection: close" in got and took < 5
    assert store.find("verdicts") == []
    assert request(server, "/api/videos")[0] == 200


def test_a_refused_post_leaves_no_body_to_be_read_as_a_request(server, store):
    bad = raw_post(server, "", host="attacker.example") + smuggled(server)  # 403 on its Host
    got, _ = raw_exchange(server, bad.replace(b"POST /api/verdicts", b"POST /api/videos"))
    assert got.startswith(b"HTTP/1.1 403 ") and got.count(b"HTTP/1.1 ") == 1, got


def test_a_good_verdict_keeps_the_connection_open(server, store):
    body = json.dumps({"video": "v0", "start": 100, "end": 150, "verdict": "no", "annotator": "a"})
    head = raw_post(server, f"Content-Length: {len(body)}\r\n")
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
        sock.sendall(head + body.encode() + smuggled(server))  # a second request: answered
        got = b""
        while got.count(b"HTTP/1.1 ") < 2 or not got.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, got  # the server closed the connection
            got += chunk
    assert got.startswith(b"HTTP/1.1 201 ") and b"HTTP/1.1 200 " in got, got
    assert len(store.find("verdicts")) == 1


def test_a_body_shorter_than_its_length_does_not_hold_a_thread(server, store, monkeypatch):
    monkeypatch.setattr(review_server, "REQUEST_TIMEOUT_S", 1.0)
    got, took = raw_exchange(server, raw_post(server, "Content-Length: 100\r\n") + b"{" * 10)
    assert got.startswith(b"HTTP/1.1 408 ") and took < 5, (got, took)
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
        t0 = time.monotonic()  # a client that opens a connection and says nothing
        assert read_until_closed(sock) == b"" and time.monotonic() - t0 < 5
    assert request(server, "/api/videos")[0] == 200  # the server still answers
    assert store.find("verdicts") == []


def test_a_body_dripping_in_is_dropped_at_the_deadline(server, store, monkeypatch):
    monkeypatch.setattr(review_server, "REQUEST_TIMEOUT_S", 1.0)
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
        t0 = time.monotonic()
        sock.sendall(raw_post(server, "Content-Length: 100\r\n"))
        for _ in range(100):  # a byte every 0.2 s: never silent for the timeout, yet too slow
            if select.select([sock], [], [], 0.2)[0]:
                break
            sock.sendall(b" ")
        got = read_until_closed(sock)
        assert got.startswith(b"HTTP/1.1 408 ") and time.monotonic() - t0 < 5, got
    assert store.find("verdicts") == []


def test_allowed_hosts_take_the_bare_address_on_default_ports():
    for port in (80, 443):
        hosts = allowed_hosts("127.0.0.1", port)
        assert {"127.0.0.1", "localhost", "[::1]", f"127.0.0.1:{port}"} <= hosts
    hosts = allowed_hosts("127.0.0.1", 8765)
    assert hosts == {"127.0.0.1:8765", "localhost:8765", "[::1]:8765"}
    assert "127.0.0.1" not in hosts and "127.0.0.1:80" not in hosts
    assert "127.0.0.2:8765" in allowed_hosts("127.0.0.2", 8765)
    assert "[::1]:8765" in allowed_hosts("::1", 8765)
    assert allowed_hosts("0.0.0.0", 80) is None and allowed_hosts("10.0.0.5", 8765) is None


def test_a_server_on_port_80_answers_a_browsers_bare_host(server, store):
    assert server.allowed_hosts == allowed_hosts("127.0.0.1", server.server_port)
    server.allowed_hosts = allowed_hosts("127.0.0.1", 80)  # as if bound to port 80
    assert request(server, "/api/videos", host="127.0.0.1")[0] == 200
    assert request(server, "/api/videos", host="attacker.example")[0] == 403
    ok = {"video": "v0", "start": 100, "end": 150, "verdict": "yes", "annotator": "a"}
    body = json.dumps(ok).encode()
    headers = {"Content-Type": "application/json", "Origin": "http://127.0.0.1"}
    s, _, b = request(server, "/api/verdicts", method="POST", body=body, headers=headers,
                      host="127.0.0.1")  # fmt: skip
    assert s == 201, b


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_a_short_token_is_refused(store, host):
    session = ReviewSession(store)
    try:
        for token in ("x", "a" * 15):
            with pytest.raises(ValueError, match="at least 16 characters"):
                start(session, host=host, token=token)
        srv = start(session, host=host, token="a" * 16)
        srv.shutdown()
        srv.server_close()
    finally:
        session.close()


def test_cli_refuses_a_short_token(store, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(review_server.ReviewServer, "serve_forever", lambda self: None)
    args = ["review", str(tmp_path / "store"), "--port", "0", "--token", "x"]
    assert main(args) == 2
    assert "mespot review: a review token must be at least 16 characters" in capsys.readouterr().err


def test_two_annotators_at_once_never_overwrite_each_other(server, store):
    def annotate(name, verdicts):
        for i, verdict in enumerate(verdicts):
            start, end = ((100, 150), (220, 270))[i % 2]
            body = {"video": "v0", "start": start, "end": end, "verdict": verdict}
            status, got = post_verdict(server, {**body, "annotator": name})
            assert status == 201, got

    ana = ["yes", "no"] * 5 + ["no", "yes"]  # ends: 100..150 no, 220..270 yes
    ben = ["unsure"] * 10 + ["no", "no"]
    threads = [threading.Thread(target=annotate, args=a) for a in (("ana", ana), ("ben", ben))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = VerdictLog(store).verdicts()
    assert len(log) == 24 and len({v.verdict_id for v in log}) == 24
    assert sum(v.annotator == "ana" for v in log) == 12
    labels = {(k.start, k.end): r.label for k, r in resolve(log).items()}
    # 100..150: ana no, ben no -> no. 220..270: ana yes, ben no -> a tie -> undecided.
    assert labels == {(100, 150): "no", (220, 270): None}


def test_verdicts_go_to_an_s3_store(tmp_path, s3_bucket):
    store = build_store(tmp_path, f"{s3_bucket}/review")
    session = ReviewSession(Store.open(f"{s3_bucket}/review"))
    srv = start(session)
    try:
        ok = {"video": "v0", "start": 220, "end": 270, "verdict": "unsure", "annotator": "a"}
        assert post_verdict(srv, ok)[0] == 201
        assert request(srv, "/frames/v0/222.jpg")[0] == 200  # frames from the local folder
    finally:
        srv.shutdown()
        srv.server_close()
    (v,) = VerdictLog(store).verdicts()
    assert (v.verdict, v.start_frame) == ("unsure", 220)
    assert store.find("verdicts")[0].startswith(s3_bucket.removeprefix("s3://") + "/review/")


# --- the page in a real browser --------------------------------------------------------------


@contextlib.contextmanager
def _page(browser, store: Store, annotator: str):
    """The review page of ``store`` in the headless ``browser``: (browser, a 60 s wait)."""
    from selenium.webdriver.support.ui import WebDriverWait

    session = ReviewSession(store)
    srv = start(session, annotator=annotator)
    try:
        browser.get(f"http://127.0.0.1:{srv.server_port}/")
        yield browser, WebDriverWait(browser, 60)
    finally:
        srv.shutdown()
        srv.server_close()
        session.close()


@pytest.mark.slow
def test_review_in_a_real_browser_survives_a_reload(store, chrome):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with _page(chrome, store, "browser-annotator") as (browser, wait):
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#videos li"))
        assert "0 of 2 intervals reviewed" in browser.find_element(By.ID, "overall-text").text
        assert browser.find_element(By.ID, "annotator").get_attribute("value") == (
            "browser-annotator"
        )
        browser.find_element(By.CSS_SELECTOR, "#videos li").click()  # open the video
        rows = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#intervals tbody tr"))
        assert [r.get_attribute("data-start") for r in rows] == ["100", "220"]  # by score
        frame = browser.find_element(By.ID, "frame")
        wait.until(lambda b: frame.get_attribute("data-frame") == "50")  # clip loaded, frame 0

        browser.find_element(By.TAG_NAME, "body").send_keys("ss")  # speed 1x -> 0.25x
        assert browser.find_element(By.ID, "speed").get_attribute("value") == "0.25"
        browser.find_element(By.ID, "play").click()  # play the interval
        wait.until(lambda b: int(frame.get_attribute("data-frame")) >= 110)  # into it
        browser.find_element(By.ID, "play").click()  # pause (2 s of interval at 0.25x)
        player = browser.find_element(By.ID, "player")
        wait.until(lambda b: player.get_attribute("data-playing") == "false")
        at = int(frame.get_attribute("data-frame"))
        where = "inside" if at <= 150 else "after"  # a loaded machine may pause late
        assert f"frame {at} · {at / FPS:.2f} s · {where} the interval" == (
            browser.find_element(By.ID, "frame-info").text
        )
        # the image shown is the frame named, from the store's frame folder
        shown = browser.execute_script(
            "const i = arguments[0]; const c = document.createElement('canvas');"
            "c.width = i.naturalWidth; c.height = i.naturalHeight;"
            "const x = c.getContext('2d'); x.drawImage(i, 0, 0);"
            "return x.getImageData(5, 5, 1, 1).data[0];",
            frame,
        )
        assert shown == pytest.approx(grey_of(at), abs=12)

        aus = browser.find_element(By.ID, "action-units")
        body = browser.find_element(By.TAG_NAME, "body")
        status = browser.find_element(By.ID, "status")
        aus.send_keys("smile", Keys.ESCAPE)
        body.send_keys("y")  # refused, and the page says why
        wait.until(lambda b: "not saved: action_units 'smile' are not FACS codes" in status.text)
        assert store.find("verdicts") == []
        aus.clear()
        aus.send_keys("4+7")
        aus.send_keys(Keys.ESCAPE)  # leave the field: keys are shortcuts again
        body.send_keys("y")  # mark it: yes
        wait.until(lambda b: "saved: yes (4+7) for interval 1" in status.text)
        # and the page moved on to the next interval to review
        wait.until(lambda b: "Interval 2 of 2" in b.find_element(By.ID, "interval-title").text)

        browser.refresh()  # reload: the verdict is still there
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#videos li"))
        wait.until(lambda b: "1 of 2" in b.find_element(By.ID, "overall-text").text)
        browser.find_element(By.CSS_SELECTOR, "#videos li").click()
        mine = wait.until(
            lambda b: b.find_elements(
                By.CSS_SELECTOR, "#intervals tbody tr[data-start='100'] .mine"
            )
        )
        wait.until(lambda b: mine[0].text == "yes (4+7)")
        # the next interval to review is the one not reviewed yet
        current = browser.find_element(By.CSS_SELECTOR, "#intervals tbody tr.current")
        assert current.get_attribute("data-start") == "220"
    (v,) = VerdictLog(store).verdicts()
    assert (v.verdict, v.action_units, v.annotator) == ("yes", "4+7", "browser-annotator")
    assert v.created_at <= datetime.now(UTC)


# --- the review queue and the movement's extent ---------------------------------------------


@pytest.fixture
def store_low(tmp_path) -> Store:
    return build_store(tmp_path, low_bump=True)


def test_the_queue_adds_a_peak_below_the_threshold_and_says_why(store_low):
    detail = ReviewSession(store_low).video_detail("v0")
    got = [(i["start"], i["kind"], i["pool"]) for i in detail["intervals"]]
    # the lowest micro score spotted (0.7) stands for the threshold: 220..270 is the
    # nearest to it, but both spotted intervals come first (half of a batch is top), then
    # the peak 160..210 (0.3), the one candidate left, as the uncertain share
    assert got == [(100, "micro", "top"), (220, "micro", "top"), (160, "unspotted", "uncertain")]
    assert "near its threshold 0.70" in detail["intervals"][2]["reason"]
    assert detail["progress"]["intervals"] == 2  # progress counts spotted intervals only
    top = ReviewSession(store_low, strategy="top").video_detail("v0")
    assert [i["start"] for i in top["intervals"]] == [100, 220]
    with pytest.raises(ValueError, match="strategy"):
        ReviewSession(store_low, strategy="random")


def test_the_queue_takes_the_threshold_spot_or_evaluate_stored(store_low):
    # spotted at 0.5 (build_store): once recorded beside the intervals, the page knows it
    write_spotting(store_low, MODEL, {"*": 0.6})
    assert spotting_thresholds(store_low, MODEL) == {"*": 0.6}
    reason = ReviewSession(store_low).video_detail("v0")["intervals"][2]["reason"]
    assert "near its threshold 0.60" in reason
    write_spotting(store_low, MODEL, {"s1": 0.5, "s9": 0.2})  # per subject, as evaluate does
    reason = ReviewSession(store_low).video_detail("v0")["intervals"][2]["reason"]
    assert "near its threshold 0.50" in reason
    # the table itself is untouched: the file is not a part of it
    assert read_model_rows(store_low, "intervals", MODEL).num_rows == 2


def test_peaks_below_the_threshold_are_found_on_the_window_scores_own_threshold(store_low):
    # micro spots on an extent head's profile and window scores are two scales: the peaks
    # below the threshold are window-score peaks, compared with the window threshold
    write_spotting(store_low, MODEL, {"s1": 0.6}, {"s1": 0.35})
    assert spotting_thresholds(store_low, MODEL, "window") == {"s1": 0.35}
    starts = [i["start"] for i in ReviewSession(store_low).video_detail("v0")["intervals"]]
    assert starts == [100, 220, 160]  # the peak 160..210 scores 0.3, below 0.35
    write_spotting(store_low, MODEL, {"s1": 0.6}, {"s1": 0.25})
    starts = [i["start"] for i in ReviewSession(store_low).video_detail("v0")["intervals"]]
    assert starts == [100, 220]  # 0.3 is above 0.25: no peak below it
    with pytest.raises(ValueError, match="kind"):
        spotting_thresholds(store_low, MODEL, "macro")


def test_an_interval_overlapping_a_judged_one_is_covered(store_low):
    session = ReviewSession(store_low)
    # a verdict on another model's interval 90..140, which overlaps 100..150
    VerdictLog(store_low).append(Verdict("other-model", "samm", "s1", "s1_1", 90, 140, "no", "ana"))
    rows = {i["start"]: i for i in session.video_detail("v0")["intervals"]}
    assert rows[100]["covered"] and not rows[220]["covered"] and not rows[160]["covered"]


def test_a_yes_with_an_extent_is_stored_and_checked(server, store):
    ok = {"video": "v0", "start": 100, "end": 150, "verdict": "yes", "annotator": "ana"}
    status, body = post_verdict(server, {**ok, "onset": 110, "offset": 140})
    assert status == 201 and (body["onset"], body["offset"]) == (110, 140)
    (v,) = VerdictLog(store).verdicts()
    assert v.extent is not None and (v.extent.start, v.extent.end) == (110, 140)
    for bad, message in (
        ({"onset": 110}, "both onset and offset"),
        ({"onset": 110, "offset": 300}, "past the video's last frame"),
        ({"verdict": "no", "onset": 110, "offset": 140}, "only a yes"),
    ):
        status, body = post_verdict(server, {**ok, **bad})
        assert status == 400 and message in body["error"]
    assert len(VerdictLog(store).verdicts()) == 1


@pytest.mark.slow
def test_the_page_shows_why_and_marks_an_extent_in_a_real_browser(store_low, chrome):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    with _page(chrome, store_low, "extent-annotator") as (browser, wait):
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#videos li"))
        browser.find_element(By.CSS_SELECTOR, "#videos li").click()
        rows = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#intervals tbody tr"))
        assert [r.get_attribute("data-start") for r in rows] == ["100", "220", "160"]
        why = rows[2].find_element(By.CSS_SELECTOR, "td.why").text
        assert "near its threshold" in why and rows[2].get_attribute("data-pool") == "uncertain"
        assert "surest" in browser.find_element(By.ID, "reason").text  # interval 1 is open
        frame = browser.find_element(By.ID, "frame")
        wait.until(lambda b: frame.get_attribute("data-frame") == "50")  # clip loaded
        info = browser.find_element(By.ID, "extent-info")
        assert (info.get_attribute("data-onset"), info.get_attribute("data-offset")) == (
            "100",
            "150",
        )  # unmarked: the interval itself
        body = browser.find_element(By.TAG_NAME, "body")
        # step to a frame inside the interval and mark the onset there, then the offset
        while int(frame.get_attribute("data-frame")) < 110:
            body.send_keys("\ue014")  # arrow right: the next frame of the clip
        onset = int(frame.get_attribute("data-frame"))
        body.send_keys("[")
        while int(frame.get_attribute("data-frame")) < 140:
            body.send_keys("\ue014")
        offset = int(frame.get_attribute("data-frame"))
        body.send_keys("]")
        wait.until(lambda b: info.get_attribute("data-offset") == str(offset))
        assert info.get_attribute("data-onset") == str(onset)
        # drag the offset end of the extent to the left, on the clip bar
        bar = browser.find_element(By.ID, "clipbar")
        width = bar.size["width"]

        def x_of(f: int) -> int:  # from the bar's centre; the clip is frames 50..200
            return round((f - 50) / (200 - 50) * width - width / 2)

        drag = ActionChains(browser).move_to_element_with_offset(bar, x_of(offset), 0)
        drag.click_and_hold().move_to_element_with_offset(bar, x_of(130), 0).release().perform()
        wait.until(lambda b: abs(int(info.get_attribute("data-offset")) - 130) <= 2)
        dragged = int(info.get_attribute("data-offset"))
        assert info.get_attribute("data-onset") == str(onset)  # the other end stays
        body.send_keys("y")
        status = browser.find_element(By.ID, "status")
        wait.until(lambda b: f"movement {onset}–{dragged}" in status.text)
    (v,) = VerdictLog(store_low).verdicts()
    assert (v.verdict, v.onset_frame, v.offset_frame) == ("yes", onset, dragged)


def test_the_page_says_how_many_verdicts_the_model_learned_from(store):
    assert ReviewSession(store).list_videos()["learned_verdicts"] is None  # not in the store
    info = {"model_id": MODEL, "verdicts": {"verdicts": 12, "positive_windows": 5}}
    store.write_text(json.dumps(info), "models", MODEL, "all", "model.json")
    assert ReviewSession(store).list_videos()["learned_verdicts"] == 12
    del info["verdicts"]  # trained without verdicts
    store.write_text(json.dumps(info), "models", MODEL, "all", "model.json")
    assert ReviewSession(store).list_videos()["learned_verdicts"] == 0

"""The HTTP server of ``mespot review``: a thin layer over cluster.review.session.ReviewSession.

Routes (nothing else answers)::

    GET  /                          the page (static files from cluster/review/static/)
    GET  /static/<name>             review.js, review.css (a fixed list, no paths)
    GET  /api/videos                videos with their review progress
    GET  /api/videos/<vid>          timeline, intervals by score, verdicts
    GET  /api/videos/<vid>/clip?start=&end=   frame numbers of an interval's clip
    GET  /frames/<vid>/<n>.jpg      one frame, shrunk, JPEG
    POST /api/verdicts              {"video", "start", "end", "verdict", "annotator",
                                     "action_units"?, "note"?} -> the stored verdict

Security: a request names a video only by the session's short id (``v0``...) and a frame
by its number; no part of a request becomes a path. Bound to a loopback address, the
server answers only requests whose Host header is that address (a web page elsewhere
cannot reach it through DNS rebinding; on port 80 or 443 the bare address too, as browsers
send it). Bound to any other address it requires a token of at least 16 characters:
``?token=`` on the first visit (then a same-site cookie), or the ``X-Mespot-Token``
header. Verdicts must be ``application/json`` from the page's own origin (a form on
another site cannot post one), with a Content-Length of at most 16 KiB (checked before a
byte of the body is read; a refused request closes its connection). A client silent for
``REQUEST_TIMEOUT_S``, or slower than that with a verdict's body, is dropped.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from cluster.review.session import NotFound, ReviewSession
from pipeline.core.verdicts import BadVerdict
from pipeline.vision.frames import FrameError

log = logging.getLogger(__name__)

COOKIE = "mespot_review"
TOKEN_HEADER = "X-Mespot-Token"
MAX_BODY = 16 * 1024
MIN_TOKEN_CHARS = 16
REQUEST_TIMEOUT_S = 10.0  # read as each connection opens
_DEFAULT_PORTS = (80, 443)  # a browser's Host header leaves these out
STATIC = {  # name -> content type; the only files served
    "index.html": "text/html; charset=utf-8",
    "review.js": "text/javascript; charset=utf-8",
    "review.css": "text/css; charset=utf-8",
}
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
}
_VIDEO = re.compile(r"^/api/videos/(v\d{1,6})$")
_CLIP = re.compile(r"^/api/videos/(v\d{1,6})/clip$")
_FRAME = re.compile(r"^/frames/(v\d{1,6})/(\d{1,9})\.jpg$")
_STATIC = re.compile(r"^/static/([a-z]+\.(?:js|css))$")
_LENGTH = re.compile(r"[0-9]+")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """The Host headers a server bound to host:port answers; None: any (not loopback)."""
    if not is_loopback(host):
        return None
    names = {"127.0.0.1", "localhost", "[::1]", f"[{host}]" if ":" in host else host}
    hosts = {f"{name}:{port}" for name in names}
    return hosts | names if port in _DEFAULT_PORTS else hosts


def _static(name: str) -> bytes:
    return resources.files("cluster.review").joinpath("static", name).read_bytes()


class ReviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        session: ReviewSession,
        host: str,
        port: int,
        token: str | None,
        annotator: str = "",
    ):
        token = token or None
        if not is_loopback(host) and not token:
            raise ValueError(f"binding to {host} (not loopback) needs a token")
        if token is not None and len(token) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"a review token must be at least {MIN_TOKEN_CHARS} characters, got {len(token)}"
            )
        self.session = session
        self.annotator = annotator  # the page's default name
        self.token = token
        super().__init__((host, port), _Handler)
        self.allowed_hosts = allowed_hosts(host, self.server_port)

    @property
    def url(self) -> str:
        host = self.server_address[0]
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        base = f"http://{shown}:{self.server_port}/"
        return base if not self.token else f"{base}?token={self.token}"


class _Handler(BaseHTTPRequestHandler):
    server: ReviewServer
    protocol_version = "HTTP/1.1"
    server_version = "mespot-review"
    sys_version = ""

    def setup(self) -> None:
        self.timeout = REQUEST_TIMEOUT_S  # every read and write on the connection
        super().setup()

    def log_message(self, format: str, *args) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # --- responses -----------------------------------------------------------------------

    def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        for k, v in {**_SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        body = json.dumps(obj).encode()
        self._send(status, body, "application/json", {"Cache-Control": "no-store"})

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    # --- checks --------------------------------------------------------------------------

    def _allowed(self) -> bool:
        srv = self.server
        if srv.allowed_hosts is not None and self.headers.get("Host") not in srv.allowed_hosts:
            self._error(HTTPStatus.FORBIDDEN, "unexpected Host header")
            return False
        if srv.token is None:
            return True
        given = self.headers.get(TOKEN_HEADER) or self._cookie() or self._query_token()
        if given and hmac.compare_digest(given.encode(), srv.token.encode()):
            return True
        self._error(HTTPStatus.UNAUTHORIZED, "this review server needs its token (?token=...)")
        return False

    def _cookie(self) -> str | None:
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
        return None

    def _query_token(self) -> str | None:
        values = parse_qs(urlsplit(self.path).query).get("token")
        return values[0] if values else None

    # --- routes --------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._allowed():
            return
        url = urlsplit(self.path)
        path = url.path
        s = self.server.session
        try:
            if path in ("/", "/index.html"):
                headers = {"Cache-Control": "no-store"}
                if self.server.token and self._query_token():
                    headers["Set-Cookie"] = (
                        f"{COOKIE}={self.server.token}; HttpOnly; SameSite=Strict; Path=/"
                    )
                self._send(200, _static("index.html"), STATIC["index.html"], headers)
            elif path == "/favicon.ico":
                self._send(204, b"", "image/x-icon")
            elif m := _STATIC.match(path):
                if m.group(1) not in STATIC:
                    raise NotFound(path)
                self._send(200, _static(m.group(1)), STATIC[m.group(1)])
            elif path == "/api/videos":
                self._json(200, {**s.list_videos(), "annotator": self.server.annotator})
            elif m := _VIDEO.match(path):
                annotator = parse_qs(url.query).get("annotator", [None])[0]
                self._json(200, s.video_detail(m.group(1), annotator))
            elif m := _CLIP.match(path):
                q = parse_qs(url.query)
                try:
                    start, end = int(q["start"][0]), int(q["end"][0])
                except (KeyError, ValueError):
                    self._error(400, "clip needs integer start and end frames")
                    return
                self._json(200, s.clip(m.group(1), start, end))
            elif m := _FRAME.match(path):
                data = s.frame_jpeg(m.group(1), int(m.group(2)))
                self._send(200, data, "image/jpeg", {"Cache-Control": "private, max-age=3600"})
            else:
                raise NotFound(f"no such page {path}")
        except NotFound as e:
            self._error(404, str(e))
        except FrameError as e:
            log.warning("frame error: %s", e)
            self._error(500, str(e))

    def _body_length(self) -> int | None:
        """The verdict's declared length; None when refused (no byte of the body is read)."""
        if self.headers.get("Transfer-Encoding") is not None:
            self._error(411, "a verdict needs a Content-Length (no Transfer-Encoding)")
            return None
        values = self.headers.get_all("Content-Length") or []
        if not values:
            self._error(411, "Content-Length is required")
            return None
        if len(values) > 1 or not _LENGTH.fullmatch(values[0].strip()):
            self._error(400, f"Content-Length must be one whole number, got {values}")
            return None
        length = int(values[0])
        if length > MAX_BODY:
            self._error(413, f"a verdict is at most {MAX_BODY} bytes, got {length}")
            return None
        return length

    def _read_body(self, length: int) -> bytes | None:
        """The body, all of it within REQUEST_TIMEOUT_S; None when it did not come."""
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        chunks: list[bytes] = []
        try:
            while length > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the body is too slow")
                self.connection.settimeout(left)
                chunk = self.rfile.read1(length)
                if not chunk:
                    return None  # the client went away mid-body: no one to answer
                chunks.append(chunk)
                length -= len(chunk)
        except TimeoutError:
            self._error(408, "the verdict's body did not arrive in time")
            return None
        finally:
            self.connection.settimeout(self.timeout)
        return b"".join(chunks)

    def do_POST(self) -> None:
        keep_alive = not self.close_connection
        self.close_connection = True  # until the body is read, whatever is refused closes
        if not self._allowed():
            return
        if urlsplit(self.path).path != "/api/verdicts":
            self._error(404, f"no such endpoint {self.path}")
            return
        if self.headers.get_content_type() != "application/json":
            self._error(415, "a verdict must be sent as application/json")
            return
        origin = self.headers.get("Origin")
        if origin and urlsplit(origin).netloc != self.headers.get("Host"):
            self._error(403, f"verdicts are taken only from this page, not from {origin}")
            return
        length = self._body_length()
        raw = None if length is None else self._read_body(length)
        if raw is None:
            return
        self.close_connection = not keep_alive
        try:
            payload = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            self._error(400, f"the verdict is not valid JSON: {e}")
            return
        try:
            stored = self.server.session.add_verdict(payload)
        except BadVerdict as e:
            self._error(400, str(e))
            return
        except NotFound as e:
            self._error(404, str(e))
            return
        self._json(201, stored)


def start(
    session: ReviewSession, host: str = "127.0.0.1", port: int = 0, token=None, annotator=""
) -> ReviewServer:
    """A running server in a background thread (tests, notebooks); call .shutdown()."""
    server = ReviewServer(session, host, port, token, annotator)
    threading.Thread(target=server.serve_forever, daemon=True, name="mespot-review").start()
    return server

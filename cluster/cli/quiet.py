"""Keep the native libraries' log lines off the terminal unless ``-v`` asks for them.

TensorFlow's C++ core logs through absl straight to file descriptor 2 (``I0000 ...
port.cc:153] oneDNN custom operations are on``, ``E0000 ... NodeDef mentions attribute
...``), whatever ``TF_CPP_MIN_LOG_LEVEL`` says for the messages written before absl is
initialised. :func:`native_log_filter` puts a pipe in front of descriptor 2 for the length
of a command and forwards everything except those lines: Python's own warnings, errors,
tracebacks and progress bars still reach the terminal as they are written.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

#: absl's log line prefix (severity, date, time, thread, file:line]) and its start-up notice.
NATIVE_LINE = re.compile(
    rb"(?:\b[IWEF]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\))"
)


def _keep(segment: bytes) -> bytes:
    """A segment without the native log line in it (one may follow a progress bar's text)."""
    m = NATIVE_LINE.search(segment)
    return segment if m is None else segment[: m.start()]


def _forward(read_fd: int, write_fd: int) -> None:
    """Copy ``read_fd`` to ``write_fd`` segment by segment ('\\n' or '\\r'), minus native lines."""
    pending = b""
    while True:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        pending += chunk
        parts = re.split(rb"(?<=[\r\n])", pending)
        pending = parts.pop()  # an unfinished segment waits for its end
        out = b"".join(_keep(p) for p in parts)
        if out:
            os.write(write_fd, out)
    if _keep(pending):
        os.write(write_fd, _keep(pending))


@contextlib.contextmanager
def native_log_filter(enabled: bool = True) -> Iterator[None]:
    """Drop absl-format lines written to descriptor 2 inside the block (when ``enabled``)."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_forward, args=(read_fd, saved), daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the thread drains and stops
        thread.join(timeout=5)
        if not thread.is_alive():  # else a child process still holds the pipe: leave it be
            os.close(read_fd)
            os.close(saved)

"""The verdicts table in a store: one small Parquet file per verdict, written as it is given.

Layout (``schemas.VERDICTS``, key columns also inside each file)::

    verdicts/dataset=<D>/subject=<S>/video=<V>/<UTC time>-<verdict id>.parquet

Each verdict is its own file, written atomically (Store.put_atomic) before the annotator's
page hears back, under a name no other verdict can take: a crash or a closed tab loses at
most the verdict in flight, and two annotators (or two ``mespot review`` servers on one
store) never overwrite each other. The log keeps who said what, when; pipeline.core.verdicts
resolves it into labels.
"""

from __future__ import annotations

import io
import re
import threading

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cluster.store import paths
from cluster.store.store import Store
from pipeline.core.verdicts import Verdict
from schemas import VERDICTS, conform

FOLDER = paths.VERDICTS
_ID = re.compile(r"-([0-9a-f]{32})\.parquet$")  # <time>-<verdict id>.parquet


class VerdictLog:
    """Append and read the verdicts of one store (``folder`` lets simulations keep apart)."""

    def __init__(self, store: Store, folder: str = FOLDER) -> None:
        self.store = store
        self.folder = folder
        self._known: dict[str, Verdict] = {}  # verdict id -> verdict, files read so far
        self._lock = threading.Lock()

    def append(self, verdict: Verdict) -> str:
        """Write one verdict durably; returns its path."""
        table = conform([verdict.to_row()], VERDICTS)
        buf = io.BytesIO()
        pq.write_table(table, buf)
        stamp = verdict.created_at.strftime("%Y%m%dT%H%M%S%fZ")
        parts = paths.video_partition(verdict.dataset, verdict.subject, verdict.video)
        return self.store.put_atomic(
            buf.getvalue(), self.folder, *parts, f"{stamp}-{verdict.verdict_id}.parquet"
        )

    def _files(self, parts: list[str]) -> list[str]:
        base = self.store.path(*parts)
        try:  # another server may have added verdicts: drop any cached listing
            self.store.fs.invalidate_cache(base)
        except (AttributeError, NotImplementedError):
            pass
        files = [p for p in self.store.find(*parts) if p.endswith(".parquet")]
        return [p for p in files if not p.rsplit("/", 1)[-1].startswith(".")]

    def verdicts(self, dataset: str | None = None, subject: str | None = None, video=None):
        """The log (of one video when all three keys are given) as Verdicts, oldest first.

        Files are listed every time (another annotator may have added some), but a verdict
        file is read once per VerdictLog: files never change, and the name carries the id.
        """
        parts = [self.folder]
        if dataset is not None and subject is not None and video is not None:
            parts += paths.video_partition(dataset, subject, video)
        files = self._files(parts)
        ids = {f: _ID.search(f.rsplit("/", 1)[-1]) for f in files}
        with self._lock:
            unread = [f for f, m in ids.items() if m is None or m.group(1) not in self._known]
        fresh: list[Verdict] = []
        if unread:
            data = ds.dataset(unread, filesystem=self.store.fs, format="parquet", schema=VERDICTS)
            fresh = [Verdict.from_row(r) for r in conform(data.to_table(), VERDICTS).to_pylist()]
        with self._lock:
            self._known.update((v.verdict_id, v) for v in fresh)
            found = {v.verdict_id: v for v in fresh}  # with files named otherwise
            for m in ids.values():
                if m is not None and m.group(1) in self._known:
                    found[m.group(1)] = self._known[m.group(1)]
        return sorted(found.values(), key=lambda v: (v.created_at, v.verdict_id))

    def table(self, dataset: str | None = None, subject: str | None = None, video=None) -> pa.Table:
        """:meth:`verdicts` as a schemas.VERDICTS table."""
        return conform([v.to_row() for v in self.verdicts(dataset, subject, video)], VERDICTS)

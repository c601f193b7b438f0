"""The verdicts table in a store: one small Parquet file per verdict, written as it is given.

Layout (``schemas.VERDICTS``, key columns also inside each file)::

    verdicts/dataset=<D>/subject=<S>/video=<V>/<UTC time>-<verdict id>.parquet

Each verdict is its own file, written atomically (Store.put_atomic) before the annotator's
page hears back, under a name no other verdict can take: a crash or a closed tab loses at
most the verdict in flight, and two annotators (or two ``mespot review`` servers on one
store) never overwrite each other. The log keeps who said what, when; pipeline.review
resolves it into labels.
"""

from __future__ import annotations

import io
from urllib.parse import quote

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cluster.store import Store
from pipeline.review import Verdict
from schemas import VERDICTS, conform

FOLDER = "verdicts"


def _video_parts(dataset: str, subject: str, video: str) -> list[str]:
    return [
        f"dataset={quote(dataset, safe='')}",
        f"subject={quote(subject, safe='')}",
        f"video={quote(video, safe='')}",
    ]


class VerdictLog:
    """Append and read the verdicts of one store (``folder`` lets simulations keep apart)."""

    def __init__(self, store: Store, folder: str = FOLDER) -> None:
        self.store = store
        self.folder = folder

    def append(self, verdict: Verdict) -> str:
        """Write one verdict durably; returns its path."""
        table = conform([verdict.to_row()], VERDICTS)
        buf = io.BytesIO()
        pq.write_table(table, buf)
        stamp = verdict.created_at.strftime("%Y%m%dT%H%M%S%fZ")
        parts = _video_parts(verdict.dataset, verdict.subject, verdict.video)
        return self.store.put_atomic(
            buf.getvalue(), self.folder, *parts, f"{stamp}-{verdict.verdict_id}.parquet"
        )

    def table(self, dataset: str | None = None, subject: str | None = None, video=None) -> pa.Table:
        """Every verdict (of one video when all three keys are given) as schemas.VERDICTS."""
        parts = [self.folder]
        if dataset is not None and subject is not None and video is not None:
            parts += _video_parts(dataset, subject, video)
        files = [p for p in self.store.find(*parts) if p.endswith(".parquet")]
        files = [p for p in files if not p.rsplit("/", 1)[-1].startswith(".")]
        if not files:
            return conform([], VERDICTS)
        data = ds.dataset(files, filesystem=self.store.fs, format="parquet", schema=VERDICTS)
        return conform(data.to_table(), VERDICTS)

    def verdicts(self, dataset: str | None = None, subject: str | None = None, video=None):
        """The log as Verdict objects, oldest first."""
        rows = self.table(dataset, subject, video).to_pylist()
        out = [Verdict.from_row(r) for r in rows]
        return sorted(out, key=lambda v: (v.created_at, v.verdict_id))

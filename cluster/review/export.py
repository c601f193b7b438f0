"""Reviewed intervals out of a store: a CSV for people, a SAMM workbook as new ground truth.

Rows (:func:`reviewed_intervals`): every interval the model spotted (``intervals/model=<id>/``)
plus every interval with a verdict that the model did not spot (verdicts given on another
model's intervals are reviewed footage too; their ``model_id`` is the verdicts', joined by
``;`` if several). Verdicts resolve as in ``pipeline.core.verdicts.resolve`` (latest per
annotator, then the majority). Column ``label``:

- ``yes`` / ``no``: more annotators' latest verdicts say yes (no) than no (yes);
- ``undecided``: reviewed, but a tie or only ``unsure``;
- ``unreviewed``: spotted, no verdict yet.

``onset_frame``/``offset_frame``: a ``yes``'s extent as marked (the newest marking yes),
empty when unmarked. ``action_units`` merges the codes of the annotators whose latest
verdict is the label;
``notes`` is the latest verdicts' notes as ``annotator: note``; ``last_verdict_at`` is ISO
8601 UTC. Frames are 0-based and inclusive (``schemas.tables``); seconds are frame / fps.

The SAMM workbook (:func:`export_samm`) holds the ``yes`` intervals (their marked extents
where there are some) in the layout
``pipeline.datasets.read_samm`` reads: frames become the numbers in the file names (index +
``first_frame_number`` from the store's ``videos`` table).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import PurePosixPath

import pandas as pd

from cluster.store import Store, paths
from cluster.store.models import intervals_model_id
from cluster.store.parquet import read_model_rows, read_table
from cluster.store.store import file_target
from cluster.store.verdict_log import VerdictLog
from pipeline.core.verdicts import IntervalKey, Resolution, resolve
from pipeline.datasets import SAMM_TYPES, SAMM_WORKBOOK, samm_workbook
from schemas import VERDICTS

LABEL_UNDECIDED = "undecided"
LABEL_UNREVIEWED = "unreviewed"
COLUMNS = (
    "dataset",
    "subject",
    "video",
    "model_id",
    "start_frame",
    "end_frame",
    "start_s",
    "end_s",
    "score",
    "kind",
    "label",
    "onset_frame",
    "offset_frame",
    "n_yes",
    "n_no",
    "n_unsure",
    "annotators",
    "action_units",
    "notes",
    "last_verdict_at",
)
FORMATS = {".csv": "csv", ".xlsx": "samm"}

VideoKey = tuple[str, str, str]


def iso_utc(when: datetime) -> str:
    """``2024-05-01T10:00:00Z`` (microseconds kept when present)."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def merge_action_units(codes: Iterable[str | None]) -> str:
    """``["4+7", "7+12", None]`` -> ``"4+7+12"``: each code once, in first-seen order."""
    seen: dict[str, None] = {}
    for text in codes:
        for code in (text or "").split("+"):
            if code.strip():
                seen.setdefault(code.strip(), None)
    return "+".join(seen)


def interval_row(
    key: IntervalKey,
    resolution: Resolution | None,
    *,
    model_id: str,
    score: float | None,
    fps: float | None,
    seconds: tuple[float, float] | None = None,
    kind: str = "",
) -> dict:
    """One output row; ``seconds`` stands in for ``start/fps, end/fps`` when fps is unknown.
    ``kind``: what the model spotted it as ("micro" or "macro"; "" when no spot of the
    model's is there any more)."""
    if fps:
        seconds = (key.start / fps, key.end / fps)
    start_s, end_s = seconds if seconds is not None else (None, None)
    row = {
        "dataset": key.dataset,
        "subject": key.subject,
        "video": key.video,
        "model_id": model_id,
        "start_frame": key.start,
        "end_frame": key.end,
        "start_s": start_s,
        "end_s": end_s,
        "score": None if score is None else round(float(score), 6),  # float32 noise off
        "kind": kind,
        "label": LABEL_UNREVIEWED,
        "onset_frame": None,
        "offset_frame": None,
        "n_yes": 0,
        "n_no": 0,
        "n_unsure": 0,
        "annotators": "",
        "action_units": "",
        "notes": "",
        "last_verdict_at": "",
    }
    if resolution is None:
        return row
    latest = [resolution.latest[a] for a in sorted(resolution.latest)]
    counts = resolution.counts
    extent = resolution.extent if resolution.label == "yes" else None
    row.update(
        label=resolution.label or LABEL_UNDECIDED,
        onset_frame=None if extent is None else extent.start,
        offset_frame=None if extent is None else extent.end,
        n_yes=counts["yes"],
        n_no=counts["no"],
        n_unsure=counts["unsure"],
        annotators=";".join(v.annotator for v in latest),
        action_units=merge_action_units(
            v.action_units for v in latest if v.verdict == resolution.label
        ),
        notes="; ".join(f"{v.annotator}: {v.note}" for v in latest if v.note),
        last_verdict_at=iso_utc(max(v.created_at for v in latest)),
    )
    return row


def _videos(store: Store) -> dict[VideoKey, dict]:
    if not store.exists(paths.VIDEOS):
        return {}
    return {
        (r["dataset"], r["subject"], r["video"]): r
        for r in read_table(store, paths.VIDEOS).to_pylist()
    }


def reviewed_intervals(store: Store, model_id: str | None = None) -> pd.DataFrame:
    """The model's spotted intervals and every reviewed one, resolved (module docstring)."""
    model_id = intervals_model_id(store, model_id)
    spotted = read_model_rows(store, paths.INTERVALS, model_id).to_pylist()
    resolved = resolve(VerdictLog(store).verdicts())
    videos = _videos(store)

    def fps(key: IntervalKey) -> float | None:
        return videos.get(key.video_key, {}).get("fps")

    rows, seen = [], set()
    for s in spotted:
        key = IntervalKey(s["dataset"], s["subject"], s["video"], s["start_frame"], s["end_frame"])
        seen.add(key)
        rows.append(
            interval_row(
                key,
                resolved.get(key),
                model_id=model_id,
                score=s["score"],
                fps=fps(key),
                seconds=(s["start_s"], s["end_s"]),
                kind=s["kind"],
            )
        )
    for key, res in resolved.items():
        if key in seen:
            continue
        latest = res.latest.values()
        scores = [v.score for v in latest if v.score is not None]
        rows.append(
            interval_row(
                key,
                res,
                model_id=";".join(sorted({v.model_id for v in latest})),
                score=max(scores) if scores else None,
                fps=fps(key),
            )
        )
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df = df.astype({"onset_frame": "Int64", "offset_frame": "Int64"})  # frames, or empty
    order = ["dataset", "subject", "video", "start_frame", "end_frame", "model_id"]
    df = df.sort_values(order, kind="stable")
    return df.reset_index(drop=True)


def verdict_rows(store: Store) -> pd.DataFrame:
    """Every verdict of the log, oldest first, columns in ``schemas.VERDICTS`` order."""
    rows = [v.to_row() for v in VerdictLog(store).verdicts()]
    df = pd.DataFrame(rows, columns=VERDICTS.names)
    df = df.astype({"onset_frame": "Int64", "offset_frame": "Int64"})  # frames, or empty
    df["created_at"] = [iso_utc(t) for t in df["created_at"]]
    return df


def export_csv(store: Store, out: str, model_id: str | None = None, raw: bool = False) -> int:
    """Write reviewed intervals (or, with ``raw``, every verdict) as CSV to a path or URI.

    Returns the number of rows written.
    """
    if raw and model_id is not None:
        raise ValueError("--raw writes every verdict of the log; --model-id does not apply")
    folder, name = file_target(out)  # a folder or bucket not writable: said before any work
    df = verdict_rows(store) if raw else reviewed_intervals(store, model_id)
    folder.put_atomic(df.to_csv(index=False).encode("utf-8"), name)
    return len(df)


def samm_rows(reviewed: pd.DataFrame, videos: Mapping[VideoKey, dict]) -> list[list]:
    """Workbook rows (``SAMM_COLUMNS_ALL`` order) of the ``yes`` intervals of ``reviewed``.

    Onset/Offset are file numbers: 0-based frame + the video's ``first_frame_number``
    (read_samm's "onset 0 is the first frame" then only meets frame 0 of a folder numbered
    from 0, which it reads back as frame 0). Apex is -1 (not coded). Filename ``<video>_<n>``
    numbers each video's movements in time order.
    """
    yes = reviewed[reviewed["label"] == "yes"].sort_values(
        ["dataset", "subject", "video", "start_frame", "end_frame"]
    )
    owner: dict[str, VideoKey] = {}
    count: dict[VideoKey, int] = {}
    rows = []
    for r in yes.itertuples(index=False):
        key = (r.dataset, r.subject, r.video)
        if owner.setdefault(r.video, key) != key:
            raise ValueError(
                f"video name {r.video!r} belongs to both {owner[r.video]} and {key}: a SAMM "
                "workbook names movements by video only"
            )
        if key not in videos:
            raise ValueError(
                f"video {'/'.join(key)} is not in the store's videos table, so its frame "
                "numbering (first_frame_number) is unknown: export from the store that "
                "`mespot extract` or `mespot ingest` wrote"
            )
        base = int(videos[key]["first_frame_number"])
        count[key] = count.get(key, 0) + 1
        marked = not pd.isna(r.onset_frame)  # the movement's extent, where the yes marks it
        first, last = (r.onset_frame, r.offset_frame) if marked else (r.start_frame, r.end_frame)
        onset, offset = int(first) + base, int(last) + base
        score = "-" if pd.isna(r.score) else f"{r.score:.3f}"
        note = f"mespot review: yes by {r.annotators}; model {r.model_id}; score {score}"
        rows.append(
            [
                r.subject,
                f"{r.video}_{count[key]}",
                None,
                onset,
                -1,
                offset,
                offset - onset + 1,
                SAMM_TYPES["macro" if r.kind == "macro" else "micro"],
                r.action_units or None,
                note,
            ]
        )
    return rows


def export_samm(store: Store, out: str, model_id: str | None = None) -> int:
    """Write the ``yes`` intervals as a SAMM long-videos workbook; returns its movement rows.

    Name it ``SAMM_WORKBOOK`` (``SAMM_LongVideos_V2_Release.xlsx``) to drop it into a
    SAMM-layout corpus folder (it replaces that folder's workbook: it holds only the
    reviewed movements). ``read_samm`` finds video folders named ``<subject>_<n>``.
    """
    folder, name = file_target(out)
    rows = samm_rows(reviewed_intervals(store, model_id), _videos(store))
    titles = [
        f"Micro-movements confirmed in mespot review of store {store.uri or store.root}",
        "Onset/Offset: frame numbers as in the file names; Apex -1: not coded.",
    ]
    folder.put_atomic(samm_workbook(rows, titles), name)
    return len(rows)


def infer_format(out: str, fmt: str | None) -> str:
    """``fmt`` if given, else from ``out``'s suffix (.csv -> csv, .xlsx -> samm)."""
    if fmt:
        return fmt
    suffix = PurePosixPath(out).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"cannot tell the format of {out!r} from its suffix {suffix or '(none)'!r}: name it "
            f"*.csv or *.xlsx, or pass --format csv|samm (SAMM workbook: {SAMM_WORKBOOK})"
        )
    return FORMATS[suffix]

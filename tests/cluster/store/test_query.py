"""The README's "Querying results" examples run as written, on local disk and on S3.

Every ```python block of that section starts with ``STORE = "..."``; the test puts a real
store there (an s3:// one for blocks written for S3), runs the block and checks what it
leaves against the store read file by file: ``per_subject`` (subject, windows with a face,
mean first magnitude), and where present ``videos`` (the manifest) and ``faces``.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cluster.cli import main

README = Path(__file__).parents[3] / "README.md"
SECTION = "## Querying results"
STORE_LINE = re.compile(r'^STORE = "([^"]+)"$')
RESULT = ("subject", "windows", "mean_first_magnitude")


def query_blocks() -> list[str]:
    text = README.read_text()
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def block_id(block: str) -> str:
    where = "s3" if STORE_LINE.match(block.splitlines()[0])[1].startswith("s3://") else "local"
    tools = [t for t in ("pyarrow", "duckdb", "polars") if f"import {t}" in block]
    return "-".join([where, *tools])


BLOCKS = query_blocks()


@pytest.fixture(scope="module")
def local_store(tiny_corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("query") / "store"
    argv = ["extract", str(tiny_corpus), str(out), "--executor", "local", "--no-progress"]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def expected(local_store) -> dict:
    """Per subject: windows with a face and the mean of their first magnitude; the videos."""
    counts: dict[str, int] = {}
    sums: dict[str, float] = {}
    for path in sorted((local_store / "features").rglob("*.parquet")):
        for row in pq.read_table(path, columns=["subject", "face_found", "magnitude"]).to_pylist():
            if row["face_found"]:
                counts[row["subject"]] = counts.get(row["subject"], 0) + 1
                sums[row["subject"]] = sums.get(row["subject"], 0.0) + row["magnitude"][0]
    videos = sorted(
        pq.read_table(p).column("video")[0].as_py()
        for p in (local_store / "videos").rglob("*.parquet")
    )
    per_subject = [(s, counts[s], sums[s] / counts[s]) for s in sorted(counts)]
    return {"per_subject": per_subject, "videos": videos, "faces": sum(counts.values())}


def rows(result, columns: tuple[str, ...]) -> list[tuple]:
    """A result of any of the three tools as a list of tuples (DuckDB's already is)."""
    if isinstance(result, pa.Table):
        return list(zip(*(result.column(c).to_pylist() for c in columns), strict=True))
    if isinstance(result, pl.DataFrame):
        return result.select(columns).rows()
    assert isinstance(result, list), f"unexpected result type {type(result)}"
    return [tuple(r) for r in result]


def check(ns: dict, expected: dict) -> None:
    assert "per_subject" in ns, "each example leaves its answer in per_subject"
    got = sorted(rows(ns["per_subject"], RESULT))
    want = expected["per_subject"]
    assert [(s, n) for s, n, _ in got] == [(s, n) for s, n, _ in want]
    assert [m for *_, m in got] == pytest.approx([m for *_, m in want], rel=1e-6)
    if "videos" in ns:
        # DuckDB's rows start with the video; the tables have a "video" column.
        names = [r[0] for r in rows(ns["videos"], ("video",))]
        assert sorted(names) == expected["videos"]
    if "faces" in ns:
        assert ns["faces"].num_rows == expected["faces"]


def run_block(block: str, store: str) -> dict:
    first, rest = block.split("\n", 1)
    assert STORE_LINE.match(first), f"a query example must start with STORE = ...: {first!r}"
    ns: dict = {}
    exec(compile(f"STORE = {store!r}\n{rest}", "README.md", "exec"), ns)
    return ns


def test_section_covers_three_tools_and_s3():
    ids = [block_id(b) for b in BLOCKS]
    assert {"local-pyarrow", "local-duckdb", "local-polars"} <= set(ids), ids
    assert any(i.startswith("s3-") for i in ids), ids


@pytest.mark.parametrize("block", BLOCKS, ids=[block_id(b) for b in BLOCKS])
def test_readme_query_example(block, request, local_store, expected):
    if block_id(block).startswith("s3"):
        import s3fs

        store = request.getfixturevalue("s3_bucket") + "/mespot"
        s3fs.S3FileSystem().put(str(local_store), store, recursive=True)
    else:
        store = str(local_store)
    ns = run_block(block, store)
    check(ns, expected)
    if "subject_006" in ns:  # the pyarrow example's partition filter
        assert set(ns["subject_006"].column("subject").to_pylist()) == {"006"}

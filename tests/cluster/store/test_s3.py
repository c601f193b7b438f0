"""Storage on local disk and on S3 (a moto server): the Store, extract, ingest, leases.

moto does not check credentials, so a wrong-credential test cannot be written here; the
missing-bucket and unreachable-endpoint cases cover the "cannot use the store" path.
"""

from __future__ import annotations

import socket
import time

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from pyarrow.fs import FSSpecHandler, PyFileSystem

from cluster.cli import main
from cluster.run.extract import load_corpus
from cluster.store.commits import Committer
from cluster.store.store import TMP_PREFIX, Store
from pipeline.vision.config import FeatureConfig
from schemas import ANNOTATIONS, VIDEOS, WINDOW_FEATURES, validate_table

RUN = ["--executor", "local", "--no-progress"]
KEYS = pa.schema([("dataset", pa.string()), ("subject", pa.string()), ("video", pa.string())])
VIDEO_006, VIDEO_007 = "samm/006/006_1", "samm/007/007_1"


@pytest.fixture(params=["local", "s3"])
def store_uri(request, tmp_path) -> str:
    """An empty store: a local folder, or a prefix in a fresh S3 bucket."""
    if request.param == "local":
        return str(tmp_path / "store")
    return request.getfixturevalue("s3_bucket") + "/store"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def relative(store: Store, paths: list[str]) -> list[str]:
    return sorted(p[len(store.root) + 1 :] for p in paths)


def leftovers(store: Store) -> list[str]:
    return [p for p in store.find() if p.rsplit("/", 1)[-1].startswith(TMP_PREFIX)]


class Runs:
    """The run summaries of a store, one new summary per call."""

    def __init__(self, store: Store) -> None:
        self.store, self.seen = store, set()

    def new(self) -> dict:
        self.store.fs.invalidate_cache()
        (path,) = set(self.store.find("runs")) - self.seen
        self.seen.add(path)
        return self.store.read_json(*relative(self.store, [path])[0].split("/"))


def test_store_round_trip(store_uri):
    store = Store.open(store_uri)
    store.check_writable()
    table = pa.table({"subject": ["006", "007"], "value": [1.5, 2.5]})
    store.write_parquet(table, "t", "part-0.parquet")
    assert store.read_parquet("t", "part-0.parquet").equals(table)
    store.write_json({"a": [1, 2], "b": "x"}, "j", "doc.json")
    assert store.read_json("j", "doc.json") == {"a": [1, 2], "b": "x"}
    store.put_atomic(b"first", "p", "blob.bin")
    store.put_atomic(b"second", "p", "blob.bin")  # replaces, never appends
    assert store.read_text("p", "blob.bin") == "second"
    assert store.create_exclusive(b"mine", "lease", "one.json") is True
    assert store.create_exclusive(b"theirs", "lease", "one.json") is False
    assert store.read_text("lease", "one.json") == "mine"
    assert relative(store, store.find()) == [
        "j/doc.json",
        "lease/one.json",
        "p/blob.bin",
        "t/part-0.parquet",
    ]
    assert not leftovers(store)
    assert store.find("nothing-here") == []
    store.remove("lease", "one.json")
    store.remove("lease", "one.json")  # removing what is gone is fine
    assert store.create_exclusive(b"again", "lease", "one.json") is True


def test_extract_writes_partitioned_parquet_and_reruns_skip(store_uri, tiny_corpus):
    store = Store.open(store_uri)
    runs = Runs(store)
    assert main(["extract", str(tiny_corpus), store_uri, *RUN]) == 0
    first = runs.new()
    assert sorted(first["done"]) == [VIDEO_006, VIDEO_007] and not first["failed"]
    expected = [f"dataset=samm/subject={s}/video={s}_1/part-0.parquet" for s in ("006", "007")]
    for table in ("features", "videos", "annotations"):
        files = relative(store, store.find(table))
        assert files == [f"{table}/{p}" for p in expected]
    assert not leftovers(store)

    hive = ds.partitioning(KEYS, flavor="hive")
    fs = PyFileSystem(FSSpecHandler(store.fs))
    feats = ds.dataset(store.path("features"), filesystem=fs, format="parquet", partitioning=hive)
    assert feats.count_rows() == first["windows"] == 18
    only_006 = feats.to_table(filter=ds.field("subject") == "006")
    assert set(only_006.column("video").to_pylist()) == {"006_1"}

    for table, schema in (("features", WINDOW_FEATURES), ("videos", VIDEOS)):
        with store.fs.open(store.path(table, expected[0])) as f:
            validate_table(pq.read_table(f), schema, where=table)
    with store.fs.open(store.path("annotations", expected[0])) as f:
        validate_table(pq.read_table(f), ANNOTATIONS, where="annotations")

    assert main(["extract", str(tiny_corpus), store_uri, *RUN]) == 0
    second = runs.new()
    assert second["done"] == [] and second["windows"] == 0
    assert sorted(second["already_done"]) == [VIDEO_006, VIDEO_007]
    assert feats.count_rows() == 18  # nothing duplicated


def test_ingest_from_s3_processes_only_new_sessions(s3_bucket, tiny_corpus):
    incoming, store_uri = f"{s3_bucket}/incoming", f"{s3_bucket}/store"
    store = Store.open(store_uri)
    fs = store.fs
    frames = tiny_corpus / "SAMM_longvideos"
    for name in ("006_1", "007_1"):
        fs.put(str(frames / name), f"{incoming}/{name}", recursive=True)
    assert len(fs.ls(f"{incoming}/006_1")) == len(list((frames / "006_1").iterdir())) == 100
    ingest = ["ingest", incoming, store_uri, "--fps", "50", *RUN]
    runs = Runs(store)

    assert main(ingest) == 0
    first = runs.new()
    assert len(first["done"]) == 2 and not first["failed"] and first["windows"] == 18
    assert main(ingest) == 0
    second = runs.new()
    assert second["done"] == [] and sorted(second["already_done"]) == sorted(first["done"])

    fs.put(str(frames / "006_1"), f"{incoming}/008_1", recursive=True)  # a new session
    assert main(ingest) == 0
    third = runs.new()
    assert len(third["done"]) == 1 and "008_1" in third["done"][0]
    assert sorted(third["already_done"]) == sorted(first["done"])
    manifest = relative(store, store.find("videos"))
    assert len(manifest) == 3 and any("video=008_1" in p for p in manifest)


def test_missing_bucket_is_a_clear_error_and_creates_nothing(s3_server, tiny_corpus, capsys):
    import s3fs

    bucket = "no-such-bucket-xyz"
    uri = f"s3://{bucket}/store"
    assert main(["extract", str(tiny_corpus), uri, *RUN]) == 2
    err = capsys.readouterr().err
    assert uri in err and "NoSuchBucket" in err
    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    assert not fs.exists(bucket)


def test_unreachable_endpoint_is_a_clear_error(s3_server, tiny_corpus, capsys):
    import s3fs

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")  # nothing listens
        mp.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore would retry for seconds otherwise
        mp.setenv("AWS_RETRY_MODE", "standard")
        s3fs.S3FileSystem.clear_instance_cache()
        t0 = time.perf_counter()
        try:
            rc = main(["extract", str(tiny_corpus), "s3://some-bucket/store", *RUN])
        finally:
            s3fs.S3FileSystem.clear_instance_cache()
        elapsed = time.perf_counter() - t0
    assert rc == 2
    err = capsys.readouterr().err
    assert "s3://some-bucket/store" in err and "endpoint unreachable" in err
    assert elapsed < 15


def test_overlapping_runs_leave_a_leased_video_alone(store_uri, tiny_corpus):
    store = Store.open(store_uri)
    corpus, _ = load_corpus(Store.open(str(tiny_corpus)), "samm")
    (record,) = [r for r in corpus.videos if r.video == "006_1"]
    other = Committer(store, FeatureConfig(), "other-run")
    assert other.acquire(record) is None
    runs = Runs(store)

    assert main(["extract", str(tiny_corpus), store_uri, *RUN]) == 0
    first = runs.new()
    assert first["done"] == [VIDEO_007]
    assert list(first["in_progress_elsewhere"]) == [VIDEO_006]
    assert "other-run" in first["in_progress_elsewhere"][VIDEO_006]
    assert not any("video=006_1" in p for p in store.find("features"))
    assert store.exists("_leases", "samm", "006", "006_1.json")  # still the other run's

    other.release(record)
    assert main(["extract", str(tiny_corpus), store_uri, *RUN]) == 0
    second = runs.new()
    assert second["done"] == [VIDEO_006] and second["already_done"] == [VIDEO_007]
    assert not second["in_progress_elsewhere"]
    assert store.find("_leases") == []  # every lease released

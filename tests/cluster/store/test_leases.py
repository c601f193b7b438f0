"""Per-video leases: one holder, stale ones broken once, release only our own."""

import json
import socket
import time

from cluster.store import Store
from cluster.store.commits import Committer
from pipeline.core.records import VideoRecord
from pipeline.vision.config import FeatureConfig

REC = VideoRecord("samm", "006", "006_1", "x", "frames", 200.0, 10, 8, 8)
LEASE = ["_leases", "samm", "006", "006_1.json"]


def committer(store: Store, run: str) -> Committer:
    return Committer(store, FeatureConfig(), run)


def write_lease(store: Store, **body) -> None:
    store.write_text(json.dumps(body), *LEASE)


def test_one_holder_at_a_time(tmp_path):
    store = Store.open(str(tmp_path))
    a, b = committer(store, "run-a"), committer(store, "run-b")
    assert a.acquire(REC) is None
    assert "run-a" in b.acquire(REC)
    b.release(REC)  # not b's: must stay
    assert store.exists(*LEASE)
    a.release(REC)
    assert not store.exists(*LEASE)
    assert b.acquire(REC) is None


def test_expired_lease_is_broken_by_exactly_one_run(tmp_path):
    store = Store.open(str(tmp_path))
    stale = {"run_id": "dead", "host": "elsewhere", "pid": 1, "expires_at": 1000.0}
    write_lease(store, **stale)
    a, b = committer(store, "run-a"), committer(store, "run-b")
    assert a.acquire(REC) is None
    assert store.read_json(*LEASE)["run_id"] == "run-a"
    # b read the same stale lease before a replaced it, and now tries to break it:
    # the tombstone a left for that lease makes b back off instead of deleting a's.
    write_lease(store, **stale)
    assert b.acquire(REC) == "a concurrent run (lease contended)"


def test_lease_of_a_dead_process_on_this_host_is_stale(tmp_path):
    store = Store.open(str(tmp_path))
    write_lease(
        store,
        run_id="killed",
        host=socket.gethostname(),
        pid=2**22 + 12345,
        expires_at=time.time() + 3600,
    )
    assert committer(store, "run-a").acquire(REC) is None
    write_lease(store, run_id="alive", host="other-host", pid=1, expires_at=time.time() + 3600)
    assert "alive" in committer(store, "run-b").acquire(REC)


def test_a_broken_lease_leaves_no_tombstone_once_released(tmp_path):
    store = Store.open(str(tmp_path))
    write_lease(store, run_id="dead", host="elsewhere", pid=1, expires_at=1000.0)
    a = committer(store, "run-a")
    assert a.acquire(REC) is None
    assert any(".broken-" in p for p in store.find("_leases"))
    a.release(REC)
    assert store.find("_leases") == []

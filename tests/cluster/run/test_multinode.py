"""Two Ray nodes on one machine: tasks forced onto the second give one process's rows, and
local paths are refused before any work.

The cluster (``ray.cluster_utils.Cluster``: a head with no CPUs, so every task runs on the
added node) lives in a child process, apart from the tests' own local Ray. Corpus and stores
are on the tests' S3 endpoint (moto), which every node reaches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

SCRIPT = r"""
import json, sys
import numpy as np
import pyarrow.dataset as ds
import ray
import s3fs
from ray.cluster_utils import Cluster

from cluster.cli import main

corpus_dir, bucket = sys.argv[1], sys.argv[2]
fs = s3fs.S3FileSystem()
fs.put(corpus_dir, f"{bucket}/corpus", recursive=True)
S3 = f"s3://{bucket}"
QUIET = ["--no-progress"]


def table(uri, name, order):
    data = ds.dataset(f"{bucket}/{uri}/{name}", filesystem=fs, format="parquet").to_table()
    return data.sort_by([(c, "ascending") for c in order])


cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
cluster.add_node(num_cpus=2)
ray.init(address=cluster.address, log_to_driver=False)
cluster.wait_for_nodes()
nodes = [n for n in ray.nodes() if n["Alive"]]
out = {"cpu_nodes": sum(1 for n in nodes if n["Resources"].get("CPU", 0) > 0)}
out["nodes"] = len(nodes)
out["local_corpus"] = main(["extract", corpus_dir, f"{S3}/refused", *QUIET])
out["local_store"] = main(["extract", f"{S3}/corpus", corpus_dir + "-store", *QUIET])
out["extract"] = main(["extract", f"{S3}/corpus", f"{S3}/ray", "--chunk-windows", "3", *QUIET])
out["train"] = main(["train", f"{S3}/ray", "--epochs", "2", *QUIET])
ray.shutdown()
cluster.shutdown()

LOCAL = ["--executor", "local", *QUIET]
assert main(["extract", f"{S3}/corpus", f"{S3}/local", *LOCAL]) == 0
assert main(["train", f"{S3}/local", "--epochs", "2", *LOCAL]) == 0
order = ["video", "window"]
a, b = table("ray", "features", order), table("local", "features", order)
out["features_equal"] = a.equals(b)
out["windows"] = a.num_rows
pa_ = table("ray", "predictions", order)
pb = table("local", "predictions", order)
out["predictions_equal"] = pa_.drop_columns(["model_id"]).equals(pb.drop_columns(["model_id"]))
out["max_score_diff"] = float(
    np.max(np.abs(pa_.column("score").to_numpy() - pb.column("score").to_numpy()))
)
print("RESULT " + json.dumps(out))
"""


def test_two_nodes_give_one_process_rows_and_refuse_local_paths(tiny_corpus, s3_bucket, tmp_path):
    bucket = s3_bucket.removeprefix("s3://")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_corpus), bucket],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(lines[0].removeprefix("RESULT "))
    assert out["nodes"] == 2 and out["cpu_nodes"] == 1  # every task ran on the added node
    assert out["local_corpus"] == 2 and out["local_store"] == 2
    refusals = [x for x in proc.stderr.splitlines() if "other nodes, which cannot see" in x]
    assert len(refusals) == 2 and all("object storage" in x for x in refusals)
    assert "--shared-fs" in refusals[0] and str(tiny_corpus) in refusals[0]
    assert out["extract"] == 0 and out["train"] == 0
    assert out["features_equal"] and out["windows"] == 18
    assert out["predictions_equal"], out["max_score_diff"]

"""Failures a user meets end in one line naming the file, store or endpoint: no traceback."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import uuid

import pytest
from fsspec.implementations.local import LocalFileSystem

from cluster.cli import main
from cluster.cli.quiet import native_log_filter
from cluster.store.commits import Committer
from pipeline.datasets import SAMM_WORKBOOK

LOCAL = ["--executor", "local", "--no-progress"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("mespot ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory):
    store = tmp_path_factory.mktemp("errors") / "store"
    assert main(["extract", str(tiny_corpus), str(store), *LOCAL]) == 0
    assert main(["train", str(store), "--epochs", "1", *LOCAL]) == 0
    (model_dir,) = (store / "models").iterdir()
    return store, model_dir.name


def test_a_workbook_that_is_not_xlsx_is_named(tiny_corpus, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    (corpus / SAMM_WORKBOOK).write_text("Filename,Onset\n006_1_1,4\n")  # a CSV named .xlsx
    assert main(["extract", str(corpus), str(tmp_path / "store"), *LOCAL]) == 2
    line = one_line_error(capsys)
    assert SAMM_WORKBOOK in line and "not an Excel .xlsx workbook" in line


def _refuse_writes(monkeypatch):
    def refuse(self, path, value, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(LocalFileSystem, "pipe_file", refuse)
    monkeypatch.setattr("cluster.store.store._WRITABLE", set())  # as in a fresh process


@pytest.mark.slow
def test_commands_on_a_store_that_cannot_be_written(trained, tmp_path, monkeypatch, capsys):
    store, _ = trained
    _refuse_writes(monkeypatch)
    for argv in (["train", str(store), *LOCAL], ["evaluate", str(store)]):
        assert main(argv) == 2
        line = one_line_error(capsys)
        assert f"cannot write to store {store}" in line and "Permission denied" in line
    assert main(["export", str(store), str(tmp_path / "out.csv")]) == 2
    assert f"cannot write to store {tmp_path}" in one_line_error(capsys)


@pytest.mark.slow
def test_a_permission_error_mid_run_names_the_file(trained, monkeypatch, capsys):
    store, _ = trained

    def refuse(self, data, *parts):
        raise PermissionError(13, "Permission denied", self.path(*parts))

    monkeypatch.setattr("cluster.store.store.Store.put_atomic", refuse)
    assert main(["train", str(store), *LOCAL]) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"mespot train: Permission denied: {store}/models/")
    assert line.endswith(("model.json", "model.keras", "extent.keras")) and ".tmp-" not in line


@pytest.mark.slow
def test_a_damaged_model_is_named(trained, tmp_path, capsys):
    store, model_id = trained
    model = tmp_path / "model"
    shutil.copytree(store / "models" / model_id / "all", model)
    (model / "model.keras").write_bytes(b"not a keras archive")
    assert main(["spot", str(model), str(store), str(tmp_path / "out")]) == 2
    line = one_line_error(capsys)
    assert f"model {model} cannot be loaded" in line and "/tmp/tmp" not in line


@pytest.mark.slow
def test_evaluate_with_other_settings_keeps_its_own_report(trained, capsys):
    store, model_id = trained
    assert main(["evaluate", str(store)]) == 0
    assert main(["evaluate", str(store), "--threshold", "0.3"]) == 0
    plain = json.loads((store / "reports" / model_id / "report.json").read_text())
    other = store / "reports" / f"{model_id}+threshold-0.3" / "report.json"
    assert other.exists() and plain["model_id"] == model_id
    assert "LSTM threshold 0.3 (micro;" in (other.parent / "report.md").read_text()
    plain_md = (store / "reports" / model_id / "report.md").read_text()
    assert "LSTM threshold chosen per held-out subject on the other subjects (" in plain_md
    # The refinement was measured, lowered F1 and was removed: the flag is refused.
    with pytest.raises(SystemExit):
        main(["evaluate", str(store), "--refine"])


@pytest.mark.slow
def test_spot_names_its_intervals_with_the_id_train_printed(trained, tmp_path, capsys):
    store, model_id = trained
    out = tmp_path / "out"
    assert main(["spot", str(store / "models" / model_id / "all"), str(store), str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"model {model_id}, threshold ")
    assert [p.name for p in (out / "intervals").iterdir()] == [f"model={model_id}"]
    fold = store / "models" / model_id / "fold=006"
    assert main(["spot", str(fold), str(store), str(out)]) == 0
    assert (out / "intervals" / f"model={model_id}-fold-006").is_dir()


def test_native_log_lines_are_filtered_and_the_rest_kept(capfd):
    absl = b"I0000 00:00:1795794319.174517   28762 port.cc:153] oneDNN custom operations\n"
    with native_log_filter():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called\n")
        os.write(2, b"train:  50%|#####     | 1/2\r")
        os.write(2, absl)
        os.write(2, b"E0000 00:00:17.2 1 node_def_util.cc:682] NodeDef mentions attribute\n")
        os.write(2, b"a real warning\nTraceback (most recent call last):\n")
    assert capfd.readouterr().err == "train:  50%|#####     | 1/2\ra real warning\n" + (
        "Traceback (most recent call last):\n"
    )
    with native_log_filter(enabled=False):
        os.write(2, absl)
    assert capfd.readouterr().err == absl.decode()


@pytest.mark.slow
def test_export_never_creates_a_bucket(trained, s3_server, tmp_path, capsys):
    import s3fs

    store, _ = trained
    bucket = f"mespot-missing-{uuid.uuid4().hex[:8]}"
    assert main(["export", str(store), f"s3://{bucket}/reviewed.csv"]) == 2
    assert bucket in one_line_error(capsys)
    assert not s3fs.S3FileSystem(skip_instance_cache=True).exists(bucket)


@pytest.mark.slow
def test_train_and_evaluate_on_a_missing_bucket(s3_server, capsys):
    bucket = f"s3://mespot-missing-{uuid.uuid4().hex[:8]}/store"
    for argv in (["train", bucket, *LOCAL], ["evaluate", bucket]):
        assert main(argv) == 2
        line = one_line_error(capsys)
        assert bucket.split("/")[2] in line and "has no features" not in line


@pytest.mark.slow
def test_an_endpoint_lost_mid_run_reports_what_was_done(tiny_corpus, monkeypatch, capsys):
    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().mkdir("lost")
    commit = Committer.commit

    def commit_then_lose_the_endpoint(self, *args):
        n = commit(self, *args)
        server.stop()  # the first video is in; the endpoint goes away
        return n

    monkeypatch.setattr(Committer, "commit", commit_then_lose_the_endpoint)
    try:
        assert main(["extract", str(tiny_corpus), "s3://lost/store", *LOCAL]) == 2
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "1 videos extracted" in captured.out  # the summary of what was done
    (line,) = [x for x in captured.err.splitlines() if x.startswith("mespot extract:")]
    assert "stopped" in line and "1 videos were committed" in line


@pytest.mark.slow
def test_train_prints_only_mespots_own_lines(trained, tmp_path):
    """In a fresh process (TensorFlow logs its start-up once per process)."""
    import subprocess
    import sys

    from cluster.cli.quiet import NATIVE_LINE

    store, _ = trained
    argv = [sys.executable, "-m", "cluster.cli", "train", str(store), "--epochs", "1", *LOCAL]
    quiet = subprocess.run(argv, capture_output=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stdout.decode().startswith("model lstm-")
    assert not NATIVE_LINE.search(quiet.stderr), quiet.stderr[-2000:]
    verbose = subprocess.run([*argv[:3], "-v", *argv[3:]], capture_output=True, timeout=300)
    assert verbose.returncode == 0
    assert NATIVE_LINE.search(verbose.stderr)  # what -v shows, and the default hides

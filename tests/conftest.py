"""Shared fixtures: a local S3 endpoint (moto), fresh buckets, one local Ray, a tiny corpus."""

from __future__ import annotations

import logging
import socket
import uuid

import pytest

from cluster.cli import main

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port nothing listens on right now (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clear_s3fs_cache() -> None:
    # s3fs caches instances by their arguments, not by the environment they read.
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 HTTP endpoint on 127.0.0.1, reached through the standard AWS variables.

    Everything that builds its own S3 client from the environment (s3fs, pyarrow, Polars,
    processes started afterwards) talks to it. Yields the endpoint URL.
    """
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", endpoint)
        for name, value in S3_ENV.items():
            mp.setenv(name, value)
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):  # a developer's own would win
            mp.delenv(name, raising=False)
        _clear_s3fs_cache()
        try:
            yield endpoint
        finally:
            server.stop()
    _clear_s3fs_cache()


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh, empty bucket: yields "s3://<bucket>"; removed with its contents after."""
    import s3fs

    fs = s3fs.S3FileSystem()
    bucket = f"mespot-test-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    yield f"s3://{bucket}"
    fs = s3fs.S3FileSystem()  # a test may have cleared the instance cache
    fs.invalidate_cache()
    fs.rm(bucket, recursive=True)


@pytest.fixture(scope="session")
def ray_local(s3_server):
    """One local Ray for the session, started after the S3 variables so workers see them.
    It declares one GPU (there is none): training tasks ask for their share of it, and
    the shares are scheduled as on a GPU node (tests/cluster/run/test_gpu_shares.py)."""
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
        started = True
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """`mespot synth`: 2 subjects x 2 s at 50 fps, 320x240 (9 windows per video)."""
    out = tmp_path_factory.mktemp("tiny") / "corpus"
    argv = ["synth", str(out), "--subjects", "2", "--seconds", "2", "--fps", "50"]
    argv += ["--size", "320x240", "--seed", "1", "--no-progress"]
    assert main(argv) == 0
    return out


@pytest.fixture
def chrome():
    """A headless Chromium driven by Selenium (Debian's chromium and chromium-driver), with
    the page's console kept (``chrome.get_log("browser")``); skipped without them, failed
    when MESPOT_REQUIRE_BROWSER is set."""
    import os
    import shutil
    import tempfile

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("MESPOT_REQUIRE_BROWSER"):
            pytest.fail("MESPOT_REQUIRE_BROWSER is set but chromium/chromedriver are missing")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install ...)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    profile = tempfile.mkdtemp(prefix="mespot-chrome-")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(arg)
    browser = webdriver.Chrome(options=opts, service=Service(driver))
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)

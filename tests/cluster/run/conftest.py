"""Fixtures shared by the tests of the feedback simulation."""

from __future__ import annotations

import pytest

from cluster.cli import main


@pytest.fixture(scope="session")
def sim_store(tmp_path_factory):
    """3 subjects x 6 s at 50 fps, 320x240, 2-4 micro-movements each, features extracted."""
    from pipeline.synth.generate import SynthConfig, generate_corpus

    root = tmp_path_factory.mktemp("feedback")
    cfg = SynthConfig(subjects=3, seconds=6, fps=50, width=320, height=240, seed=1)
    manifest = generate_corpus(
        root / "corpus", SynthConfig(**{**cfg.to_dict(), "micro_per_10s": 6})
    )
    store = root / "store"
    argv = ["extract", str(root / "corpus"), str(store), "--executor", "local", "--no-progress"]
    assert main(argv) == 0
    return store, manifest

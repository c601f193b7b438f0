"""`mespot synth` options that pick the corpus (the held-out benchmark's: --realistic)."""

from __future__ import annotations

from cluster.cli import main
from pipeline.synth.generate import SynthManifest


def test_synth_realistic_writes_the_benchmark_corpus(tmp_path):
    out = tmp_path / "c"
    args = ["synth", str(out), "--subjects", "2", "--seconds", "1", "--fps", "25"]
    assert main([*args, "--realistic", "--no-progress"]) == 0
    m = SynthManifest.load(out)
    assert (m.config.actions, m.config.micro_px, m.config.face_scale, m.config.contrast) == (
        "au",
        (0.5, 3.0),
        (0.7, 1.1),
        (0.5, 1.0),
    )
    assert all(0.5 <= v.contrast <= 1.0 for v in m.videos)
    assert len({v.face_width for v in m.videos}) == 2

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


def test_synth_photos_all_cycles_through_every_training_photo(tmp_path):
    from pipeline.synth.renderer import MORE_PHOTOS, PHOTOS

    out = tmp_path / "c"
    args = ["synth", str(out), "--subjects", "6", "--seconds", "1", "--fps", "10"]
    assert main([*args, "--photos", "all", "--no-progress"]) == 0
    photos = [v.photo for v in SynthManifest.load(out).videos]
    assert photos == list((PHOTOS + MORE_PHOTOS)[:6])
    default = tmp_path / "d"
    assert main(["synth", str(default), "--subjects", "6", "--seconds", "1", "--fps", "10",
                 "--no-progress"]) == 0  # fmt: skip
    assert {v.photo for v in SynthManifest.load(default).videos} == set(PHOTOS)

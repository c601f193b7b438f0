"""Settings of ``mespot demo`` (kept apart so the CLI starts without TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoConfig:
    """The demo corpus and run: 5 subjects x 30 s at 100 fps (a few minutes on 2 cores)."""

    subjects: int = 5
    seconds: float = 30.0
    fps: float = 100.0
    width: int = 640
    height: int = 360
    seed: int = 0
    micro_per_10s: float = 4.0
    epochs: int = 50
    executor: str = "ray"

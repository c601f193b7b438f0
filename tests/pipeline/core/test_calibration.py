"""The quiet-footage threshold: timelines drawn with known spots."""

import numpy as np
import pytest

from pipeline.core.calibration import HeldOut, calibrate, quiet_mask
from pipeline.core.intervals import Interval


def video(peaks: dict[int, float], movements=(), n_windows=60, fps=10.0) -> HeldOut:
    """Windows of 5 frames every 5 frames (no overlap), 0.1 everywhere but ``peaks``."""
    starts = np.arange(n_windows) * 5
    scores = np.full(n_windows, 0.1)
    for w, s in peaks.items():
        scores[w] = s
    return HeldOut(starts, starts + 4, scores, list(movements), n_windows * 5, fps)


def test_quiet_frames_keep_a_margin_around_movements():
    #  frames: 0 ........ 10 [12 .. 14] 16 ........ 29
    #  quiet:  yyyyyyyyyy nn  nnn nn  yyyyyyyyyyyyy   (margin 2)
    q = quiet_mask(30, [Interval(12, 14)], margin=2)
    assert q[:10].all() and not q[10:17].any() and q[17:].all()


def test_threshold_rises_until_the_quiet_rate_is_met():
    # 300 frames at 10 fps = 30 s, one movement at frames 100..104 (window 20).
    # Quiet spikes at windows 5 (0.95), 40 (0.8), 50 (0.6); the movement's window scores 0.9.
    v = video({5: 0.95, 40: 0.8, 50: 0.6, 20: 0.9}, [Interval(100, 104)])
    quiet_minutes = (300 - 15) / 10 / 60  # 5 frames + 5 margin each side are not quiet
    # At 0.5..0.60: 3 quiet spots; 0.61..0.80: 2; 0.81..0.95: 1; above: 0.
    c = calibrate([v], per_minute=2 / quiet_minutes)
    assert c.threshold == pytest.approx(0.61) and c.quiet_minutes == pytest.approx(quiet_minutes)
    c = calibrate([v], per_minute=1 / quiet_minutes)
    assert c.threshold == pytest.approx(0.81)
    c = calibrate([v], per_minute=0.0)
    assert c.threshold == pytest.approx(0.96) and c.spots_per_minute == 0.0


def test_no_threshold_meets_the_rate_takes_the_highest():
    v = video({5: 1.0})  # a quiet window scoring 1.0 is above every threshold
    c = calibrate([v], per_minute=0.0)
    assert c.threshold == 0.99 and c.spots_per_minute > 0


def test_videos_without_quiet_footage_are_refused():
    v = video({}, [Interval(0, 299)])
    with pytest.raises(ValueError, match="no quiet footage"):
        calibrate([v])

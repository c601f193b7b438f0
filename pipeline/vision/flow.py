"""Dense optical flow between two grey crops: DIS, Farneback, or TV-L1 (opencv-contrib)."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def make_flow(method: str = "dis", dis_preset: str = "fast") -> FlowFn:
    """A function ``flow(prev, next) -> (H, W, 2) float32`` (dx, dy per pixel of ``prev``).

    The returned callable holds OpenCV state: make one per worker thread and reuse it.
    ``tvl1`` needs ``opencv-contrib-python-headless`` installed in place of
    ``opencv-python-headless`` (both ship ``cv2``), and is about 100x slower than DIS.
    """
    if method == "dis":
        if dis_preset not in _DIS_PRESETS:
            raise ValueError(
                f"unknown DIS preset {dis_preset!r}; choose from {sorted(_DIS_PRESETS)}"
            )
        dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[dis_preset])

        def flow(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            _check_pair(prev, nxt)
            return dis.calc(prev, nxt, None)

        return flow
    if method == "farneback":

        def flow(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            _check_pair(prev, nxt)
            return cv2.calcOpticalFlowFarneback(prev, nxt, None, 0.5, 3, 15, 3, 5, 1.2, 0)

        return flow
    if method == "tvl1":
        optflow = getattr(cv2, "optflow", None)
        if optflow is None:
            raise RuntimeError(
                "TV-L1 flow needs opencv-contrib: pip uninstall -y opencv-python-headless && "
                "pip install opencv-contrib-python-headless"
            )
        tvl1 = optflow.DualTVL1OpticalFlow_create()

        def flow(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            _check_pair(prev, nxt)
            return tvl1.calc(prev, nxt, None)

        return flow
    raise ValueError(f"unknown flow method {method!r}; choose dis, farneback or tvl1")


def _check_pair(prev: np.ndarray, nxt: np.ndarray) -> None:
    if prev.shape != nxt.shape or prev.ndim != 2 or prev.dtype != np.uint8 or nxt.dtype != np.uint8:
        raise ValueError(
            f"flow needs two grey uint8 images of one shape, got {prev.dtype}{prev.shape} "
            f"and {nxt.dtype}{nxt.shape}"
        )

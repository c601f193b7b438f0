"""ROC curves and AUC of window scores (scikit-learn), and their plot (matplotlib)."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray


def roc(
    scores: ArrayLike, labels: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], float | None]:
    """ROC curve and AUC of window scores against window labels.

    Args:
        scores: shape ``(n,)``, finite scores, higher meaning more likely positive.
        labels: shape ``(n,)``, booleans or 0/1.

    Returns:
        ``(fpr, tpr, auc)`` from ``sklearn.metrics.roc_curve`` / ``roc_auc_score``. When the
        labels hold only one class (or none), no curve is defined: ``fpr`` and ``tpr`` are
        empty and ``auc`` is None, rather than sklearn's NaN-filled curve and exception.
    """
    # Imported here: sklearn takes a second to import and only ROC needs it.
    from sklearn.metrics import roc_auc_score, roc_curve

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 1 or y.ndim != 1 or len(s) != len(y):
        raise ValueError(f"scores and labels must be 1-D of one length, got {s.shape}, {y.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite (no NaN or inf)")
    if len(y) and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be booleans or 0/1")
    y = y.astype(bool)
    if len(np.unique(y)) < 2:
        return np.empty(0), np.empty(0), None
    fpr, tpr, _ = roc_curve(y, s)
    return fpr, tpr, float(roc_auc_score(y, s))


def plot_roc(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike, float | None]],
    path: str | PathLike[str],
    title: str = "ROC",
) -> Path:
    """Write a PNG with one ROC line per method (AUC in the legend) and the dashed diagonal."""
    # Imported here, and through the Agg canvas rather than pyplot: no display, no global
    # backend switch, and importing this module stays cheap.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    for name, (fpr, tpr, auc) in curves.items():
        label = f"{name} (AUC {auc:.3f})" if auc is not None else f"{name} (AUC undefined)"
        ax.plot(np.asarray(fpr), np.asarray(tpr), linewidth=1.5, label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate")
    ax.set_title(title)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize="small")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", bbox_inches="tight")
    return out

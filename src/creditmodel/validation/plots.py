"""Plots a validator looks at: ROC curves and calibration (reliability) by split and model.

pyplot is imported when a plot is drawn, not with this module, and no backend is chosen here (the CLI
chooses Agg for its commands; a notebook keeps its inline backend).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def save_figure(fig: Figure, path: Path) -> Path:
    """Lay out, write as PNG and release a figure (report plots are files, never kept open)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _roc_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-score, kind="mergesort")
    y = np.asarray(y, dtype=float)[order]
    tpr = np.r_[0, np.cumsum(y) / max(y.sum(), 1)]
    fpr = np.r_[0, np.cumsum(1 - y) / max((1 - y).sum(), 1)]
    return fpr, tpr


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> Path:
    """ROC curves, one per label -> (y, score)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for label, (y, score) in curves.items():
        fpr, tpr = _roc_points(np.asarray(y), np.asarray(score))
        ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def calibration_table(y: np.ndarray, pd_: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Observed default rate against mean PD in quantile bins of PD."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "pd": np.asarray(pd_, dtype=float)})
    frame["bin"] = pd.qcut(frame["pd"].rank(method="first"), q=min(bins, len(frame)), labels=False)
    return frame.groupby("bin").agg(n=("y", "size"), mean_pd=("pd", "mean"), default_rate=("y", "mean")).reset_index()


def plot_calibration(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> Path:
    """Reliability diagram: mean PD against observed default rate, by PD decile."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    top = 0.0
    for label, (y, pd_) in curves.items():
        t = calibration_table(np.asarray(y), np.asarray(pd_))
        ax.plot(t["mean_pd"], t["default_rate"], marker="o", label=label)
        top = max(top, t["mean_pd"].max(), t["default_rate"].max())
    ax.plot([0, top], [0, top], color="grey", linestyle=":")
    ax.set(xlabel="mean predicted PD", ylabel="observed default rate", title=title)
    ax.legend(loc="upper left", fontsize=8)
    return save_figure(fig, path)


def plot_score_distribution(y: np.ndarray, pd_: np.ndarray, path: Path, title: str) -> Path:
    """Histogram of log PD for defaults and non-defaults: where the two populations separate."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    lp = np.log10(np.clip(np.asarray(pd_, dtype=float), 1e-6, 1))
    bins = np.linspace(lp.min(), lp.max(), 40).tolist()
    y = np.asarray(y)
    ax.hist(lp[y == 0], bins=bins, density=True, alpha=0.6, label="non-default")
    ax.hist(lp[y == 1], bins=bins, density=True, alpha=0.6, label="default")
    ax.set(xlabel="log10 PD", ylabel="density", title=title)
    ax.legend(fontsize=8)
    return save_figure(fig, path)

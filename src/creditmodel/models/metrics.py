"""Discrimination and calibration metrics, computed from first principles (tests compare with sklearn/SciPy).

Here with the models because model search and segment comparison rank by AUC; validation re-exports them.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def _check(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"{y.size} labels but {p.size} scores")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    return y, p


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney probability that a default outranks a non-default."""
    y, score = _check(y, score)
    n1 = y.sum()
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def gini(y: np.ndarray, score: np.ndarray) -> float:
    """Accuracy ratio (Gini) = 2 AUC - 1."""
    return 2.0 * auc(y, score) - 1.0


def ks(y: np.ndarray, score: np.ndarray) -> float:
    """Kolmogorov-Smirnov: the largest gap between the score distributions of defaults and non-defaults."""
    y, score = _check(y, score)
    bad, good = np.sort(score[y == 1]), np.sort(score[y == 0])
    if bad.size == 0 or good.size == 0:
        return float("nan")
    grid = np.concatenate([bad, good])
    cdf_bad = np.searchsorted(bad, grid, side="right") / bad.size
    cdf_good = np.searchsorted(good, grid, side="right") / good.size
    return float(np.max(np.abs(cdf_bad - cdf_good)))


def brier(y: np.ndarray, pd_: np.ndarray) -> float:
    """Mean squared error of the PD against the outcome."""
    y, pd_ = _check(y, pd_)
    return float(np.mean((pd_ - y) ** 2))


def performance(y: np.ndarray, pd_: np.ndarray) -> dict[str, float]:
    """The standard set reported per split: AUC, Gini, KS, Brier, and PD level against default rate."""
    y, pd_ = _check(y, pd_)
    return {
        "n": float(y.size),
        "defaults": float(y.sum()),
        "default_rate": float(y.mean()) if y.size else float("nan"),
        "mean_pd": float(pd_.mean()) if y.size else float("nan"),
        "auc": auc(y, pd_),
        "gini": gini(y, pd_),
        "ks": ks(y, pd_),
        "brier": brier(y, pd_),
    }

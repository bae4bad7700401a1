"""Refit on train + validation with cross-fitted (out-of-fold) calibration.

Early stopping and the calibration method are chosen on the validation period; holding that period
out of the final model then throws away the most recent years. This refits LightGBM on train +
validation with the number of trees early stopping chose, and fits the calibrator on out-of-fold
scores: the development rows are cut into `folds` consecutive blocks in decision-date order, and
each block is scored by a model trained on the other blocks, never on itself — the shape of
scikit-learn's ``CalibratedClassifierCV(cv=k, ensemble=False)``. Everything is seeded and
single-ordered, so the same data and seed give the same trees and calibration, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from creditmodel.models.calibration import PDCalibrator
from creditmodel.models.gbm import LightGBMPD
from creditmodel.regulatory import PD_FLOOR


@dataclass
class Refit:
    """The refitted model, its out-of-fold calibrator, and the out-of-fold scores it was fitted on."""

    model: LightGBMPD
    calibrator: PDCalibrator
    oof_score: np.ndarray
    folds: np.ndarray  # fold index of each development row


def time_folds(decision_date: pd.Series, loan_id: pd.Series, folds: int) -> np.ndarray:
    """Fold index (0 .. folds-1) of each row: consecutive blocks of equal size in (decision date, loan_id) order."""
    order = np.lexsort((np.asarray(loan_id), pd.to_datetime(decision_date).to_numpy()))
    out = np.empty(len(order), dtype=int)
    out[order] = np.arange(len(order)) * folds // len(order)
    return out


def refit_on_development(base: LightGBMPD, X: pd.DataFrame, y: np.ndarray, decision_date: pd.Series,
                         loan_id: pd.Series, *, n_trees: int, folds: int = 5, method: str = "platt",
                         pd_floor: float = PD_FLOOR, target_mean_pd: float | None = None) -> Refit:
    """Refit `base` (unfitted parameters) on all of (X, y) with `n_trees` trees and no early stopping,
    with a calibrator fitted on out-of-fold scores (and its level set to `target_mean_pd` if given)."""
    y = np.asarray(y, dtype=float)
    fold = time_folds(decision_date, loan_id, folds)
    params = {**base.get_params(), "n_estimators": int(n_trees), "early_stopping_rounds": None}
    oof = np.empty(len(y), dtype=float)
    for k in range(folds):
        inside = fold == k
        if len(np.unique(y[~inside])) < 2:
            raise ValueError(f"refit fold {k + 1} of {folds}: the other folds hold a single class")
        m = clone(base).set_params(**params).fit(X[~inside], y[~inside])
        oof[inside] = m.decision_function(X[inside])
    model = clone(base).set_params(**params).fit(X, y)
    cal = PDCalibrator(method, pd_floor=pd_floor).fit(oof, y)
    if target_mean_pd is not None:
        cal.set_level(oof, target_mean_pd)
    return Refit(model, cal, oof, fold)

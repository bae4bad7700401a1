"""Calibrate raw model scores into PDs whose level can be priced, not only ranked.

Two steps, both exported as plain JSON:
1. shape: Platt (logistic on the score) or isotonic, fitted on data the model was not fitted on;
2. level (optional): a shift in log-odds so that the mean PD over a reference sample equals a
   target, typically the long-run average default rate plus a margin of conservatism.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from creditmodel.regulatory import PD_FLOOR


def logit(p: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-z))


def long_run_average(decision_date: pd.Series, default: pd.Series) -> float:
    """Average of the yearly default rates (each calendar year weighs the same, as in the EBA guidelines)."""
    years = pd.to_datetime(decision_date).dt.year
    rates = pd.Series(np.asarray(default, dtype=float), index=years.index).groupby(years).mean()
    if rates.empty:
        raise ValueError("no labelled loans to compute a long-run average default rate from")
    return float(rates.mean())


class PDCalibrator(BaseEstimator):
    """Map a raw score (log-odds margin) to a PD.

    method="platt": PD = sigmoid(slope * score + intercept), two numbers, smooth and monotone.
    method="isotonic": a monotone step function through (threshold, PD) pairs, linear between them.
    `level_shift_` (log-odds) moves the whole curve so that a reference sample's mean PD hits a
    target; 0 when no target is set. PDs are floored at `pd_floor`.
    """

    def __init__(self, method: str = "platt", pd_floor: float = PD_FLOOR):
        self.method = method
        self.pd_floor = pd_floor

    def fit(self, score: np.ndarray, y: np.ndarray) -> PDCalibrator:
        score = np.asarray(score, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        if self.method == "platt":
            lr = LogisticRegression(C=1e12, solver="lbfgs", max_iter=1000, tol=1e-10)
            lr.fit(score.reshape(-1, 1), y)
            self.slope_ = float(lr.coef_[0, 0])
            self.intercept_ = float(lr.intercept_[0])
        elif self.method == "isotonic":
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(score, y)
            self.thresholds_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
            self.values_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        else:
            raise ValueError(f"calibration method {self.method!r} is not 'platt' or 'isotonic'")
        self.level_shift_ = 0.0
        return self

    def set_level(self, reference_score: np.ndarray, target_mean_pd: float) -> PDCalibrator:
        """Shift the curve in log-odds so that the mean PD over `reference_score` equals `target_mean_pd`."""
        check_is_fitted(self)
        if not 0 < target_mean_pd < 1:
            raise ValueError(f"target mean PD must lie in (0, 1), got {target_mean_pd}")
        z = logit(self._shape(np.asarray(reference_score, dtype=np.float64).ravel()))

        def gap(shift: float) -> float:
            return float(np.mean(np.clip(sigmoid(z + shift), self.pd_floor, 1.0)) - target_mean_pd)

        self.level_shift_ = float(brentq(gap, -20.0, 20.0, xtol=1e-14)) if gap(-20) < 0 < gap(20) else 0.0
        return self

    def _shape(self, score: np.ndarray) -> np.ndarray:
        if self.method == "platt":
            return sigmoid(self.slope_ * score + self.intercept_)
        return np.interp(score, self.thresholds_, self.values_)

    def predict(self, score: np.ndarray) -> np.ndarray:
        """PD for each raw score, floored so that pricing never sees a zero expected loss."""
        if "level_shift_" not in self.__dict__:  # fit and from_dict set it; sklearn's scan costs a request ~10 us
            check_is_fitted(self)
        pd_ = self._shape(np.asarray(score, dtype=np.float64).ravel())
        if self.level_shift_:
            pd_ = sigmoid(logit(pd_) + self.level_shift_)
        return np.clip(pd_, self.pd_floor, 1.0)

    def to_dict(self) -> dict[str, Any]:
        check_is_fitted(self)
        out: dict[str, Any] = {"method": self.method, "pd_floor": self.pd_floor, "level_shift": self.level_shift_,
                               "input": "raw model score (log-odds margin)",
                               "formula": "clip(sigmoid(logit(shape(score)) + level_shift), pd_floor, 1)"}
        if self.method == "platt":
            out.update(slope=self.slope_, intercept=self.intercept_)
        else:
            out.update(thresholds=self.thresholds_.tolist(), values=self.values_.tolist())
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PDCalibrator:
        cal = cls(method=data["method"], pd_floor=float(data["pd_floor"]))
        cal.level_shift_ = float(data.get("level_shift", 0.0))
        if cal.method == "platt":
            cal.slope_, cal.intercept_ = float(data["slope"]), float(data["intercept"])
        elif cal.method == "isotonic":
            cal.thresholds_ = np.asarray(data["thresholds"], dtype=np.float64)
            cal.values_ = np.asarray(data["values"], dtype=np.float64)
            if cal.thresholds_.shape != cal.values_.shape or np.any(np.diff(cal.thresholds_) < 0):
                raise ValueError("isotonic calibration needs equally long, rising thresholds and values")
        else:
            raise ValueError(f"calibration method {cal.method!r} is not 'platt' or 'isotonic'")
        return cal

"""Calibrate raw model scores into PDs whose level can be priced, not only ranked."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted


def logit(p: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-z))


class PDCalibrator(BaseEstimator):
    """Map a raw score (log-odds margin) to a PD.

    method="platt": PD = sigmoid(slope * score + intercept), two numbers, smooth and monotone.
    method="isotonic": a monotone step function through (threshold, PD) pairs, linear between them.
    Both export as plain JSON and score identically outside Python's pickle.
    """

    def __init__(self, method: str = "platt", pd_floor: float = 1e-4):
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
        return self

    def predict(self, score: np.ndarray) -> np.ndarray:
        """PD for each raw score, floored so that pricing never sees a zero expected loss."""
        check_is_fitted(self)
        score = np.asarray(score, dtype=np.float64).ravel()
        if self.method == "platt":
            pd_ = sigmoid(self.slope_ * score + self.intercept_)
        else:
            pd_ = np.interp(score, self.thresholds_, self.values_)
        return np.clip(pd_, self.pd_floor, 1.0)

    def to_dict(self) -> dict[str, Any]:
        check_is_fitted(self)
        out: dict[str, Any] = {"method": self.method, "pd_floor": self.pd_floor, "input": "lightgbm raw margin"}
        if self.method == "platt":
            out.update(slope=self.slope_, intercept=self.intercept_)
        else:
            out.update(thresholds=self.thresholds_.tolist(), values=self.values_.tolist())
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PDCalibrator:
        cal = cls(method=data["method"], pd_floor=float(data["pd_floor"]))
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

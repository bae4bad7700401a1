"""The master scale: the bank's credit grades as PD bands, the language of pricing and limits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator


class MasterScale(BaseEstimator):
    """Grade i holds PDs in (upper_bounds[i-1], upper_bounds[i]]; the last bound is 1.

    fit(pd, y) only records how many loans and defaults each grade holds (for the report); the
    bands themselves are policy, set in configuration, not learned.
    """

    def __init__(self, grades: Sequence[str] = (), upper_bounds: Sequence[float] = ()):
        self.grades = grades
        self.upper_bounds = upper_bounds

    def _check(self) -> None:
        b = np.asarray(self.upper_bounds, dtype=np.float64)
        if len(self.grades) != len(b) or len(b) == 0 or np.any(np.diff(b) <= 0) or b[-1] != 1.0 or b[0] <= 0:
            raise ValueError(f"master scale needs one rising upper bound per grade ending at 1.0, "
                             f"got grades {list(self.grades)} and bounds {list(b)}")

    def grade_index(self, pd_: np.ndarray) -> np.ndarray:
        """0-based grade of each PD."""
        self._check()
        pd_ = np.asarray(pd_, dtype=np.float64)
        if np.any(~np.isfinite(pd_)) or np.any((pd_ < 0) | (pd_ > 1)):
            raise ValueError("PDs must be finite numbers in [0, 1]")
        return np.searchsorted(np.asarray(self.upper_bounds, dtype=np.float64), pd_, side="left")

    def grade(self, pd_: np.ndarray) -> np.ndarray:
        """Grade name of each PD."""
        return np.asarray(self.grades, dtype=object)[self.grade_index(pd_)]

    def fit(self, pd_: np.ndarray, y: np.ndarray | None = None) -> MasterScale:
        idx = self.grade_index(pd_)
        lower = np.r_[0.0, np.asarray(self.upper_bounds[:-1], dtype=np.float64)]
        table = pd.DataFrame({"grade": list(self.grades), "pd_lower": lower, "pd_upper": list(self.upper_bounds)})
        table["loans"] = np.bincount(idx, minlength=len(self.grades))
        table["mean_pd"] = pd.Series(np.asarray(pd_)).groupby(idx).mean().reindex(range(len(self.grades))).to_numpy()
        if y is not None:
            y = np.asarray(y, dtype=np.float64)
            table["defaults"] = np.bincount(idx, weights=y, minlength=len(self.grades)).astype(int)
            table["default_rate"] = table["defaults"] / table["loans"].where(table["loans"] > 0)
        self.table_ = table
        return self

    def to_dict(self) -> dict[str, Any]:
        self._check()
        return {"grades": list(self.grades), "upper_bounds": [float(b) for b in self.upper_bounds],
                "rule": "grade i holds PD in (upper_bounds[i-1], upper_bounds[i]]"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MasterScale:
        scale = cls(tuple(data["grades"]), tuple(float(b) for b in data["upper_bounds"]))
        scale._check()
        return scale

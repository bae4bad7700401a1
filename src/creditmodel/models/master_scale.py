"""The master scale: the bank's credit grades as PD bands, the language of pricing and limits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from creditmodel.regulatory import PD_FLOOR


class MasterScale(BaseEstimator):
    """Grade i holds PDs in (upper_bounds[i-1], upper_bounds[i]]; the last bound is 1.

    Each grade has an assigned PD (by default the geometric mean of its band, the band's lower
    end being `pd_floor` for the best grade). fit(pd, y) records how many loans and defaults each
    grade holds on development data and whether observed default rates rise with the grade; the
    bands themselves are policy, set in configuration, not learned.
    """

    def __init__(
        self,
        grades: Sequence[str] = (),
        upper_bounds: Sequence[float] = (),
        pd_floor: float = PD_FLOOR,
        assigned_pd: Sequence[float] | None = None,
    ):
        self.grades = grades
        self.upper_bounds = upper_bounds
        self.pd_floor = pd_floor
        self.assigned_pd = assigned_pd

    def _check(self) -> None:
        b = np.asarray(self.upper_bounds, dtype=np.float64)
        if len(self.grades) != len(b) or len(b) == 0 or np.any(np.diff(b) <= 0) or b[-1] != 1.0 or b[0] <= 0:
            raise ValueError(f"master scale needs one rising upper bound per grade ending at 1.0, "
                             f"got grades {list(self.grades)} and bounds {list(b)}")
        if not 0 <= self.pd_floor < b[0]:
            raise ValueError(f"pd_floor {self.pd_floor} must lie below the first upper bound {b[0]}")
        if self.assigned_pd is not None:
            a = np.asarray(self.assigned_pd, dtype=np.float64)
            lower = np.r_[self.pd_floor, b[:-1]]
            if a.shape != b.shape or np.any(a < lower) or np.any(a > b):
                raise ValueError(f"assigned_pd {list(a)} must give one PD inside each grade's band")

    def grade_pds(self) -> np.ndarray:
        """The PD assigned to each grade."""
        self._check()
        if self.assigned_pd is not None:
            return np.asarray(self.assigned_pd, dtype=np.float64)
        b = np.asarray(self.upper_bounds, dtype=np.float64)
        lower = np.r_[self.pd_floor, b[:-1]]
        return np.sqrt(np.maximum(lower, 1e-12) * b)

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

    def grader(self) -> Callable[[np.ndarray], np.ndarray]:
        """``grade`` with the scale checked once, now: for a service grading a PD or two per request (the
        scale's checks and arrays cost more than the look-up). The PDs are still checked on every call."""
        self._check()
        bounds = np.asarray(self.upper_bounds, dtype=np.float64)
        names = np.asarray(self.grades, dtype=object)

        def grade(pd_: np.ndarray) -> np.ndarray:
            pd_ = np.asarray(pd_, dtype=np.float64)
            if not (np.isfinite(pd_).all() and ((pd_ >= 0) & (pd_ <= 1)).all()):
                raise ValueError("PDs must be finite numbers in [0, 1]")
            return names[np.searchsorted(bounds, pd_, side="left")]

        return grade

    def grade_pd(self, pd_: np.ndarray) -> np.ndarray:
        """The assigned PD of each PD's grade."""
        return self.grade_pds()[self.grade_index(pd_)]

    def fit(self, pd_: np.ndarray, y: np.ndarray | None = None) -> MasterScale:
        idx = self.grade_index(pd_)
        b = np.asarray(self.upper_bounds, dtype=np.float64)
        table = pd.DataFrame({"grade": list(self.grades), "pd_lower": np.r_[self.pd_floor, b[:-1]],
                              "pd_upper": b, "assigned_pd": self.grade_pds()})
        table["loans"] = np.bincount(idx, minlength=len(self.grades))
        table["mean_pd"] = pd.Series(np.asarray(pd_)).groupby(idx).mean().reindex(range(len(self.grades))).to_numpy()
        self.monotone_ = True
        if y is not None:
            y = np.asarray(y, dtype=np.float64)
            table["defaults"] = np.bincount(idx, weights=y, minlength=len(self.grades)).astype(int)
            table["default_rate"] = table["defaults"] / table["loans"].where(table["loans"] > 0)
            observed = table["default_rate"].dropna().to_numpy()
            self.monotone_ = bool(np.all(np.diff(observed) >= 0))
        self.table_ = table
        return self

    def to_dict(self) -> dict[str, Any]:
        self._check()
        return {"grades": list(self.grades), "upper_bounds": [float(b) for b in self.upper_bounds],
                "assigned_pd": [float(p) for p in self.grade_pds()], "pd_floor": float(self.pd_floor),
                "rule": "grade i holds PD in (upper_bounds[i-1], upper_bounds[i]]"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MasterScale:
        scale = cls(tuple(data["grades"]), tuple(float(b) for b in data["upper_bounds"]),
                    pd_floor=float(data.get("pd_floor", 0.0)),
                    assigned_pd=tuple(float(p) for p in data["assigned_pd"]) if "assigned_pd" in data else None)
        scale._check()
        return scale


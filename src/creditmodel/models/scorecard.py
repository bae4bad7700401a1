"""The benchmark PD model: a weight-of-evidence logistic scorecard built with optbinning."""

from __future__ import annotations

import numpy as np
import pandas as pd
from optbinning import BinningProcess, Scorecard
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from creditmodel.features.matrix import FeatureSchema, refuse_complex
from creditmodel.models.target import binary_target


class ScorecardPD(ClassifierMixin, BaseEstimator):
    """Optimal binning per feature, WoE transform, logistic regression, points scaled by PDO.

    Features whose information value is below `min_iv` are left out, as a validator expects.
    Missing values get their own bin; `monotonic_trends` ({feature: "ascending"|"descending"} event
    rate) forces the bins to follow the expected direction of risk. `user_splits` ({numeric feature:
    split points}) fixes a feature's bins where the analyst has adjusted them; they are kept as given.
    """

    def __init__(
        self,
        max_n_bins: int = 5,
        min_bin_size: float = 0.05,
        C: float = 1.0,
        min_iv: float = 0.02,
        pdo: float = 20.0,
        base_points: float = 600.0,
        base_odds: float = 50.0,
        monotonic_trends: dict[str, str] | None = None,
        user_splits: dict[str, list[float]] | None = None,
    ):
        self.max_n_bins = max_n_bins
        self.min_bin_size = min_bin_size
        self.C = C
        self.min_iv = min_iv
        self.pdo = pdo
        self.base_points = base_points
        self.base_odds = base_odds
        self.monotonic_trends = monotonic_trends
        self.user_splits = user_splits

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> ScorecardPD:
        y = binary_target(y).astype(int)  # checked first: a cast to int alone turns 0.7 into 0
        for c in X.columns:  # before optbinning, whose refusal prints the whole column
            refuse_complex(X[c], f"feature {c!r}")
        # optbinning cannot bin a column without a single value (selecting columns copies nothing: copy-on-write)
        X = X[[c for c in X.columns if X[c].notna().any()]]
        categorical = FeatureSchema.infer(X).categorical
        user = {c: [float(s) for s in splits] for c, splits in (self.user_splits or {}).items()}
        for c in user:
            if c not in X.columns:
                raise ValueError(f"user_splits: {c!r} is not a feature of X (or has no value at all)")
            if c in categorical:
                raise ValueError(f"user_splits: {c!r} is categorical; split points are for numeric features")
        fit_params: dict[str, dict] = {c: {"monotonic_trend": t} for c, t in (self.monotonic_trends or {}).items()
                                       if c in X.columns and c not in categorical and c not in user}
        # fixed splits with no trend: optbinning's default ("auto") may find them infeasible and drop them all
        fit_params.update({c: {"user_splits": s, "user_splits_fixed": [True] * len(s), "monotonic_trend": None}
                           for c, s in user.items()})
        X = self._prepare(X, categorical)
        process = BinningProcess(
            variable_names=list(X.columns),
            categorical_variables=categorical,
            max_n_bins=self.max_n_bins,
            min_bin_size=self.min_bin_size,
            selection_criteria={"iv": {"min": self.min_iv}},
            binning_fit_params=fit_params,
        )
        self.scorecard_ = Scorecard(
            binning_process=process,
            estimator=LogisticRegression(C=self.C, max_iter=1000),
            scaling_method="pdo_odds",
            scaling_method_params={"pdo": self.pdo, "odds": self.base_odds, "scorecard_points": self.base_points},
        ).fit(X, y)
        self.categorical_ = categorical
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.selected_ = [str(n) for n in self.scorecard_.binning_process_.get_support(names=True)]
        for c, splits in user.items():
            binned = self.scorecard_.binning_process_.get_binned_variable(c)
            if binned.status != "OPTIMAL" or list(binned.splits) != splits:
                raise ValueError(f"user_splits: {c!r} could not be binned at {splits} (optbinning status "
                                 f"{binned.status}, split points {list(binned.splits)})")
        return self

    @staticmethod
    def _prepare(X: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
        """X with categorical columns as objects; a shallow copy: the numeric columns are shared, not copied."""
        X = X.copy(deep=False)
        for c in categorical:
            X[c] = X[c].astype(object)
        return X

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self)
        return self.scorecard_.predict_proba(self._prepare(X[list(self.feature_names_in_)], self.categorical_))

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds of default, the calibrator's input."""
        p = np.clip(self.predict_proba(X)[:, 1], 1e-12, 1 - 1e-12)
        return np.log(p) - np.log1p(-p)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def points(self, X: pd.DataFrame) -> np.ndarray:
        """Scorecard points (higher = safer)."""
        check_is_fitted(self)
        return self.scorecard_.score(self._prepare(X[list(self.feature_names_in_)], self.categorical_))

    def table(self) -> pd.DataFrame:
        """The scorecard: points per bin of each selected feature."""
        check_is_fitted(self)
        return self.scorecard_.table(style="detailed")

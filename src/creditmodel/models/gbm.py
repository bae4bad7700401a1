"""The main PD model: LightGBM, trained deterministically on the encoded feature matrix."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from creditmodel.features.matrix import FeatureSchema
from creditmodel.models.calibration import sigmoid


class LightGBMPD(ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees on the feature schema; `decision_function` is the raw log-odds margin.

    Determinism: LightGBM's `deterministic` mode with a fixed thread count and seed gives the same
    trees, bit for bit, for the same data.
    """

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.02,
        num_leaves: int = 7,
        min_child_samples: int = 100,
        feature_fraction: float = 0.5,
        bagging_fraction: float = 0.8,
        reg_lambda: float = 10.0,
        random_state: int = 0,
        num_threads: int = 2,
        feature_schema: FeatureSchema | None = None,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.num_threads = num_threads
        self.feature_schema = feature_schema

    def lgb_params(self) -> dict:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1 if self.bagging_fraction < 1 else 0,
            "lambda_l2": self.reg_lambda,
            "seed": self.random_state,
            "num_threads": self.num_threads,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> LightGBMPD:
        schema = self.feature_schema or FeatureSchema.infer(X)
        y = np.asarray(y, dtype=np.float64)
        if set(np.unique(y)) - {0.0, 1.0} or len(np.unique(y)) < 2:
            raise ValueError("y must hold both classes 0 and 1")
        data = lgb.Dataset(schema.encode(X), label=y, feature_name=list(schema.names),
                           categorical_feature=schema.categorical or "auto", free_raw_data=True)
        self.booster_ = lgb.train(self.lgb_params(), data, num_boost_round=self.n_estimators)
        self.schema_ = schema
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(schema.names)
        self.feature_names_in_ = np.asarray(schema.names, dtype=object)
        return self

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Raw log-odds margin, the input of the calibrator and of SHAP."""
        check_is_fitted(self)
        return self.booster_.predict(self.schema_.encode(X), raw_score=True)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated probabilities (sigmoid of the margin); calibrated PDs come from PDCalibrator."""
        p = sigmoid(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

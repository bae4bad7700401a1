"""The main PD model: LightGBM, trained deterministically on the encoded feature matrix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from creditmodel.features.matrix import FeatureSchema, refuse_empty
from creditmodel.models.calibration import sigmoid
from creditmodel.models.target import binary_target

PREDICT_CHUNK_ROWS = 100_000  # rows encoded at a time for prediction (about 120 MB of float64 at 150 features)


class LightGBMPD(ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees on the feature schema; `decision_function` is the raw log-odds margin.

    Determinism: LightGBM's `deterministic` mode with a fixed thread count and seed gives the same
    trees, bit for bit, for the same data.

    matrix_dtype: "float64" or "float32", the matrix LightGBM bins. "float32" halves the training
    matrix; on float32 features (e.g. a frame read as float32) it gives the same trees as "float64".
    On float64 features it rounds them first, which can move bin edges (AUC stays within about 1e-3).
    """

    def __init__(
        self,
        n_estimators: int = 600,
        early_stopping_rounds: int | None = None,
        learning_rate: float = 0.02,
        num_leaves: int = 7,
        min_child_samples: int = 100,
        feature_fraction: float = 0.5,
        bagging_fraction: float = 0.8,
        reg_lambda: float = 10.0,
        random_state: int = 0,
        num_threads: int = 2,
        class_weight: str = "none",
        monotone_constraints: dict[str, int] | None = None,
        feature_schema: FeatureSchema | None = None,
        matrix_dtype: str = "float64",
    ):
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.num_threads = num_threads
        self.class_weight = class_weight
        self.monotone_constraints = monotone_constraints
        self.feature_schema = feature_schema
        self.matrix_dtype = matrix_dtype

    def lgb_params(self, schema: FeatureSchema | None = None, y: np.ndarray | None = None) -> dict:
        params = {
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
        if self.class_weight == "balanced" and y is not None:
            params["scale_pos_weight"] = float((y == 0).sum() / max((y == 1).sum(), 1))
        elif self.class_weight != "none":
            raise ValueError(f"class_weight {self.class_weight!r} is not 'none' or 'balanced'")
        if self.monotone_constraints and schema is not None:
            unknown = set(self.monotone_constraints) - set(schema.names)
            if unknown:
                raise ValueError(f"monotone constraints for unknown features {sorted(unknown)}")
            params["monotone_constraints"] = [
                0 if n in schema.categories else int(self.monotone_constraints.get(n, 0)) for n in schema.names]
            params["monotone_constraints_method"] = "intermediate"
        return params

    def fit(self, X: pd.DataFrame, y: np.ndarray, eval_set: tuple[pd.DataFrame, np.ndarray] | None = None
            ) -> LightGBMPD:
        """Fit on (X, y); with `eval_set` and early_stopping_rounds, stop when its log-loss stops improving."""
        y = binary_target(y)
        refuse_empty(X)
        schema = (self.feature_schema or FeatureSchema.infer(X)).profiled(X)
        if self.matrix_dtype not in ("float64", "float32"):
            raise ValueError(f"matrix_dtype {self.matrix_dtype!r} is not 'float64' or 'float32'")
        dtype = np.dtype(self.matrix_dtype)
        # the encoded matrix is referenced by the Dataset alone, so it is freed once LightGBM has binned it
        data = lgb.Dataset(schema.encode(X, dtype=dtype), label=y, feature_name=list(schema.names),
                           categorical_feature=schema.categorical or "auto", free_raw_data=True)
        params = self.lgb_params(schema, y)
        callbacks: list[Callable[..., Any]] = []
        valid_sets: list[lgb.Dataset] = []
        if eval_set is not None and self.early_stopping_rounds:
            Xv, yv = eval_set
            valid_sets = [lgb.Dataset(schema.encode(Xv, dtype=dtype), label=binary_target(yv, "eval_set's y"), reference=data)]
            params["metric"] = "binary_logloss"
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True, verbose=False)]
        self.booster_ = lgb.train(params, data, num_boost_round=self.n_estimators, valid_sets=valid_sets,
                                  callbacks=callbacks)
        self.best_iteration_ = int(self.booster_.best_iteration or self.booster_.current_iteration())
        if valid_sets:  # keep exactly the best trees, so memory, SHAP and the exported text agree
            self.booster_ = lgb.Booster(model_str=self.booster_.model_to_string(num_iteration=self.best_iteration_))
        self.schema_ = schema
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(schema.names)
        self.feature_names_in_ = np.asarray(schema.names, dtype=object)
        return self

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Raw log-odds margin, the input of the calibrator and of SHAP."""
        check_is_fitted(self)
        out = np.empty(len(X), dtype=np.float64)
        for start in range(0, len(X), PREDICT_CHUNK_ROWS):  # rows are scored independently: same values, bounded memory
            part = X.iloc[start:start + PREDICT_CHUNK_ROWS]
            out[start:start + len(part)] = self.booster_.predict(self.schema_.encode(part), raw_score=True)
        return out

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated probabilities (sigmoid of the margin); calibrated PDs come from PDCalibrator."""
        p = sigmoid(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

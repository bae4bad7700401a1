"""One estimator from features to a priced-ready PD: a scoring model, its calibration, level and grades.

``PDModel(estimator, calibration, level, master_scale)`` fits the scoring model (LightGBM or the
scorecard), calibrates its raw log-odds margin into PDs on data the model was not fitted on, moves
the PD level to a target mean if asked, and records the master scale on the development data; it
then predicts PDs, grades, SHAP contributions and reason codes. The pipeline, notebooks and
segments use this one composition instead of assembling the parts each time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from creditmodel.features.matrix import refuse_empty
from creditmodel.models.calibration import PD_FLOOR, PDCalibrator
from creditmodel.models.explanation import Explanation, explain, reason_codes
from creditmodel.models.gbm import LightGBMPD
from creditmodel.models.master_scale import MasterScale
from creditmodel.models.target import binary_target

__all__ = ["PDModel"]


def _frame(X: Any, n_features: int | None = None, what: str = "X") -> pd.DataFrame:
    """The feature matrix `what` as a DataFrame (arrays get the column names x0, x1, ...). n_features: the
    fitted model's, which an array must have (an array's columns are matched by position); None: a
    matrix to fit on, which needs rows and columns."""
    if isinstance(X, pd.DataFrame):
        frame = X
    else:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D feature matrix, got an array of shape {X.shape}. Reshape your data: "
                             f"X.reshape(1, -1) for one row, X.reshape(-1, 1) for one feature")
        if n_features is not None and X.shape[1] != n_features:
            raise ValueError(f"X has {X.shape[1]} features, but PDModel is expecting {n_features} features as input")
        frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    if n_features is None:  # fitting
        refuse_empty(frame, what)
    return frame


class PDModel(ClassifierMixin, BaseEstimator):
    """A calibrated, graded PD model.

    Parameters
    ----------
    estimator : unfitted scoring model with ``fit`` and ``decision_function`` (the raw log-odds
        margin), e.g. :class:`LightGBMPD` (the default) or :class:`ScorecardPD`.
    calibration : "platt" or "isotonic", the shape of the map from margin to PD.
    level : None for the calibration sample's own level, or a target mean PD (e.g. the long-run
        average default rate plus a margin of conservatism, see ``long_run_average``) that the
        calibration sample's mean PD is shifted to in log-odds.
    master_scale : an unfitted :class:`MasterScale`; its grades are recorded on the development data
        (fit data and calibration data together). None: ``grade`` is unavailable.
    pd_floor : the smallest PD ever returned.

    Fitted attributes: ``estimator_``, ``calibrator_``, ``master_scale_`` (or None), ``classes_``,
    ``n_features_in_``, ``feature_names_in_``.
    """

    estimator_: Any
    calibrator_: PDCalibrator
    master_scale_: MasterScale | None

    def __init__(self, estimator: Any = None, calibration: str = "platt", level: float | None = None,
                 master_scale: MasterScale | None = None, pd_floor: float = PD_FLOOR):
        self.estimator = estimator
        self.calibration = calibration
        self.level = level
        self.master_scale = master_scale
        self.pd_floor = pd_floor

    def fit(self, X: Any, y: Any, *, eval_set: tuple[Any, Any] | None = None,
            calibration_set: tuple[Any, Any] | None = None) -> PDModel:
        """Fit the scoring model on (X, y), then calibrate it.

        `eval_set` (X_valid, y_valid) is the scoring model's early-stopping set where it takes one
        (LightGBM) and, unless `calibration_set` is given, also the calibration set. Without either,
        the calibration is fitted on (X, y) itself (in-sample; fine for a sketch, optimistic for a
        model to be priced).
        """
        if self.calibration not in ("platt", "isotonic"):
            raise ValueError(f"calibration {self.calibration!r} is not 'platt' or 'isotonic'")
        if self.level is not None and not 0 < float(self.level) < 1:
            raise ValueError(f"level must be None or a target mean PD in (0, 1), got {self.level!r}")
        X = _frame(X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must be 1-D with one label per row of X ({len(X)} rows), got shape {y.shape}")
        y = binary_target(y)
        estimator = clone(self.estimator) if self.estimator is not None else LightGBMPD()
        if eval_set is not None and isinstance(estimator, LightGBMPD):
            estimator.fit(X, y, eval_set=(_frame(eval_set[0], what="eval_set's X"), np.asarray(eval_set[1])))
        else:
            estimator.fit(X, y)
        cal_X, cal_y = calibration_set or eval_set or (X, y)
        cal_X, cal_y = _frame(cal_X, what="the calibration X"), binary_target(cal_y, "the calibration y")
        score = estimator.decision_function(cal_X)
        calibrator = PDCalibrator(self.calibration, pd_floor=self.pd_floor).fit(score, cal_y)
        if self.level is not None:
            calibrator.set_level(score, float(self.level))
        self._set_fitted(estimator, calibrator)
        self.master_scale_ = None
        if self.master_scale is not None:
            # PDs of each part, joined: the same values as scoring the joined rows, without a copy of them
            dev_pd = self.predict_pd(X) if cal_X is X else np.r_[self.predict_pd(X), self.predict_pd(cal_X)]
            dev_y = y if cal_X is X else np.r_[y, cal_y]
            self.fit_master_scale_on_pds(dev_pd, dev_y)
        return self

    def _set_fitted(self, estimator: Any, calibrator: PDCalibrator) -> None:
        self.estimator_, self.calibrator_ = estimator, calibrator
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = int(estimator.n_features_in_)
        self.feature_names_in_ = np.asarray(estimator.feature_names_in_, dtype=object)

    @classmethod
    def from_fitted(cls, estimator: Any, calibrator: PDCalibrator, master_scale: MasterScale | None = None
                    ) -> PDModel:
        """A fitted PDModel from parts fitted elsewhere (a refit with cross-fitted calibration, a bundle)."""
        check_is_fitted(estimator)
        check_is_fitted(calibrator)
        model = cls(clone(estimator), calibration=calibrator.method,
                    master_scale=clone(master_scale) if master_scale is not None else None,
                    pd_floor=calibrator.pd_floor)
        model._set_fitted(estimator, calibrator)
        model.master_scale_ = master_scale if master_scale is not None and hasattr(master_scale, "table_") else None
        return model

    def fit_master_scale(self, X: Any, y: Any | None = None) -> PDModel:
        """Record the master scale (loans, defaults and monotonicity per grade) on (X, y)."""
        check_is_fitted(self, "calibrator_")
        if self.master_scale is None:
            raise ValueError("this PDModel has no master_scale to fit")
        return self.fit_master_scale_on_pds(self.predict_pd(X), y)

    def fit_master_scale_on_pds(self, pd_: np.ndarray, y: Any | None = None) -> PDModel:
        """Record the master scale on this model's PDs `pd_` of the rows with outcomes `y` (scored
        elsewhere, e.g. part by part to bound memory)."""
        check_is_fitted(self, "calibrator_")
        if self.master_scale is None:
            raise ValueError("this PDModel has no master_scale to fit")
        self.master_scale_ = clone(self.master_scale).fit(np.asarray(pd_, dtype=np.float64), y)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """The scoring model's raw log-odds margin (before calibration)."""
        check_is_fitted(self, "calibrator_")
        return self.estimator_.decision_function(_frame(X, self.n_features_in_))

    def predict_pd(self, X: Any) -> np.ndarray:
        """Calibrated PD of each row (floored at `pd_floor`)."""
        margin = self.decision_function(X)  # checks that the model is fitted
        return self.calibrator_.predict(margin)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Columns (1 - PD, PD), in the order of ``classes_`` (0 = performing, 1 = default)."""
        p = self.predict_pd(X)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """1 where the PD is at least one half (a PD model is used through its PDs, not this)."""
        return (self.predict_pd(X) >= 0.5).astype(int)

    def grade(self, X: Any) -> np.ndarray:
        """Master-scale grade of each row."""
        check_is_fitted(self, "calibrator_")
        if self.master_scale_ is None:
            raise ValueError("grade needs a master_scale: PDModel(..., master_scale=MasterScale(...))")
        return self.master_scale_.grade(self.predict_pd(X))

    def explain(self, X: Any, loan_id: Any = None) -> Explanation:
        """Exact TreeSHAP contributions of the tree model in log-odds: base value + row sum = margin."""
        check_is_fitted(self, "calibrator_")
        if not hasattr(self.estimator_, "booster_"):
            raise TypeError(f"explain needs a LightGBM estimator, not {type(self.estimator_).__name__}; a "
                            f"scorecard explains itself by points (validation.explain.scorecard_reasons)")
        X = _frame(X, self.n_features_in_)
        return explain(self.estimator_, X, np.arange(len(X)) if loan_id is None else loan_id)

    def reason_codes(self, X: Any, n: int = 3, loan_id: Any = None) -> pd.DataFrame:
        """Per row, the `n` features that raise its PD most, in the catalogue's reason text."""
        return reason_codes(self.explain(X, loan_id), n=n)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # a PD is the probability of one event: binary only
        tags.input_tags.allow_nan = True  # LightGBM and the scorecard give missing values their own bin
        return tags

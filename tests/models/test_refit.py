"""Refit on train + validation with out-of-fold calibration: out of fold for real, and bit-identical."""

import numpy as np
import pandas as pd
from sklearn.base import clone

from creditmodel.features.matrix import FeatureSchema
from creditmodel.models.calibration import PDCalibrator
from creditmodel.models.gbm import LightGBMPD
from creditmodel.models.refit import refit_on_development, time_folds


def _dev(n=3000, seed=4):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.integers(0, 5, n).astype(float)})
    y = (rng.random(n) < 1 / (1 + np.exp(2.2 - 0.8 * X["a"] + 0.3 * X["c"]))).astype(int)
    dates = pd.Series(pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"))
    return X, y, dates, pd.Series(np.arange(n))


def _base():
    return LightGBMPD(n_estimators=500, early_stopping_rounds=20, num_leaves=5, min_child_samples=30,
                      random_state=3, feature_schema=FeatureSchema.for_columns(["a", "b", "c"]))


def test_time_folds_are_consecutive_blocks_of_equal_size():
    dates = pd.Series(pd.to_datetime(["2021-03-01", "2020-01-01", "2020-06-01", "2020-06-01", "2022-01-01",
                                      "2019-01-01"]))
    fold = time_folds(dates, pd.Series([1, 2, 4, 3, 5, 6]), 3)
    # order by (date, loan_id): 6, 2, 3, 4, 1, 5 -> folds 0, 0, 1, 1, 2, 2
    assert fold.tolist() == [2, 0, 1, 1, 2, 0]


def test_calibration_scores_are_out_of_fold_and_refit_is_bit_identical():
    X, y, dates, ids = _dev()
    r1 = refit_on_development(_base(), X, y, dates, ids, n_trees=40, folds=4, target_mean_pd=0.12)
    r2 = refit_on_development(_base(), X, y, dates, ids, n_trees=40, folds=4, target_mean_pd=0.12)
    assert r1.model.booster_.model_to_string() == r2.model.booster_.model_to_string()
    assert np.array_equal(r1.oof_score, r2.oof_score)
    assert r1.calibrator.to_dict() == r2.calibrator.to_dict()
    assert r1.model.booster_.num_trees() == 40  # the early-stopping count, no stopping in the refit
    # fold 2's scores come from a model fitted on the other folds only (independent refit of that model)
    k = r1.folds == 2
    other = clone(_base()).set_params(n_estimators=40, early_stopping_rounds=None).fit(X[~k], y[~k])
    assert np.array_equal(other.decision_function(X[k]), r1.oof_score[k])
    # ... and differ from the in-sample scores of the model refitted on everything
    assert not np.allclose(r1.model.decision_function(X[k]), r1.oof_score[k])
    # the calibrator is Platt on the out-of-fold scores, level-shifted to the target mean PD
    plain = PDCalibrator("platt").fit(r1.oof_score, y)
    assert np.isclose(plain.slope_, r1.calibrator.slope_) and np.isclose(plain.intercept_, r1.calibrator.intercept_)
    assert np.isclose(r1.calibrator.predict(r1.oof_score).mean(), 0.12, atol=1e-9)

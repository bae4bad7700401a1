"""PDModel: one estimator that fits, calibrates, grades and explains; equal to the pipeline's PDs."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from creditmodel.models import LightGBMPD, MasterScale, PDCalibrator, PDModel, ScorecardPD
from creditmodel.models.calibration import long_run_average, sigmoid
from creditmodel.models.target import binary_target

SCALE = MasterScale(("A", "B", "C"), (0.02, 0.1, 1.0))

# scikit-learn checks that cannot apply to a calibrated binary PD model on a feature frame, and why.
_BINARY = "a PD is the probability of one event: labels must be 0/1 (multi-class, string or continuous y refused)"
_FRAME = "features are encoded through the feature schema (pandas frame, numeric or categorical columns)"
NOT_APPLICABLE = {
    "check_classifiers_classes": _BINARY,
    "check_supervised_y_2d": _BINARY,
    "check_estimators_dtypes": _BINARY,
    "check_classifier_data_not_an_array": _BINARY,
    "check_requires_y_none": _BINARY,
    "check_fit2d_1feature": _BINARY,
    "check_dtype_object": _FRAME,
    "check_estimator_sparse_tag": _FRAME + "; no sparse input",
    "check_estimator_sparse_array": _FRAME + "; no sparse input",
    "check_estimator_sparse_matrix": _FRAME + "; no sparse input",
}


def _small_model() -> PDModel:
    return PDModel(LightGBMPD(n_estimators=5, min_child_samples=5, num_threads=1), master_scale=SCALE)


@pytest.mark.slow
@parametrize_with_checks([_small_model()], expected_failed_checks=lambda est: NOT_APPLICABLE)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.uniform(size=n)})
    y = (rng.random(n) < sigmoid(1.2 * X["a"] - 0.8 * X["b"] - 3.0)).astype(int)
    return X, y


def test_complex_numbers_are_refused_naming_where_not_cut_to_their_real_part():
    # NumPy casts complex to float by dropping the imaginary part with only a warning
    X, y = _data(n=400)
    bad = X.assign(b=X["b"] + 1j)
    for fit in (lambda: _small_model().fit(bad, y), lambda: ScorecardPD().fit(bad, y)):
        with pytest.raises(ValueError, match="Complex data not supported: feature 'b' holds complex numbers"):
            fit()
    for est in (_small_model(), LightGBMPD(n_estimators=5), ScorecardPD()):
        with pytest.raises(ValueError, match="Complex data not supported: y holds complex numbers"):
            est.fit(X, y + 0j)
    model = _small_model().fit(X, y)
    with pytest.raises(ValueError, match="feature 'a' holds complex numbers"):
        model.predict_pd(X.assign(a=X["a"] * (1 + 0j)))


def test_a_matrix_of_the_wrong_shape_is_refused_in_one_line_naming_what_differs():
    X, y = _data(n=400)
    model = _small_model().fit(X, y)
    with pytest.raises(ValueError, match=r"X lacks the feature 'b' the model was trained on \(1 of 3 missing\)"):
        model.predict_pd(X.drop(columns="b"))  # was a bare KeyError: 'b'
    assert np.array_equal(model.predict_pd(X.assign(extra=1.0)), model.predict_pd(X))  # a frame's columns by name
    on_array = _small_model().fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match="X has 4 features, but PDModel is expecting 3 features as input"):
        on_array.predict_pd(np.c_[X.to_numpy(), X.to_numpy()[:, :1]])  # an array's columns by position
    with pytest.raises(ValueError, match=r"got an array of shape \(3,\)\. Reshape your data"):
        on_array.predict_pd(X.to_numpy()[0])
    with pytest.raises(ValueError, match="X lacks the feature 'c'"):
        LightGBMPD(n_estimators=5).fit(X, y).decision_function(X[["a", "b"]])
    for est in (_small_model(), LightGBMPD(n_estimators=5)):  # LightGBM's own words were of a forced-splits file
        with pytest.raises(ValueError, match=r"X has 0 feature\(s\) \(shape=\(400, 0\)\)"):
            est.fit(X[[]], y)
    with pytest.raises(ValueError, match=r"X has 0 sample\(s\) .* a PD model needs rows of both classes"):
        _small_model().fit(X.iloc[:0], y[:0])


@pytest.mark.parametrize("labels, said", [
    ([0.0, 0.7, 1.0], r"Unknown label type: continuous; y holds \[0.0, 0.7, 1.0\]"),  # ScorecardPD cast 0.7 to 0
    ([0, 1, 2], r"Only binary classification is supported: y holds the labels \[0, 1, 2\]"),
    ([0, np.nan, 1], r"y holds 100 missing label\(s\); a PD model needs 0 or 1 on every row"),
    (["good", "bad", "bad"], r"Unknown label type: y holds text or other values \['bad', 'good'\]"),
    ([1, 1, 1], "y holds only one class, the label 1; a PD model needs both classes"),
])
def test_a_target_that_is_not_0_and_1_is_one_line_saying_what_it_holds(labels, said):
    X, _ = _data(n=300)
    y = np.resize(np.array(labels, dtype=object if isinstance(labels[0], str) else None), len(X))
    for est in (_small_model(), LightGBMPD(n_estimators=5), ScorecardPD()):
        with pytest.raises(ValueError, match=said):
            est.fit(X, y)


def test_the_calibration_and_eval_sets_labels_are_checked_as_y_is():
    X, y = _data(n=300)
    with pytest.raises(ValueError, match=r"the calibration y holds the labels \[0, 2\]"):
        _small_model().fit(X, y, calibration_set=(X, 2 * y))
    with pytest.raises(ValueError, match=r"eval_set's y holds 1 missing label"):
        LightGBMPD(n_estimators=5, early_stopping_rounds=2).fit(X, y, eval_set=(X, np.r_[np.nan, y[1:]]))
    assert np.array_equal(binary_target(pd.Series([0, 1, 1], dtype=object)), [0.0, 1.0, 1.0])  # numbers as objects


def test_unfitted_model_refuses_to_predict_and_clones():
    model = _small_model()
    with pytest.raises(NotFittedError):
        model.predict_pd(pd.DataFrame({"a": [0.0]}))
    again = clone(model)
    assert again.get_params()["calibration"] == "platt" and again.master_scale is not model.master_scale


def test_composition_equals_its_parts():
    """predict_pd = PDCalibrator(LightGBMPD margin) with the level set on the calibration sample."""
    X, y = _data()
    tr, va = slice(0, 2000), slice(2000, None)
    model = PDModel(LightGBMPD(n_estimators=40, early_stopping_rounds=5, num_threads=1), "isotonic", level=0.05,
                    master_scale=SCALE).fit(X[tr], y[tr], eval_set=(X[va], y[va]))
    gbm = LightGBMPD(n_estimators=40, early_stopping_rounds=5, num_threads=1).fit(X[tr], y[tr],
                                                                                 eval_set=(X[va], y[va]))
    cal = PDCalibrator("isotonic").fit(gbm.decision_function(X[va]), y[va])
    cal.set_level(gbm.decision_function(X[va]), 0.05)
    np.testing.assert_array_equal(model.predict_pd(X), cal.predict(gbm.decision_function(X)))
    assert model.predict_pd(X[va]).mean() == pytest.approx(0.05, abs=1e-9)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1)
    assert list(model.grade(X[:5])) == list(SCALE.grade(model.predict_pd(X[:5])))
    assert model.master_scale_.table_["loans"].sum() == len(X)  # development data: fit + calibration rows


def test_explain_adds_up_to_the_margin_and_reasons_point_upwards():
    X, y = _data()
    model = PDModel(LightGBMPD(n_estimators=30, num_threads=1)).fit(X, y)
    expl = model.explain(X[:50])
    np.testing.assert_allclose(expl.base_value + expl.values.sum(axis=1).to_numpy(),
                               model.decision_function(X[:50]), atol=1e-9)
    reasons = model.reason_codes(X[:50], n=2)
    assert list(reasons.columns) == ["loan_id", "reason_1", "reason_1_shap", "reason_2", "reason_2_shap"]
    assert (reasons["reason_1_shap"].dropna() > 0).all()
    with pytest.raises(ValueError, match="master_scale"):
        model.grade(X[:3])


def test_scorecard_pdmodel_cannot_explain_by_shap():
    X, y = _data()
    model = PDModel(ScorecardPD())
    model.fit(X, y)
    assert model.predict_pd(X).min() >= model.pd_floor
    with pytest.raises(TypeError, match="LightGBM"):
        model.explain(X[:3])


@pytest.mark.parametrize("bad, message", [({"calibration": "beta"}, "calibration"), ({"level": 1.5}, "level")])
def test_bad_parameters_are_named(bad, message):
    X, y = _data(500)
    with pytest.raises(ValueError, match=message):
        PDModel(LightGBMPD(n_estimators=3), **bad).fit(X, y)


def test_notebook_cell_equals_the_pipeline_pds(demo_run):
    """`PDModel(...).fit(X_train, y_train, eval_set=valid).predict_pd(X_oot)` = the run's scored.parquet PDs."""
    from creditmodel.pipeline import feature_schema, lightgbm_params, risk_directions

    r, cfg = demo_run["result"], demo_run["config"]
    frame = pd.read_parquet(r.features_path)
    scored = pd.read_parquet(r.output_dir / "scored.parquet").set_index("loan_id")
    cols = list(r.models.lightgbm.schema_.names)
    train, valid, oot = (frame[frame["split"] == s] for s in ("train", "valid", "oot"))
    dev = frame[frame["split"].isin(["train", "valid"])]
    cal = cfg.calibration
    level = long_run_average(dev["decision_date"], dev["default"]) + cal.margin_of_conservatism
    ms = cfg.master_scale
    model = PDModel(LightGBMPD(**lightgbm_params(cfg, risk_directions(cols)), feature_schema=feature_schema(cols, cfg)),
                    calibration=cal.method, level=level, pd_floor=cal.pd_floor,
                    master_scale=MasterScale(ms.grades, ms.upper_bounds, pd_floor=cal.pd_floor))
    model.fit(train[cols], train["default"], eval_set=(valid[cols], valid["default"]))
    expected = scored.loc[oot["loan_id"], "pd_lightgbm"].to_numpy()
    np.testing.assert_allclose(model.predict_pd(oot[cols]), expected, rtol=0, atol=1e-12)
    assert list(model.grade(oot[cols])) == list(scored.loc[oot["loan_id"], "grade_lightgbm"])

"""Training and scoring in bounded memory: no whole-matrix copies where a part or a view does, and the
same numbers as before, bit for bit (float32 matrices aside, which are asked for explicitly)."""

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from creditmodel.features.matrix import FeatureSchema
from creditmodel.models import LightGBMPD, MasterScale, PDModel, ScorecardPD, gbm
from creditmodel.models.calibration import sigmoid

SCALE = MasterScale(("A", "B", "C"), (0.02, 0.1, 1.0))


def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.uniform(size=n)})
    y = (rng.random(n) < sigmoid(1.2 * X["a"] - 0.8 * X["b"] - 3.0)).astype(int)
    return X, y


def _traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_encode_writes_the_requested_dtype_with_the_same_values():
    schema = FeatureSchema(("n", "k"), {"k": ("x", "y")})
    frame = pd.DataFrame({"n": pd.array([1.5, None, 3.0], dtype="Float64"), "k": ["y", None, "z"]})
    expected = np.array([[1.5, 1.0], [np.nan, np.nan], [3.0, np.nan]])
    np.testing.assert_array_equal(schema.encode(frame), expected)
    as32 = schema.encode(frame, dtype=np.float32)
    assert as32.dtype == np.float32
    np.testing.assert_array_equal(as32, expected.astype(np.float32))


def test_margin_scored_in_chunks_is_the_whole_matrix_margin_and_needs_no_whole_matrix(monkeypatch):
    X, y = _data(3000)
    model = LightGBMPD(n_estimators=20, min_child_samples=20, num_threads=1).fit(X, y)
    whole = model.booster_.predict(model.schema_.encode(X), raw_score=True)
    monkeypatch.setattr(gbm, "PREDICT_CHUNK_ROWS", 7)  # chunks that do not divide the rows
    np.testing.assert_array_equal(model.decision_function(X), whole)
    # memory: 200k rows x 12 columns are 19 MB as float64; scored 10k rows at a time, far less is allocated
    big = pd.DataFrame(np.random.default_rng(1).normal(size=(200_000, 12)), columns=[f"f{i}" for i in range(12)])
    wide = LightGBMPD(n_estimators=3, min_child_samples=20, num_threads=1).fit(big.iloc[:3000], y)
    monkeypatch.setattr(gbm, "PREDICT_CHUNK_ROWS", 10_000)
    peak = _traced_peak(lambda: wide.decision_function(big))
    assert peak < 0.35 * big.to_numpy().nbytes, f"scoring allocated {peak / 2**20:.1f} MiB"


def test_master_scale_from_parts_equals_scale_of_the_joined_rows():
    X, y = _data(4000)
    Xv, yv = _data(1500, seed=3)
    model = PDModel(LightGBMPD(n_estimators=30, min_child_samples=20, num_threads=1), master_scale=SCALE).fit(
        X, y, eval_set=(Xv, yv))
    joined = SCALE.fit(model.predict_pd(pd.concat([X, Xv], ignore_index=True)), np.r_[y, yv]).table_
    pd.testing.assert_frame_equal(model.master_scale_.table_, joined)


def test_pipeline_scale_by_parts_keeps_the_development_order():
    from creditmodel.pipeline import fit_master_scale_by_parts

    X, y = _data(3000)
    model = PDModel(LightGBMPD(n_estimators=20, min_child_samples=20, num_threads=1), master_scale=SCALE).fit(X, y)
    is_train = np.random.default_rng(5).random(len(X)) < 0.7  # train and valid rows interleaved
    fitted = fit_master_scale_by_parts(model, X[is_train], X[~is_train], is_train, y)
    pd.testing.assert_frame_equal(fitted.table_, SCALE.fit(model.predict_pd(X), y).table_)


def test_scorecard_shares_the_numeric_columns_instead_of_copying_them():
    X, y = _data(2000)
    X["k"] = np.where(X["c"] < 0.5, "u", "v")
    prepared = ScorecardPD._prepare(X, ["k"])
    assert np.shares_memory(prepared["a"].to_numpy(), X["a"].to_numpy())
    assert prepared["k"].dtype == object and X["k"].dtype != object  # the caller's frame is untouched


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scorecard_fits_float32_frames_like_float64_ones(dtype):
    X, y = _data(3000)
    Xd = X.astype(np.float32).astype(dtype)  # the same (float32-representable) values in either dtype
    ref = ScorecardPD().fit(X.astype(np.float32).astype(np.float64), y)
    np.testing.assert_allclose(ScorecardPD().fit(Xd, y).predict_proba(Xd)[:, 1],
                               ref.predict_proba(X.astype(np.float32).astype(np.float64))[:, 1], rtol=0, atol=1e-12)


def test_float32_matrix_gives_the_same_trees_on_float32_features():
    X, y = _data(4000)
    X32 = X.astype(np.float32)
    params = dict(n_estimators=25, min_child_samples=20, num_threads=1, feature_fraction=0.7, bagging_fraction=0.8)
    as64 = LightGBMPD(**params).fit(X32, y)
    as32 = LightGBMPD(**params, matrix_dtype="float32").fit(X32, y)
    assert as32.booster_.model_to_string() == as64.booster_.model_to_string()
    np.testing.assert_array_equal(as32.decision_function(X), as64.decision_function(X))
    with pytest.raises(ValueError, match="matrix_dtype 'float16'"):
        LightGBMPD(matrix_dtype="float16").fit(X32, y)

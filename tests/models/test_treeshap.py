"""TreeShap gives LightGBM's pred_contrib values (1e-9) and its split decisions, on trees small and large,
with missing values, zeros and categorical splits; and the same top adverse reasons."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from creditmodel.models.treeshap import TreeShap


def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    X[:, 1] = np.where(rng.random(n) < 0.3, 0.0, X[:, 1])  # zeros
    X[rng.random(n) < 0.2, 2] = np.nan  # missing
    X[:, 5] = rng.integers(0, 6, n)  # categorical codes
    X[rng.random(n) < 0.1, 5] = np.nan
    logit = X[:, 0] - np.nan_to_num(X[:, 2]) + 0.8 * (X[:, 5] % 2) + 0.5 * (X[:, 1] == 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@pytest.mark.parametrize("params", [
    {"num_leaves": 7},  # one table per tree
    {"num_leaves": 40, "max_depth": 8, "zero_as_missing": True},  # leaf by leaf, missing type Zero
])
def test_values_equal_pred_contrib_and_paths_equal_the_trees(params):
    X, y = _data()
    booster = lgb.train({"objective": "binary", "verbose": -1, "min_data_in_leaf": 20, **params},
                        lgb.Dataset(X, y, categorical_feature=[5]), num_boost_round=40)
    shap = TreeShap(booster)
    rows = np.vstack([X[:1500], np.full((1, 8), np.nan), np.zeros((1, 8)), [[-1, 0, 1, 2, 3, -2, 1e300, 7]]])
    reference = booster.predict(rows, pred_contrib=True)
    values = shap.values(rows)
    assert values.shape == (len(rows), 8)
    assert np.max(np.abs(values - reference[:, :-1])) < 1e-9
    # each row reaches exactly one leaf of each tree, and their values add up to LightGBM's margin
    paths = shap.leaf_paths(rows)
    leaf_values = np.array([lf.value for lf in shap.leaves])
    trees = booster.num_trees()
    assert (paths.sum(axis=1) == trees).all()
    assert np.allclose(paths @ leaf_values, booster.predict(rows, raw_score=True), atol=1e-9)
    order = np.argsort(-values, axis=1, kind="mergesort")[:, :3]
    expected = np.argsort(-reference[:, :-1], axis=1, kind="mergesort")[:, :3]
    assert (order == expected).all()


def test_wrong_width_is_refused():
    X, y = _data(500)
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, y), num_boost_round=3)
    with pytest.raises(ValueError, match="8 columns"):
        TreeShap(booster).values(X[:, :7])


def test_the_demo_model_explained_exactly(demo_run):
    import pandas as pd

    from creditmodel.export.bundle import load_bundle

    out = demo_run["result"].output_dir
    bundle = load_bundle(out / "bundle", allow_unsigned=True)
    X = bundle.schema.encode(pd.read_parquet(out / "features.parquet"))
    reference = bundle.booster.predict(X, pred_contrib=True)[:, :-1]
    assert np.max(np.abs(TreeShap(bundle.booster).values(X) - reference)) < 1e-9

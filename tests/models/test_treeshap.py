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
    from creditmodel.features.reasons import top_adverse
    from creditmodel.models.treeshap import shap_values
    from creditmodel.service.scoring import FastScorer

    values = shap_values(bundle.booster, X)[0]
    assert np.max(np.abs(values - reference)) < 1e-9
    assert top_adverse(values, 3) == top_adverse(reference, 3)
    found = FastScorer(bundle, num_threads=1).reasons(X[:300])  # the service's path, one thread
    assert [[r.feature for r in row] for row in found] == [[bundle.schema.names[j] for j in row]
                                                           for row in top_adverse(reference[:300], 3)]


def _ranked(values, n=3):
    order = np.argsort(-values, axis=1, kind="mergesort")[:, :n]
    return [[int(j) for j in row if values[i, j] > 0] for i, row in enumerate(order)]


def test_tied_reasons_are_ranked_as_lightgbm_ranks_them():
    """Two features that play symmetric roles (equal covers) tie exactly in pred_contrib; a rounding
    difference must not reorder them: shap_values hands such rows to pred_contrib."""
    from creditmodel.models.treeshap import _ambiguous, shap_values

    rng = np.random.default_rng(3)
    a, b = np.repeat([0.0, 0.0, 1.0, 1.0], 500), np.tile(np.repeat([0.0, 1.0], 250), 4)
    X = np.column_stack([b, a, rng.normal(size=2000), rng.normal(size=2000)])  # the tied pair is columns 0 and 1
    y = (a + b == 2).astype(int)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4, "min_data_in_leaf": 20,
                         "learning_rate": 0.5}, lgb.Dataset(X, y), num_boost_round=1)
    reference = booster.predict(X, pred_contrib=True)[:, :-1]
    assert (reference[:, 0] == reference[:, 1]).any()  # exact ties exist
    tables = TreeShap(booster)
    assert _ambiguous(tables.values(X)[:, tables.used]).any()
    values, base = shap_values(booster, X)
    assert base == booster.predict(X[:1], pred_contrib=True)[0, -1]
    assert np.max(np.abs(values - reference)) < 1e-9
    assert _ranked(values) == _ranked(reference)


def test_reasons_of_a_larger_model_equal_pred_contribs():
    """200 trees over missing values, zeros and a categorical feature, in threads: values to 1e-9, the same top 3."""
    from creditmodel.models.treeshap import shap_values

    X, y = _data(4000, seed=1)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 7, "learning_rate": 0.05},
                        lgb.Dataset(X, y, categorical_feature=[5]), num_boost_round=200)
    reference = booster.predict(X, pred_contrib=True)
    values, base = shap_values(booster, X, num_threads=2)
    assert np.max(np.abs(values - reference[:, :-1])) < 1e-9 and base == reference[0, -1]
    assert _ranked(values) == _ranked(reference[:, :-1])


def test_the_tie_guard_flags_only_rows_whose_top_reasons_rounding_could_reorder():
    from creditmodel.models.treeshap import _ambiguous

    v = np.array([
        [0.5, 0.3, 0.1, -0.2, -0.4],          # clear: not flagged
        [0.5, 0.3, 0.3 + 1e-15, -0.2, 0.0],   # 2nd and 3rd within rounding
        [0.5, 0.3, 0.1, 0.1 - 1e-14, -0.4],   # 3rd and 4th: which one is a reason
        [0.5, 3e-17, -0.1, -0.2, -0.3],       # a top value at 0: adverse or not
        [0.5, -0.2, -0.2, -0.3, -0.4],        # tied, but not adverse: no reason changes
        [-0.1, -0.2, -0.3, -0.3, -0.5],       # nothing adverse
    ])
    assert _ambiguous(v, 3).tolist() == [False, True, True, True, False, False]


def test_top_adverse_ranks_as_a_stable_sort_of_the_whole_row():
    """top_adverse picks the k largest without sorting whole rows: ties (also at the k-th place), NaN and
    rows with fewer adverse values must come out as a stable sort of -values would give them."""
    from creditmodel.features.reasons import top_adverse

    def full_sort(values, n):
        order = np.argsort(-values, axis=1, kind="mergesort")[:, :min(n, values.shape[1])]
        return [[int(j) for j in row if values[i, j] > 0] for i, row in enumerate(order)]

    rng = np.random.default_rng(0)
    for width in (1, 2, 3, 4, 8):
        v = rng.integers(-3, 4, size=(400, width)).astype(float) / 2  # many exact ties
        v[rng.random(v.shape) < 0.05] = np.nan
        for n in (1, 2, 3, 5):
            assert top_adverse(v, n) == full_sort(v, n)
            for i in range(0, 400, 9):  # a request's few rows take a shorter path to the same order
                assert top_adverse(v[i:i + 1], n) == full_sort(v[i:i + 1], n)
                assert top_adverse(v[i:i + 3], n) == full_sort(v[i:i + 3], n)


def test_one_row_of_a_run_sized_forest_is_explained_from_the_tables(monkeypatch):
    """A service request's single row of a forest past SMALL_FOREST_NODES comes from the tables (pred_contrib
    only for rows the tie guard flags), with pred_contrib's values to 1e-9 and its top 3 reasons."""
    import creditmodel.models.treeshap as ts

    X, y = _data(3000, seed=2)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 7}, lgb.Dataset(X, y),
                        num_boost_round=60)
    assert ts.explainer(booster).n_nodes > ts.SMALL_FOREST_NODES
    reference = booster.predict(X[:40], pred_contrib=True)[:, :-1]
    asked: list[int] = []
    real = ts.pred_contrib_values

    def counting(b, encoded, **kw):
        asked.append(len(encoded))
        return real(b, encoded, **kw)

    monkeypatch.setattr(ts, "pred_contrib_values", counting)
    ts.shap_values(booster, X[:1])  # the base value, asked once with no rows
    asked.clear()
    flagged = 0
    for i in range(40):
        values, _ = ts.shap_values(booster, X[i:i + 1], num_threads=1)
        assert np.max(np.abs(values[0] - reference[i])) < 1e-9
        assert _ranked(values) == _ranked(reference[i:i + 1])
        flagged += bool(ts._ambiguous(ts.explainer(booster).values(X[i:i + 1])[:, ts.explainer(booster).used]).any())
    assert len(asked) == flagged < 40  # pred_contrib only for the tie guard's rows

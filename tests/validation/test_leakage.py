"""Leakage and dominance guard: IV and AUC against independent computations, a planted leak is flagged."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from creditmodel.features.matrix import FeatureSchema
from creditmodel.models.gbm import LightGBMPD
from creditmodel.validation.leakage import (
    GuardThresholds,
    guard_table,
    information_value,
    screen_columns,
    single_feature_auc,
    summary_lines,
)
from creditmodel.validation.suite import Evidence, leakage


def test_information_value_by_hand():
    # bins A: 40 good / 10 bad, B: 30 / 20, C: 10 / 30; goods 80, bads 60
    bins = pd.Series(["A"] * 50 + ["B"] * 50 + ["C"] * 40)
    y = np.array([0] * 40 + [1] * 10 + [0] * 30 + [1] * 20 + [0] * 10 + [1] * 30)
    # (40/80 - 10/60) ln(3) + (30/80 - 20/60) ln(1.125) + (10/80 - 30/60) ln(0.25)
    assert information_value(bins, y, eps=0) == pytest.approx(0.366204 + 0.004908 + 0.519860, abs=2e-6)


def test_quantile_iv_matches_pandas_qcut_and_auc_matches_sklearn():
    rng = np.random.default_rng(0)
    n = 1000
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(2 - 1.2 * x))).astype(int)
    train, oot = pd.DataFrame({"x": x[:800], "z": -x[:800]}), pd.DataFrame({"x": x[800:], "z": -x[800:]})
    table = guard_table(train, y[:800], oot, y[800:], screen_columns(train, ["x", "z"]), GuardThresholds())
    row = table.set_index("feature").loc["x"]
    # independent: pandas' quantile bins on train, WoE with 0.5 added to each cell
    q = pd.qcut(train["x"], 10)
    t = pd.crosstab(q, y[:800]) + 0.5
    g, b = t[0] / t[0].sum(), t[1] / t[1].sum()
    assert row["iv_train"] == pytest.approx(float(((g - b) * np.log(g / b)).sum()), rel=1e-12)
    assert row["auc_train"] == pytest.approx(roc_auc_score(y[:800], x[:800]), rel=1e-12)
    assert row["auc_oot"] == pytest.approx(roc_auc_score(y[800:], x[800:]), rel=1e-12)
    # direction-free: the mirrored feature has the same AUC, not 1 - AUC
    assert table.set_index("feature").loc["z", "auc_train"] == pytest.approx(row["auc_train"], rel=1e-12)


def test_missing_values_and_categories():
    y = np.array([1, 1, 0, 0, 0, 0, 1, 0])
    x = pd.Series([np.nan, np.nan, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    # missing placed above all values separates best: scores (7, 7, 1..6) against sklearn
    auc_train, _ = single_feature_auc(x, y)
    assert auc_train == pytest.approx(roc_auc_score(y, x.fillna(7.0)))
    cat = pd.Series(["a", "a", "b", "b", "b", "c", None, "c"], dtype=object)
    auc_cat, auc_new = single_feature_auc(cat, y, pd.Series(["a", "z"]), np.array([1, 0]), categorical=True)
    rates = {"a": 1.0, "b": 0.0, "c": 0.0, None: 1.0}
    assert auc_cat == pytest.approx(roc_auc_score(y, [rates[v] for v in cat.tolist()]))
    assert auc_new == 1.0  # unseen 'z' gets the overall rate 3/8, below a's 1.0


def test_constant_and_duplicate_columns():
    f = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0], "b": [1.0, 2.0, np.nan, 4.0], "c": [1.0, 2.0, 3.0, 4.0],
                      "k": [5, 5, 5, 5], "n": [np.nan] * 4, "s": ["x", "y", None, "x"], "t": ["x", "y", None, "x"]})
    s = screen_columns(f, list(f.columns))
    assert s.constant == ["k", "n"]
    assert s.duplicates == {"b": "a", "t": "s"}
    assert s.kept == ["a", "c", "s"]


def _leaky_world(n=4000, seed=1):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(2.5 - 0.6 * signal))).astype(int)
    X = pd.DataFrame({"signal": signal, "noise": rng.normal(size=n), "leak": y + rng.normal(0, 0.3, n),
                      "protective": -signal + rng.normal(0, 1, n)})
    return X, y


def test_planted_leak_is_flagged_and_the_verdict_turns_amber():
    X, y = _leaky_world()
    tr, oot = slice(0, 3000), slice(3000, None)
    schema = FeatureSchema.for_columns(list(X.columns))
    model = LightGBMPD(n_estimators=60, num_leaves=7, min_child_samples=20, feature_schema=schema).fit(X[tr], y[tr])
    # 'protective' falls with risk; declaring it riskier-when-higher is contradicted by the data
    table = guard_table(X[tr], y[tr], X[oot], y[oot], screen_columns(X[tr], list(X.columns)), GuardThresholds(),
                        directions={"protective": 1, "signal": 1}, booster=model.booster_,
                        encoded=model.schema_.encode(X[oot]))
    by = table.set_index("feature")
    assert table.iloc[0]["feature"] == "leak" and bool(by.loc["leak", "flagged"])
    assert by.loc["leak", "auc_oot"] > 0.85 and by.loc["leak", "iv_train"] > 0.5 and by.loc["leak", "gain_share"] > 0.5
    assert not by.loc[["signal", "noise", "protective"], "flagged"].any()
    assert by.loc[["signal", "noise", "leak", "protective"], "gain_share"].sum() == pytest.approx(1.0)
    assert bool(by.loc["protective", "direction_contradicted"]) and not bool(by.loc["signal", "direction_contradicted"])
    lines = summary_lines(table)
    assert lines[0].startswith("leak: AUC alone") and "of the gain" in lines[0]
    assert any(line.startswith("protective: declared direction +1 contradicted") for line in lines)
    zh = summary_lines(table, "zh")  # the same lines in Chinese, figures as they are
    assert len(zh) == len(lines) and zh[0].startswith("leak：训练样本上单变量 AUC") and "占增益的" in zh[0]
    assert any(line.startswith("protective：声明的方向 +1 与训练样本相反") for line in zh)
    assert summary_lines(table.drop(columns="reasons_zh"), "zh")[0].startswith("leak：AUC alone")  # an older run's table
    sec = leakage(Evidence(label="test", bundle=None, features=X, scored=X, guard=table), None)
    assert sec.status == "amber"
    assert sec.findings[0].value == 1.0 and "leak:" in sec.findings[0].note
    clean = guard_table(X[tr], y[tr], X[oot], y[oot], screen_columns(X[tr], ["signal", "noise"]), GuardThresholds())
    assert leakage(Evidence(label="t", bundle=None, features=X, scored=X, guard=clean), None).status == "green"


def test_the_synthetic_world_raises_no_false_alarm(demo_run):
    """Genuine features (account flows reach IV 0.5-0.8 there) are shown, not flagged; the guard comes first."""
    result = demo_run["result"]
    guard = pd.read_csv(result.report_dir / "leakage_guard.csv")
    assert len(guard) >= len(result.models.lightgbm.schema_.names)
    assert not guard["flagged"].any(), guard.loc[guard["flagged"], ["feature", "reasons"]]
    assert guard["gain_share"].sum() == pytest.approx(1.0)
    run = json.loads((result.output_dir / "run.json").read_text())
    assert not any("leakage guard" in f for f in run["preliminary_findings"])
    html = (result.output_dir / "validation_report.html").read_text(encoding="utf-8")
    assert html.index("Leakage and dominance guard") < html.index("Discrimination by split")


def test_no_direction_when_the_rows_with_a_value_hold_one_class():
    """A feature known only for loans that did not default has no rho: (0, NaN), without SciPy's warning."""
    import warnings

    from creditmodel.validation.leakage import _observed_direction

    y = np.array([0] * 30 + [1] * 5)
    x = pd.Series(np.r_[np.arange(30.0), [np.nan] * 5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        direction, rho = _observed_direction(x, y)
    assert direction == 0 and np.isnan(rho)
    direction, rho = _observed_direction(pd.Series(np.r_[np.arange(30.0), np.arange(30.0, 35.0)]), y)
    assert direction == 1 and rho > 0.5  # the same feature known for all: higher values default

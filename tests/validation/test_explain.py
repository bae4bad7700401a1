"""SHAP explanations: pred_contrib against shap's TreeSHAP, additivity, direction check, scorecard reasons,
importance agreement, plots."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import shap

from creditmodel.models.gbm import LightGBMPD
from creditmodel.validation import explain as E

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny():
    """A small LightGBM where the risk rises with x_up and falls with x_down; noise has missing values."""
    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame({"x_up": rng.normal(size=n), "x_down": rng.normal(size=n), "noise": rng.normal(size=n)})
    X.loc[rng.random(n) < 0.1, "noise"] = np.nan
    logit = -2 + 1.2 * X["x_up"] - 0.8 * X["x_down"]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    model = LightGBMPD(n_estimators=60, learning_rate=0.1, min_child_samples=20, num_leaves=7, num_threads=1)
    model.fit(X, y)
    expl = E.explain(model, X, np.arange(n) + 10_000)
    return {"X": X, "y": y, "model": model, "expl": expl}


@pytest.fixture(scope="module")
def tiny_cat():
    """A small LightGBM with a categorical feature (LightGBM categorical splits)."""
    rng = np.random.default_rng(1)
    n = 2000
    X = pd.DataFrame({"x": rng.normal(size=n), "kind": rng.choice(["a", "b", "c", "d"], size=n)})
    X.loc[rng.random(n) < 0.05, "kind"] = None
    logit = -1.5 + 0.8 * X["x"] + 1.0 * (X["kind"] == "a") - 0.7 * (X["kind"] == "d")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    model = LightGBMPD(n_estimators=40, learning_rate=0.1, min_child_samples=20, num_leaves=7, num_threads=1)
    model.fit(X, y)
    return {"X": X, "y": y, "model": model, "expl": E.explain(model, X, np.arange(n))}


@pytest.fixture(scope="module")
def demo(demo_run):
    r = demo_run["result"]
    frame = pd.read_parquet(r.features_path)
    valid = frame[frame["split"] == "valid"].reset_index(drop=True)
    cols = list(r.models.lightgbm.schema_.names)
    return {"models": r.models, "frame": frame, "valid": valid, "cols": cols,
            "expl": E.explain(r.models.lightgbm, valid[cols], valid["loan_id"])}


def _tree_explainer_values(booster, encoded):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explainer = shap.TreeExplainer(booster)
        values = np.asarray(explainer.shap_values(encoded), dtype=np.float64)
    return values, float(np.ravel(explainer.expected_value)[-1]), explainer


# --- SHAP values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["tiny", "tiny_cat"])
def test_pred_contrib_is_identical_to_shap_tree_explainer(case, request):
    t = request.getfixturevalue(case)
    encoded = t["model"].schema_.encode(t["X"])
    values, base, _ = _tree_explainer_values(t["model"].booster_, encoded)
    assert values.shape == t["expl"].values.shape
    assert np.abs(values - t["expl"].values.to_numpy()).max() < 1e-9
    assert base == t["expl"].base_value


def test_pred_contrib_matches_shaps_own_treeshap_algorithm(tiny):
    """shap.TreeExplainer(booster) hands LightGBM boosters to pred_contrib itself; shap's own C++ TreeSHAP
    over its parsed copy of the trees is an independent implementation of the same algorithm."""
    encoded = tiny["model"].schema_.encode(tiny["X"])
    _, _, delegating = _tree_explainer_values(tiny["model"].booster_, encoded)
    own = shap.TreeExplainer(delegating.model.trees)  # a list of shap trees: shap's own algorithm
    assert own.model.model_type == "internal"
    values = own.shap_values(encoded)
    assert np.isnan(encoded).any()  # missing values follow LightGBM's default direction in both
    assert np.abs(values - tiny["expl"].values.to_numpy()).max() < 1e-9
    assert float(np.ravel(own.expected_value)[0]) == pytest.approx(tiny["expl"].base_value, abs=1e-12)


@pytest.mark.parametrize("case", ["tiny", "tiny_cat"])
def test_shap_adds_up_to_the_raw_margin(case, request):
    t = request.getfixturevalue(case)
    booster, expl = t["model"].booster_, t["expl"]
    margin = booster.predict(t["model"].schema_.encode(t["X"]), raw_score=True)
    np.testing.assert_allclose(expl.values.to_numpy().sum(axis=1) + expl.base_value, margin, rtol=0, atol=1e-9)
    contrib = booster.predict(t["model"].schema_.encode(t["X"]), pred_contrib=True)
    assert np.ptp(contrib[:, -1]) == 0 and contrib[0, -1] == expl.base_value
    assert list(expl.values.columns) == list(t["X"].columns)
    assert (expl.data.index == expl.values.index).all()


def test_demo_model_shap_is_tree_explainer_and_adds_up(demo):
    model, X = demo["models"].lightgbm, demo["valid"][demo["cols"]]
    expl = demo["expl"]
    assert model.schema_.categorical, "the demo model should have categorical features"
    values, base, _ = _tree_explainer_values(model.booster_, model.schema_.encode(X))
    assert np.abs(values - expl.values.to_numpy()).max() < 1e-9 and base == expl.base_value
    np.testing.assert_allclose(expl.values.sum(axis=1) + expl.base_value, model.decision_function(X), atol=1e-9)


def test_explain_of_no_rows_keeps_the_base_value(tiny):
    empty = E.explain(tiny["model"], tiny["X"].iloc[:0], np.array([], dtype=int))
    assert empty.values.shape == (0, 3) and empty.base_value == tiny["expl"].base_value


def test_global_importance_is_mean_abs_shap(tiny):
    imp = E.global_importance(tiny["expl"])
    assert list(imp.index[:2]) == ["x_up", "x_down"]
    assert imp["noise"] == pytest.approx(tiny["expl"].values["noise"].abs().mean())


# --- direction check ------------------------------------------------------------------------------

def test_direction_check_flags_a_feature_used_backwards(tiny):
    check = E.direction_check(tiny["expl"], directions={"x_up": -1, "x_down": -1, "noise": 0}).set_index("feature")
    assert check.loc["x_up", "status"] == "contradicts" and check.loc["x_up", "contradicts"]
    assert check.loc["x_up", "spearman_rho"] > 0.5
    assert check.loc["x_down", "status"] == "agrees" and not check.loc["x_down", "contradicts"]
    assert check.loc["noise", "status"] == "n/a" and np.isnan(check.loc["noise", "spearman_rho"])
    assert check.loc["x_up", "n"] == 3000


def test_direction_check_with_the_right_directions_flags_nothing(tiny):
    check = E.direction_check(tiny["expl"], directions={"x_up": 1, "x_down": -1})
    assert not check["contradicts"].any()
    assert set(check.loc[check["feature"].isin(["x_up", "x_down"]), "status"]) == {"agrees"}


def test_direction_check_spearman_uses_non_null_rows_and_threshold(tiny):
    expl = tiny["expl"]
    check = E.direction_check(expl, directions={"noise": 1}, threshold=0.99).set_index("feature")
    keep = expl.data["noise"].notna()
    rho = expl.data.loc[keep, "noise"].rank().corr(expl.values.loc[keep, "noise"].rank())
    assert check.loc["noise", "spearman_rho"] == pytest.approx(rho, abs=1e-12)
    assert check.loc["noise", "n"] == keep.sum() and check.loc["noise", "status"] == "weak"


def test_direction_check_defaults_to_the_catalogue_and_skips_categoricals(tiny_cat, demo):
    assert set(E.direction_check(tiny_cat["expl"])["status"]) == {"n/a"}  # not catalogue features
    assert E.direction_check(tiny_cat["expl"], directions={"kind": 1, "x": 1}).set_index("feature").loc[
        "kind", "status"] == "n/a"
    check = E.direction_check(demo["expl"]).set_index("feature")
    from creditmodel.features.catalogue import BY_NAME

    for name, row in check.iterrows():
        assert row["direction"] == BY_NAME[name].direction
        if BY_NAME[name].is_categorical or BY_NAME[name].direction == 0:
            assert row["status"] == "n/a"
    assert set(check["status"]) <= {"agrees", "contradicts", "weak", "n/a"}
    assert (check["status"] == "agrees").sum() > 0


# --- local ------------------------------------------------------------------------------------------

def test_select_loans_hand_case():
    pd_ = pd.Series([0.9, 0.1, 0.05, 0.5, 0.02, 0.3, 0.6, 0.01], index=[f"L{i}" for i in range(8)])
    y = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    sel = E.select_loans(pd_, y, n=2, seed=3)
    assert list(sel.loc[sel["group"] == "highest_pd", "loan_id"]) == ["L0", "L6"]
    assert list(sel.loc[sel["group"] == "default_lowest_pd", "loan_id"]) == ["L4", "L1"]
    rnd = sel.loc[sel["group"] == "random", "loan_id"]
    assert len(rnd) == 2 and not set(rnd) & {"L0", "L6", "L4", "L1"}
    assert sel["loan_id"].is_unique
    assert (sel["pd"].to_numpy() == pd_.to_numpy()[sel["row"]]).all()
    again = E.select_loans(pd_, y, n=2, seed=3)
    pd.testing.assert_frame_equal(sel, again)


def test_reason_codes_keep_their_columns_and_add_features_on_request(tiny):
    plain = E.reason_codes(tiny["expl"], n=2)
    assert list(plain.columns) == ["loan_id", "reason_1", "reason_1_shap", "reason_2", "reason_2_shap"]
    rich = E.reason_codes(tiny["expl"], n=2, features=True)
    values = tiny["expl"].values
    for i in range(0, len(rich), 500):
        f = rich.loc[i, "reason_1_feature"]
        if f is not None:
            assert rich.loc[i, "reason_1_shap"] == values.iloc[i].max() == values.iloc[i][f]


# --- scorecard ----------------------------------------------------------------------------------------

def test_scorecard_feature_points_add_up_to_the_score(demo):
    sc, X = demo["models"].scorecard, demo["valid"][demo["cols"]].head(300)
    points = E.scorecard_feature_points(sc, X)
    assert list(points.columns) == sc.selected_
    np.testing.assert_allclose(points.sum(axis=1) + sc.scorecard_.intercept_, sc.points(X), atol=1e-9)


def test_scorecard_reasons_are_the_largest_points_lost(demo):
    """Brute force with the public points(): for every feature, the most points it can give (over a grid
    of its values, every category and missing) minus what it gives the loan, each measured as the change
    in the loan-independent total score of one reference loan."""
    sc, cols = demo["models"].scorecard, demo["cols"]
    train = demo["frame"].loc[demo["frame"]["split"] == "train", cols]
    loans = demo["valid"][cols].sample(15, random_state=0)
    reference = train.iloc[[0]]
    blocks, keys = [], []
    for f in sc.selected_:
        col = train[f]
        if pd.api.types.is_numeric_dtype(col):
            grid = list(np.unique(np.quantile(col.dropna(), np.linspace(0, 1, 201)))) + [np.nan]
        else:
            grid = list(col.dropna().unique()) + [None]
        values = grid + list(loans[f])
        block = pd.concat([reference] * len(values), ignore_index=True)
        block[f] = pd.Series(values, dtype=col.dtype if pd.api.types.is_numeric_dtype(col) else object)
        blocks.append(block)
        keys.append((f, len(grid)))
    points = sc.points(pd.concat(blocks, ignore_index=True)[list(sc.feature_names_in_)])
    lost, start = {}, 0
    for f, g in keys:
        p = points[start:start + g + len(loans)]
        lost[f] = p[:g].max() - p[g:]
        start += g + len(loans)
    lost = pd.DataFrame(lost, index=loans.index)

    reasons = E.scorecard_reasons(sc, loans, n=3, loan_id=np.arange(len(loans)))
    table_max = sc.table().groupby("Variable")["Points"].max()
    for i, (_, row) in enumerate(reasons.iterrows()):
        expected = lost.iloc[i][lost.iloc[i] > 1e-9].sort_values(ascending=False)
        chosen = [row[f"reason_{k}_feature"] for k in (1, 2, 3) if row[f"reason_{k}_feature"] is not None]
        assert len(chosen) == min(3, len(expected))
        for k, f in enumerate(chosen, start=1):
            assert row[f"reason_{k}_points_lost"] == pytest.approx(lost.iloc[i][f], abs=1e-6)
            loan_points = E.scorecard_feature_points(sc, loans.iloc[[i]])[f].iat[0]
            assert row[f"reason_{k}_points_lost"] == pytest.approx(table_max[f] - loan_points, abs=1e-9)
            assert row[f"reason_{k}_points_lost"] >= expected.iloc[min(2, len(expected) - 1)] - 1e-6
            assert row[f"reason_{k}"] == E.reason_text(f, loans.iloc[i][f])
        assert np.isclose(row["reason_1_points_lost"], expected.iloc[0], atol=1e-6)


def test_scorecard_iv_is_the_binning_summary(demo):
    sc = demo["models"].scorecard
    iv = E.scorecard_iv(sc)
    summary = sc.scorecard_.binning_process_.summary().set_index("name")
    assert iv.is_monotonic_decreasing and len(iv) == len(summary)
    assert iv[iv.index[0]] == summary.loc[iv.index[0], "iv"]
    selected = E.scorecard_iv(sc, selected_only=True)
    assert set(selected.index) == set(sc.selected_)


def test_reasons_side_by_side(demo):
    valid, cols = demo["valid"].head(50), demo["cols"]
    expl = E.explain(demo["models"].lightgbm, valid[cols], valid["loan_id"])
    both = E.reasons_side_by_side(expl, demo["models"].scorecard, valid[cols], n=2)
    assert list(both["loan_id"]) == list(valid["loan_id"])
    assert {"lightgbm_reason_1", "lightgbm_reason_1_feature", "scorecard_reason_1",
            "scorecard_reason_1_points_lost", "same_top_feature"} <= set(both.columns)
    same = both["lightgbm_reason_1_feature"] == both["scorecard_reason_1_feature"]
    assert (both["same_top_feature"] == same).all()


# --- consistency ------------------------------------------------------------------------------------

def test_importance_agreement_hand_cases():
    names = [f"f{i}" for i in range(12)]
    shap_imp = pd.Series(np.linspace(1, 0.1, 12), index=names)
    iv = pd.Series(np.linspace(0.5, 0.01, 12), index=names)[::-1]  # same ranking, other order and scale
    same = E.importance_agreement(shap_imp, iv)
    assert same["spearman_rho"] == pytest.approx(1) and same["kendall_tau"] == pytest.approx(1)
    assert same["n_common"] == 12 and same["top_k"] == 10 and same["top_overlap"] == 10
    assert same["top_overlap_share"] == 1.0
    reverse = E.importance_agreement(shap_imp, pd.Series(np.linspace(0.01, 0.5, 12), index=names))
    assert reverse["spearman_rho"] == pytest.approx(-1) and reverse["kendall_tau"] == pytest.approx(-1)
    assert reverse["top_overlap"] == 8  # the top 10 of each ranking share f2..f9
    # f0 and f1 swap places; a feature only one side has is ignored
    iv2 = pd.Series([0.9, 1.0, 0.8], index=["f0", "f1", "f2"])
    swap = E.importance_agreement(shap_imp.head(3), pd.concat([iv2, pd.Series({"zz": 5.0})]))
    assert swap["n_common"] == 3
    assert swap["spearman_rho"] == pytest.approx(0.5) and swap["kendall_tau"] == pytest.approx(1 / 3)
    assert swap["top_k"] == 3 and swap["top_overlap"] == 3


def test_importance_agreement_on_the_demo_models(demo):
    agreement = E.importance_agreement(E.global_importance(demo["expl"]), E.scorecard_iv(demo["models"].scorecard))
    assert agreement["n_common"] >= 20
    assert -1 <= agreement["kendall_tau"] <= 1 and agreement["spearman_rho"] > 0.3  # both see the same drivers
    assert 0 <= agreement["top_overlap"] <= 10


# --- plots -------------------------------------------------------------------------------------------

def _is_png(path):
    data = path.read_bytes()
    return len(data) > 1000 and data[:8] == PNG_MAGIC


def test_plots_return_displays_that_save_png_and_close(tiny, tiny_cat, tmp_path):
    expl = tiny["expl"]
    before = set(plt.get_fignums())
    shown = {
        "importance": E.plot_importance(E.global_importance(expl)),
        "beeswarm": E.plot_beeswarm(expl, max_rows=1000),
        "beeswarm_cat": E.plot_beeswarm(tiny_cat["expl"]),
        "dependence": E.plot_dependence(expl, top=3, directions={"x_up": -1, "x_down": -1}),
        "dependence_cat": E.plot_dependence(tiny_cat["expl"], directions={"x": 1}),
        "waterfall": E.plot_waterfall(expl, expl.values.index[5]),
        "waterfall_cat": E.plot_waterfall(tiny_cat["expl"], 7),
    }
    assert len(set(plt.get_fignums()) - before) == len(shown)  # each drew one open figure, none saved
    assert shown["dependence"].ax_.size >= 3 and shown["importance"].ax_.figure is shown["importance"].figure_
    paths = [d.save(tmp_path / f"{name}.png") for name, d in shown.items()]
    assert paths == [tmp_path / f"{n}.png" for n in shown]
    sel = E.select_loans(tiny["model"].predict_proba(tiny["X"])[:, 1], tiny["y"], n=1, loan_id=expl.values.index)
    many = E.plot_waterfalls(expl, sel, tmp_path / "loans")
    assert len(many) == 3 and all(p.parent == tmp_path / "loans" for p in many)
    for p in paths + many:
        assert _is_png(p), p
    assert set(plt.get_fignums()) == before
    with pytest.raises(KeyError):
        E.plot_waterfall(expl, "no such loan")
    assert set(plt.get_fignums()) == before


def test_plots_draw_on_the_axes_given(tiny):
    fig, (left, right) = plt.subplots(1, 2)
    try:
        d = E.plot_importance(E.global_importance(tiny["expl"]), ax=right)
        assert d.figure_ is fig and d.ax_ is right and len(right.patches) == len(tiny["expl"].values.columns)
        assert not left.patches
        again = d.plot(ax=left)  # redraw from the data the display keeps
        assert again.ax_ is left and len(left.patches) == len(right.patches)
    finally:
        plt.close(fig)


def test_demo_plots(demo, tmp_path):
    expl = demo["expl"]
    assert _is_png(E.plot_beeswarm(expl).save(tmp_path / "beeswarm.png"))
    assert _is_png(E.plot_dependence(expl, top=6).save(tmp_path / "dependence.png"))
    pd_ = demo["models"].pd("lightgbm", demo["valid"][demo["cols"]])
    sel = E.select_loans(pd_, demo["valid"]["default"], n=1, loan_id=demo["valid"]["loan_id"])
    assert all(_is_png(p) for p in E.plot_waterfalls(expl, sel, tmp_path))


def test_waterfall_bars_walk_from_the_base_value_to_the_margin(tiny):
    """The waterfall's bars are the loan's SHAP values, largest |SHAP| on top, the rest summed in one
    row; they start at the base value and end at the booster's own raw margin."""
    t, expl = tiny, tiny["expl"]
    i = 5
    loan = expl.values.index[i]
    margin = float(t["model"].booster_.predict(t["model"].schema_.encode(t["X"].iloc[[i]]), raw_score=True)[0])
    shap_row = expl.values.iloc[i]
    top = shap_row.abs().sort_values(ascending=False).index
    for max_display, expected in ((3, [shap_row[n] for n in top]),
                                  (2, [shap_row[top[0]], shap_row[top[1]] + shap_row[top[2]]])):
        shown = E.plot_waterfall(expl, loan, max_display=max_display)
        try:
            bars = sorted(shown.ax_.patches, key=lambda r: -r.get_y())  # top row first
            np.testing.assert_allclose([b.get_width() for b in bars], expected, rtol=0, atol=1e-12)
            right = bars[0].get_x() + bars[0].get_width()  # the top bar ends at f(x)
            assert right == pytest.approx(margin, abs=1e-9)
            assert bars[-1].get_x() == pytest.approx(expl.base_value, abs=1e-9)  # the bottom one starts at E[f(X)]
            for upper, lower in zip(bars, bars[1:]):  # each bar starts where the one below it ends
                assert upper.get_x() == pytest.approx(lower.get_x() + lower.get_width(), abs=1e-12)
            ticks = sorted(zip(shown.ax_.get_yticks(), shown.ax_.get_yticklabels()), key=lambda t: -t[0])
            labels = [x.get_text() for _, x in ticks]  # top row first
            assert len(labels) == max_display and labels[0].endswith(f"= {E.label(top[0])}")
            if max_display == 2:
                assert labels[1] == "2 other features"
        finally:
            plt.close(shown.figure_)


def test_swarm_offsets_stack_equal_values_outwards():
    ys = E.swarm_offsets(np.array([0.0, 0.0, 0.0, 1.0, 0.5]), bins=10, width=0.4)
    assert ys[3] == 0 and ys[4] == 0  # alone in their bins
    assert sorted(ys[:3]) == pytest.approx([-0.2, 0.0, 0.2])  # three in one bin: 0, +1, -1, scaled to 0.4 / 2
    np.testing.assert_array_equal(E.swarm_offsets(np.array([0.0, 0.0, 0.0, 1.0, 0.5]), bins=10, width=0.4), ys)
    assert len(E.swarm_offsets(np.array([]))) == 0


def test_beeswarm_places_every_sampled_loan_at_its_shap_value(tiny):
    expl = tiny["expl"]
    shown = E.plot_beeswarm(expl, top=2, max_rows=500)
    try:
        ticks = sorted(zip(shown.ax_.get_yticks(), shown.ax_.get_yticklabels()), key=lambda t: -t[0])
        labels = [x.get_text() for _, x in ticks]  # top row first
        first = E.global_importance(expl).index[0]
        assert labels == [E.label(first), "sum of 2 other features"]
        rows = E._sample_rows(len(expl.values), 500, 0)
        top_row = [c for c in shown.ax_.collections if np.all(np.abs(c.get_offsets()[:, 1] - 1) < 0.5)]
        xs = np.sort(np.concatenate([c.get_offsets()[:, 0] for c in top_row]))
        np.testing.assert_allclose(xs, np.sort(expl.values[first].to_numpy()[rows]), rtol=0, atol=1e-12)
    finally:
        plt.close(shown.figure_)

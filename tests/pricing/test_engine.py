import numpy as np
import pandas as pd
import pytest

from creditmodel.config import PricingConfig
from creditmodel.exceptions import RequestError
from creditmodel.pricing import OUTPUT_COLUMNS, price
from creditmodel.pricing.capital import loan_capital
from creditmodel.pricing.engine import COMPONENTS


def _apps(**extra):
    frame = pd.DataFrame({"loan_id": [1, 2, 3], "guarantee_type": ["unsecured", "collateral", "joint_group"],
                          "pd": [0.01, 0.05, 0.45]})
    for k, v in extra.items():
        frame[k] = v
    return frame


def test_default_lgds_are_the_foundation_irb_values():
    assert PricingConfig().lgd == {"unsecured": 0.45, "third_party": 0.45, "collateral": 0.35, "joint_group": 0.45}


def test_output_columns_and_components():
    cfg = PricingConfig()
    out = price(_apps(grade=["A3", "B3", "D"]), cfg)
    assert tuple(out.columns) == OUTPUT_COLUMNS
    assert tuple(price(_apps(), cfg).columns) == tuple(c for c in OUTPUT_COLUMNS if c != "grade")
    # the components' row sum, bit for bit (the rate is summed before the frame is made)
    pd.testing.assert_series_equal(out["risk_covering_rate"], out[list(COMPONENTS)].sum(axis=1), check_names=False,
                                   check_exact=True)
    assert out.loc[0, "expected_loss"] == 0.01 * 0.45 and out.loc[1, "expected_loss"] == 0.05 * 0.35
    assert (out["funding_cost"] == cfg.funding_cost).all() and (out["margin"] == cfg.margin).all()
    np.testing.assert_allclose(out["capital_charge"], out["k"] * cfg.hurdle_rate)
    np.testing.assert_allclose(out["risk_weight"], out["k"] * 12.5 * 1.06)
    # no amounts: per-unit pricing, 1-year default maturity, retail curve under "auto"
    assert (out["ead"] == 1.0).all() and (out["maturity_years"] == 1.0).all()
    assert (out["capital_approach"] == "retail").all()
    assert out["risk_covering_rate"].is_monotonic_increasing
    assert out["capped"].tolist() == [False, False, True] and not out["floored"].any()
    assert out.loc[2, "rate"] == cfg.max_rate and out.loc[2, "risk_covering_rate"] > cfg.max_rate


def test_capital_credited_lowers_the_charge_by_the_risk_free_rate():
    base = PricingConfig()
    credited = PricingConfig(capital_credited=True)
    a, b = price(_apps(), base), price(_apps(), credited)
    np.testing.assert_allclose(b["capital_charge"], a["k"] * (0.10 - 0.015))
    # at the risk-covering rate RAROC = hurdle + margin / K either way (loans 0, 1 are not clamped)
    for out in (a, b):
        np.testing.assert_allclose(out["raroc"][:2], 0.10 + 0.008 / out["k"][:2], rtol=1e-12)


def test_collateral_is_cheaper_than_unsecured_at_equal_pd():
    apps = pd.DataFrame({"loan_id": [1, 2], "guarantee_type": ["unsecured", "collateral"], "pd": [0.03, 0.03]})
    out = price(apps, PricingConfig())
    assert out.loc[1, "rate"] < out.loc[0, "rate"]


def test_floor_and_cap():
    cfg = PricingConfig(min_rate=0.05, max_rate=0.10)
    out = price(pd.DataFrame({"loan_id": [1, 2, 3], "guarantee_type": ["collateral"] * 3,
                              "pd": [0.001, 0.03, 0.30]}), cfg)
    rcr = out["risk_covering_rate"]
    assert rcr[0] < 0.05 < rcr[1] < 0.10 < rcr[2]
    assert out["rate"].tolist() == [0.05, rcr[1], 0.10]
    assert out["floored"].tolist() == [True, False, False] and out["capped"].tolist() == [False, False, True]
    # EVA: above the margin when floored, exactly the margin at the risk-covering rate, negative when capped
    assert out.loc[0, "eva"] > cfg.margin
    assert out.loc[1, "eva"] == pytest.approx(cfg.margin, rel=1e-9)
    assert out.loc[2, "eva"] < 0 and out.loc[2, "raroc"] < cfg.hurdle_rate
    with pytest.raises(ValueError, match="min_rate 0.2 must be below max_rate 0.1"):
        PricingConfig(min_rate=0.2, max_rate=0.1)


def test_eva_sign_follows_raroc_against_the_hurdle():
    cfg = PricingConfig(margin=0.0, min_rate=0.0, max_rate=0.36)
    out = price(_apps(ead=[1e5, 2e5, 3e5]), cfg)
    np.testing.assert_allclose(out["eva"], 0.0, atol=1e-9)  # no margin: exactly the hurdle
    np.testing.assert_allclose(out["raroc"], cfg.hurdle_rate, rtol=1e-12)
    out = price(_apps(ead=[1e5, 2e5, 3e5]), PricingConfig(min_rate=0.0, max_rate=0.36))
    assert (out["eva"] > 0).all() and (out["raroc"] > 0.10).all()
    np.testing.assert_allclose(out["eva"], 0.008 * out["ead"], rtol=1e-9)


def test_ead_maturity_and_sales_inputs():
    cfg = PricingConfig()
    apps = _apps(amount=[5e5, 9e6, 2e6], term_months=[12, 36, 6], annual_sales=[np.nan, 160e6, np.nan])
    out = price(apps, cfg)
    assert out["ead"].tolist() == [5e5, 9e6, 2e6]
    np.testing.assert_allclose(out["maturity_years"], [1.0, 3.0, 0.5])
    assert out["capital_approach"].tolist() == ["retail", "corporate", "retail"]
    k, r, _ = loan_capital([0.05], [0.35], [9e6], [3.0], [160e6], cfg)
    assert out.loc[1, "k"] == pytest.approx(k[0], rel=1e-12) and out.loc[1, "correlation"] == pytest.approx(r[0])
    # ead wins over amount, maturity_years over term_months
    out = price(apps.assign(ead=[1.0, 2.0, 3.0], maturity_years=[2.0, 2.0, 2.0]), cfg)
    assert out["ead"].tolist() == [1.0, 2.0, 3.0] and (out["maturity_years"] == 2.0).all()
    # loan_amount is the last fallback; the default maturity comes from the config
    out = price(_apps(loan_amount=[1e5, 1e5, 1e5]), PricingConfig(default_maturity_years=2.0))
    assert (out["ead"] == 1e5).all() and (out["maturity_years"] == 2.0).all()


def test_empty_frame_prices_to_empty():
    out = price(_apps().iloc[:0], PricingConfig())
    assert len(out) == 0 and "rate" in out.columns


@pytest.mark.parametrize("frame, match", [
    (pd.DataFrame({"loan_id": [1], "guarantee_type": ["gold"], "pd": [0.1]}), "guarantee_type 'gold' has no LGD"),
    (pd.DataFrame({"loan_id": [1], "guarantee_type": [None], "pd": [0.1]}), "guarantee_type None has no LGD"),
    (pd.DataFrame({"loan_id": [1], "guarantee_type": ["unsecured"], "pd": [1.5]}),
     r"pd must be a number in \[0, 1\], got 1.5 \(loan_id 1\)"),
    (pd.DataFrame({"loan_id": [1], "guarantee_type": ["unsecured"], "pd": [-0.1]}), r"pd must be a number in \[0, 1\]"),
    (pd.DataFrame({"loan_id": [1], "guarantee_type": ["unsecured"], "pd": [np.nan]}), "pd must be a number"),
    (pd.DataFrame({"loan_id": [1], "guarantee_type": ["unsecured"], "pd": ["high"]}),
     r"pd must be a number in \[0, 1\], got 'high'"),
    (pd.DataFrame({"loan_id": [1], "pd": [0.1]}), "column 'guarantee_type' is missing"),
    (pd.DataFrame({"loan_id": [1], "guarantee_type": ["unsecured"]}), "column 'pd' is missing"),
    (pd.DataFrame({"guarantee_type": ["unsecured"], "pd": [0.1]}), "column 'loan_id' is missing"),
    (_apps(ead=[1.0, -5.0, 1.0]), r"ead must be a number >= 0 .*, got -5.0 \(loan_id 2\)"),
    (_apps(amount=["1e5", "lots", "2e5"]), "amount must be a number >= 0 .*, got 'lots'"),
    (_apps(loan_amount=[1.0, np.inf, 1.0]), "loan_amount must be a number >= 0"),
    (_apps(maturity_years=[1.0, 0.0, 1.0]), r"maturity_years must be a number of years in \(0, 50\], got 0.0"),
    (_apps(maturity_years=[1.0, 1.0, 120.0]), r"maturity_years must be .*, got 120.0 \(loan_id 3\)"),
    (_apps(maturity_years=[1.0, 1.0, None]), r"maturity_years must be .*, got nan"),
    (_apps(term_months=[12, -3, 12]), r"term_months must be a number of months in \(0, 600\], got -3"),
    (_apps(annual_sales=[1e6, -1.0, np.nan]), "annual_sales must be a number >= 0"),
    (_apps(annual_sales=["1e6", "n/a", None]), "annual_sales must be a number >= 0 .*, got 'n/a'"),
])
def test_bad_pricing_input(frame, match):
    with pytest.raises(RequestError, match=match) as err:
        price(frame, PricingConfig())
    assert "\n" not in str(err.value)


def test_grade_basis_prices_on_the_grade_pd(demo_run):
    from creditmodel.export.bundle import load_bundle
    from creditmodel.pricing import price_with_bundle

    bundle = load_bundle(demo_run["result"].bundle_dir)
    frame = pd.read_parquet(demo_run["result"].features_path).head(200)
    by_loan = price_with_bundle(bundle, frame, PricingConfig())
    by_grade = price_with_bundle(bundle, frame, PricingConfig(pd_basis="grade"))
    np.testing.assert_allclose(by_grade["pd"], bundle.master_scale.grade_pd(by_loan["pd"].to_numpy()))
    assert (by_grade["grade"] == by_loan["grade"]).all()


def test_price_with_bundle_passes_loan_terms_through(demo_run):
    from creditmodel.export.bundle import load_bundle
    from creditmodel.pricing import price_with_bundle

    bundle = load_bundle(demo_run["result"].bundle_dir)
    frame = pd.read_parquet(demo_run["result"].features_path).head(200)
    out = price_with_bundle(bundle, frame, PricingConfig())
    np.testing.assert_array_equal(out["ead"], frame["loan_amount"].to_numpy(dtype=float))
    np.testing.assert_allclose(out["maturity_years"], frame["term_months"].to_numpy(dtype=float) / 12)
    np.testing.assert_array_equal(out["guarantee_type"].astype(str), frame["guarantee_type"].astype(str))
    terms = frame.assign(ead=2e7, maturity_years=4.0)  # above the retail limit: the corporate curve
    out = price_with_bundle(bundle, terms, PricingConfig())
    assert (out["ead"] == 2e7).all() and (out["maturity_years"] == 4.0).all()
    assert (out["capital_approach"] == "corporate").all()
    with pytest.raises(RequestError, match="loan_amount must be a number >= 0"):
        price_with_bundle(bundle, frame.assign(loan_amount=-1.0), PricingConfig())
    with pytest.raises(RequestError, match="'loan_id' is missing"):
        price_with_bundle(bundle, frame.drop(columns=["loan_id"]), PricingConfig())


def test_price_with_bundle_flags_loans_to_refer(demo_run, tmp_path):
    """Above the approval authority or the longest term: priced as usual and flagged, never refused."""
    from creditmodel.data.dictionary import load_dictionary
    from creditmodel.export.bundle import load_bundle
    from creditmodel.pricing import POLICY_COLUMNS, price_with_bundle

    bundle = load_bundle(demo_run["result"].bundle_dir)
    frame = pd.read_parquet(demo_run["result"].features_path).head(4).copy()
    frame["loan_amount"] = [8e6, 1e5, 6e6, 2e5]
    frame["term_months"] = [12, 180, 150, 24]
    out = price_with_bundle(bundle, frame, PricingConfig())
    assert tuple(out.columns[-len(POLICY_COLUMNS):]) == POLICY_COLUMNS
    assert out["referral_text"].iloc[0].startswith("Amount above the unit's approval authority")
    zh = price_with_bundle(bundle, frame, PricingConfig(), lang="zh")
    assert zh["referral_text"].iloc[2] == ("金额超出本单位审批权限（500万元），需上报审批；"
                                           "期限超过产品最长期限（120个月），需上报审批")
    assert zh["referral_text"].iloc[3] == "" and (zh["rate"] == out["rate"]).all()
    assert out["needs_referral"].tolist() == [True, True, True, False]
    assert out["referral_rules"].tolist() == ["approval_authority", "term_limit", "approval_authority,term_limit", ""]
    assert out["rate"].notna().all()
    # a bank's own rules come from its dictionary
    path = tmp_path / "bank.toml"
    path.write_text('[[policy]]\nname = "small_unit"\ntable = "loans"\ncolumn = "amount"\nmax = 150000\n')
    own = price_with_bundle(bundle, frame, PricingConfig(), load_dictionary(path))
    assert own["referral_rules"].tolist() == ["small_unit", "", "small_unit", "small_unit"]


@pytest.mark.parametrize("n", [0, 1, 4])
def test_one_frame_holds_the_types_of_a_frame_grown_column_by_column(n):
    """The priced frame is built in one go; its columns keep the types assigning them one by one gave
    (scalars broadcast), for no loans as for some."""
    cfg = PricingConfig(margin=0)
    apps = pd.DataFrame({"loan_id": np.arange(n), "guarantee_type": ["unsecured"] * n, "pd": np.full(n, 0.02),
                         "pd_guarantor": np.full(n, np.nan)})
    out = price(apps, cfg)
    assert len(out) == n and isinstance(out.index, pd.RangeIndex)
    assert out["margin"].dtype == np.float64
    assert out["floored"].dtype == bool and out["pd_guarantor"].isna().all()
    grown = pd.DataFrame({"loan_id": apps["loan_id"].to_numpy()})
    for c in ("funding_cost", "operating_cost", "margin"):
        grown[c] = getattr(cfg, c)
    pd.testing.assert_frame_equal(out[["loan_id", "funding_cost", "operating_cost", "margin"]], grown)

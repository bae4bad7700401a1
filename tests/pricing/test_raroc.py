import numpy as np
import pandas as pd
import pytest

from creditmodel.config import PricingConfig
from creditmodel.exceptions import RequestError
from creditmodel.pricing import loan_capital, portfolio_summary, price, raroc, rate_for_target_raroc, with_target_rate


@pytest.mark.parametrize("cfg", [PricingConfig(), PricingConfig(capital_credited=True),
                                 PricingConfig(capital_approach="corporate", hurdle_rate=0.15)])
@pytest.mark.parametrize("pd_, lgd, ead, m, sales, target", [
    (0.02, 0.45, 3e5, 1.0, None, 0.15),
    (0.004, 0.35, 2e6, 2.0, 80e6, 0.25),
    (0.12, 0.45, 9e6, 3.0, 160e6, 0.08),
    (0.05, 0.45, 1.0, 1.0, None, -0.05),
])
def test_rate_for_target_raroc_gives_the_target_back(cfg, pd_, lgd, ead, m, sales, target):
    rate = rate_for_target_raroc(pd_, lgd, ead, m, target, cfg, annual_sales=sales)
    assert isinstance(rate, float)
    k = loan_capital([pd_], [lgd], [ead], [m], None if sales is None else [sales], cfg)[0][0]
    got = raroc(rate, cfg.funding_cost, cfg.operating_cost, pd_ * lgd, k, cfg)
    assert float(got) == pytest.approx(target, rel=1e-12, abs=1e-13)
    # and through price(): a loan at that rate, with no floor/cap in the way, earns the target
    apps = pd.DataFrame({"loan_id": [1], "guarantee_type": ["unsecured"], "pd": [pd_], "ead": [ead],
                         "maturity_years": [m], "annual_sales": [np.nan if sales is None else sales]})
    priced = price(apps, cfg.model_copy(update={"lgd": {**cfg.lgd, "unsecured": lgd}}))
    assert priced.loc[0, "k"] == pytest.approx(k, rel=1e-12)
    assert with_target_rate(priced, target, cfg)["rate_for_target_raroc"][0] == pytest.approx(rate, rel=1e-12)


def test_rate_for_target_raroc_at_the_hurdle_is_the_price_without_margin():
    cfg = PricingConfig()
    apps = pd.DataFrame({"loan_id": [1, 2], "guarantee_type": ["unsecured", "collateral"], "pd": [0.01, 0.03],
                         "ead": [1e5, 4e5]})
    priced = price(apps, cfg)
    rates = rate_for_target_raroc(priced["pd"].to_numpy(), priced["lgd"].to_numpy(), priced["ead"].to_numpy(),
                                  priced["maturity_years"].to_numpy(), cfg.hurdle_rate, cfg)
    np.testing.assert_allclose(rates, priced["risk_covering_rate"] - cfg.margin, rtol=1e-12)


def _priced_by_hand() -> pd.DataFrame:
    # three loans: (A) capital 10, return 2; (B) capital 15, return 1.8; (C) defaulted, no capital, return -2
    return pd.DataFrame({
        "loan_id": ["A", "B", "C"], "ead": [100.0, 300.0, 100.0], "pd": [0.01, 0.02, 1.0], "lgd": [0.45, 0.35, 0.45],
        "k": [0.10, 0.05, 0.0], "risk_weight": [1.325, 0.6625, 0.0], "expected_loss": [0.0045, 0.007, 0.45],
        "risk_covering_rate": [0.08, 0.06, 0.50], "rate": [0.08, 0.06, 0.30], "floored": [False, False, False],
        "capped": [False, False, True], "raroc": [0.20, 0.12, np.nan], "eva": [1.0, 0.3, -2.0]})


def test_portfolio_summary_by_hand():
    s = portfolio_summary(_priced_by_hand())
    assert s["n_loans"] == 3 and s["exposure"] == 500.0
    assert s["rate"] == pytest.approx((8 + 18 + 30) / 500)                  # 0.112
    assert s["risk_covering_rate"] == pytest.approx((8 + 18 + 50) / 500)    # 0.152
    assert s["pd"] == pytest.approx((1 + 6 + 100) / 500)                     # 0.214
    assert s["k"] == pytest.approx(25 / 500)                                 # capital / exposure
    assert s["capital"] == pytest.approx(25.0)
    assert s["rwa"] == pytest.approx(132.5 + 198.75)
    assert s["raroc"] == pytest.approx((2 + 1.8 - 2) / 25)                   # 0.072
    assert s["eva"] == pytest.approx(-0.7)
    assert s["eva"] == pytest.approx((s["raroc"] - 0.10) * s["capital"])     # with a 10% hurdle
    assert s["n_floored"] == 0 and s["n_capped"] == 1


def test_portfolio_summary_of_priced_loans_is_consistent():
    cfg = PricingConfig(capital_credited=True)
    apps = pd.DataFrame({"loan_id": [1, 2, 3], "guarantee_type": ["unsecured", "collateral", "joint_group"],
                         "pd": [0.01, 0.05, 0.45], "ead": [1e5, 3e5, 2e5]})
    priced = price(apps, cfg)
    s = portfolio_summary(priced)
    w = priced["ead"] / priced["ead"].sum()
    assert s["rate"] == pytest.approx((priced["rate"] * w).sum())
    assert s["eva"] == pytest.approx(priced["eva"].sum())
    assert s["eva"] == pytest.approx((s["raroc"] - cfg.hurdle_rate) * s["capital"], rel=1e-9)
    assert s["n_capped"] == 1


def test_portfolio_summary_needs_priced_columns():
    with pytest.raises(RequestError, match="column 'raroc' is missing"):
        portfolio_summary(_priced_by_hand().drop(columns=["raroc"]))

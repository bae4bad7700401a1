import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from creditmodel.config import PricingConfig
from creditmodel.exceptions import RequestError
from creditmodel.pricing.engine import COMPONENTS, capital_requirement, price


def test_capital_requirement_matches_basel_retail_formula_by_hand():
    pd_, lgd = 0.02, 0.45
    w = (1 - math.exp(-35 * pd_)) / (1 - math.exp(-35))
    r = 0.03 * w + 0.16 * (1 - w)
    k = lgd * norm.cdf((norm.ppf(pd_) + math.sqrt(r) * norm.ppf(0.999)) / math.sqrt(1 - r)) - pd_ * lgd
    assert capital_requirement(np.array([pd_]), np.array([lgd]))[0] == pytest.approx(k, rel=1e-12)
    assert 0.03 < k < 0.06  # the well-known size for a 2% PD retail exposure at 45% LGD


def test_rate_is_the_sum_of_its_components():
    cfg = PricingConfig()
    apps = pd.DataFrame({"loan_id": [1, 2, 3], "guarantee_type": ["unsecured", "collateral", "joint_group"],
                         "pd": [0.01, 0.05, 0.45]})
    out = price(apps, cfg)
    np.testing.assert_allclose(out["rate"], out[list(COMPONENTS)].sum(axis=1))
    assert out.loc[0, "expected_loss"] == pytest.approx(0.01 * cfg.lgd["unsecured"])
    assert out.loc[1, "expected_loss"] == pytest.approx(0.05 * cfg.lgd["collateral"])
    assert out.loc[0, "funding_cost"] == cfg.funding_cost
    assert out["rate"].is_monotonic_increasing  # riskier here and with higher EL
    assert out["above_max_rate"].tolist() == [False, False, True]


def test_collateral_is_cheaper_than_unsecured_at_equal_pd():
    apps = pd.DataFrame({"loan_id": [1, 2], "guarantee_type": ["unsecured", "collateral"], "pd": [0.03, 0.03]})
    out = price(apps, PricingConfig())
    assert out.loc[1, "rate"] < out.loc[0, "rate"]


@pytest.mark.parametrize("frame, match", [
    (pd.DataFrame({"loan_id": [1], "guarantee_type": ["gold"], "pd": [0.1]}), "guarantee_type 'gold'"),
    (pd.DataFrame({"loan_id": [1], "guarantee_type": ["unsecured"], "pd": [1.5]}), r"pd must be a number in \[0, 1\]"),
    (pd.DataFrame({"loan_id": [1], "pd": [0.1]}), "'guarantee_type' is missing"),
])
def test_bad_pricing_input(frame, match):
    with pytest.raises(RequestError, match=match):
        price(frame, PricingConfig())


def test_grade_basis_prices_on_the_grade_pd(demo_run):
    from creditmodel.export.bundle import load_bundle
    from creditmodel.pricing.engine import price_with_bundle

    bundle = load_bundle(demo_run["result"].bundle_dir)
    frame = pd.read_parquet(demo_run["result"].features_path).head(200)
    by_loan = price_with_bundle(bundle, frame, PricingConfig())
    by_grade = price_with_bundle(bundle, frame, PricingConfig(pd_basis="grade"))
    np.testing.assert_allclose(by_grade["pd"], bundle.master_scale.grade_pd(by_loan["pd"].to_numpy()))
    assert (by_grade["grade"] == by_loan["grade"]).all()

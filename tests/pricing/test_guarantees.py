"""Security in the price, against hand computations: collateral haircuts, guarantor substitution, Basel double
default, the joint-guarantee group; bad security input is one line."""

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from creditmodel.config import PricingConfig
from creditmodel.exceptions import RequestError
from creditmodel.pricing import (
    SECURITY_COLUMNS,
    collateral_cover,
    collateral_lgd,
    double_default_capital,
    guarantor_pds,
    price,
)

N = NormalDist()
CFG = PricingConfig()


def _retail_k(pd_, lgd, addon=0.0):
    w = (1 - math.exp(-35 * pd_)) / (1 - math.exp(-35))
    r = min(0.03 * w + 0.16 * (1 - w) + addon, 0.99)
    return lgd * (N.cdf((N.inv_cdf(pd_) + math.sqrt(r) * N.inv_cdf(0.999)) / math.sqrt(1 - r)) - pd_)


def test_collateral_haircuts_by_hand():
    items = pd.DataFrame({"loan_id": [1, 1, 2], "collateral_type": ["building", "equipment", "deposit_pledge"],
                          "value": [500_000.0, 200_000.0, 2_000_000.0]})
    cover = collateral_cover(items, CFG.collateral_haircuts)
    assert cover[1] == pytest.approx(0.7 * 500_000 + 0.5 * 200_000)  # 450,000
    assert cover[2] == pytest.approx(2_000_000)
    lgd = collateral_lgd([1e6, 1e6], cover.loc[[1, 2]].to_numpy(), 0.45, 0.15)
    np.testing.assert_allclose(lgd, [0.45 * 0.55, 0.45 * 0.15])  # 0.2475; fully covered keeps the floor


def test_price_with_one_collateral_item_per_loan():
    apps = pd.DataFrame({"loan_id": [1, 2], "guarantee_type": ["collateral", "collateral"], "pd": [0.02, 0.02],
                         "ead": [1e6, 1e6], "collateral_value": [500_000.0, np.nan],
                         "collateral_type": ["building", None]})
    out = price(apps, CFG)
    assert set(SECURITY_COLUMNS) <= set(out.columns)
    np.testing.assert_allclose(out["lgd"], [0.45 * 0.65, 0.35])  # cover 350,000; no item: the type's LGD
    np.testing.assert_allclose(out["expected_loss"], [0.02 * 0.45 * 0.65, 0.02 * 0.35])
    assert out["k"].iloc[0] == pytest.approx(_retail_k(0.02, 0.45 * 0.65), rel=1e-9)


def test_guarantor_substitution_where_lower():
    apps = pd.DataFrame({"loan_id": [1, 2], "guarantee_type": ["third_party"] * 2, "pd": [0.05, 0.05],
                         "ead": [100_000.0] * 2, "pd_guarantor": [0.01, 0.08]})
    out = price(apps, CFG)
    np.testing.assert_allclose(out["pd_priced"], [0.01, 0.05])
    np.testing.assert_allclose(out["expected_loss"], [0.01 * 0.45, 0.05 * 0.45])
    np.testing.assert_allclose(out["k"], [_retail_k(0.01, 0.45), _retail_k(0.05, 0.45)], rtol=1e-9)
    assert out["rate"].iloc[0] < out["rate"].iloc[1]


def _basel_double_default(pd_o, pd_g, lgd, m):
    w = (1 - math.exp(-50 * pd_o)) / (1 - math.exp(-50))
    rho = 0.12 * w + 0.24 * (1 - w)
    b = (0.11852 - 0.05478 * math.log(min(pd_o, pd_g))) ** 2
    ma = (1 + (m - 2.5) * b) / (1 - 1.5 * b)
    k0 = lgd * (N.cdf((N.inv_cdf(pd_o) + math.sqrt(rho) * N.inv_cdf(0.999)) / math.sqrt(1 - rho)) - pd_o) * ma
    return k0 * (0.15 + 160 * pd_g)


@pytest.mark.parametrize("pd_o, pd_g, m", [(0.02, 0.01, 2.5), (0.05, 0.002, 1.0), (0.01, 0.004, 4.0)])
def test_double_default_matches_the_basel_formula(pd_o, pd_g, m):
    assert double_default_capital(pd_o, pd_g, 0.45, m) == pytest.approx(_basel_double_default(pd_o, pd_g, 0.45, m),
                                                                        rel=1e-9)
    cfg = PricingConfig(guarantee_treatment="double_default")
    out = price(pd.DataFrame({"loan_id": [1], "guarantee_type": ["third_party"], "pd": [pd_o], "ead": [1e5],
                              "maturity_years": [m], "pd_guarantor": [pd_g]}), cfg)
    assert out["k"].iloc[0] == pytest.approx(_basel_double_default(pd_o, pd_g, 0.45, m), rel=1e-9)
    assert out["capital_approach"].iloc[0] == "double_default"


def test_joint_group_lowers_lgd_and_raises_capital():
    apps = pd.DataFrame({"loan_id": [1, 2], "guarantee_type": ["joint_group", "unsecured"], "pd": [0.02, 0.02],
                         "ead": [100_000.0] * 2, "group_id": [7, None]})
    out = price(apps, CFG)
    np.testing.assert_allclose(out["lgd"], [0.45 * 0.7, 0.45])
    assert out["k"].iloc[0] == pytest.approx(_retail_k(0.02, 0.315, addon=0.05), rel=1e-9)
    assert out["group_lgd_effect"].iloc[0] == pytest.approx(0.315 - 0.45)
    assert out["group_capital_effect"].iloc[0] == pytest.approx(_retail_k(0.02, 0.315, 0.05) - _retail_k(0.02, 0.315))
    assert out["group_capital_effect"].iloc[0] > 0 and out["group_capital_effect"].iloc[1] == 0


def test_guarantors_pd_lookup_and_its_refusals():
    borrowers = pd.DataFrame({"loan_id": [1, 2, 3], "enterprise_id": [10, 20, 30]})
    pds = {10: 0.03, 20: 0.01, 30: 0.05, 40: 0.002}
    got = guarantor_pds(pd.DataFrame({"loan_id": [1, 1, 3], "guarantor_id": [20, 40, 20]}), borrowers, pds)
    assert got.to_dict() == {1: 0.002, 3: 0.01}
    for guarantees, match in [
        (pd.DataFrame({"loan_id": [1], "guarantor_id": [99]}), "guarantor_id 99 of loan_id 1 is unknown"),
        (pd.DataFrame({"loan_id": [1, 2], "guarantor_id": [20, 10]}), "circular guarantees 10 -> 20 -> 10"),
        (pd.DataFrame({"loan_id": [1, 2, 3], "guarantor_id": [20, 30, 10]}), "circular guarantees"),
        (pd.DataFrame({"loan_id": [1], "guarantor_id": [10]}), "its own borrower"),
    ]:
        with pytest.raises(RequestError, match=match) as info:
            guarantor_pds(guarantees, borrowers, pds)
        assert "\n" not in str(info.value)


def test_bad_collateral_is_one_line():
    with pytest.raises(RequestError, match="value must be a number >= 0"):
        collateral_cover(pd.DataFrame({"loan_id": [1], "collateral_type": ["building"], "value": [-5.0]}),
                         CFG.collateral_haircuts)
    with pytest.raises(RequestError, match="collateral_type 'gold' has no haircut"):
        collateral_cover(pd.DataFrame({"loan_id": [1], "collateral_type": ["gold"], "value": [5.0]}),
                         CFG.collateral_haircuts)
    with pytest.raises(RequestError, match="collateral_value must be a number >= 0"):
        price(pd.DataFrame({"loan_id": [1], "guarantee_type": ["collateral"], "pd": [0.02],
                            "collateral_value": [-1.0], "collateral_type": ["building"]}), CFG)
    with pytest.raises(ValidationError, match="collateral haircut 'building' = 1.2"):
        PricingConfig(collateral_haircuts={"building": 1.2})


def test_without_security_columns_the_price_is_unchanged():
    apps = pd.DataFrame({"loan_id": [1], "guarantee_type": ["unsecured"], "pd": [0.02], "ead": [1e5]})
    out = price(apps, CFG)
    assert not set(SECURITY_COLUMNS) & set(out.columns)
    assert out["lgd"].iloc[0] == 0.45 and out["k"].iloc[0] == pytest.approx(_retail_k(0.02, 0.45), rel=1e-9)


def test_a_haircut_above_one_in_the_configuration_is_one_line(tmp_path):
    from creditmodel.config import load_config
    from creditmodel.exceptions import ConfigError

    path = tmp_path / "run.toml"
    path.write_text("[pricing.collateral_haircuts]\nbuilding = 1.5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "\n" not in str(info.value) and "collateral haircut 'building' = 1.5" in str(info.value)

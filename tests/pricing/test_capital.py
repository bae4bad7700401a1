"""Basel IRB capital against the BCBS illustrative risk weights and a case worked by hand."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from creditmodel.config import PricingConfig
from creditmodel.pricing import (
    capital_requirement,
    corporate_capital,
    corporate_correlation,
    loan_capital,
    maturity_adjustment,
    retail_capital,
    risk_weight,
)


def test_published_bcbs_risk_weights():
    # Basel II Annex 5 illustrative IRB risk weights (LGD 45%, M 2.5; K x 12.5, i.e. without the 1.06):
    # corporate PD 1%: 92.32%; corporate PD 0.03%: 14.44%; other retail PD 1%: 45.77%; PD 0.03%: 4.45%.
    k_corp, r_corp = corporate_capital(0.01, 0.45, 2.5)
    k_ret, r_ret = retail_capital(0.01, 0.45)
    assert float(risk_weight(k_corp, 1.0)) == pytest.approx(0.9232, abs=0.0005)
    assert float(risk_weight(k_ret, 1.0)) == pytest.approx(0.456, abs=0.005)  # 45.77% computed
    assert float(risk_weight(k_ret, 1.0)) == pytest.approx(0.4577, abs=0.0005)
    assert float(risk_weight(corporate_capital(0.0003, 0.45, 2.5)[0], 1.0)) == pytest.approx(0.1444, abs=0.0005)
    assert float(risk_weight(retail_capital(0.0003, 0.45)[0], 1.0)) == pytest.approx(0.0445, abs=0.0005)
    assert float(r_corp) == pytest.approx(0.1928, abs=1e-4) and float(r_ret) == pytest.approx(0.1216, abs=1e-4)
    # the Basel II scaling factor 1.06 on top: 97.86% and 48.51%
    assert float(risk_weight(k_corp)) == pytest.approx(0.9232 * 1.06, abs=0.0006)
    assert float(risk_weight(k_ret)) == pytest.approx(0.4577 * 1.06, abs=0.0006)


def test_sme_adjustment_lowers_capital_up_to_50_million():
    k5 = float(corporate_capital(0.01, 0.45, 2.5, 5.0)[0])
    k20 = float(corporate_capital(0.01, 0.45, 2.5, 20.0)[0])
    k50 = float(corporate_capital(0.01, 0.45, 2.5, 50.0)[0])
    plain = float(corporate_capital(0.01, 0.45, 2.5)[0])
    assert k5 < k20 < k50
    assert risk_weight(k5, 1.0) == pytest.approx(0.7239, abs=0.0005)  # the BCBS table's S = 5 column: 72.39%
    assert k50 == plain == float(corporate_capital(0.01, 0.45, 2.5, 400.0)[0]) == float(
        corporate_capital(0.01, 0.45, 2.5, np.nan)[0])
    assert float(corporate_capital(0.01, 0.45, 2.5, 1.0)[0]) == k5  # S below 5 counts as 5
    np.testing.assert_allclose(corporate_correlation(0.01, 5.0), corporate_correlation(0.01) - 0.04)


def test_corporate_k_by_hand():
    # PD 2%, LGD 45%, M 3 years, sales EUR 20 million
    pd_, lgd, m, s = 0.02, 0.45, 3.0, 20.0
    w = (1 - math.exp(-50 * pd_)) / (1 - math.exp(-50))          # 0.6321206
    r = 0.12 * w + 0.24 * (1 - w) - 0.04 * (1 - (s - 5) / 45)      # 0.1641455 - 0.0266667 = 0.1374789
    b = (0.11852 - 0.05478 * math.log(pd_)) ** 2                   # 0.1107696
    ma = (1 + (m - 2.5) * b) / (1 - 1.5 * b)                      # 1.2656836
    z = (norm.ppf(pd_) + math.sqrt(r) * norm.ppf(0.999)) / math.sqrt(1 - r)  # (-2.0537489 + 1.1458...) / 0.9287 = -0.9776337
    k = (lgd * norm.cdf(z) - pd_ * lgd) * ma                       # (0.45 * 0.1641278 - 0.009) * 1.2656836
    assert w == pytest.approx(0.6321206, abs=1e-7)
    assert r == pytest.approx(0.1374789, abs=1e-7)
    assert b == pytest.approx(0.1107696, abs=1e-7)
    assert ma == pytest.approx(1.2656836, abs=1e-7)
    assert z == pytest.approx(-0.9776337, abs=1e-7)
    assert k == pytest.approx(0.0820891, abs=1e-7)
    got_k, got_r = corporate_capital(pd_, lgd, m, s)
    assert float(got_k) == pytest.approx(0.0820891, abs=1e-7) and float(got_r) == pytest.approx(r, rel=1e-12)
    assert float(risk_weight(got_k)) == pytest.approx(0.0820891 * 12.5 * 1.06, rel=1e-6)  # 108.77%
    # through a loan: sales CNY 160 million at 8 CNY per EUR, EAD above the retail limit
    cfg = PricingConfig()
    lk, lr, approach = loan_capital([pd_], [lgd], [9e6], [m], [160e6], cfg)
    assert approach[0] == "corporate" and lk[0] == pytest.approx(k, rel=1e-12)


def test_retail_k_matches_formula_and_floors():
    pd_, lgd = 0.02, 0.45
    w = (1 - math.exp(-35 * pd_)) / (1 - math.exp(-35))
    r = 0.03 * w + 0.16 * (1 - w)
    k = lgd * norm.cdf((norm.ppf(pd_) + math.sqrt(r) * norm.ppf(0.999)) / math.sqrt(1 - r)) - pd_ * lgd
    assert capital_requirement(np.array([pd_]), np.array([lgd]))[0] == pytest.approx(k, rel=1e-12)
    # PD floor 0.03%: a PD of 0 or 0.01% gets the capital of 0.03%
    np.testing.assert_allclose(retail_capital([0.0, 0.0001], 0.45)[0], retail_capital([0.0003, 0.0003], 0.45)[0])
    # defaulted (PD 1) has no unexpected loss; LGD 0 has no capital
    assert retail_capital(1.0, 0.45)[0] == 0 and corporate_capital(1.0, 0.45, 2.5)[0] == 0
    assert corporate_capital(0.05, 0.0, 2.5)[0] == 0


def test_maturity_adjustment_is_one_at_one_year_and_clamped():
    assert float(maturity_adjustment(0.01, 1.0)) == pytest.approx(1.0, rel=1e-12)
    assert float(maturity_adjustment(0.01, 0.25)) == float(maturity_adjustment(0.01, 1.0))
    assert float(maturity_adjustment(0.01, 30)) == float(maturity_adjustment(0.01, 5.0))
    assert float(maturity_adjustment(0.01, 5.0)) > float(maturity_adjustment(0.01, 2.5)) > 1.0


def test_auto_approach_uses_the_retail_limit_in_cny():
    cfg = PricingConfig()  # EUR 1 million x 8.0 = CNY 8 million
    assert cfg.retail_threshold_cny == 8e6
    _, _, approach = loan_capital([0.02] * 3, [0.45] * 3, [1e6, 8e6, 8e6 + 1], [1.0] * 3, None, cfg)
    assert list(approach) == ["retail", "retail", "corporate"]
    _, _, forced = loan_capital([0.02], [0.45], [1e6], [1.0], None, cfg.model_copy(
        update={"capital_approach": "corporate"}))
    assert list(forced) == ["corporate"]

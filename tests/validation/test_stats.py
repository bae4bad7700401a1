import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta, binomtest, chi2, norm
from sklearn.metrics import roc_auc_score

from creditmodel.validation import stats

# the hand case of test_metrics: pairs (default, non-default) ranked right in 3 of 4 -> AUC 0.75
Y4 = np.array([0, 0, 1, 1])
S4 = np.array([0.1, 0.4, 0.35, 0.8])


@pytest.fixture(params=[0, 1, 2])
def sample(request):
    rng = np.random.default_rng(request.param)
    y = (rng.random(400) < 0.1).astype(int)
    score = rng.normal(size=400) + 0.8 * y
    if request.param == 2:  # heavy ties, as a scorecard's points have
        score = np.round(score, 1)
    return y, score


# --------------------------------------------------------------------------- discrimination


def _delong_var_direct(y, s):
    """O(n^2) DeLong: psi(x, z) = 1 if x > z, 1/2 if tied; V10 = row means, V01 = column means."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size


def test_delong_matches_direct_definition_and_sklearn(sample):
    y, s = sample
    r = stats.auc_confidence(y, s, method="delong")
    a, var = _delong_var_direct(y, s)
    assert r.value == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert r.value == pytest.approx(a, abs=1e-12)
    assert r.detail["variance"] == pytest.approx(var, rel=1e-10)
    v10, v01 = stats.delong_placements(y, s)
    assert v10.mean() == pytest.approx(v01.mean(), abs=1e-12)


def test_delong_hand_case():
    # V10 = (1/2, 1) for defaults 0.35, 0.8; V01 = (1, 1/2) for non-defaults 0.1, 0.4
    # var = s^2(V10)/2 + s^2(V01)/2 = 0.125/2 + 0.125/2 = 0.125
    r = stats.auc_confidence(Y4, S4, method="delong")
    assert r.value == 0.75
    assert r.detail["variance"] == pytest.approx(0.125)


def test_hanley_mcneil_q1_q2():
    q1, q2 = stats.hanley_mcneil_q(0.8)
    assert q1 == pytest.approx(0.8 / (2 - 0.8))  # 2/3, not e.g. AUC/(1+AUC)
    assert q1 == pytest.approx(2 / 3)
    assert q2 == pytest.approx(2 * 0.64 / 1.8)


def test_mann_whitney_se_hand_case():
    # AUC 0.75, N_D = N_ND = 2: Q1 = 0.75/1.25 = 0.6, Q2 = 2*0.5625/1.75 = 0.642857142857
    # s^2 = (0.75*0.25 + 1*(0.6 - 0.5625) + 1*(0.642857142857 - 0.5625)) / 4
    #     = (0.1875 + 0.0375 + 0.080357142857) / 4 = 0.076339285714
    r = stats.auc_confidence(Y4, S4, method="mann_whitney", alpha=0.05)
    assert r.detail["variance"] == pytest.approx(0.076339285714, rel=1e-10)
    se = math.sqrt(0.076339285714)
    assert r.detail["se"] == pytest.approx(se, rel=1e-10)
    assert r.detail["ci_low"] == pytest.approx(0.75 - 1.959963985 * se, rel=1e-8)
    assert r.detail["ci_high"] == 1.0  # 0.75 + 0.54 clipped


def test_auc_ci_coverage_binormal():
    # defaults ~ N(1, 1), non-defaults ~ N(0, 1): true AUC = Phi(1/sqrt 2)
    rng = np.random.default_rng(2024)
    true_auc = norm.cdf(1 / math.sqrt(2))
    y = np.r_[np.ones(60), np.zeros(240)]
    hits = {"delong": 0, "mann_whitney": 0}
    for _ in range(200):
        s = rng.normal(size=300) + y
        for method in hits:
            r = stats.auc_confidence(y, s, method=method)
            hits[method] += r.detail["ci_low"] <= true_auc <= r.detail["ci_high"]
    for method, h in hits.items():
        assert 0.9 <= h / 200 <= 0.99, method


def test_auc_status_levels():
    assert stats.auc_confidence(Y4, S4).status == "green"
    assert stats.auc_confidence(Y4, S4, amber=0.8, red=0.6).status == "amber"
    assert stats.auc_confidence(Y4, S4, amber=0.9, red=0.8).status == "red"


def test_auc_change_test():
    # S = (0.80 - 0.75) / 0.02 = 2.5, p = 1 - Phi(2.5) = 0.00621
    r = stats.auc_change_test(0.75, 0.02, 0.80)
    assert r.detail["statistic"] == pytest.approx(2.5)
    assert r.p_value == pytest.approx(1 - norm.cdf(2.5))
    assert r.status == "red"
    assert stats.auc_change_test(0.78, 0.02, 0.80).status == "green"  # S = 1, p = 0.159
    assert stats.auc_change_test(0.7735, 0.02, 0.80).status == "amber"  # S = 1.325, p = 0.093
    assert stats.auc_change_test(0.85, 0.02, 0.80).p_value > 0.99


def test_cap_accuracy_ratio_is_gini(sample):
    y, s = sample
    cap = stats.cap_curve(y, s)
    assert cap.accuracy_ratio == pytest.approx(2 * roc_auc_score(y, s) - 1, abs=1e-12)
    assert cap.population_share[0] == 0 and cap.population_share[-1] == pytest.approx(1)
    assert cap.default_share[-1] == pytest.approx(1)
    assert np.all(np.diff(cap.default_share) >= 0)


def test_cap_hand_case():
    # riskiest first: 0.8 (D), 0.4 (ND), 0.35 (D), 0.1 (ND) -> x 0,.25,.5,.75,1 and captured 0,.5,.5,1,1
    cap = stats.cap_curve(Y4, S4)
    np.testing.assert_allclose(cap.default_share, [0, 0.5, 0.5, 1, 1])
    assert cap.accuracy_ratio == pytest.approx(0.5)


# --------------------------------------------------------------------------- calibration


def _graded(rng):
    grades = np.repeat(["A", "B", "C"], [300, 200, 100])
    pd_ = np.repeat([0.01, 0.05, 0.20], [300, 200, 100])
    y = (rng.random(600) < pd_ * 1.6).astype(int)
    return y, pd_, grades


def test_jeffreys_matches_scipy_beta():
    y, pd_, grades = _graded(np.random.default_rng(5))
    r = stats.jeffreys_test(y, pd_, grades)
    assert list(r.grades.columns) == ["grade", "n", "defaults", "pd", "default_rate", "p_value", "status"]
    assert list(r.grades["grade"]) == ["A", "B", "C"]
    for row in r.grades.itertuples():
        assert row.p_value == pytest.approx(beta.cdf(row.pd, row.defaults + 0.5, row.n - row.defaults + 0.5))
        assert row.status == stats.status_from_p(row.p_value)
    d = y.sum()
    assert r.overall.p_value == pytest.approx(beta.cdf(pd_.mean(), d + 0.5, 600 - d + 0.5))
    assert stats.jeffreys_p(5, 100, 0.02) == pytest.approx(beta.cdf(0.02, 5.5, 95.5))


def test_binomial_matches_scipy_binomtest():
    y, pd_, grades = _graded(np.random.default_rng(6))
    r = stats.binomial_test(y, pd_, grades)
    for row in r.grades.itertuples():
        expected = binomtest(int(row.defaults), int(row.n), row.pd, alternative="greater").pvalue
        assert row.p_value == pytest.approx(expected, rel=1e-9)
    assert r.overall.p_value == pytest.approx(binomtest(int(y.sum()), 600, pd_.mean(), alternative="greater").pvalue)


def test_underestimated_pd_is_red_and_right_pd_green():
    assert stats.jeffreys_test(np.r_[np.ones(10), np.zeros(90)], np.full(100, 0.02)).overall.status == "red"
    assert stats.jeffreys_test(np.r_[np.ones(2), np.zeros(98)], np.full(100, 0.02)).overall.status == "green"
    assert stats.binomial_test(np.r_[np.ones(10), np.zeros(90)], np.full(100, 0.02)).overall.status == "red"


def _three_groups():
    # N = 100, 200, 50 at PD 0.01, 0.05, 0.20 with D = 2, 8, 15
    counts = [(100, 0.01, 2), (200, 0.05, 8), (50, 0.20, 15)]
    y = np.concatenate([np.r_[np.ones(d), np.zeros(n - d)] for n, _, d in counts])
    pd_ = np.concatenate([np.full(n, p) for n, p, _ in counts])
    grade = np.concatenate([np.full(n, g) for g, (n, _, _) in zip("ABC", counts)])
    return y, pd_, grade


def test_hosmer_lemeshow_hand_case():
    y, pd_, grade = _three_groups()
    # (2-1)^2/(1*0.99) + (8-10)^2/(10*0.95) + (15-10)^2/(10*0.8) = 1.010101 + 0.421053 + 3.125 = 4.556154
    stat = 1 / 0.99 + 4 / 9.5 + 25 / 8
    r = stats.hosmer_lemeshow(y, pd_, grade)
    assert r.value == pytest.approx(stat)
    assert r.detail["df"] == 3
    assert r.p_value == pytest.approx(chi2.sf(stat, 3))
    assert stats.hosmer_lemeshow(y, pd_, grade, df=1).p_value == pytest.approx(chi2.sf(stat, 1))


def test_hosmer_lemeshow_deciles_without_grade():
    rng = np.random.default_rng(3)
    pd_ = rng.uniform(0.01, 0.3, 2000)
    y = (rng.random(2000) < pd_).astype(int)
    r = stats.hosmer_lemeshow(y, pd_)
    assert r.detail["groups"] == 10 and r.detail["df"] == 10
    assert r.status == "green"


def test_spiegelhalter_hand_case():
    y = np.array([1, 0, 0, 1])
    p = np.array([0.2, 0.1, 0.4, 0.7])
    # numerator: 0.8*0.6 - 0.1*0.8 - 0.4*0.2 + 0.3*(-0.4) = 0.48 - 0.08 - 0.08 - 0.12 = 0.20
    # variance: 0.36*0.16 + 0.64*0.09 + 0.04*0.24 + 0.16*0.21 = 0.0576 + 0.0576 + 0.0096 + 0.0336 = 0.1584
    z = 0.20 / math.sqrt(0.1584)
    r = stats.spiegelhalter(y, p)
    assert r.value == pytest.approx(z)
    assert r.p_value == pytest.approx(2 * (1 - norm.cdf(z)))
    # numerator equals sum (y - p)^2 - sum p (1 - p)
    assert np.sum((y - p) ** 2) - np.sum(p * (1 - p)) == pytest.approx(0.20)


# --------------------------------------------------------------------------- stability


def test_psi_hand_case_numeric_and_categorical():
    # 0.5/0.5 vs 0.6/0.4: 0.1*ln(1.2) + (-0.1)*ln(0.8) = 0.018232 + 0.022314 = 0.040546
    expected_psi = 0.1 * math.log(1.2) - 0.1 * math.log(0.8)
    r = stats.psi([1, 2, 3, 4], [1, 1, 2, 3, 4], bins=2)  # cut at the median 2.5
    assert r.value == pytest.approx(expected_psi)
    assert r.detail["bins"] == 2 and r.status == "green"
    cat = stats.psi(list("AAAAABBBBB"), list("AAAAAABBBB"))
    assert cat.value == pytest.approx(expected_psi)
    assert stats.psi_counts({"A": 5, "B": 5}, {"B": 4, "A": 6}).value == pytest.approx(expected_psi)
    assert stats.psi_counts([50, 50], [60, 40]).value == pytest.approx(expected_psi)


def test_psi_identical_is_zero_and_shift_is_red():
    rng = np.random.default_rng(0)
    x = rng.normal(size=1000)
    assert stats.psi(x, x).value == pytest.approx(0, abs=1e-15)
    assert stats.psi(x, x + 1.5).status == "red"


def test_psi_empty_bin_uses_epsilon():
    r = stats.psi_counts([50, 50, 0], [50, 40, 10], eps=1e-4)
    expected = 0 + (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    assert r.value == pytest.approx(expected)
    assert np.isfinite(r.value)


def test_csi_numeric_with_missing_bin_and_categorical():
    nan = np.nan
    dev = pd.DataFrame({"x": [1, 2, 3, 4, 5, 6, 7, 8, nan, nan], "c": list("AAAAABBBBB")})
    later = pd.DataFrame({"x": [1, 2, 3, 6, 7, 8, nan, nan, nan, nan], "c": list("AAAAAABBBB")})
    # x, cut at the dev median 4.5: dev 0.4/0.4/0.2 (missing), later 0.3/0.3/0.4
    # 2 * (-0.1) ln(0.75) + 0.2 ln 2 = 0.057536 + 0.138629 = 0.196166
    out = stats.csi(dev, later, bins=2).set_index("feature")
    assert out.loc["x", "psi"] == pytest.approx(-0.2 * math.log(0.75) + 0.2 * math.log(2))
    assert out.loc["x", "kind"] == "numeric" and out.loc["x", "bins"] == 3
    assert out.loc["x", "status"] == "amber"
    assert out.loc["c", "psi"] == pytest.approx(0.1 * math.log(1.2) - 0.1 * math.log(0.8))
    assert out.loc["c", "kind"] == "categorical"


def test_herfindahl_uniform_and_hand_case():
    r = stats.herfindahl([10] * 5)
    assert r.detail["hhi"] == pytest.approx(1 / 5)
    assert r.detail["cv"] == pytest.approx(0, abs=1e-12)
    assert r.value == pytest.approx(0, abs=1e-12)
    one = stats.herfindahl([0, 0, 7, 0])
    assert one.detail["hhi"] == 1 and one.value == pytest.approx(1) and one.detail["cv"] == pytest.approx(math.sqrt(3))
    # shares .5/.3/.2: HHI .38, CV = sqrt(3 * (1/36 + 1/900 + 4/225)) = sqrt(0.14), HI = 1 + ln(0.38)/ln 3
    h = stats.herfindahl({"A": 50, "B": 30, "C": 20})
    assert h.detail["hhi"] == pytest.approx(0.38)
    assert h.detail["cv"] == pytest.approx(math.sqrt(0.14))
    assert h.value == pytest.approx(1 + math.log(0.38) / math.log(3))  # 0.11927
    assert h.status == "green"
    assert stats.herfindahl([80, 10, 10]).status == "red"  # HI = 1 + ln(.66)/ln 3 = 0.62


def test_concentration_change_test_hand_case():
    # CV_init = sqrt(0.14); current .6/.25/.15: CV^2 = 3 * (0.071111 + 0.006944 + 0.033611) = 0.335
    cv_i, cv_c = math.sqrt(0.14), math.sqrt(0.335)
    s = math.sqrt(2) * (cv_c - cv_i) / math.sqrt(cv_c**2 * (0.5 + cv_c**2))
    r = stats.concentration_change_test([50, 30, 20], [60, 25, 15])
    assert r.detail["statistic"] == pytest.approx(s)  # 0.547
    assert r.p_value == pytest.approx(1 - norm.cdf(s))
    assert r.status == "green"
    assert stats.concentration_change_test([50, 30, 20], [34, 33, 33]).p_value > 0.5


def test_migration_matrix_hand_case():
    # from A: A A B C; from B: B B A C; from C: C C A  -> counts [[2,1,1],[1,2,1],[1,0,2]]
    f = list("AAAABBBBCCC")
    t = list("AABCBBACCCA")
    m = stats.migration_matrix(f, t, grades=["A", "B", "C"])
    np.testing.assert_array_equal(m.counts.to_numpy(), [[2, 1, 1], [1, 2, 1], [1, 0, 2]])
    np.testing.assert_allclose(m.rates.sum(axis=1), 1.0)
    assert m.rates.loc["C", "A"] == pytest.approx(1 / 3)
    assert m.summary["diagonal_share"] == pytest.approx(6 / 11)
    assert m.summary["down_more_than_one"] == pytest.approx(1 / 11)  # A -> C
    assert m.summary["up_more_than_one"] == pytest.approx(1 / 11)  # C -> A
    # upper: (1*1 + 2*1 + 1*1) / (max(2,0)*2 + max(1,1)*1) = 4/5; lower: (1*1 + 2*1) / (1*1 + 2*1) = 1
    assert m.summary["mwb_upper"] == pytest.approx(0.8)
    assert m.summary["mwb_lower"] == pytest.approx(1.0)


def test_migration_matrix_without_moves():
    m = stats.migration_matrix([1, 2, 3], [1, 2, 3])
    assert m.summary["diagonal_share"] == 1 and m.summary["mwb_upper"] == 0 and m.summary["mwb_lower"] == 0


# --------------------------------------------------------------------------- status, result, bad inputs


def test_status_thresholds():
    assert stats.status_from_p(0.049) == "red"
    assert stats.status_from_p(0.05) == "amber"
    assert stats.status_from_p(0.099) == "amber"
    assert stats.status_from_p(0.10) == "green"
    assert stats.status_from_p(0.02, red=0.01, amber=0.05) == "amber"
    assert stats.status_from_p(float("nan")) == "amber"
    assert stats.status_from_value(0.099, amber=0.10, red=0.25) == "green"
    assert stats.status_from_value(0.10, amber=0.10, red=0.25) == "amber"
    assert stats.status_from_value(0.25, amber=0.10, red=0.25) == "red"
    with pytest.raises(ValueError, match="red <= amber"):
        stats.status_from_p(0.5, red=0.2, amber=0.1)
    assert stats.psi_counts([50, 50], [60, 40], amber=0.01, red=0.03).status == "red"


def test_result_to_dict_and_summary_table():
    r = stats.hosmer_lemeshow(*_three_groups())
    row = r.to_dict()
    assert row["name"] == "hosmer-lemeshow" and row["df"] == 3 and "table" not in row
    table = stats.summary_table([r, stats.auc_change_test(0.75, 0.02, 0.8)])
    assert list(table["status"]) == [r.status, "red"]


@pytest.mark.parametrize("call, message", [
    (lambda: stats.auc_confidence([0, 1, 1], [0.1, 0.2]), "length mismatch"),
    (lambda: stats.auc_confidence([0, 2, 1], [0.1, 0.2, 0.3]), "0 or 1"),
    (lambda: stats.auc_confidence([], []), "empty"),
    (lambda: stats.auc_confidence([0, 0, 0], [0.1, 0.2, 0.3]), "default"),
    (lambda: stats.auc_confidence([0, 1], [0.1, 0.2], method="x"), "method"),
    (lambda: stats.jeffreys_test([0, 1], [0.1, 1.2]), r"PD outside \[0, 1\]"),
    (lambda: stats.binomial_test([0, 1], [-0.1, 0.2]), r"PD outside \[0, 1\]"),
    (lambda: stats.jeffreys_test([0, 1], [0.1, 0.2], grade=["A"]), "length mismatch"),
    (lambda: stats.spiegelhalter([0, 1], [0.5, 0.5]), "variance"),
    (lambda: stats.spiegelhalter([0, 1], [0.5]), "length mismatch"),
    (lambda: stats.hosmer_lemeshow([0, 1], [0.0, 0.0], grade=["A", "A"]), "mean PD 0 or 1"),
    (lambda: stats.auc_change_test(0.7, 0.0, 0.8), "se_current"),
    (lambda: stats.psi([], [1.0]), "expected is empty"),
    (lambda: stats.psi_counts([1, 2], [1, 2, 3]), "length mismatch"),
    (lambda: stats.psi_counts([1, -2], [1, 2]), "non-negative"),
    (lambda: stats.herfindahl([5]), "at least 2 grades"),
    (lambda: stats.concentration_change_test([1, 2], [1, 2, 3]), "mismatch"),
    (lambda: stats.migration_matrix(["A", "B"], ["A"]), "length mismatch"),
    (lambda: stats.migration_matrix(["A", "Z"], ["A", "B"], grades=["A", "B"]), "not in the grade list"),
    (lambda: stats.csi(pd.DataFrame({"a": [1]}), pd.DataFrame({"b": [1]}), columns=["a"]), "missing from"),
])
def test_bad_inputs_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()

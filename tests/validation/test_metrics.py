import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.metrics import brier_score_loss, roc_auc_score

from creditmodel.validation import metrics


@pytest.fixture(params=[0, 1, 2])
def sample(request):
    rng = np.random.default_rng(request.param)
    y = (rng.random(2000) < 0.08).astype(int)
    score = rng.normal(size=2000) + 0.8 * y
    if request.param == 2:  # heavy ties, as a scorecard's points have
        score = np.round(score, 1)
    return y, score


def test_auc_gini_match_sklearn(sample):
    y, score = sample
    assert metrics.auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert metrics.gini(y, score) == pytest.approx(2 * roc_auc_score(y, score) - 1, abs=1e-12)


def test_ks_matches_scipy(sample):
    y, score = sample
    assert metrics.ks(y, score) == pytest.approx(ks_2samp(score[y == 1], score[y == 0]).statistic, abs=1e-12)


def test_brier_matches_sklearn(sample):
    y, score = sample
    p = 1 / (1 + np.exp(-score))
    assert metrics.brier(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-15)


def test_hand_computed_case():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    # pairs (bad, good): (0.35 > 0.1) yes, (0.35 > 0.4) no, (0.8 > both) yes, yes -> 3/4
    assert metrics.auc(y, s) == 0.75
    assert metrics.gini(y, s) == 0.5
    # cdf gap at 0.1: good 1/2 vs bad 0 -> 0.5
    assert metrics.ks(y, s) == 0.5
    assert metrics.brier(y, s) == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)


def test_rejects_bad_labels():
    with pytest.raises(ValueError, match="0 or 1"):
        metrics.auc([0, 2], [0.1, 0.2])


@pytest.mark.parametrize("n, levels", [(50, 3), (997, 7), (5000, None)])
def test_auc_is_sklearns_with_ties_and_one_class(n, levels):
    rng = np.random.default_rng(n)
    y = (rng.random(n) < 0.2).astype(int)
    # ties: a score on a few levels; none: continuous
    score = rng.integers(0, levels, n).astype(float) if levels else rng.normal(size=n) + y
    assert metrics.auc(y, score) == pytest.approx(roc_auc_score(y, score), rel=1e-12, abs=1e-15)
    assert metrics.auc(y, -score) == pytest.approx(1 - roc_auc_score(y, score), rel=1e-12, abs=1e-15)
    assert np.isnan(metrics.auc(np.zeros(n), score)) and np.isnan(metrics.auc(np.ones(n), score))

import json

import numpy as np
import pytest

from creditmodel.models.calibration import PDCalibrator, sigmoid
from creditmodel.models.master_scale import MasterScale


def test_platt_recovers_known_mapping():
    rng = np.random.default_rng(0)
    score = rng.normal(size=200_000)
    y = (rng.random(score.size) < sigmoid(0.7 * score - 3.0)).astype(int)
    cal = PDCalibrator("platt").fit(score, y)
    assert cal.slope_ == pytest.approx(0.7, abs=0.03)
    assert cal.intercept_ == pytest.approx(-3.0, abs=0.03)


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibrator_json_round_trip_is_exact(method):
    rng = np.random.default_rng(1)
    score = rng.normal(size=5000)
    y = (rng.random(score.size) < sigmoid(score - 2)).astype(int)
    cal = PDCalibrator(method).fit(score, y)
    again = PDCalibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    probe = rng.normal(size=1000) * 3
    np.testing.assert_array_equal(cal.predict(probe), again.predict(probe))
    assert cal.predict(probe).min() >= cal.pd_floor


def test_isotonic_is_monotone_and_matches_sklearn():
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(2)
    score = rng.normal(size=3000)
    y = (rng.random(score.size) < sigmoid(2 * score - 2)).astype(int)
    cal = PDCalibrator("isotonic", pd_floor=0.0).fit(score, y)
    grid = np.linspace(-4, 4, 500)
    assert np.all(np.diff(cal.predict(grid)) >= 0)
    ref = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(score, y).predict(grid)
    np.testing.assert_allclose(cal.predict(grid), ref, atol=1e-12)


def test_master_scale_bands_are_upper_inclusive():
    scale = MasterScale(("A", "B", "C"), (0.01, 0.05, 1.0))
    pds = np.array([0.0, 0.01, 0.0100001, 0.05, 0.2, 1.0])
    assert list(scale.grade(pds)) == ["A", "A", "B", "B", "C", "C"]
    scale.fit(pds, np.array([0, 0, 1, 0, 1, 1]))
    assert scale.table_["loans"].tolist() == [2, 2, 2]
    assert scale.table_["defaults"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("bounds", [(0.05, 0.01, 1.0), (0.01, 0.05, 0.9), (0.0, 0.5, 1.0)])
def test_master_scale_rejects_bad_bounds(bounds):
    with pytest.raises(ValueError, match="rising upper bound"):
        MasterScale(("A", "B", "C"), bounds).grade(np.array([0.1]))
    with pytest.raises(ValueError, match="rising upper bound"):
        MasterScale(("A", "B", "C"), bounds).grader()


def test_the_grader_grades_as_grade_and_still_checks_every_pd():
    """The service's grader (scale checked once) gives grade's names on band edges, and refuses what grade refuses."""
    scale = MasterScale(("A", "B", "C"), (0.01, 0.05, 1.0))
    pds = np.r_[0.0, 0.01, np.nextafter(0.01, 1), 0.05, 0.2, 1.0, np.random.default_rng(0).random(200)]
    grade = scale.grader()
    assert grade(pds).tolist() == scale.grade(pds).tolist()
    assert grade(pds[:1]).tolist() == ["A"]
    for bad in ([np.nan], [1.5], [-1e-9], [0.1, np.inf]):
        with pytest.raises(ValueError, match="finite numbers in"):
            grade(np.array(bad))


def test_an_unfitted_calibrator_still_refuses_to_predict():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        PDCalibrator().predict(np.array([0.1]))


def test_long_run_average_weighs_years_equally():
    import pandas as pd

    from creditmodel.models.calibration import long_run_average

    dates = pd.Series(pd.to_datetime(["2020-03-01"] * 100 + ["2021-05-01"] * 10))
    default = pd.Series([1] * 2 + [0] * 98 + [1] * 3 + [0] * 7)  # 2% and 30%
    assert long_run_average(dates, default) == pytest.approx((0.02 + 0.30) / 2)


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_level_shift_hits_the_target_and_keeps_the_ranking(method):
    rng = np.random.default_rng(3)
    score = rng.normal(size=20_000)
    y = (rng.random(score.size) < sigmoid(score - 3)).astype(int)
    cal = PDCalibrator(method).fit(score, y)
    before = cal.predict(score)
    cal.set_level(score, 0.08)
    after = cal.predict(score)
    assert after.mean() == pytest.approx(0.08, abs=1e-9)
    order = np.argsort(before, kind="stable")
    if method == "platt":  # a shift in log-odds of a strictly monotone curve keeps the exact order
        assert np.array_equal(order, np.argsort(after, kind="stable"))
    else:  # isotonic steps may tie loans that differed, never swap them
        assert np.all(np.diff(after[order]) >= -1e-15)
    assert np.all(np.diff(after[np.argsort(score)]) >= -1e-15)
    again = PDCalibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_array_equal(again.predict(score), after)


def test_master_scale_assigned_pds_and_monotonicity():
    scale = MasterScale(("A", "B", "C"), (0.01, 0.04, 1.0), pd_floor=0.0025)
    assert scale.grade_pds() == pytest.approx([0.005, 0.02, 0.2])  # geometric means of the bands
    assert scale.grade_pd(np.array([0.003, 0.03, 0.5])) == pytest.approx([0.005, 0.02, 0.2])
    scale.fit(np.array([0.005] * 4 + [0.02] * 4 + [0.3] * 4), np.array([0, 0, 0, 1] + [0, 0, 0, 0] + [1, 1, 0, 0]))
    assert not scale.monotone_  # 25% in A, 0% in B
    scale.fit(np.array([0.005] * 4 + [0.02] * 4), np.array([0, 0, 0, 0, 0, 0, 0, 1]))
    assert scale.monotone_
    with pytest.raises(ValueError, match="inside each grade's band"):
        MasterScale(("A", "B"), (0.01, 1.0), assigned_pd=(0.02, 0.5)).grade_pds()

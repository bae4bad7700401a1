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

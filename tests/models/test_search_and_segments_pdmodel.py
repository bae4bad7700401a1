"""Segments and search fit PDModel, the one composition of LightGBM, calibration and grades; their numbers
equal those of the parts assembled by hand (LightGBMPD, then PDCalibrator on the validation margin)."""

import numpy as np
import pandas as pd
import pytest

from creditmodel.features.matrix import FeatureSchema
from creditmodel.models.calibration import PDCalibrator
from creditmodel.models.gbm import LightGBMPD
from creditmodel.models.metrics import auc
from creditmodel.models.pd_model import PDModel
from creditmodel.models.search import SEARCHED, search_lightgbm
from creditmodel.models.segments import compare_segment_models, segment_models, segmented_pd

COLS = ["x1", "x2", "x3"]
PARAMS = {"n_estimators": 60, "early_stopping_rounds": 10, "num_leaves": 7, "random_state": 0}


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(11)
    n = 4000
    f = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "x3": rng.uniform(size=n),
                      "industry": rng.choice(["farm", "shop", "trade"], size=n, p=[0.5, 0.35, 0.15])})
    logit = -2.2 + 0.9 * f["x1"] - 0.6 * f["x2"] + np.where(f["industry"] == "farm", 0.8 * f["x3"], -0.8 * f["x3"])
    f["default"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    f["split"] = rng.choice(["train", "valid", "oot"], size=n, p=[0.6, 0.2, 0.2])
    return f


def by_hand(frame, schema, value, calibration="platt"):
    """The segment model as segments.py assembled it before PDModel: LightGBM, then a calibrator on valid."""
    part = frame[frame["industry"] == value]
    train, valid = part[part["split"] == "train"], part[part["split"] == "valid"]
    model = LightGBMPD(**PARAMS, feature_schema=schema).fit(train[COLS], train["default"],
                                                            eval_set=(valid[COLS], valid["default"]))
    cal = PDCalibrator(calibration).fit(model.decision_function(valid[COLS]), valid["default"])
    return part.index, cal.predict(model.decision_function(part[COLS]))


@pytest.mark.parametrize("calibration", ["platt", "isotonic"])
def test_segment_models_equal_the_parts_assembled_by_hand(frame, calibration):
    schema = FeatureSchema.infer(frame[COLS])
    global_pd = np.full(len(frame), 0.1)
    models = segment_models(frame, COLS, PARAMS, min_train_defaults=30, calibration=calibration,
                            feature_schema=schema)
    assert set(models) == {"farm", "shop"} and all(isinstance(m, PDModel) for m in models.values())  # trade: too few
    got = segmented_pd(frame, COLS, global_pd, models)
    expected = global_pd.copy()
    for value in models:
        rows, pds = by_hand(frame, schema, value, calibration)
        expected[frame.index.get_indexer(rows)] = pds
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    table = compare_segment_models(frame, COLS, global_pd, PARAMS, min_train_defaults=30, calibration=calibration,
                                   feature_schema=schema).set_index("segment")
    oot = (frame["split"] == "oot").to_numpy()
    assert table.loc["all", "segmented_auc"] == pytest.approx(auc(frame.loc[oot, "default"], expected[oot]), abs=1e-12)
    farm = oot & (frame["industry"] == "farm").to_numpy()
    assert table.loc["farm", "segmented_auc"] == pytest.approx(auc(frame.loc[farm, "default"], expected[farm]),
                                                               abs=1e-12)
    assert table.loc["farm", "train_defaults"] == frame.query("industry == 'farm' and split == 'train'")["default"].sum()


def test_a_missing_segment_column_is_one_error(frame):
    with pytest.raises(ValueError, match="segment column 'region' is not in the feature matrix"):
        segment_models(frame, COLS, PARAMS, segment="region")


def test_search_trials_score_what_the_parts_by_hand_score(frame):
    schema = FeatureSchema.infer(frame[COLS])
    train, valid = frame[frame["split"] == "train"], frame[frame["split"] == "valid"]
    best, trials = search_lightgbm(train, valid, COLS, PARAMS, n_trials=2, seed=3, feature_schema=schema)
    assert len(trials) == 2
    for t in trials.to_dict("records"):
        params = {**PARAMS, **{k: t[k] for k in SEARCHED}}
        model = LightGBMPD(**params, feature_schema=schema).fit(train[COLS], train["default"].to_numpy(),
                                                                eval_set=(valid[COLS], valid["default"].to_numpy()))
        assert t["valid_auc"] == pytest.approx(auc(valid["default"], model.decision_function(valid[COLS])), abs=1e-12)
        assert t["trees"] == model.best_iteration_
    top = trials.loc[trials["valid_auc"].idxmax()]
    assert all(best[k] == top[k] for k in SEARCHED)

"""write_bundle's inputs: a fitted PDModel, or a LightGBM model with its calibrator and master scale (a bare
Booster also with its feature schema); anything else is refused in one line."""

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from creditmodel.exceptions import ConfigError
from creditmodel.export.bundle import load_bundle, write_bundle
from creditmodel.features.matrix import FeatureSchema
from creditmodel.models.calibration import PDCalibrator
from creditmodel.models.master_scale import MasterScale


@pytest.fixture(scope="module")
def parts():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x1": rng.normal(size=400), "x2": rng.normal(size=400)})
    y = (X["x1"] + rng.normal(size=400) > 0.5).astype(int).to_numpy()
    data = lgb.Dataset(X.to_numpy(), y, feature_name=list(X.columns))
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4}, data, 5)
    raw = booster.predict(X.to_numpy(), raw_score=True)
    calibrator = PDCalibrator().fit(raw, y)
    scale = MasterScale(grades=("A", "B", "C"), upper_bounds=(0.05, 0.2, 1.0))
    return booster, calibrator, scale, X


def test_a_bare_booster_without_schema_is_one_config_error(parts, tmp_path):
    booster, calibrator, scale, _ = parts
    with pytest.raises(ConfigError, match="bare lightgbm.Booster; pass schema="):
        write_bundle(tmp_path / "b", booster, calibrator, scale)
    assert not (tmp_path / "b").exists()  # nothing half-written


def test_a_bare_booster_with_its_schema_makes_a_bundle_that_scores_like_it(parts, tmp_path):
    booster, calibrator, scale, X = parts
    out = write_bundle(tmp_path / "b", booster, calibrator, scale, schema=FeatureSchema.infer(X))
    bundle = load_bundle(out, allow_unsigned=True)
    expected = calibrator.predict(booster.predict(X.to_numpy(), raw_score=True))
    np.testing.assert_array_equal(bundle.predict_pd(X), expected)


def test_a_signed_bundle_of_a_bare_booster_loads_with_its_key_and_leaves_no_staging(parts, tmp_path):
    from creditmodel.export.signing import generate_keys, load_public_key

    booster, calibrator, scale, X = parts
    private, public, kid = generate_keys(tmp_path / "keys")
    out = write_bundle(tmp_path / "b", booster, calibrator, scale, schema=FeatureSchema.infer(X), signing_key=private)
    bundle = load_bundle(out, trusted_keys=[load_public_key(public)])
    assert bundle.signature.key_id == kid and bundle.signature.trusted
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) in ([], [".creditmodel-outputs.json"])
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_a_pdmodel_is_a_bundle_that_scores_and_grades_like_it(parts, tmp_path):
    from creditmodel.models import LightGBMPD, PDModel

    _, _, scale, X = parts
    y = (X["x1"] + X["x2"] > 0.5).astype(int)
    model = PDModel(LightGBMPD(n_estimators=20, num_leaves=4), master_scale=scale).fit(X, y)
    bundle = load_bundle(write_bundle(tmp_path / "b", model), allow_unsigned=True)
    np.testing.assert_allclose(bundle.predict_pd(X), model.predict_pd(X), rtol=0, atol=1e-12)
    assert (bundle.grade(bundle.predict_pd(X)) == model.grade(X)).all()


def test_a_pdmodel_refuses_separate_parts_and_must_be_complete(parts, tmp_path):
    from creditmodel.models import LightGBMPD, PDModel, ScorecardPD

    booster, calibrator, scale, X = parts
    y = (X["x1"] > 0).astype(int)
    graded = PDModel(LightGBMPD(n_estimators=5, num_leaves=4), master_scale=scale).fit(X, y)
    with pytest.raises(ConfigError, match="carries its calibrator and master scale; pass neither"):
        write_bundle(tmp_path / "b", graded, calibrator)
    with pytest.raises(ConfigError, match="no fitted master scale"):
        write_bundle(tmp_path / "b", PDModel(LightGBMPD(n_estimators=5, num_leaves=4)).fit(X, y))
    with pytest.raises(ConfigError, match="must be fitted, with a LightGBM estimator"):
        write_bundle(tmp_path / "b", PDModel(ScorecardPD(), master_scale=scale).fit(X, y))
    with pytest.raises(ConfigError, match="must be fitted"):
        write_bundle(tmp_path / "b", PDModel(LightGBMPD(), master_scale=scale))
    with pytest.raises(ConfigError, match="needs its calibrator and master_scale"):
        write_bundle(tmp_path / "b", booster, calibrator, schema=FeatureSchema.infer(X))
    assert not (tmp_path / "b").exists()

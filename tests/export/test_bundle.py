"""The export bundle: exact round trip, no unpickling, and a clear BundleError for every kind of damage."""

import json
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest

from creditmodel.exceptions import BundleError, RequestError
from creditmodel.export.bundle import load_bundle
from creditmodel.export.signing import load_private_key, sign_bundle


@pytest.fixture(scope="module")
def oot(demo_run):
    frame = pd.read_parquet(demo_run["result"].features_path)
    return frame[frame["split"] == "oot"].reset_index(drop=True)


def test_loading_never_unpickles(bundle_copy, monkeypatch, oot):
    def refuse(*args, **kwargs):
        raise AssertionError("the bundle loader tried to unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    bundle = load_bundle(bundle_copy)
    assert np.all((bundle.predict_pd(oot) > 0) & (bundle.predict_pd(oot) < 1))


def test_manifest_lists_checksums_and_provenance(bundle_copy):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.txt", "calibration.json", "master_scale.json", "feature_schema.json",
                                  "model_card.json", "scorecard.csv", "feature_catalogue.json"}
    assert manifest["feature_catalogue"]["sha256"] == json.loads(
        (bundle_copy / "feature_catalogue.json").read_text())["sha256"]
    assert manifest["provenance"]["extraction_date"] == "2025-06-30"


def _tamper_model(path):
    text = (path / "model.txt").read_text()
    (path / "model.txt").write_text(text.replace("leaf_value=", "leaf_value=1", 1))


@pytest.mark.parametrize("damage, match, resign", [
    (_tamper_model, "model.txt: sha256 .* does not match", False),
    (lambda p: (p / "calibration.json").write_text('{"method": "platt", "slope": 9, "intercept": 0, "pd_floor": 0}'),
     "calibration.json: sha256", False),
    (lambda p: (p / "master_scale.json").unlink(), "master_scale.json is missing", False),
    (lambda p: (p / "manifest.json").unlink(), "manifest.json is missing", False),
    (lambda p: (p / "manifest.json").write_text("{not json"), "manifest.sig: the signature .* does not verify", False),
    (lambda p: (p / "evil.pkl").write_bytes(pickle.dumps(object())), "unexpected file 'evil.pkl'", False),
    (lambda p: shutil.rmtree(p), "does not exist", False),
    # a manifest its trusted author signed, broken all the same
    (lambda p: (p / "manifest.json").write_text("{not json"), "manifest.json: not valid JSON", True),
    (lambda p: (p / "manifest.json").write_text(
        (p / "manifest.json").read_text().replace('"format_version": 2', '"format_version": 99')), "version '99'",
     True),
])
def test_damaged_bundle_gives_one_clear_error(bundle_copy, signing_keys, damage, match, resign):
    damage(bundle_copy)
    if resign:
        sign_bundle(bundle_copy, load_private_key(signing_keys["private"]))
    with pytest.raises(BundleError, match=match) as err:
        load_bundle(bundle_copy)
    assert "\n" not in str(err.value)


def test_bad_requests(bundle_copy, oot):
    bundle = load_bundle(bundle_copy)
    with pytest.raises(RequestError, match="feature 'txn_cash_share_12m' is missing"):
        bundle.predict_pd(oot.drop(columns="txn_cash_share_12m"))
    with pytest.raises(RequestError, match="feature 'guarantee_type': value 'gold'"):
        bundle.predict_pd(oot.assign(guarantee_type="gold"))
    with pytest.raises(RequestError, match="feature 'loan_amount': value 'lots' is not a number"):
        bundle.predict_pd(oot.assign(loan_amount="lots"))


def test_scores_are_independent_of_column_order_and_extra_columns(bundle_copy, oot):
    bundle = load_bundle(bundle_copy)
    shuffled = oot[oot.columns[::-1]].assign(unrelated=1.0)
    np.testing.assert_array_equal(bundle.predict_pd(shuffled), bundle.predict_pd(oot))

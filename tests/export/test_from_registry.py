"""Export from the registry: the bundle scores the whole out-of-time split exactly as at training time;
the ONNX copy is optional and its float32 drift is measured, not assumed."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from creditmodel.exceptions import BundleError
from creditmodel.export.bundle import load_bundle
from creditmodel.export.from_registry import export_model, parity, resolve_model_uri


@pytest.fixture(scope="module")
def exported(demo_run, tmp_path_factory, signing_keys):
    out = tmp_path_factory.mktemp("export") / "bundle"
    result = export_model("models:/sme_pd@challenger", out, tracking_uri=demo_run["tracking_uri"], onnx=True,
                          signing_key=signing_keys["private"])
    return out, result


def test_bundle_equals_the_registered_model_on_the_whole_oot_split(exported, demo_run):
    out, result = exported
    bundle = load_bundle(out)
    scored = pd.read_parquet(demo_run["result"].output_dir / "scored.parquet")
    features = pd.read_parquet(demo_run["result"].features_path)
    check = parity(bundle, features, scored)
    assert check["rows"] == int((scored["split"] == "oot").sum()) > 500
    assert check["max_abs_pd_diff"] <= 1e-9 and check["grade_agreement"] == 1.0
    # and against the registered MLflow model scored here, independently of the run's records
    import mlflow

    mlflow.set_tracking_uri(demo_run["tracking_uri"])
    registered = mlflow.pyfunc.load_model("models:/sme_pd@challenger")
    oot = features[features["split"] == "oot"]
    np.testing.assert_allclose(bundle.predict_pd(oot), registered.predict(oot)["pd"].to_numpy(), rtol=0, atol=1e-12)
    assert result["model"].run_id == demo_run["result"].tracked.run_id


def test_bundle_holds_model_card_scorecard_and_schema_policies(exported):
    out, _ = exported
    bundle = load_bundle(out)
    card = bundle.model_card
    assert card["registry"]["registered_model"] == "sme_pd" and card["registry"]["version"]
    assert set(card["data_window"]) == {"train", "valid", "oot"}
    assert card["data_window"]["train"]["last_decision_date"] < card["data_window"]["oot"]["first_decision_date"]
    assert 0.5 < card["performance"]["lightgbm"]["oot"]["auc"] < 1
    assert card["validation"]["status"] in {"green", "amber", "red"}
    assert {"intended_use", "not_for", "limitations", "target"} <= set(card)
    assert {"Variable", "Bin", "Points"} <= set(bundle.scorecard.columns)  # optbinning's points table
    feats = {f["name"]: f for f in json.loads((out / "feature_schema.json").read_text())["features"]}
    share = next(f for n, f in feats.items() if n.endswith("_share_12m"))
    assert (share["min"], share["max"]) == (0.0, 1.0) and share["reason"]
    count = next(f for n, f in feats.items() if f.get("kind") == "numeric" and n.startswith("txn_count"))
    assert count["nullable"] is False and count["min"] == 0.0
    assert feats["guarantee_type"]["kind"] == "categorical"


def test_onnx_drift_is_measured_and_small(exported):
    _, result = exported
    drift = result["onnx_drift"]
    assert drift["rows"] > 500
    assert drift["max_abs_pd_diff"] < 1e-4  # float32 thresholds: a few rows may take the other branch
    assert drift["grade_agreement"] > 0.99


def test_resolve_by_version_and_by_run(demo_run):
    run_id = demo_run["result"].tracked.run_id
    version = demo_run["result"].tracked.model_version
    assert resolve_model_uri(f"models:/sme_pd/{version}", demo_run["tracking_uri"]).run_id == run_id
    assert resolve_model_uri(f"runs:/{run_id}/model", demo_run["tracking_uri"]).run_id == run_id


def test_out_of_range_and_null_requests_are_refused(exported, demo_run):
    from creditmodel.exceptions import RequestError

    bundle = load_bundle(exported[0])
    oot = pd.read_parquet(demo_run["result"].features_path).query("split == 'oot'").head(5)
    share = next(n for n in bundle.schema.names if n.endswith("_share_12m"))
    with pytest.raises(RequestError, match=rf"feature '{share}': value 1.5 is outside the allowed range \[0, 1\]"):
        bundle.predict_pd(oot.assign(**{share: 1.5}))
    count = next(n for n in bundle.schema.names if n in bundle.schema.required)
    with pytest.raises(RequestError, match=rf"feature '{count}': null is not allowed"):
        bundle.predict_pd(oot.assign(**{count: np.nan}))
    with pytest.raises(RequestError, match="is outside the allowed range"):
        bundle.predict_pd(oot.assign(loan_amount=1e300))


def test_a_tampered_onnx_file_is_refused(exported, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(exported[0], copy)
    (copy / "model.onnx").write_bytes((copy / "model.onnx").read_bytes()[:-10])
    with pytest.raises(BundleError, match="model.onnx: sha256"):
        load_bundle(copy)


def test_export_never_goes_through_an_mlflow_model_loader(demo_run, tmp_path, monkeypatch, capsys):
    """MLflow's loaders run the model's code (or unpickle); export reads LightGBM's text model instead."""
    import mlflow

    from creditmodel.cli import main

    def refuse(*args, **kwargs):
        raise AssertionError("export must not load a model through MLflow's loaders")

    monkeypatch.setattr(mlflow.lightgbm, "load_model", refuse)
    monkeypatch.setattr(mlflow.pyfunc, "load_model", refuse)
    out = tmp_path / "bundle"
    assert main(["export", "models:/sme_pd@challenger", "--out", str(out),
                 "--tracking-uri", demo_run["tracking_uri"]]) == 0
    assert "grades agree 100%" in capsys.readouterr().out
    assert load_bundle(out, allow_unsigned=True).model_card["validation"]["status"] in {"green", "amber", "red"}


def test_a_pickled_model_in_the_store_is_refused_not_unpickled(demo_run, tmp_path, capsys):
    """A tampered store whose MLmodel names a pickled Python model: the MLflow loader runs the pickle's
    code; export refuses it in one line and runs nothing."""
    import os
    import pickle
    import re
    import shutil
    from urllib.parse import urlparse

    import mlflow
    from mlflow import MlflowClient

    from creditmodel.cli import main

    uri = demo_run["tracking_uri"]
    version = demo_run["result"].tracked.model_version
    model_dir = Path(urlparse(MlflowClient(uri).get_model_version_download_uri("sme_pd", version)).path)
    backup = tmp_path / "backup"
    shutil.copytree(model_dir, backup)
    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    try:
        mlmodel = (model_dir / "MLmodel").read_text()
        tampered = re.sub(r"\n +model_code_path: [^\n]*", "", mlmodel).replace(
            "loader_module: mlflow.pyfunc.loaders.code_model",
            "loader_module: mlflow.pyfunc.model\n    python_model: model.pkl")
        assert tampered != mlmodel and "model_code_path" not in tampered
        (model_dir / "MLmodel").write_text(tampered)
        (model_dir / "model.pkl").write_bytes(pickle.dumps(Payload()))
        out = tmp_path / "bundle"
        assert main(["export", f"models:/sme_pd/{version}", "--out", str(out), "--tracking-uri", uri]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "expected creditmodel's pyfunc over a bundle or a LightGBM Booster" in err, err
        assert not marker.exists() and not out.exists()
        # the reference: MLflow's own loader, once pickles are allowed, would have run the pickle's code
        mlflow.set_tracking_uri(uri)
        try:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
                mlflow.pyfunc.load_model(f"models:/sme_pd/{version}")
        except Exception:  # noqa: BLE001 - what it returns does not matter: the code already ran
            pass
        assert marker.is_dir()
    finally:
        shutil.rmtree(model_dir)
        shutil.copytree(backup, model_dir)

"""The demo pipeline end to end on a small world: outputs, numbers against references, MLflow, determinism."""

import json

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.metrics import brier_score_loss, roc_auc_score

from creditmodel.export.bundle import load_bundle
from creditmodel.pipeline import modelling_frame, train_models
from creditmodel.pricing.engine import COMPONENTS


def test_outputs_exist(demo_run):
    r = demo_run["result"]
    assert sorted(p.name for p in r.bundle_dir.iterdir()) == [
        "calibration.json", "feature_catalogue.json", "feature_schema.json", "manifest.json", "manifest.sig",
        "master_scale.json", "model.txt", "model_card.json", "scorecard.csv"]
    for name in ("features.parquet", "scored.parquet", "scorecard_points.parquet", "validation_report.html"):
        assert (r.output_dir / name).stat().st_size > 0, name
    for name in ("roc_oot.png", "calibration_valid.png", "shap_importance.png", "reason_codes_valid.csv",
                 "scorecard_table.csv", "metrics.csv", "master_scale_development.csv",
                 "score_distribution_oot.png", "lightgbm_gain_importance.csv", "truth_by_grade_oot.csv"):
        assert (r.report_dir / name).stat().st_size > 0, name
    assert not list(r.output_dir.parent.glob(".*.creditmodel-*")), "staging directory left behind"


def test_bundle_reproduces_in_memory_pds(demo_run):
    r = demo_run["result"]
    frame = pd.read_parquet(r.features_path)
    valid = frame[frame["split"] == "valid"]
    cols = list(r.models.lightgbm.schema_.names)
    bundle = load_bundle(r.bundle_dir)
    np.testing.assert_allclose(bundle.predict_pd(valid), r.models.pd("lightgbm", valid[cols]), rtol=0, atol=1e-9)


def test_reported_metrics_equal_sklearn_on_bundle_scores(demo_run):
    r = demo_run["result"]
    frame = pd.read_parquet(r.features_path)
    bundle = load_bundle(r.bundle_dir)
    table = pd.read_csv(r.report_dir / "metrics.csv").set_index(["model", "split"])
    for split in ("train", "valid", "oot"):
        part = frame[frame["split"] == split]
        pd_ = bundle.predict_pd(part)
        row = table.loc[("lightgbm", split)]
        assert row["auc"] == pytest.approx(roc_auc_score(part["default"], pd_), abs=1e-12)
        assert row["brier"] == pytest.approx(brier_score_loss(part["default"], pd_), abs=1e-12)
        assert row["n"] == len(part) and row["defaults"] == part["default"].sum()


def test_models_beat_chance_and_trail_the_oracle(demo_run):
    m = demo_run["result"].metrics.set_index(["model", "split"])["auc"]
    for model in ("scorecard", "lightgbm"):
        assert 0.6 < m[(model, "oot")] < m[("oracle_true_pd", "oot")] + 0.05


def test_platt_shape_alone_matches_the_validation_default_rate(demo_run):
    from creditmodel.models.calibration import PDCalibrator

    r = demo_run["result"]
    frame = pd.read_parquet(r.features_path)
    valid = frame[frame["split"] == "valid"]
    score = r.models.lightgbm.decision_function(valid[list(r.models.lightgbm.schema_.names)])
    shape_only = PDCalibrator("platt", pd_floor=0).fit(score, valid["default"])
    assert shape_only.predict(score).mean() == pytest.approx(valid["default"].mean(), abs=1e-6)


def test_reason_codes_are_readable_and_point_upwards(demo_run):
    reasons = pd.read_csv(demo_run["result"].report_dir / "reason_codes_valid.csv")
    assert reasons["reason_1"].notna().mean() > 0.95
    assert reasons["reason_1"].dropna().str.contains(": ").all()  # "<reason>: <value>"
    assert (reasons["reason_1_shap"].dropna() >= reasons["reason_2_shap"].dropna().reindex(
        reasons["reason_1_shap"].dropna().index).fillna(0)).all()


def test_shap_is_exact_treeshap(demo_run):
    from creditmodel.validation.explain import explain

    r = demo_run["result"]
    frame = pd.read_parquet(r.features_path)
    valid = frame[frame["split"] == "valid"]
    cols = list(r.models.lightgbm.schema_.names)
    expl = explain(r.models.lightgbm, valid[cols], valid["loan_id"])
    margin = r.models.lightgbm.decision_function(valid[cols])
    np.testing.assert_allclose(expl.values.sum(axis=1) + expl.base_value, margin, atol=1e-9)
    contrib = r.models.lightgbm.booster_.predict(r.models.lightgbm.schema_.encode(valid[cols]), pred_contrib=True)
    np.testing.assert_allclose(expl.values.to_numpy(), contrib[:, :-1], atol=1e-9)


def test_priced_file_adds_up(demo_run):
    r = demo_run["result"]
    priced = pd.read_csv(r.priced_path)
    frame = pd.read_parquet(r.features_path)
    assert set(priced["loan_id"]) == set(frame.loc[frame["split"] == "oot", "loan_id"])
    np.testing.assert_allclose(priced["risk_covering_rate"], priced[list(COMPONENTS)].sum(axis=1), rtol=1e-12)
    assert (priced["rate"] == priced["risk_covering_rate"].clip(0.03, 0.24)).all()
    assert (priced["expected_loss"] == priced["pd"] * priced["lgd"]).all()


def test_mlflow_run_and_registry(demo_run):
    r, uri = demo_run["result"], demo_run["tracking_uri"]
    client = MlflowClient(uri)
    version = client.get_model_version_by_alias("sme_pd", "challenger")
    assert version.run_id == r.tracked.run_id
    run = client.get_run(r.tracked.run_id)
    assert run.data.metrics["lightgbm.oot.auc"] == pytest.approx(
        r.metrics.set_index(["model", "split"]).loc[("lightgbm", "oot"), "auc"])
    assert run.data.params["synthetic.enterprises"] == "2500"
    assert "data.transactions.sha256" in run.data.tags and "creditmodel_version" in run.data.tags
    names = {a.path for a in client.list_artifacts(r.tracked.run_id)}
    assert {"bundle", "report", "config.json", "data_fingerprint.json", "priced_oot.csv"} <= names
    run_json = json.loads((r.output_dir / "run.json").read_text())
    assert run_json["mlflow_run_id"] == r.tracked.run_id


def test_training_is_deterministic(demo_run):
    from creditmodel.data.synthetic import generate_world

    cfg = demo_run["config"]
    world = generate_world(cfg.synthetic.enterprises, cfg.synthetic.seed)
    frame = modelling_frame(world.tables, world.extraction_date, cfg)
    again = train_models(frame, cfg)
    first = demo_run["result"].models
    assert again.lightgbm.booster_.model_to_string() == first.lightgbm.booster_.model_to_string()
    cols = list(first.lightgbm.schema_.names)
    np.testing.assert_array_equal(again.pd("scorecard", frame[cols]), first.pd("scorecard", frame[cols]))


def test_early_stopping_keeps_only_the_best_trees(demo_run):
    gbm = demo_run["result"].models.lightgbm
    assert 1 <= gbm.best_iteration_ < demo_run["config"].lightgbm.n_estimators
    assert gbm.booster_.num_trees() == gbm.best_iteration_
    assert "lightgbm.best_iteration" in MlflowClient(demo_run["tracking_uri"]).get_run(
        demo_run["result"].tracked.run_id).data.metrics


def test_pd_level_is_the_long_run_average_on_the_calibration_sample(demo_run):
    from creditmodel.models.calibration import long_run_average

    r = demo_run["result"]
    frame = pd.read_parquet(r.features_path)
    dev = frame[frame["split"].isin(["train", "valid"])]
    valid = frame[frame["split"] == "valid"]
    cols = list(r.models.lightgbm.schema_.names)
    lra = long_run_average(dev["decision_date"], dev["default"])
    yearly = dev.groupby(dev["decision_date"].dt.year)["default"].mean()
    assert lra == pytest.approx(yearly.mean())
    assert r.models.pd("lightgbm", valid[cols]).mean() == pytest.approx(lra, abs=1e-6)


def test_truth_comparison_and_validation_gate(demo_run):
    r = demo_run["result"]
    by_grade = pd.read_csv(r.report_dir / "truth_by_grade_oot.csv")
    overall = by_grade[by_grade["grade"] == "all"].iloc[0]
    priced = pd.read_csv(r.priced_path)
    frame = pd.read_parquet(r.features_path)
    world_truth = pd.read_parquet(r.output_dir / "world" / "_truth" / "loan_truth.parquet").set_index("loan_id")
    true_pd = priced["loan_id"].map(world_truth["true_pd"])
    assert overall["mae"] == pytest.approx((priced["pd"] - true_pd).abs().mean(), rel=1e-9)
    assert overall["loans"] == (frame["split"] == "oot").sum()
    version = MlflowClient(demo_run["tracking_uri"]).get_model_version_by_alias("sme_pd", "challenger")
    assert version.tags["validation_status"] in ("green", "amber", "red")
    run_json = json.loads((r.output_dir / "run.json").read_text())
    assert run_json["validation_status"] == version.tags["validation_status"]


def test_preliminary_findings_are_information_not_a_verdict(demo_run, capsys):
    from creditmodel.pipeline import preliminary_findings

    r = demo_run["result"]
    findings = preliminary_findings(r.metrics, r.models, min_oot_auc=0.99)
    assert "below the minimum 0.99" in findings[0]
    # one verdict per model: the bundle's card claims none, the run tags carry none that register could copy
    card = json.loads((r.bundle_dir / "model_card.json").read_text())
    assert card["validation"]["status"] == "pending" and "preliminary_findings" in card["validation"]
    assert card["validation"]["note_zh"]
    tags = MlflowClient(demo_run["tracking_uri"]).get_run(r.tracked.run_id).data.tags
    assert "validation_status" not in tags and "preliminary_findings" in tags


def test_mlflow_model_has_signature_and_library_versions(demo_run):
    import mlflow

    r = demo_run["result"]
    mlflow.set_tracking_uri(demo_run["tracking_uri"])
    info = mlflow.models.get_model_info(f"runs:/{r.tracked.run_id}/model")
    assert [c.name for c in info.signature.inputs.inputs] == list(r.models.lightgbm.schema_.names)
    tags = MlflowClient(demo_run["tracking_uri"]).get_run(r.tracked.run_id).data.tags
    assert tags["lib.lightgbm"] and tags["lib.optbinning"]

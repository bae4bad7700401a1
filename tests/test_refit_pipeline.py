"""The run with train.refit_on_validation: both models' out-of-time metrics in the output and in MLflow."""

import json

import mlflow
import pandas as pd
import pytest

from conftest import mlflow_store
from creditmodel.config import build_config
from creditmodel.pipeline import run_pipeline


@pytest.mark.slow  # a whole pipeline run
def test_refit_run_reports_both_models(tmp_path):
    config = build_config({"output_dir": str(tmp_path / "out"), "synthetic": {"enterprises": 900, "seed": 5},
                           "lightgbm": {"n_estimators": 60}, "segments": {"enabled": False},
                           "train": {"refit_on_validation": True, "refit_folds": 3}})
    uri = mlflow_store(tmp_path / "mlflow.db")
    lines = []
    result = run_pipeline(config, tracking_uri=uri, progress=lines.append)
    m = result.metrics.set_index(["model", "split"])
    refit_auc, plain_auc = m.loc[("lightgbm", "oot"), "auc"], m.loc[("lightgbm_without_refit", "oot"), "auc"]
    assert 0.5 < refit_auc < 1 and 0.5 < plain_auc < 1
    assert any(f"out-of-time AUC {refit_auc:.3f}" in line and f"against {plain_auc:.3f}" in line for line in lines)
    logged = mlflow.MlflowClient(uri).get_run(result.tracked.run_id).data.metrics
    assert logged["lightgbm.oot.auc"] == refit_auc and logged["lightgbm_without_refit.oot.auc"] == plain_auc
    # the refitted model saw train + validation: as many trees as early stopping chose on the validation period
    assert result.models.lightgbm.booster_.num_trees() == result.models.without_refit[0].best_iteration_
    flat = json.loads((result.report_dir / "metrics.json").read_text())
    assert "guard.flagged_features" in flat and "guard.max_iv_train" in flat
    guard = pd.read_csv(result.report_dir / "leakage_guard.csv")
    assert set(guard["status"]) <= {"kept", "constant", "duplicate"}
    assert any(line.startswith("    leakage guard:") for line in lines)
    card = json.loads((result.bundle_dir / "model_card.json").read_text())
    assert any("metrics on the validation split are in-sample" in x for x in card["limitations"])

"""The run with train.refit_on_validation: both models' out-of-time metrics in the output and in MLflow; run in
Chinese, its progress lines are Chinese and its records (model card, run tags) English."""

import json
import re

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
                           "train": {"refit_on_validation": True, "refit_folds": 3}, "lang": "zh"})
    uri = mlflow_store(tmp_path / "mlflow.db")
    lines = []
    result = run_pipeline(config, tracking_uri=uri, progress=lines.append)
    m = result.metrics.set_index(["model", "split"])
    refit_auc, plain_auc = m.loc[("lightgbm", "oot"), "auc"], m.loc[("lightgbm_without_refit", "oot"), "auc"]
    assert 0.5 < refit_auc < 1 and 0.5 < plain_auc < 1
    assert (f"    在训练 + 验证样本上重新训练：跨时间样本 AUC {refit_auc:.3f}（重新训练，折外校准），"
            f"对比 {plain_auc:.3f}（仅用训练样本训练）") in lines
    assert [line[:4] for line in lines if re.match(r"\d/8 ", line)] == [f"{k}/8 " for k in range(1, 9)]
    assert all(re.search(r"[\u4e00-\u9fff]", line) for line in "\n".join(lines).splitlines()), lines
    logged = mlflow.MlflowClient(uri).get_run(result.tracked.run_id).data.metrics
    assert logged["lightgbm.oot.auc"] == refit_auc and logged["lightgbm_without_refit.oot.auc"] == plain_auc
    # the refitted model saw train + validation: as many trees as early stopping chose on the validation period
    assert result.models.lightgbm.booster_.num_trees() == result.models.without_refit[0].best_iteration_
    flat = json.loads((result.report_dir / "metrics.json").read_text())
    assert "guard.flagged_features" in flat and "guard.max_iv_train" in flat
    guard = pd.read_csv(result.report_dir / "leakage_guard.csv")
    assert set(guard["status"]) <= {"kept", "constant", "duplicate"}
    assert any(line.startswith("    泄漏检查：") for line in lines)
    card = json.loads((result.bundle_dir / "model_card.json").read_text())
    findings = json.loads((result.output_dir / "run.json").read_text())["preliminary_findings"]
    assert not any(re.search(r"[\u4e00-\u9fff]", x) for x in findings)  # records keep the English
    assert any("metrics on the validation split are in-sample" in x for x in card["limitations"])

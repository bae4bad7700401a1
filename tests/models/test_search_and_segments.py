"""Hyper-parameter search (each trial a nested MLflow run) and the segment-model comparison."""

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from conftest import mlflow_store
from creditmodel.config import build_config
from creditmodel.models.segments import compare_segment_models
from creditmodel.pipeline import lightgbm_params, risk_directions, run_pipeline
from creditmodel.validation.metrics import auc


def test_segment_models_are_fitted_only_when_asked():
    from pathlib import Path

    from creditmodel.config import load_config

    assert build_config({}).segments.enabled is False
    assert build_config({"segments": {"enabled": True}}).segments.enabled is True
    demo = Path(__file__).resolve().parents[2] / "configs" / "demo.toml"
    assert load_config(demo).segments.enabled is False  # the demo configuration equals the defaults


@pytest.mark.slow  # an Optuna search with its MLflow runs
def test_search_trials_are_nested_runs_and_the_best_is_used(tmp_path):
    config = build_config({"output_dir": str(tmp_path / "out"), "synthetic": {"enterprises": 1500, "seed": 5},
                           "search": {"enabled": True, "n_trials": 3}, "segments": {"enabled": False}})
    uri = mlflow_store(tmp_path / "mlflow.db")
    result = run_pipeline(config, tracking_uri=uri)
    trials = result.models.search_trials
    assert len(trials) == 3 and trials["valid_auc"].between(0.5, 1).all()
    best = trials.loc[trials["valid_auc"].idxmax()]
    assert result.models.lightgbm.num_leaves == best["num_leaves"]
    assert result.models.lightgbm.learning_rate == pytest.approx(best["learning_rate"])
    client = MlflowClient(uri)
    children = client.search_runs([result.tracked.experiment_id],
                                  f"tags.mlflow.parentRunId = '{result.tracked.run_id}'")
    assert sorted(r.data.metrics["valid_auc"] for r in children) == sorted(trials["valid_auc"])


def test_segment_comparison_on_the_demo_world(demo_run):
    r = demo_run["result"]
    frame = pd.read_parquet(r.features_path)
    cols = list(r.models.lightgbm.schema_.names)
    global_pd = r.models.pd("lightgbm", frame[cols])
    params = lightgbm_params(demo_run["config"], risk_directions(cols))
    table = compare_segment_models(frame, cols, global_pd, params, min_train_defaults=15)
    overall = table[table["segment"] == "all"].iloc[0]
    oot = frame["split"] == "oot"
    assert overall["global_auc"] == pytest.approx(auc(frame.loc[oot, "default"], global_pd[oot.to_numpy()]))
    assert overall["oot_loans"] == oot.sum()
    fitted = table[(table["segment"] != "all") & table["own_model"]]
    assert len(fitted) >= 1 and np.isfinite(table["segmented_auc"]).all()
    # a segment without its own model keeps the global PDs: its AUCs agree
    nobody = compare_segment_models(frame, cols, global_pd, params, min_train_defaults=10_000)
    row = nobody[nobody["segment"] == "all"].iloc[0]
    assert row["segmented_auc"] == row["global_auc"]

"""Registry workflow on a copy of the demo run's MLflow store: register, promote, refuse red, compare."""

import shutil

import mlflow
import pytest
from mlflow import MlflowClient

from creditmodel.cli import main
from creditmodel.exceptions import RegistryError
from creditmodel.tracking.registry import compare_runs, promote, register


@pytest.fixture
def store(demo_run, tmp_path):
    db = tmp_path / "mlflow.db"
    shutil.copy(demo_run["root"] / "mlflow.db", db)
    return f"sqlite:///{db}", demo_run["result"].tracked.run_id


def test_register_and_promote_record_who_and_why(store):
    uri, run_id = store
    version = register(uri, run_id, "sme_pd", "challenger", by="analyst-a", reason="quarterly refit")
    client = MlflowClient(uri)
    mv = client.get_model_version_by_alias("sme_pd", "challenger")
    assert str(mv.version) == version and mv.tags["registered_by"] == "analyst-a"
    assert mv.tags["registered_reason"] == "quarterly refit"
    assert promote(uri, "sme_pd", by="head-of-risk", reason="beats champion") == version
    champion = client.get_model_version_by_alias("sme_pd", "champion")
    assert str(champion.version) == version
    assert champion.tags["promoted_to_champion_by"] == "head-of-risk"
    assert champion.tags["promoted_to_champion_replaced_version"] == "none"


def test_red_validation_is_not_promoted_unless_forced_with_a_reason(store):
    uri, _ = store
    client = MlflowClient(uri)
    mv = client.get_model_version_by_alias("sme_pd", "challenger")
    client.set_model_version_tag("sme_pd", mv.version, "validation_status", "red")
    client.set_model_version_tag("sme_pd", mv.version, "validation_findings", "out-of-time AUC 0.55 below 0.6")
    with pytest.raises(RegistryError, match="failed validation .*AUC 0.55"):
        promote(uri, "sme_pd", by="x")
    with pytest.raises(RegistryError, match="needs a --reason"):
        promote(uri, "sme_pd", by="x", force=True)
    assert promote(uri, "sme_pd", by="x", reason="regulator asked for it", force=True) == str(mv.version)
    assert client.get_model_version(
        "sme_pd", mv.version).tags["promoted_to_champion_forced"] == "true"


def test_compare_runs_side_by_side(store, capsys):
    uri, run_id = store
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(experiment_id=MlflowClient(uri).get_run(run_id).info.experiment_id) as other:
        mlflow.log_metric("lightgbm.oot.auc", 0.5)
        mlflow.log_param("seed", "99")
    metrics, params = compare_runs(uri, run_id, other.info.run_id)
    row = metrics.loc["lightgbm.oot.auc"]
    assert row["difference"] == pytest.approx(0.5 - row[run_id])
    assert "seed" in params.index
    assert main(["compare", run_id, other.info.run_id, "--tracking-uri", uri]) == 0
    assert "lightgbm.oot.auc" in capsys.readouterr().out


def test_cli_registry_errors_are_one_line(store, capsys):
    uri, _ = store
    assert main(["register", "--run-id", "nope", "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run 'nope' does not exist" in err[0]
    assert main(["promote", "--model", "ghost", "--tracking-uri", uri]) == 2
    assert "model ghost@challenger does not exist" in capsys.readouterr().err

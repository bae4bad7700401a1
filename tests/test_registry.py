"""Registry workflow on a copy of the demo run's MLflow store: register, promote, refuse red, compare."""

import shutil

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from creditmodel.cli import main
from creditmodel.exceptions import RegistryError
from creditmodel.tracking.registry import compare_runs, promote, register
from creditmodel.validation.report import build_report


def store_tmp(uri: str):
    from pathlib import Path

    return Path(uri.removeprefix("sqlite:///")).parent


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
    assert "validation_status" not in mv.tags  # no verdict until a report of this version exists
    with pytest.raises(RegistryError, match=rf"version {version} is not validated yet: run creditmodel report "
                                            rf"models:/sme_pd/{version}"):
        promote(uri, "sme_pd", by="head-of-risk", reason="beats champion")
    # a report validates the version; green or amber promotes, red only when forced
    client.set_registered_model_alias("sme_pd", "validated", version)
    status = build_report("models:/sme_pd@validated", store_tmp(uri) / "r.html", tracking_uri=uri)[0].status
    assert client.get_model_version("sme_pd", version).tags["validation_status"] == status
    forced = status == "red"
    assert promote(uri, "sme_pd", by="head-of-risk", reason="beats champion", force=forced) == version
    champion = client.get_model_version_by_alias("sme_pd", "champion")
    assert str(champion.version) == version
    assert champion.tags["promoted_to_champion_by"] == "head-of-risk"
    assert champion.tags["promoted_to_champion_replaced_version"] == "none"
    assert champion.tags["promoted_to_champion_validation_status"] == status


def test_register_never_copies_a_status_from_the_run(store, capsys):
    """The drill: a run carrying a (preliminary) green tag was registered, the tag copied to the
    version, and `promote` moved the alias without a validation report."""
    uri, run_id = store
    client = MlflowClient(uri)
    client.set_tag(run_id, "validation_status", "green")
    client.set_tag(run_id, "validation_report_status", "green")
    version = register(uri, run_id, "sme_pd", "x", by="analyst-a")
    assert "validation_status" not in client.get_model_version("sme_pd", version).tags
    with pytest.raises(RegistryError, match="not validated yet"):
        promote(uri, "sme_pd", from_alias="x", by="analyst-a")
    capsys.readouterr()
    assert main(["promote", "--from", "x", "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"version {version} is not validated yet" in err
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("sme_pd", "champion")
    # forcing still works, with a reason, and is recorded as such
    assert promote(uri, "sme_pd", from_alias="x", by="a", reason="pilot, report to follow", force=True) == version
    assert client.get_model_version("sme_pd", version).tags["promoted_to_champion_validation_status"] == "none"


def test_register_refuses_a_run_that_did_not_finish(store):
    uri, run_id = store
    client = MlflowClient(uri)
    failed = client.create_run(client.get_run(run_id).info.experiment_id)
    client.set_terminated(failed.info.run_id, "FAILED")
    with pytest.raises(RegistryError, match="is FAILED, not FINISHED"):
        register(uri, failed.info.run_id, "sme_pd", "challenger")
    running = client.create_run(client.get_run(run_id).info.experiment_id)
    with pytest.raises(RegistryError, match="is RUNNING, not FINISHED"):
        register(uri, running.info.run_id, "sme_pd", "challenger")


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

"""Monitored figures logged to MLflow at step = the as-of date, read back as metric history from a
SQLite tracking store; a registry bundle's figures go to its own run and version."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from conftest import mlflow_store
from creditmodel.cli import main
from creditmodel.export.bundle import load_bundle
from creditmodel.monitoring.mlflow_metrics import (
    EXPERIMENT,
    MODEL_ID_TAG,
    as_of_step,
    log_monitoring,
    metrics_of,
    resolve_target,
)
from creditmodel.monitoring.run import model_id

KEYS = ["monitoring.psi_pd_origination_to_now", "monitoring.npl_ratio", "monitoring.backtest_auc",
        "monitoring.share_downgraded_2plus"]


def history(uri, run_id, key):
    from mlflow import MlflowClient

    return sorted((m.step, m.timestamp, m.value) for m in MlflowClient(uri).get_metric_history(run_id, key))


def test_as_of_step_is_the_date():
    step, ts = as_of_step("2023-09-30")
    assert step == 20230930 and ts == int(pd.Timestamp("2023-09-30", tz="UTC").timestamp() * 1000)


def test_each_date_is_a_point_of_the_models_monitoring_run(demo_run, world_dir, monitored, tmp_path, capsys):
    uri = mlflow_store(tmp_path / "mlflow.db")
    bundle_dir = demo_run["result"].bundle_dir
    bundle = load_bundle(bundle_dir)
    later = json.loads((monitored / "summary.json").read_text())  # 2023-09-30, logged through the library
    target = resolve_target(bundle, uri, model_id(bundle))
    assert target.run_id is None  # the pipeline's bundle names no run: a monitoring run is made for the model
    run_id = log_monitoring(target, later)
    out = tmp_path / "2023q1"  # an earlier date, through the command: the same run is found again
    assert main(["monitor", "--bundle", str(bundle_dir), "--data", str(world_dir), "--as-of", "2023-03-31",
                 "--out", str(out), "--tracking-uri", uri]) == 0
    assert f"to MLflow run {run_id}" in capsys.readouterr().out
    earlier = json.loads((out / "summary.json").read_text())
    for key, name in zip(KEYS, ["psi_pd_origination_to_now", "npl_ratio", "backtest_auc", "share_downgraded_2plus"]):
        points = history(uri, run_id, key)
        assert [p[0] for p in points] == [20230331, 20230930]
        assert [p[1] for p in points] == [as_of_step("2023-03-31")[1], as_of_step("2023-09-30")[1]]
        assert [p[2] for p in points] == pytest.approx([earlier[name], later[name]], rel=1e-12)
    for team, ratio in later["npl_ratio_by_team"].items():
        assert history(uri, run_id, f"monitoring.npl_ratio.{team}")[-1][2] == pytest.approx(ratio)
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags[MODEL_ID_TAG] == later["model_id"]
    assert client.get_experiment(run.info.experiment_id).name == EXPERIMENT
    assert {f.path for f in client.list_artifacts(run_id, "monitoring/2023-03-31")} == {
        "monitoring/2023-03-31/monitoring_report.html", "monitoring/2023-03-31/summary.json"}
    assert set(run.data.metrics) == set(metrics_of(later)) | set(metrics_of(earlier))


def test_a_registry_bundle_logs_to_its_own_run_and_version(demo_run, monitored, tmp_path):
    from mlflow import MlflowClient

    from creditmodel.export.from_registry import export_model

    store = tmp_path / "mlflow.db"
    shutil.copy(demo_run["root"] / "mlflow.db", store)  # the session's store stays as it was
    uri = f"sqlite:///{store}"
    version = MlflowClient(uri).search_model_versions("name='sme_pd'")[0]
    export_model(f"models:/sme_pd/{version.version}", tmp_path / "bundle", tracking_uri=uri)
    bundle = load_bundle(tmp_path / "bundle", allow_unsigned=True)
    target = resolve_target(bundle, uri, model_id(bundle))
    assert (target.run_id, target.model_name, target.version) == (version.run_id, "sme_pd", str(version.version))
    summary = json.loads((monitored / "summary.json").read_text())
    assert log_monitoring(target, summary) == version.run_id
    assert history(uri, version.run_id, "monitoring.npl_ratio") == [
        (20230930, as_of_step("2023-09-30")[1], pytest.approx(summary["npl_ratio"]))]
    tags = MlflowClient(uri).get_model_version("sme_pd", version.version).tags
    assert tags["monitoring_last_as_of"] == "2023-09-30" and tags["monitoring_run"] == version.run_id
    earlier = {**summary, "as_of": "2023-06-30"}
    log_monitoring(target, earlier)  # an earlier date later: the version keeps its latest date
    assert MlflowClient(uri).get_model_version("sme_pd", version.version).tags["monitoring_last_as_of"] == "2023-09-30"


@pytest.mark.parametrize("case", ["store_is_not_usable", "registry_store_missing", "registry_run_missing"])
def test_a_tracking_store_that_cannot_take_the_figures_is_one_line_and_writes_nothing(
        demo_run, world_dir, tmp_path, capsys, case):
    bundle = demo_run["result"].bundle_dir
    if case == "store_is_not_usable":
        (tmp_path / "afile").write_text("x")
        uri, message = f"sqlite:///{tmp_path / 'afile' / 'mlflow.db'}", "cannot use this MLflow store"
    else:  # a registry bundle against an empty store: its run is not there
        man = json.loads((bundle / "manifest.json").read_text())
        shutil.copytree(bundle, tmp_path / "bundle")
        man["provenance"]["mlflow"] = {"model_uri": "models:/sme_pd/1", "registered_model": "sme_pd", "version": "1",
                                       "run_id": "0" * 32}
        (tmp_path / "bundle" / "manifest.json").write_text(json.dumps(man))
        (tmp_path / "bundle" / "manifest.sig").unlink(missing_ok=True)
        bundle, uri = tmp_path / "bundle", f"sqlite:///{tmp_path / 'absent.db'}"
        message = "no such store; expected the store the bundle's MLflow run"
        if case == "registry_run_missing":
            shutil.copy(demo_run["root"] / "mlflow.db", tmp_path / "other.db")
            uri = f"sqlite:///{tmp_path / 'other.db'}"
            message = f"the bundle's MLflow run {'0' * 32} (models:/sme_pd/1) is not in this store"
    out = tmp_path / "mon"
    assert main(["monitor", "--bundle", str(bundle), "--data", str(world_dir), "--as-of", "2023-06-30",
                 "--out", str(out), "--tracking-uri", uri, "--allow-unsigned"]) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "--allow-unsigned" not in line]
    assert len(err) == 1 and message in err[0], err
    assert not out.exists() and not (tmp_path / "absent.db").exists()

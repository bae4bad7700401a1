"""Monitoring figures logged to MLflow against the model, so that the MLflow UI shows each monitored
quantity over time.

A bundle exported from the registry (``creditmodel export models:/...``) names its MLflow run and
registered version in its manifest (``provenance.mlflow``): the figures go to that run, next to the
model's training metrics and its validation verdict, and the registry version gets the tags
``monitoring_last_as_of`` and ``monitoring_run``. A bundle without that provenance gets one
monitoring run per model (experiment ``creditmodel-monitoring``, tag ``creditmodel.model_id``),
found again on every later date.

Every figure is logged as ``monitoring.<name>`` at ``step`` = the as-of date as YYYYMMDD and with the
as-of date as its timestamp (so "Step" and "Time (wall)" in the UI both order the points by date);
monitoring a date again adds a point at the same step. The report and summary of each date are
logged as artifacts under ``monitoring/<as-of>/``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from creditmodel.exceptions import ConfigError, first_line

__all__ = ["EXPERIMENT", "METRICS", "MonitoringTarget", "as_of_step", "log_monitoring", "metrics_of",
           "resolve_target"]

EXPERIMENT = "creditmodel-monitoring"
MODEL_ID_TAG = "creditmodel.model_id"
# summary key -> metric name (monitoring.<name>)
METRICS = {
    "loans": "open_loans",
    "mean_pd_origination": "mean_pd_origination",
    "mean_pd_now": "mean_pd_now",
    "share_downgraded": "share_downgraded",
    "share_downgraded_2plus": "share_downgraded_2plus",
    "share_upgraded": "share_upgraded",
    "psi_pd_origination_to_now": "psi_pd_origination_to_now",
    "psi_pd_recent_to_development": "psi_pd_recent_to_development",
    "psi_grade_recent_to_development": "psi_grade_recent_to_development",
    "live_psi": "psi_live_scores",
    "live_scores": "live_scores",
    "npl_ratio": "npl_ratio",
    "officers_over_tolerance": "officers_over_tolerance",
    "eva_total": "eva_total",
    "backtest_auc": "backtest_auc",
    "backtest_default_rate": "backtest_default_rate",
    "watch_list_loans": "watch_list_loans",
}
_KEY = re.compile(r"[^0-9A-Za-z_\-. /]")


@dataclass(frozen=True)
class MonitoringTarget:
    """Where a monitoring run's figures go: an existing run (the model's) or the model's monitoring run
    (``run_id`` None until the first date is logged), and the registry version when known."""

    tracking_uri: str
    model_id: str
    run_id: str | None = None
    model_name: str | None = None
    version: str | None = None


def _client(tracking_uri: str) -> Any:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # "Creating initial MLflow database tables"
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri)


def registry_provenance(bundle: Any) -> dict[str, str] | None:
    """The MLflow run and registry version a bundle was exported from (its manifest), or None."""
    man = bundle.manifest if isinstance(bundle.manifest, dict) else {}
    prov = (man.get("provenance") or {}).get("mlflow")
    if not isinstance(prov, Mapping) or not prov.get("run_id"):
        return None
    return {str(k): str(v) for k, v in prov.items() if v is not None}


def resolve_target(bundle: Any, tracking_uri: str, model_id: str) -> MonitoringTarget:
    """Check the tracking store before any work: the bundle's own run must be in it; otherwise find
    the model's monitoring run (created when the first figures are logged). One-line ConfigError."""
    from mlflow.exceptions import MlflowException

    prov = registry_provenance(bundle)
    if prov is not None and tracking_uri.startswith("sqlite:///") and \
            not Path(tracking_uri.removeprefix("sqlite:///")).is_file():  # never create an empty store for it
        raise ConfigError.of("error.mlflow_metrics.no_store", uri=tracking_uri, run=prov["run_id"])
    try:
        client = _client(tracking_uri)
        if prov is not None:
            try:
                run = client.get_run(prov["run_id"])
            except MlflowException:
                if "model_uri" not in prov:
                    raise ConfigError.of("error.mlflow_metrics.run_not_here", uri=tracking_uri,
                                         run=prov["run_id"]) from None
                raise ConfigError.of("error.mlflow_metrics.model_run_not_here", uri=tracking_uri, run=prov["run_id"],
                                     model=prov["model_uri"]) from None
            if run.info.lifecycle_stage != "active":
                raise ConfigError.of("error.mlflow_metrics.run_deleted", uri=tracking_uri, run=prov["run_id"])
            return MonitoringTarget(tracking_uri, model_id, run.info.run_id, prov.get("registered_model"),
                                    str(prov["version"]) if prov.get("version") else None)
        exp = client.get_experiment_by_name(EXPERIMENT)
        if exp is None:
            return MonitoringTarget(tracking_uri, model_id)
        runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`{MODEL_ID_TAG}` = '{model_id}'",
                                  max_results=1, order_by=["attributes.start_time ASC"])
        return MonitoringTarget(tracking_uri, model_id, runs[0].info.run_id if runs else None)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unreachable or unusable store, whatever MLflow raises
        raise ConfigError.of("error.mlflow_metrics.unusable", uri=tracking_uri, detail=first_line(exc)[:200]) from None


def as_of_step(as_of: object) -> tuple[int, int]:
    """(step, timestamp in ms) of an as-of date: 2023-09-30 -> (20230930, its midnight UTC in ms)."""
    day = pd.Timestamp(as_of).normalize()
    utc = day.tz_localize("UTC") if day.tz is None else day
    return int(day.strftime("%Y%m%d")), int(utc.timestamp() * 1000)


def metric_key(name: str) -> str:
    return "monitoring." + _KEY.sub("_", name)


def metrics_of(summary: Mapping[str, Any]) -> dict[str, float]:
    """The figures of a monitoring summary as MLflow metrics (finite numbers only): the headline
    figures, the NPL ratio per team and the number of red backtest quarters."""
    out: dict[str, float] = {}
    for key, name in METRICS.items():
        v = summary.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and pd.notna(v):
            out[metric_key(name)] = float(v)
    for team, v in (summary.get("npl_ratio_by_team") or {}).items():
        if pd.notna(v):
            out[metric_key(f"npl_ratio.{team}")] = float(v)
    if "backtest_quarters_red" in summary:
        out[metric_key("backtest_red_quarters")] = float(len(summary["backtest_quarters_red"]))
    return out


def log_monitoring(target: MonitoringTarget, summary: Mapping[str, Any], files: list[Path] | None = None) -> str:
    """Log the figures of one monitoring date (and ``files`` as artifacts under monitoring/<as-of>/);
    return the run id."""
    from mlflow.entities import Metric

    client = _client(target.tracking_uri)
    run_id = target.run_id
    if run_id is None:
        exp = client.get_experiment_by_name(EXPERIMENT)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(EXPERIMENT)
        run = client.create_run(exp_id, run_name=f"monitoring {target.model_id}",
                                tags={MODEL_ID_TAG: target.model_id})
        run_id = run.info.run_id
        client.set_terminated(run_id, "FINISHED")  # a record of figures, never left RUNNING
    step, ts = as_of_step(summary["as_of"])
    metrics = [Metric(k, v, ts, step) for k, v in sorted(metrics_of(summary).items())]
    for i in range(0, len(metrics), 500):  # MLflow's batch limit
        client.log_batch(run_id, metrics=metrics[i:i + 500])
    for f in files or []:
        client.log_artifact(run_id, str(f), artifact_path=f"monitoring/{summary['as_of']}")
    if target.model_name and target.version:
        tags = client.get_model_version(target.model_name, target.version).tags or {}
        last = max(str(summary["as_of"]), tags.get("monitoring_last_as_of", ""))  # ISO dates order as text
        client.set_model_version_tag(target.model_name, target.version, "monitoring_last_as_of", last)
        client.set_model_version_tag(target.model_name, target.version, "monitoring_run", run_id)
    return run_id

"""MLflow tracking: one run per pipeline run, with config, data fingerprints, code version, metrics,
plots, report files, the LightGBM model and the export bundle; the model is registered with an alias.

The default store is SQLite under `mlruns/` (artifacts beside it); MLFLOW_TRACKING_URI overrides it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_STORE = Path("mlruns")


def default_tracking_uri(store: Path = DEFAULT_STORE) -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite database inside `store`."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(store / 'mlflow.db').resolve()}"


def code_version() -> dict[str, str]:
    """Package version and, when run from a git checkout, the commit and whether it had local edits."""
    from creditmodel import __version__

    out = {"creditmodel_version": __version__}
    root = Path(__file__).resolve().parents[3]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        out["git_commit"] = sha
        out["git_dirty"] = str(bool(dirty)).lower()
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour the numbers depend on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("numpy", "pandas", "scikit-learn", "lightgbm", "optbinning", "shap", "duckdb", "pandera", "mlflow"):
        try:
            out[f"lib.{name}"] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


@dataclass
class TrackedRun:
    tracking_uri: str
    experiment_id: str
    run_id: str
    model_name: str
    model_version: str
    model_alias: str

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}@{self.model_alias}"


def log_pipeline_run(
    *,
    tracking_uri: str,
    experiment: str,
    config: dict[str, Any],
    fingerprints: dict[str, Any],
    metrics: dict[str, float],
    artifacts_dir: Path,
    booster: Any,
    model_name: str,
    model_alias: str,
    tags: dict[str, str] | None = None,
    input_example: Any = None,
    version_tags: dict[str, str] | None = None,
    child_runs: list[dict[str, Any]] | None = None,
) -> TrackedRun:
    """Log one run and register its LightGBM model as `model_name` with `model_alias`."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(tracking_uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        location = None
        if tracking_uri.startswith("sqlite:///"):
            location = (Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
        experiment_id = mlflow.create_experiment(experiment, artifact_location=location)
    else:
        experiment_id = exp.experiment_id
    params: dict[str, Any] = {}
    _flatten("", config, params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.set_tags({**code_version(), **library_versions(), **(tags or {}), **(version_tags or {})})
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_dict(config, "config.json")
            mlflow.log_dict(fingerprints, "data_fingerprint.json")
            mlflow.set_tags({f"data.{t}.sha256": v["sha256"][:16] for t, v in fingerprints.items()})
            mlflow.log_metrics(metrics)
            mlflow.log_artifacts(str(artifacts_dir))
            for child in child_runs or []:  # e.g. hyper-parameter search trials, nested under this run
                with mlflow.start_run(experiment_id=experiment_id, run_name=child["name"], nested=True):
                    mlflow.log_params(child["params"])
                    mlflow.log_metrics(child["metrics"])
            signature = None
            if input_example is not None:
                signature = infer_signature(input_example, booster.predict(input_example.to_numpy()))
            info = mlflow.lightgbm.log_model(booster, name="model", registered_model_name=model_name,
                                             signature=signature, input_example=input_example)
        version = str(info.registered_model_version)
        client = MlflowClient(tracking_uri)
        client.set_registered_model_alias(model_name, model_alias, version)
        for key, value in (version_tags or {}).items():
            client.set_model_version_tag(model_name, version, key, value)
    log.info("MLflow run %s, %s version %s alias %s", run.info.run_id, model_name, version, model_alias)
    return TrackedRun(tracking_uri, experiment_id, run.info.run_id, model_name, version, model_alias)


def download_bundle(tracking_uri: str, model_name: str, alias: str | None, run_id: str | None, dst: Path) -> Path:
    """Fetch the export bundle logged with a registered model's run (by alias) or with a given run."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    try:
        if run_id is None:
            run_id = client.get_model_version_by_alias(model_name, alias).run_id
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="bundle", dst_path=str(dst)))
    except MlflowException as exc:
        what = f"run {run_id}" if run_id else f"model {model_name}@{alias}"
        raise LookupError(f"{what} has no export bundle in {tracking_uri}: {exc.message.splitlines()[0]}") from None


def metrics_json(metrics: dict[str, float]) -> str:
    return json.dumps(metrics, indent=2, sort_keys=True)

"""The model registry workflow: register a run's model, promote challenger to champion, compare runs.

Who did it and why are recorded as tags on the model version; a model whose validation status is
red is not promoted unless forced, and a forced promotion must say why.
"""

from __future__ import annotations

import getpass
from datetime import datetime, timezone

import pandas as pd

from creditmodel.exceptions import RegistryError


def _client(tracking_uri: str):
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def register(tracking_uri: str, run_id: str, model_name: str, alias: str, *, by: str | None = None,
             reason: str = "") -> str:
    """Register the model logged in `run_id` as a new version of `model_name` and point `alias` at it."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise RegistryError(f"run {run_id!r} does not exist in {tracking_uri}") from None
    try:
        version = mlflow.register_model(f"runs:/{run_id}/model", model_name).version
    except MlflowException as exc:
        raise RegistryError(f"run {run_id}: cannot register its model ({exc.message.splitlines()[0]})") from None
    client.set_registered_model_alias(model_name, alias, version)
    tags = {"registered_by": by or getpass.getuser(), "registered_reason": reason or "-", "registered_at": _now()}
    if "validation_status" in run.data.tags:
        tags["validation_status"] = run.data.tags["validation_status"]
    for key, value in tags.items():
        client.set_model_version_tag(model_name, str(version), key, value)
    return str(version)


def promote(tracking_uri: str, model_name: str, *, from_alias: str = "challenger", to_alias: str = "champion",
            by: str | None = None, reason: str = "", force: bool = False) -> str:
    """Point `to_alias` at the version `from_alias` points to; refuse a red validation unless forced."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        version = client.get_model_version_by_alias(model_name, from_alias)
    except MlflowException:
        raise RegistryError(f"model {model_name}@{from_alias} does not exist in {tracking_uri}") from None
    status = version.tags.get("validation_status", "unknown")
    if status == "red" and not force:
        raise RegistryError(f"model {model_name} version {version.version} failed validation (status red: "
                            f"{version.tags.get('validation_findings', 'no findings recorded')}); "
                            f"promote with --force and a --reason to override")
    if force and not reason.strip():
        raise RegistryError("a forced promotion needs a --reason")
    try:
        previous = client.get_model_version_by_alias(model_name, to_alias).version
    except MlflowException:
        previous = None
    client.set_registered_model_alias(model_name, to_alias, version.version)
    prefix = f"promoted_to_{to_alias}"
    for key, value in {f"{prefix}_by": by or getpass.getuser(), f"{prefix}_reason": reason or "-",
                       f"{prefix}_at": _now(), f"{prefix}_forced": str(bool(force)).lower(),
                       f"{prefix}_replaced_version": str(previous) if previous else "none"}.items():
        client.set_model_version_tag(model_name, version.version, key, value)
    return str(version.version)


def compare_runs(tracking_uri: str, run_a: str, run_b: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metrics side by side (with the difference b - a) and the parameters that differ."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    runs = []
    for run_id in (run_a, run_b):
        try:
            runs.append(client.get_run(run_id))
        except MlflowException:
            raise RegistryError(f"run {run_id!r} does not exist in {tracking_uri}") from None
    a, b = runs
    metrics = pd.DataFrame({run_a: pd.Series(a.data.metrics), run_b: pd.Series(b.data.metrics)}).sort_index()
    metrics["difference"] = metrics[run_b] - metrics[run_a]
    params = pd.DataFrame({run_a: pd.Series(a.data.params), run_b: pd.Series(b.data.params)})
    params = params[params[run_a].fillna("<unset>") != params[run_b].fillna("<unset>")].sort_index()
    return metrics, params

"""The model registry workflow: register a run's model, promote challenger to champion, compare runs.

Who did it and why are recorded as tags on the model version. The version's `validation_status` is
set by its validation report only (`creditmodel report`, also run by `creditmodel run`); a version
without one, or with a red one, is not promoted unless forced, and a forced promotion must say why.
"""

from __future__ import annotations

import getpass
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import pandas as pd

from creditmodel.exceptions import RegistryError, first_line
from creditmodel.texts import Phrase


def _client(tracking_uri: str):
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


STATUSES = ("green", "amber", "red")


@contextmanager
def _quiet_registration() -> Iterator[None]:
    """MLflow 3 warns that a run's model lives in a logged model rather than the run's artifacts; it
    resolves `runs:/RUN_ID/model` to it, which is what we want. It also prints "Successfully registered
    model ..." and "Created version ..." in English, whatever the run's language; the run says so itself."""
    from mlflow.utils import logging_utils

    logger = logging.getLogger("mlflow.tracking._model_registry.fluent")
    level, printing = logger.level, logging_utils.MLFLOW_LOGGING_STREAM.enabled
    logger.setLevel(logging.ERROR)
    logging_utils.disable_logging()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        if printing:
            logging_utils.enable_logging()


def register_version(tracking_uri: str, run_id: str, model_name: str, alias: str,
                     tags: dict[str, str], description: str = "") -> tuple[str, str | None]:
    """Register `runs:/run_id/model` as a new version of `model_name`, set `tags` (and `description`) on
    it, then point `alias` at it; return the new version and the one the alias pointed to before (or None).

    If anything fails or is interrupted on the way, the new version is deleted again and the alias
    left where it was: the registry sees either the whole registration or none of it."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        previous = str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        previous = None
    version = None
    try:
        with _quiet_registration():
            version = str(mlflow.register_model(f"runs:/{run_id}/model", model_name).version)
        if description:
            client.update_model_version(model_name, version, description=description)
        for key, value in tags.items():
            client.set_model_version_tag(model_name, version, key, value)
        client.set_registered_model_alias(model_name, alias, version)
    except BaseException:
        if version is not None:
            unregister_version(tracking_uri, model_name, version, alias, previous)
        raise
    return version, previous


def unregister_version(tracking_uri: str, model_name: str, version: str, alias: str, previous: str | None) -> None:
    """Delete `version` and point `alias` back at `previous` (or leave it unset)."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        client.delete_model_version(model_name, version)
    except MlflowException:
        pass
    if previous is not None:
        client.set_registered_model_alias(model_name, alias, previous)


def register(tracking_uri: str, run_id: str, model_name: str, alias: str, *, by: str | None = None,
             reason: str = "") -> str:
    """Register the model logged in the FINISHED run `run_id` as a new version of `model_name` and
    point `alias` at it. The version has no validation status until `creditmodel report` validates
    it: nothing the run carries (e.g. a preliminary check) is copied as a verdict."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise RegistryError.of("error.registry.no_run", run_id=run_id, tracking_uri=tracking_uri) from None
    if run.info.status != "FINISHED":
        raise RegistryError.of("error.registry.run_not_finished", run_id=run_id, status=run.info.status)
    tags = {"registered_by": by or getpass.getuser(), "registered_reason": reason or "-", "registered_at": _now()}
    try:
        return register_version(tracking_uri, run_id, model_name, alias, tags)[0]
    except MlflowException as exc:
        raise RegistryError.of("error.registry.cannot_register", run_id=run_id, detail=first_line(exc)) from None


def promote(tracking_uri: str, model_name: str, *, from_alias: str = "challenger", to_alias: str = "champion",
            by: str | None = None, reason: str = "", force: bool = False) -> str:
    """Point `to_alias` at the version `from_alias` points to. Refused, unless forced with a reason,
    when the version's validation report is red or when it has no validation report yet."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        version = client.get_model_version_by_alias(model_name, from_alias)
    except MlflowException:
        raise RegistryError.of("error.registry.no_alias", name=model_name, alias=from_alias,
                               tracking_uri=tracking_uri) from None
    status = version.tags.get("validation_status")
    if force and not reason.strip():
        raise RegistryError.of("error.registry.force_needs_reason")
    if status not in STATUSES and not force:
        raise RegistryError.of("error.registry.not_validated", name=model_name, version=version.version)
    if status == "red" and not force:
        findings = version.tags.get("validation_findings", Phrase("error.registry.no_findings"))
        raise RegistryError.of("error.registry.failed_validation", name=model_name, version=version.version,
                               findings=findings)
    try:
        previous = client.get_model_version_by_alias(model_name, to_alias).version
    except MlflowException:
        previous = None
    client.set_registered_model_alias(model_name, to_alias, version.version)
    prefix = f"promoted_to_{to_alias}"
    for key, value in {f"{prefix}_by": by or getpass.getuser(), f"{prefix}_reason": reason or "-",
                       f"{prefix}_at": _now(), f"{prefix}_forced": str(bool(force)).lower(),
                       f"{prefix}_validation_status": status or "none",
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
            raise RegistryError.of("error.registry.no_run", run_id=run_id, tracking_uri=tracking_uri) from None
    a, b = runs
    metrics = pd.DataFrame({run_a: pd.Series(a.data.metrics), run_b: pd.Series(b.data.metrics)}).sort_index()
    metrics["difference"] = metrics[run_b] - metrics[run_a]
    params = pd.DataFrame({run_a: pd.Series(a.data.params), run_b: pd.Series(b.data.params)})
    params = params[params[run_a].fillna("<unset>") != params[run_b].fillna("<unset>")].sort_index()
    return metrics, params

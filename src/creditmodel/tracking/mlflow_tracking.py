"""MLflow tracking: one run per pipeline run, with config, data fingerprints, code version, metrics,
plots, report files, the export bundle and the model (the bundle as an MLflow pyfunc, so the registry
serves calibrated PDs and grades). The run is named for what was trained on what, its description
gives the data fingerprints, the label definition and the splits, and its input tables and feature
matrix are logged as MLflow datasets whose digests are the kit's fingerprints. The model is
registered (with an alias) only at the very end, after its validation report and the run's outputs
exist; a run that fails or is interrupted ends FAILED or KILLED with its registration undone, and a
run left RUNNING by a process that died (SIGKILL, power loss) is marked FAILED by the next run on the
same host.

The default store is SQLite under `mlruns/` (artifacts beside it); MLFLOW_TRACKING_URI overrides it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from creditmodel.signals import sigterm_deferred, terminating

if TYPE_CHECKING:
    import pandas as pd

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


DIGEST_CHARS = 16  # MLflow keeps at most 36 characters of a dataset digest; the tags show the same prefix


@dataclass(frozen=True)
class RunDataset:
    """A table the run read or built, to be logged as an MLflow dataset: its digest is the kit's own
    fingerprint (creditmodel.data.fingerprint), so a dataset in MLflow and a fingerprint in a run's
    `data_fingerprint.json` or a model card can be matched by eye."""

    name: str
    frame: pd.DataFrame
    sha256: str
    context: str  # "input" for a source table; "training", "validation", "oot" for the feature matrix
    source: str | None = None  # where the table came from (a path); None: the code that built it
    targets: str | None = None  # the label column, for the feature matrix
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.sha256[:DIGEST_CHARS]


SCHEMA_SAMPLE_ROWS = 2000


def dataset_schema(frame: pd.DataFrame) -> Any:
    """The MLflow schema of `frame`: column types inferred from a sample of rows (MLflow inspects every
    value in Python, minutes for a table of millions of rows), whether a column is required from all
    of them. None when MLflow has no type for a column (as MLflow itself then logs no schema)."""
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, Schema

    sample = frame if len(frame) <= SCHEMA_SAMPLE_ROWS else frame.sample(SCHEMA_SAMPLE_ROWS, random_state=0)
    try:
        inputs = infer_signature(sample).inputs
    except Exception:  # noqa: BLE001 - a column type MLflow cannot describe: no schema, as MLflow does
        return None
    return Schema([ColSpec(c.type, c.name, required=not bool(frame[c.name].isna().any())) for c in inputs.inputs])


def log_datasets(datasets: Sequence[RunDataset]) -> None:
    """Log each dataset as an input of the active run (`mlflow.log_input`), with its full fingerprint and
    row count as input tags."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    for d in datasets:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # schema inference hints at integer columns and unknown types
            where = {"source": d.source} if d.source is not None else {}  # none: the code that built it
            ds = from_pandas(d.frame, name=d.name, digest=d.digest, targets=d.targets, **where)
            ds.schema = dataset_schema(d.frame)  # (a cached property: set before MLflow computes it)
            mlflow.log_input(ds, context=d.context, tags={"sha256": d.sha256, "rows": str(len(d.frame)),
                                                          **d.tags})


def logged_datasets(tracking_uri: str, run_id: str) -> pd.DataFrame:
    """The datasets a run logged, one row each: name, context, digest, rows, full fingerprint, source type."""
    import pandas as pd
    from mlflow import MlflowClient

    rows = []
    inputs = MlflowClient(tracking_uri).get_run(run_id).inputs
    for di in inputs.dataset_inputs if inputs is not None else []:
        tags = {t.key: t.value for t in di.tags}
        profile = json.loads(di.dataset.profile) if di.dataset.profile else {}
        rows.append({"name": di.dataset.name, "context": tags.get("mlflow.data.context", ""),
                     "digest": di.dataset.digest, "rows": profile.get("num_rows"), "sha256": tags.get("sha256", ""),
                     "source_type": di.dataset.source_type})
    return pd.DataFrame(rows, columns=["name", "context", "digest", "rows", "sha256", "source_type"])


def run_name(models: Sequence[str], data: str, enterprises: int, holdout: str, config: str = "") -> str:
    """A run name that says what was trained on what, e.g. "lightgbm+scorecard · synthetic 2500
    enterprises · oot 2023-04 · config 1a2b3c4" (`config`: a short hash of the configuration, so that
    variants on the same data are told apart)."""
    return f"{'+'.join(sorted(models))} · {data} {enterprises} enterprises · {holdout}" + (
        f" · config {config}" if config else "")


def run_description(*, data: str, extraction_date: str, label: dict[str, str], splits: dict[str, str],
                    fingerprints: dict[str, dict[str, Any]]) -> str:
    """The run's description (Markdown, shown by the MLflow UI), in English and Simplified Chinese: the
    data and its fingerprints, the label definition and the splits (`label`, `splits`: {"en", "zh"})."""
    rows = "\n".join(f"| {name} | {fp['rows']} | `{fp['sha256'][:DIGEST_CHARS]}` |"
                     for name, fp in fingerprints.items())
    return (f"**Data / 数据:** {data}, extracted {extraction_date}（数据提取日）\n\n"
            f"**Label:** {label['en']}\n\n**标签：** {label['zh']}\n\n"
            f"**Splits:** {splits['en']}\n\n**样本划分：** {splits['zh']}\n\n"
            f"| table / 表 | rows / 行数 | fingerprint / 指纹 (sha256) |\n|---|---|---|\n{rows}\n")


def artifact_uri(tracking_uri: str, run_id: str, path: str) -> str:
    """Where the artifact `path` of run `run_id` is stored (e.g. file:///.../validation/report.html)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri).get_run(run_id).info.artifact_uri.rstrip("/") + "/" + path


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


HOST_TAG, PID_TAG, START_TAG = "creditmodel.host", "creditmodel.pid", "creditmodel.process_start"


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def process_tags() -> dict[str, str]:
    """Host, pid and process start time, so a later run can tell whether this run's process is gone."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), START_TAG: _process_start(pid) or ""}


def process_alive(pid: int, start: str = "") -> bool:
    """Whether process `pid` of this host still runs (and is the same process, when its start is known)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _process_start(pid)
    return not (start and now is not None and now != start)


def ensure_experiment(tracking_uri: str, experiment: str) -> str:
    """The id of `experiment`, created if absent (artifacts beside a SQLite store)."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is not None:
        return exp.experiment_id
    location = None
    if tracking_uri.startswith("sqlite:///"):
        location = (Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
    return mlflow.create_experiment(experiment, artifact_location=location)


def cleanup_stale_runs(tracking_uri: str, experiment: str) -> list[str]:
    """Mark FAILED every RUNNING run of `experiment` started on this host by a process that is gone
    (e.g. killed with SIGKILL, or the machine lost power); return their ids."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    host = socket.gethostname()
    stale = []
    for run in client.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'",
                                  max_results=5000):
        tags = run.data.tags
        if tags.get(HOST_TAG) != host or not tags.get(PID_TAG, "").isdigit():
            continue  # another machine's run, or one logged by something else: not ours to judge
        if process_alive(int(tags[PID_TAG]), tags.get(START_TAG, "")):
            continue
        client.set_tag(run.info.run_id, "creditmodel.cleanup",
                       f"process {tags[PID_TAG]} on {host} was gone; marked FAILED at "
                       f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}")
        client.set_terminated(run.info.run_id, "FAILED")
        stale.append(run.info.run_id)
    return stale


@dataclass
class PipelineRun:
    """An open MLflow run of the pipeline; `register` is its last act."""

    tracking_uri: str
    experiment_id: str
    run_id: str
    tracked: TrackedRun | None = None
    finished: bool = False
    _previous: str | None = None

    @property
    def run_model_uri(self) -> str:
        return f"runs:/{self.run_id}/model"

    def register(self, model_name: str, alias: str, tags: dict[str, str], description: str = "") -> TrackedRun:
        """Register this run's model as a new version with `tags` (and `description`), point `alias` at it."""
        from creditmodel.tracking.registry import register_version

        version, self._previous = register_version(self.tracking_uri, self.run_id, model_name, alias, tags,
                                                   description=description)
        self.tracked = TrackedRun(self.tracking_uri, self.experiment_id, self.run_id, model_name, version, alias)
        return self.tracked

    def commit(self, place_outputs: Callable[[], None], model_name: str, alias: str,
               tags: dict[str, str], description: str = "") -> TrackedRun:
        """The last step of a run, not to be cut in two by SIGTERM: put the outputs in place, register
        the model with `tags` (its report's verdict) and `description` and move `alias`, end the run
        FINISHED."""
        with sigterm_deferred():
            place_outputs()
            tracked = self.register(model_name, alias, tags, description)
            _end_run(self.run_id, "FINISHED")
            self.finished = True
        return tracked

    def rollback(self) -> None:
        """Undo `register`: delete the new version and put the alias back where it was."""
        from creditmodel.tracking.registry import unregister_version

        if self.tracked is not None:
            t = self.tracked
            unregister_version(self.tracking_uri, t.model_name, t.model_version, t.model_alias, self._previous)
            self.tracked = None


@contextmanager
def pipeline_run(tracking_uri: str, experiment: str, tags: dict[str, str] | None = None, *,
                 run_name: str | None = None, description: str | None = None) -> Iterator[PipelineRun]:
    """Start an MLflow run named `run_name`, described by `description` and tagged with code, library
    and process identity; end it FINISHED when the block completes, else roll back its registration and
    end it FAILED (KILLED on an interrupt).

    RUNNING runs of this experiment whose process is gone are marked FAILED first."""
    import mlflow
    from mlflow import MlflowClient

    cleaned = cleanup_stale_runs(tracking_uri, experiment)
    if cleaned:
        log.warning("marked %d run(s) left RUNNING by a process that is gone as FAILED: %s", len(cleaned),
                    ", ".join(cleaned))
    experiment_id = ensure_experiment(tracking_uri, experiment)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, description=description,
                                   tags={**process_tags(), **code_version(), **library_versions(), **(tags or {})})
        except BaseException:
            if mlflow.active_run() is not None:  # interrupted just after the run was created
                mlflow.end_run("KILLED")
            raise
    handle = PipelineRun(tracking_uri, experiment_id, run.info.run_id)
    try:
        yield handle
    except BaseException as exc:
        if handle.finished:  # interrupted after its commit: the run is complete and stays so
            raise
        status = "FAILED" if isinstance(exc, Exception) and not terminating() else "KILLED"  # Ctrl-C, SIGTERM
        try:
            handle.rollback()
        except Exception as undo:  # noqa: BLE001 - the original error is the one to report
            log.error("could not roll back the registration of run %s: %s", handle.run_id, undo)
        try:
            MlflowClient(tracking_uri).set_tag(handle.run_id, "creditmodel.failure",
                                               f"{type(exc).__name__}: {exc}"[:500])
            _end_run(handle.run_id, status)
        except Exception as end:  # noqa: BLE001
            log.error("could not mark run %s %s: %s", handle.run_id, status, end)
        raise
    if not handle.finished:
        _end_run(handle.run_id, "FINISHED")


def _end_run(run_id: str, status: str) -> None:
    import mlflow

    while (active := mlflow.active_run()) is not None:  # nested runs left open by an interruption first
        mlflow.end_run(status)
        if active.info.run_id == run_id:
            return
    mlflow.MlflowClient().set_terminated(run_id, status)


def log_pipeline_run(
    run: PipelineRun,
    *,
    config: dict[str, Any],
    fingerprints: dict[str, Any],
    metrics: dict[str, float],
    artifacts_dir: Path,
    input_example: Any = None,
    child_runs: list[dict[str, Any]] | None = None,
    datasets: Sequence[RunDataset] = (),
) -> None:
    """Log config, data fingerprints, the input tables and feature matrix as datasets, metrics,
    artifacts (among them the export bundle, `bundle/`) and the model into the open `run`. The model is
    the bundle as an MLflow pyfunc (creditmodel.export.pyfunc): loaded or served by MLflow it gives
    calibrated PDs and grades, as the bundle does. Nothing is registered here: that happens last, once
    the run's report and outputs exist."""
    import mlflow

    from creditmodel.export.pyfunc import log_pd_model

    params: dict[str, Any] = {}
    _flatten("", config, params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_dict(config, "config.json")
        mlflow.log_dict(fingerprints, "data_fingerprint.json")
        mlflow.set_tags({f"data.{t}.sha256": v["sha256"][:16] for t, v in fingerprints.items()})
        mlflow.log_metrics(metrics)
        log_datasets(datasets)
        mlflow.log_artifacts(str(artifacts_dir))
        for child in child_runs or []:  # e.g. hyper-parameter search trials, nested under this run
            with mlflow.start_run(experiment_id=run.experiment_id, run_name=child["name"], nested=True,
                                  tags=process_tags()):
                mlflow.log_params(child["params"])
                mlflow.log_metrics(child["metrics"])
        log_pd_model(artifacts_dir / "bundle", name="model", input_example=input_example)
    log.info("MLflow run %s logged", run.run_id)


def download_bundle(tracking_uri: str, model_name: str, alias: str | None, run_id: str | None, dst: Path) -> Path:
    """Fetch the export bundle logged with a registered model's run (by alias) or with a given run."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if run_id is None and alias is None:
        raise LookupError(f"model {model_name}: give a run id or a model alias to fetch its export bundle")
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    try:
        if run_id is None:
            run_id = client.get_model_version_by_alias(model_name, str(alias)).run_id
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="bundle", dst_path=str(dst)))
    except MlflowException as exc:
        what = f"run {run_id}" if run_id else f"model {model_name}@{alias}"
        raise LookupError(f"{what} has no export bundle in {tracking_uri}: {exc.message.splitlines()[0]}") from None


def metrics_json(metrics: dict[str, float]) -> str:
    return json.dumps(metrics, indent=2, sort_keys=True)

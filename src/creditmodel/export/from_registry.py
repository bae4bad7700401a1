"""Export a tracked model (`models:/name@alias`, `models:/name/version`, `runs:/RUN_ID/model`) as a bundle.

The trees come from the registered MLflow model itself (the model.txt of the bundle inside creditmodel's
pyfunc, or a LightGBM flavour's text model), read from LightGBM's text format (never unpickled, no
model code run); calibration, master scale, feature schema, model card and scorecard come from the
artifacts of the run that logged it, and the card's validation status from the version's report. Before the bundle is
moved into place, its PDs and grades are compared with the ones the run recorded at training time
on the whole out-of-time split, and any difference above 1e-9 refuses the export.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from creditmodel.exceptions import BundleError, ConfigError, first_line
from creditmodel.export.bundle import PDBundle, load_bundle, write_bundle
from creditmodel.export.signing import load_private_key, sign_bundle
from creditmodel.features.matrix import FeatureSchema
from creditmodel.models.calibration import PDCalibrator
from creditmodel.models.master_scale import MasterScale
from creditmodel.outputs import Output, tracking_inputs

PARITY_TOLERANCE = 1e-9
_MODELS = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")
_RUNS = re.compile(r"^runs:/(?P<run>[0-9a-f]{32})(?:/model)?/?$")


@dataclass
class ModelRef:
    """A model URI resolved against the tracking store."""

    uri: str
    run_id: str
    name: str | None = None
    version: str | None = None
    tags: dict[str, str] | None = None

    @property
    def load_uri(self) -> str:
        return f"models:/{self.name}/{self.version}" if self.name else f"runs:/{self.run_id}/model"


def resolve_model_uri(model_uri: str, tracking_uri: str) -> ModelRef:
    """Find the run (and registry version) behind a model URI; ConfigError names what was not found."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri)
    m, r = _MODELS.match(model_uri), _RUNS.match(model_uri)
    try:
        if r is not None:
            client.get_run(r["run"])
            return ModelRef(model_uri, r["run"])
        if m is None:
            raise ConfigError.of("error.from_registry.bad_uri", uri=model_uri)
        mv = (client.get_model_version_by_alias(m["name"], m["alias"]) if m["alias"]
              else client.get_model_version(m["name"], m["version"]))
    except MlflowException as exc:
        raise ConfigError.of("error.from_registry.uri_not_found", uri=model_uri, tracking_uri=tracking_uri,
                             detail=first_line(exc)) from None
    if not mv.run_id:
        raise ConfigError.of("error.from_registry.no_run", uri=model_uri, version=mv.version)
    return ModelRef(model_uri, mv.run_id, mv.name, str(mv.version), dict(mv.tags or {}))


def download_run_data(ref: ModelRef, tracking_uri: str, dst: Path) -> dict[str, Path]:
    """The run's logged bundle parts and its scored data (features.parquet, scored.parquet)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)
    out = {}
    for artifact in ("bundle", "data"):
        try:
            out[artifact] = Path(mlflow.artifacts.download_artifacts(run_id=ref.run_id, artifact_path=artifact,
                                                                     dst_path=str(dst)))
        except (MlflowException, OSError) as exc:
            raise ConfigError.of("error.from_registry.no_artifacts", run_id=ref.run_id, uri=ref.uri,
                                 artifact=artifact, detail=first_line(exc)) from None
    return out


BOOSTER_CLASS = "lightgbm.basic.Booster"
CODE_LOADER = "mlflow.pyfunc.loaders.code_model"


def _model_text_file(meta: Any, model_dir: Path, uri: str) -> tuple[Path, str]:
    """The LightGBM text model inside a registered model directory, and its name there: the bundle's
    model.txt of creditmodel's pyfunc (logged as code, never pickled), or the data file of a LightGBM
    flavour saving a Booster as text (runs of earlier versions). Anything else is refused."""
    from creditmodel.export.pyfunc import BUNDLE_ARTIFACT, CODE_FILE

    flavors = (meta.get("flavors") or {}) if isinstance(meta, dict) else {}
    pyfunc = flavors.get("python_function")
    if isinstance(pyfunc, dict) and pyfunc.get("loader_module") == CODE_LOADER and "lightgbm" not in flavors:
        artifact = ((pyfunc.get("artifacts") or {}).get(BUNDLE_ARTIFACT) or {}).get("path")
        if Path(str(pyfunc.get("model_code_path", ""))).name != CODE_FILE or not artifact:
            raise BundleError.of("error.from_registry.pyfunc_not_ours", uri=uri, code_file=CODE_FILE,
                                 artifact=BUNDLE_ARTIFACT)
        data = f"{artifact}/model.txt"
    else:
        flavor = flavors.get("lightgbm")
        if not isinstance(flavor, dict) or flavor.get("model_class", BOOSTER_CLASS) != BOOSTER_CLASS:
            if not isinstance(flavor, dict):
                raise BundleError.of("error.from_registry.neither", uri=uri, booster=BOOSTER_CLASS)
            raise BundleError.of("error.from_registry.not_lightgbm", uri=uri, booster=BOOSTER_CLASS,
                                 found=flavor.get("model_class"))
        data = str(flavor.get("data", ""))
    path = (model_dir / data).resolve()
    if not data or not path.is_relative_to(model_dir.resolve()) or not path.is_file():
        raise BundleError.of("error.from_registry.model_file_missing", uri=uri, data=data)
    return path, data


def read_registered_booster(ref: ModelRef, tracking_uri: str, dst: Path) -> Any:
    """The LightGBM booster as registered in MLflow, read from LightGBM's own text format.

    The model directory is downloaded as plain files and only the text model is parsed; nothing of
    it is unpickled or imported (an MLflow loader would run the model's code, or unpickle a model
    whose MLmodel file names a scikit-learn class), so a tampered tracking store cannot run code here."""
    import lightgbm as lgb
    import mlflow
    import yaml
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)
    try:
        model_dir = Path(mlflow.artifacts.download_artifacts(artifact_uri=ref.load_uri, dst_path=str(dst)))
        meta = yaml.safe_load((model_dir / "MLmodel").read_text(encoding="utf-8"))
    except (MlflowException, OSError, yaml.YAMLError) as exc:
        raise ConfigError.of("error.from_registry.mlmodel_unreadable", uri=ref.load_uri,
                             detail=first_line(exc)) from None
    path, data = _model_text_file(meta, model_dir, ref.load_uri)
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("tree\n") or "end of trees" not in text:  # LightGBM aborts on some truncations
        raise BundleError.of("error.from_registry.incomplete_text_model", uri=ref.load_uri, data=data)
    try:
        return lgb.Booster(model_str=text)
    except lgb.basic.LightGBMError as exc:
        raise BundleError.of("error.from_registry.invalid_model", uri=ref.load_uri, data=data,
                             detail=first_line(exc)) from None


class Parity(TypedDict):
    """Bundle against training-time scores on one split (recorded in the exported manifest)."""

    split: str
    rows: int
    max_abs_pd_diff: float
    grade_agreement: float


def parity(bundle: PDBundle, features: pd.DataFrame, scored: pd.DataFrame, split: str = "oot") -> Parity:
    """Bundle PDs and grades against the run's training-time ones on one split."""
    rows = scored["split"] == split
    part = features.loc[features["split"] == split].set_index("loan_id").loc[scored.loc[rows, "loan_id"]]
    pd_ = bundle.predict_pd(part)
    diff = np.abs(pd_ - scored.loc[rows, "pd_lightgbm"].to_numpy())
    return {"split": split, "rows": int(rows.sum()), "max_abs_pd_diff": float(diff.max()) if diff.size else 0.0,
            "grade_agreement": float(np.mean(bundle.grade(pd_) == scored.loc[rows, "grade_lightgbm"].to_numpy()))}


def export_model(model_uri: str, out_dir: str | Path, *, tracking_uri: str, onnx: bool = False,
                 force: bool = False, signing_key: str | Path | None = None, compiled: bool = False) -> dict[str, Any]:
    """Write a verified bundle of `model_uri` to `out_dir` all at once; return its parity.

    `out_dir` must be absent, empty or an earlier output of creditmodel (`creditmodel.outputs`;
    `force` also replaces one whose files were changed since). With `signing_key` (PEM file of an
    Ed25519 private key) the final manifest is signed and the bundle is loaded once more with that
    key's public half before it is moved into place. With `compiled` (needs `signing_key` and lleaves)
    the trees are compiled too (creditmodel.export.compiled), checked against LightGBM on the parity
    rows and the out-of-time split."""
    key = load_private_key(signing_key) if signing_key is not None else None
    if compiled and key is None:
        raise ConfigError.of("error.from_registry.compile_unsigned")
    output = Output(out_dir, kind="dir", command="export", force=force, inputs=tracking_inputs(tracking_uri))
    try:
        ref = resolve_model_uri(model_uri, tracking_uri)
        work = output.scratch()
        parts = download_run_data(ref, tracking_uri, work / "run")
        b = parts["bundle"]
        booster = read_registered_booster(ref, tracking_uri, work / "model")
        old_manifest = json.loads((b / "manifest.json").read_text(encoding="utf-8"))
        card = json.loads((b / "model_card.json").read_text(encoding="utf-8")) if (b / "model_card.json").is_file() else {}
        registry = {"model_uri": model_uri, "registered_model": ref.name, "version": ref.version, "run_id": ref.run_id}
        card["registry"] = registry
        validation = card.setdefault("validation", {})
        validation.pop("status", None)  # a card says only what a validation report said
        if ref.tags and "validation_status" in ref.tags:  # the verdict of the version's validation report
            validation["status"] = ref.tags["validation_status"]
            validation["registry_tags"] = {k: v for k, v in ref.tags.items() if k.startswith("validation")}
        else:
            validation["status"] = "pending"
            validation["note"] = ("no validation report for this model yet: creditmodel report "
                                  f"{model_uri} --out FILE")
        scorecard = pd.read_csv(b / "scorecard.csv") if (b / "scorecard.csv").is_file() else None
        schema = FeatureSchema.from_dict(json.loads((b / "feature_schema.json").read_text(encoding="utf-8")))
        staged = write_bundle(
            output.tmp, booster,
            PDCalibrator.from_dict(json.loads((b / "calibration.json").read_text(encoding="utf-8"))),
            MasterScale.from_dict(json.loads((b / "master_scale.json").read_text(encoding="utf-8"))),
            schema=schema, model_card=card, scorecard_table=scorecard, onnx=onnx,
            provenance={**old_manifest.get("provenance", {}), "mlflow": registry})
        bundle = load_bundle(staged, allow_unsigned=True)  # our own staging copy; signed below, once complete
        features = pd.read_parquet(parts["data"] / "features.parquet")
        scored = pd.read_parquet(parts["data"] / "scored.parquet")
        check = parity(bundle, features, scored)
        if check["max_abs_pd_diff"] > PARITY_TOLERANCE or check["grade_agreement"] < 1.0:
            raise BundleError.of("error.from_registry.parity", uri=model_uri, diff=check["max_abs_pd_diff"],
                                 agree=check["grade_agreement"])
        report: dict[str, Any] = {"parity": check}
        if onnx:
            from creditmodel.export.onnx import onnx_drift

            oot = features[features["split"] == "oot"]
            report["onnx_drift"] = onnx_drift(bundle, oot)
        manifest = json.loads((staged / "manifest.json").read_text(encoding="utf-8"))
        manifest["verification"] = report  # the manifest is not among the checksummed files
        (staged / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if compiled:  # checked against LightGBM on the parity rows and this run's out-of-time split
            from creditmodel.export.compiled import add_compiled

            report["compiled"] = add_compiled(staged, bundle, parity_frame=features)
        if key is not None:
            sign_bundle(staged, key)
        final = (load_bundle(staged, trusted_keys=[key.public_key()]) if key is not None
                 else load_bundle(staged, allow_unsigned=True))
        report["signature"] = final.signature
        if compiled and final.compiled is None:
            raise BundleError.of("error.from_registry.compiled_not_loaded", uri=model_uri, note=final.compiled_note)
        output.commit()
    except BaseException:
        output.discard()
        raise
    return {"model": ref, **report}

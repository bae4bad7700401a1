"""The export bundle: everything a pricing step or scoring service needs, and nothing executable.

A bundle is a directory of plain files, each listed with its SHA-256 in manifest.json:

    model.txt            LightGBM's own text format (raw log-odds margin)
    calibration.json     margin -> PD
    master_scale.json    PD -> credit grade
    feature_schema.json  feature order, kinds, categories, allowed ranges, null policy, reason texts
    model_card.json      data window, metrics, validation status, intended use and limits
    scorecard.csv        (optional) the benchmark scorecard as a points table
    model.onnx           (optional) the same trees for non-Python services (float32: see manifest)
    manifest.json        format version, checksums, provenance (the MLflow run it came from)

Loading parses text, JSON and CSV only; it never unpickles, so a bundle cannot run code on load.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from creditmodel import __version__
from creditmodel.exceptions import BundleError
from creditmodel.features.matrix import FeatureSchema
from creditmodel.models.calibration import PDCalibrator
from creditmodel.models.gbm import LightGBMPD
from creditmodel.models.master_scale import MasterScale
from creditmodel.outputs import Output

FORMAT = "creditmodel-pd-bundle"
FORMAT_VERSION = 2
FILES = ("model.txt", "calibration.json", "master_scale.json", "feature_schema.json", "model_card.json")
OPTIONAL_FILES = ("scorecard.csv", "model.onnx")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_bundle(
    out_dir: str | Path,
    model: LightGBMPD | lgb.Booster,
    calibrator: PDCalibrator,
    master_scale: MasterScale,
    *,
    schema: FeatureSchema | None = None,
    model_card: dict[str, Any] | None = None,
    scorecard_table: pd.DataFrame | None = None,
    onnx: bool = False,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the bundle into `out_dir` all at once (a staging sibling renamed into place).

    An existing `out_dir` is replaced only when it is empty or an earlier output of creditmodel
    (`creditmodel.outputs`); `overwrite` also replaces such an output whose files were changed since."""
    booster = model if isinstance(model, lgb.Booster) else model.booster_
    schema = schema if schema is not None else model.schema_
    out_dir = Path(out_dir)
    output = Output(out_dir, kind="dir", command="write_bundle", force=overwrite, label="bundle directory")
    tmp = output.tmp
    try:
        (tmp / "model.txt").write_text(booster.model_to_string(), encoding="utf-8")
        _dump(tmp / "calibration.json", calibrator.to_dict())
        _dump(tmp / "master_scale.json", master_scale.to_dict())
        _dump(tmp / "feature_schema.json", schema.to_dict())
        _dump(tmp / "model_card.json", model_card or {})
        names = list(FILES)
        if scorecard_table is not None:
            scorecard_table.to_csv(tmp / "scorecard.csv", index=False)
            names.append("scorecard.csv")
        onnx_info = None
        if onnx:
            from creditmodel.export.onnx import write_onnx

            onnx_info = write_onnx(booster, schema, tmp / "model.onnx")
            names.append("model.onnx")
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "creditmodel_version": __version__,
            "lightgbm_version": lgb.__version__,
            "output": "12-month probability of default, calibrated, and its master-scale grade",
            "provenance": provenance or {},
            "files": {name: {"sha256": _sha256(tmp / name), "bytes": (tmp / name).stat().st_size} for name in names},
        }
        if onnx_info:
            manifest["onnx"] = onnx_info
        _dump(tmp / "manifest.json", manifest)
        output.commit()
    except BaseException:
        output.discard()
        raise
    return out_dir


def _dump(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"bundle file {path.name}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BundleError(f"bundle file {path.name}: expected a JSON object")
    return data


@dataclass
class PDBundle:
    """A loaded, verified bundle: scores feature rows into calibrated PDs and grades."""

    path: Path
    booster: lgb.Booster
    calibrator: PDCalibrator
    master_scale: MasterScale
    schema: FeatureSchema
    manifest: dict[str, Any]
    model_card: dict[str, Any] = field(default_factory=dict)
    scorecard: pd.DataFrame | None = None

    def check_request(self, frame: pd.DataFrame) -> None:
        """Raise RequestError naming the first missing, null, non-numeric, out-of-range or unknown value."""
        self.schema.check(frame)

    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        self.check_request(frame)
        return self.booster.predict(self.schema.encode(frame), raw_score=True)

    def predict_pd(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated 12-month PD for each row (rows hold the schema's features; extra columns ignored)."""
        return self.calibrator.predict(self.raw_score(frame))

    def grade(self, pd_: np.ndarray) -> np.ndarray:
        return self.master_scale.grade(pd_)


def load_bundle(path: str | Path) -> PDBundle:
    """Verify every checksum, then parse the bundle. Any doubt raises BundleError; nothing is unpickled."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"bundle directory {path} does not exist")
    if not (path / "manifest.json").is_file():
        raise BundleError(f"bundle {path}: manifest.json is missing")
    manifest = _load_json(path / "manifest.json")
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"bundle {path}: format {manifest.get('format')!r} version "
                          f"{manifest.get('format_version')!r}, expected {FORMAT!r} version {FORMAT_VERSION}")
    listed = manifest.get("files")
    if not isinstance(listed, dict) or not set(FILES) <= set(listed) or set(listed) - set(FILES) - set(OPTIONAL_FILES):
        raise BundleError(f"bundle {path}: manifest must list {list(FILES)} and optionally {list(OPTIONAL_FILES)}")
    extra = sorted(p.name for p in path.iterdir() if p.name not in (*listed, "manifest.json"))
    if extra:
        raise BundleError(f"bundle {path}: unexpected file {extra[0]!r} (the manifest lists only "
                          f"{sorted(listed)} besides manifest.json)")
    for name in listed:
        f = path / name
        if not f.is_file():
            raise BundleError(f"bundle {path}: file {name} is missing")
        digest = _sha256(f)
        if digest != listed[name].get("sha256"):
            raise BundleError(f"bundle file {name}: sha256 {digest[:12]}... does not match the manifest's "
                              f"{str(listed[name].get('sha256'))[:12]}... (tampered or corrupted)")
    try:
        booster = lgb.Booster(model_str=(path / "model.txt").read_text(encoding="utf-8"))
        calibrator = PDCalibrator.from_dict(_load_json(path / "calibration.json"))
        scale = MasterScale.from_dict(_load_json(path / "master_scale.json"))
        schema = FeatureSchema.from_dict(_load_json(path / "feature_schema.json"))
        card = _load_json(path / "model_card.json")
        scorecard = pd.read_csv(path / "scorecard.csv") if "scorecard.csv" in listed else None
    except BundleError:
        raise
    except (lgb.basic.LightGBMError, KeyError, TypeError, ValueError, pd.errors.ParserError) as exc:
        raise BundleError(f"bundle {path}: cannot be parsed ({type(exc).__name__}: {exc})") from None
    if list(booster.feature_name()) != list(schema.names):
        raise BundleError(f"bundle {path}: model features do not match feature_schema.json")
    return PDBundle(path, booster, calibrator, scale, schema, manifest, card, scorecard)

"""The export bundle: everything a pricing step or scoring service needs, and nothing executable.

A bundle is a directory of plain files, each listed with its SHA-256 in manifest.json:

    model.txt            LightGBM's own text format (raw log-odds margin)
    calibration.json     margin -> PD
    master_scale.json    PD -> credit grade
    feature_schema.json  feature order, kinds, categories, allowed ranges, null policy, reason texts
    model_card.json      data window, metrics, validation status, intended use and limits
    scorecard.csv        (optional) the benchmark scorecard as a points table
    model.onnx           (optional) the same trees for non-Python services (float32: see manifest)
    model_compiled.o     (optional) the same trees as native code, used for scoring when the machine
                         can run it and it scores as LightGBM (creditmodel.export.compiled)
    feature_catalogue.json (optional) the declarations of the features the model reads and the
                         compiled DuckDB query, so a service computes them as training did; its
                         hash is also in manifest.json (feature_catalogue.sha256)
    manifest.json        format version, checksums, provenance (the MLflow run it came from)
    manifest.sig         Ed25519 signature of manifest.json's bytes and the signer's key id
                         (see creditmodel.export.signing); absent in an unsigned bundle

Loading first checks the signature against the trusted public keys, then the size and SHA-256 of
every file, then every field it parses (model.txt completely before LightGBM sees it), so a bad
bundle is one BundleError naming the bundle, the file and what was expected. It parses text, JSON
and CSV only; it never unpickles, so a bundle cannot run code on load.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import lightgbm as lgb
import numpy as np
import pandas as pd
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from creditmodel import __version__
from creditmodel.exceptions import BundleError, ConfigError, Texted, first_line
from creditmodel.export.compiled import COMPILED_FILE, load_compiled
from creditmodel.export.contents import (
    check_calibration,
    check_feature_schema,
    check_finite,
    check_manifest_files,
    check_master_scale,
)
from creditmodel.export.model_text import check_model_text
from creditmodel.export.signing import (
    SIGNATURE_FILE,
    Signature,
    TrustedKey,
    load_private_key,
    resolve_trusted_keys,
    sign_bundle,
    verify_manifest,
)
from creditmodel.features.catalogue import Feature
from creditmodel.features.matrix import FeatureSchema
from creditmodel.features.online import CATALOGUE_FILE, catalogue_document, catalogue_from_document, needed_features
from creditmodel.models.calibration import PDCalibrator
from creditmodel.models.gbm import LightGBMPD
from creditmodel.models.master_scale import MasterScale
from creditmodel.outputs import Output
from creditmodel.texts import Phrase, text

if TYPE_CHECKING:
    from creditmodel.models.pd_model import PDModel

FORMAT = "creditmodel-pd-bundle"
FORMAT_VERSION = 2
FILES = ("model.txt", "calibration.json", "master_scale.json", "feature_schema.json", "model_card.json")
OPTIONAL_FILES = ("scorecard.csv", "model.onnx", CATALOGUE_FILE, COMPILED_FILE)


def _output_texts(model_card: dict[str, Any] | None) -> dict[str, str]:
    """The manifest's `output` in words, stating the label the PD is of (the model card's target), in
    English and Chinese; a card without one points to model_card.json rather than assuming a window."""
    card = model_card or {}
    if card.get("target") and card.get("target_zh"):
        return {"output": text("bundle.output", "en", target=card["target"]),
                "output_zh": text("bundle.output", "zh", target=card["target_zh"])}
    return {"output": text("bundle.output_unknown", "en"), "output_zh": text("bundle.output_unknown", "zh")}


def _at(path: Path, name: str) -> Phrase:
    """Where a message of the bundle's contents points, "bundle DIR: file", in the language of the message."""
    return Phrase("error.bundle.where", {"path": path, "name": name})


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_bundle(
    out_dir: str | Path,
    model: PDModel | LightGBMPD | lgb.Booster,
    calibrator: PDCalibrator | None = None,
    master_scale: MasterScale | None = None,
    *,
    schema: FeatureSchema | None = None,
    model_card: dict[str, Any] | None = None,
    scorecard_table: pd.DataFrame | None = None,
    onnx: bool = False,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = False,
    signing_key: str | Path | Ed25519PrivateKey | None = None,
    catalogue: Sequence[Feature] | None = None,
) -> Path:
    """Write the bundle into `out_dir` all at once (a staging sibling renamed into place).

    `model` is a fitted PDModel with a LightGBM estimator and a master scale (it carries its calibrator
    and grades), or a fitted LightGBMPD or bare Booster given with its `calibrator` and `master_scale`.

    An existing `out_dir` is replaced only when it is empty or an earlier output of creditmodel
    (`creditmodel.outputs`); `overwrite` also replaces such an output whose files were changed since.
    With `signing_key` (an Ed25519 private key or its PEM file) the manifest is signed (manifest.sig).
    With `catalogue` (the run's feature declarations) the features the model reads, and the derived
    features' inputs, are written with their compiled SQL (feature_catalogue.json)."""
    from creditmodel.models.pd_model import PDModel  # here: the scoring path loads bundles, never writes them

    if isinstance(model, PDModel):
        if calibrator is not None or master_scale is not None:
            raise ConfigError.of("error.bundle.pdmodel_with_parts")
        if not hasattr(model, "calibrator_") or not isinstance(model.estimator_, LightGBMPD):
            raise ConfigError.of("error.bundle.pdmodel_unfitted")
        if model.master_scale_ is None:
            raise ConfigError.of("error.bundle.pdmodel_no_master_scale")
        model, calibrator, master_scale = model.estimator_, model.calibrator_, model.master_scale_
    elif calibrator is None or master_scale is None:
        raise ConfigError.of("error.bundle.parts_needed")
    key = load_private_key(signing_key) if isinstance(signing_key, (str, Path)) else signing_key
    if isinstance(model, lgb.Booster):
        if schema is None:  # a bare Booster knows its feature names, not their kinds, categories or ranges
            raise ConfigError.of("error.bundle.booster_no_schema")
        booster = model
    else:
        booster = model.booster_
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
        catalogue_info = None
        if catalogue is not None:
            doc = catalogue_document(needed_features(catalogue, list(schema.names)))
            _dump(tmp / CATALOGUE_FILE, doc)
            names.append(CATALOGUE_FILE)
            catalogue_info = {"sha256": doc["sha256"], "features": len(doc["features"])}
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
            **_output_texts(model_card),
            "provenance": provenance or {},
            "files": {name: {"sha256": _sha256(tmp / name), "bytes": (tmp / name).stat().st_size} for name in names},
        }
        if onnx_info:
            manifest["onnx"] = onnx_info
        if catalogue_info:
            manifest["feature_catalogue"] = catalogue_info
        _dump(tmp / "manifest.json", manifest)
        if key is not None:
            sign_bundle(tmp, key)
        output.commit()
    except BaseException:
        output.discard()
        raise
    return out_dir


def _dump(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")


def _parse_json(raw: bytes, path: Path, name: str) -> dict[str, Any]:
    """The JSON object of the bundle's file `name`; BundleError naming the bundle and the file."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError.of("error.bundle.json_invalid", path=path, name=name, detail=str(exc)) from None
    except RecursionError:
        raise BundleError.of("error.bundle.json_too_deep", path=path, name=name) from None
    if not isinstance(data, dict):
        raise BundleError.of("error.bundle.json_not_object", path=path, name=name, kind=type(data).__name__)
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
    signature: Signature = field(default_factory=lambda: Signature(None, False))
    catalogue: tuple[Feature, ...] | None = None  # the features' declarations (None: an older bundle)
    compiled: Any = None  # the compiled trees (creditmodel.export.compiled.CompiledForest) when used
    compiled_note: str | None = None  # why model_compiled.o is not used, when the bundle has one

    def check_request(self, frame: pd.DataFrame) -> None:
        """Raise RequestError naming the first missing, null, non-numeric, out-of-range or unknown value."""
        self.schema.check(frame)

    def margin(self, X: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """Raw log-odds margins of an encoded matrix: the compiled trees when in use, else LightGBM
        (the same numbers to 1e-9 in PD, checked at load); num_threads 0 = all cores."""
        if self.compiled is not None:
            return self.compiled.raw_score(X, num_threads)
        return np.asarray(self.booster.predict(X, raw_score=True, num_threads=num_threads), dtype=np.float64)

    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        self.check_request(frame)
        return self.margin(self.schema.encode(frame))

    def predict_pd(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated PD (of the label in the model card) for each row (rows hold the schema's features;
        extra columns ignored)."""
        return self.calibrator.predict(self.raw_score(frame))

    def grade(self, pd_: np.ndarray) -> np.ndarray:
        return self.master_scale.grade(pd_)

    @property
    def currency(self) -> str | None:
        """The currency of the data dictionary the model was trained under (its model card), which its amount
        features are in; None when the card does not say (bundles written before it did)."""
        said = (self.model_card.get("data_dictionary") or {}).get("currency") if isinstance(self.model_card, dict) \
            else None
        return said if isinstance(said, str) and said else None

    def check_currency(self, dictionary: Any, where: str) -> None:
        """Refuse to read amounts of ``dictionary`` (its currency) with a model trained on another currency's:
        loan amounts, sales and bounds would be off by the exchange rate without any error."""
        if self.currency is not None and dictionary.currency != self.currency:
            raise ConfigError.of("error.bundle.currency_mismatch", where=where, source=dictionary.source,
                                 dictionary_currency=dictionary.currency, path=self.path,
                                 trained_currency=self.currency)


def _read_listed(path: Path, name: str, entry: dict[str, Any]) -> bytes:
    """A listed file's bytes, read once, checked against the manifest's size and SHA-256."""
    f = path / name
    if f.is_symlink() or (f.exists() and not f.is_file()):
        raise BundleError.of("error.bundle.not_regular_file", path=path, name=name)
    if not f.exists():
        raise BundleError.of("error.bundle.file_missing", path=path, name=name)
    size = f.stat().st_size
    if size > entry["bytes"] + (1 << 20):
        raise BundleError.of("error.bundle.file_too_large", path=path, name=name, size=size, expected=entry["bytes"])
    raw = f.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != entry["sha256"] or len(raw) != entry["bytes"]:
        raise BundleError.of("error.bundle.file_digest", path=path, name=name, digest=digest[:12], size=len(raw),
                             expected_digest=entry["sha256"][:12], expected=entry["bytes"])
    return raw


def _catalogue_error(exc: Exception, path: Path, where: str) -> BundleError:
    """The BundleError of a feature_catalogue.json its declarations cannot be read from: the reader's own
    catalogue text when it said one (both languages; its `where` said in them too), else its first line after
    `where` (what it names)."""
    said = str(exc)
    if isinstance(exc, Texted) and exc.text_id is not None and where in said:
        fields = {k: _at(path, CATALOGUE_FILE) if k == "where" and v == where else v for k, v in exc.fields.items()}
        err: BundleError = BundleError.of(exc.text_id, **fields)
        return err
    first = said.splitlines()[0] if said else ""
    if first.startswith(f"{where}: "):
        return BundleError.of("error.bundle.catalogue_invalid", path=path, file=CATALOGUE_FILE,
                              detail=first[len(where) + 2:])
    if where in said:
        return BundleError.of("error.bundle.catalogue_said", detail=first)
    return BundleError.of("error.bundle.catalogue_invalid", path=path, file=CATALOGUE_FILE, detail=said)


def load_bundle(path: str | Path, *, trusted_keys: Iterable[TrustedKey] | None = None,
                allow_unsigned: bool = False) -> PDBundle:
    """Verify a bundle's author and every file, then parse it. Any doubt raises one-line BundleError.

    `trusted_keys`: Ed25519 public keys (objects or PEM files) whose signature is accepted; None reads
    $CREDITMODEL_TRUSTED_KEYS (os.pathsep-separated files). `allow_unsigned` (development only) also
    accepts a bundle without signature or signed by an untrusted key; a signature that does not
    verify is refused either way. Nothing is unpickled.
    """
    path = Path(path)
    if not path.is_dir():
        raise BundleError.of("error.bundle.dir_missing", path=path)
    manifest_file = path / "manifest.json"
    if not manifest_file.is_file() or manifest_file.is_symlink():
        raise BundleError.of("error.bundle.manifest_missing", path=path)
    manifest_raw = manifest_file.read_bytes()
    sig_file = path / SIGNATURE_FILE
    if sig_file.is_symlink() or (sig_file.exists() and not sig_file.is_file()):
        raise BundleError.of("error.bundle.signature_not_file", path=path)
    signature = verify_manifest(path, manifest_raw, sig_file.read_bytes() if sig_file.exists() else None,
                                resolve_trusted_keys(trusted_keys), allow_unsigned=allow_unsigned)
    manifest = _parse_json(manifest_raw, path, "manifest.json")
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError.of("error.bundle.format_version", path=path, format=str(manifest.get("format"))[:40],
                             version=str(manifest.get("format_version"))[:20], expected_format=FORMAT,
                             expected_version=FORMAT_VERSION)
    files = manifest.get("files")
    check_manifest_files(files, _at(path, "manifest.json"), FILES, OPTIONAL_FILES)
    listed = cast(dict[str, Any], files)  # checked just above
    extra = sorted(p.name for p in path.iterdir() if p.name not in (*listed, "manifest.json", SIGNATURE_FILE))
    if extra:
        raise BundleError.of("error.bundle.unexpected_file", path=path, name=extra[0], listed=sorted(listed))
    raw = {name: _read_listed(path, name, entry) for name, entry in listed.items()}
    docs = {}
    for name in ("calibration.json", "master_scale.json", "feature_schema.json", "model_card.json"):
        docs[name] = _parse_json(raw[name], path, name)
    check_calibration(docs["calibration.json"], _at(path, "calibration.json"))
    check_master_scale(docs["master_scale.json"], _at(path, "master_scale.json"))
    check_feature_schema(docs["feature_schema.json"], _at(path, "feature_schema.json"))
    check_finite(docs["model_card.json"], _at(path, "model_card.json"))
    parsed: dict[str, Any] = {}
    for name, parse in (("calibration.json", PDCalibrator.from_dict), ("master_scale.json", MasterScale.from_dict),
                        ("feature_schema.json", FeatureSchema.from_dict)):
        try:
            parsed[name] = parse(docs[name])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BundleError.of("error.bundle.unreadable", path=path, name=name, kind=type(exc).__name__,
                                 detail=str(exc)) from None
    schema = parsed["feature_schema.json"]
    try:
        text = raw["model.txt"].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError.of("error.bundle.model_not_utf8", path=path, detail=str(exc)) from None
    n_trees = check_model_text(text, _at(path, "model.txt"), feature_names=list(schema.names))
    try:
        booster = lgb.Booster(model_str=text)
    except (lgb.basic.LightGBMError, ValueError) as exc:
        raise BundleError.of("error.bundle.model_unreadable", path=path, detail=first_line(exc)) from None
    if booster.num_trees() != n_trees or list(booster.feature_name()) != list(schema.names):
        raise BundleError.of("error.bundle.model_mismatch", path=path, trees=booster.num_trees(),
                             features=booster.num_feature(), expected_trees=n_trees,
                             expected_features=len(schema.names))
    scorecard = None
    if "scorecard.csv" in listed:
        try:
            scorecard = pd.read_csv(io.BytesIO(raw["scorecard.csv"]))
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise BundleError.of("error.bundle.scorecard_unreadable", path=path, kind=type(exc).__name__,
                                 detail=str(exc).splitlines()[0] if str(exc) else "") from None
    catalogue = None
    if CATALOGUE_FILE in listed:
        where = f"bundle {path}: {CATALOGUE_FILE}"
        doc = _parse_json(raw[CATALOGUE_FILE], path, CATALOGUE_FILE)
        try:
            catalogue = catalogue_from_document(doc, where)
        except (TypeError, ValueError) as exc:
            raise _catalogue_error(exc, path, where) from None
        declared = manifest.get("feature_catalogue")
        if not isinstance(declared, dict) or declared.get("sha256") != doc.get("sha256"):
            raise BundleError.of("error.bundle.catalogue_digest", path=path, file=CATALOGUE_FILE,
                                 digest=str(doc.get("sha256"))[:12])
        absent = [n for n in schema.names if n not in {f.name for f in catalogue}]
        if absent:
            raise BundleError.of("error.bundle.catalogue_undeclared", path=path, file=CATALOGUE_FILE, name=absent[0],
                                 n=len(absent))
    if ("compiled" in manifest) != (COMPILED_FILE in listed):
        raise BundleError.of("error.bundle.compiled_pair", path=path, file=COMPILED_FILE)
    compiled = None
    if COMPILED_FILE in listed:
        compiled = load_compiled(f"bundle {path}", raw[COMPILED_FILE], manifest["compiled"],
                                 model_sha256=listed["model.txt"]["sha256"], signed=signature.trusted,
                                 booster=booster, calibrator=parsed["calibration.json"], schema=schema)
    return PDBundle(path, booster, parsed["calibration.json"], parsed["master_scale.json"], schema, manifest,
                    docs["model_card.json"], scorecard, signature, catalogue,
                    compiled.forest if compiled else None, compiled.note if compiled else None)


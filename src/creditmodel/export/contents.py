"""Field-level checks of a bundle's JSON files, so that a bad value is named, never a traceback.

Python's json module reads NaN, Infinity and 1e999 without complaint, and the estimators'
from_dict methods trust their input; these checks run first and raise BundleError naming the
file and the field (e.g. ``calibration.json: field slope: NaN, expected a finite number``).
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from creditmodel.exceptions import BundleError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def first_non_finite(obj: Any, path: str = "") -> str | None:
    """The JSON path of the first NaN or infinite number inside `obj`, or None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return path or "(top level)"
    if isinstance(obj, dict):
        for k, v in obj.items():
            found = first_non_finite(v, f"{path}.{k}" if path else str(k))
            if found:
                return found
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found = first_non_finite(v, f"{path}[{i}]")
            if found:
                return found
    return None


def check_finite(data: Any, where: str) -> None:
    """Raise BundleError naming the first non-finite number of a parsed JSON document."""
    bad = first_non_finite(data)
    if bad is not None:
        raise BundleError(f"{where}: field {bad}: not a finite number (NaN or infinite)")


def _number(data: dict[str, Any], key: str, where: str, lo: float = -math.inf, hi: float = math.inf,
            *, lo_open: bool = False, hi_open: bool = False, required: bool = True) -> float | None:
    if key not in data:
        if required:
            raise BundleError(f"{where}: field {key} is missing")
        return None
    x = data[key]
    if not _is_number(x) or not math.isfinite(x):
        raise BundleError(f"{where}: field {key}: value {x!r}, expected a finite number")
    if x < lo or x > hi or (lo_open and x == lo) or (hi_open and x == hi):
        raise BundleError(f"{where}: field {key}: value {x!r}, expected a number in "
                          f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}")
    return float(x)


def _numbers(data: dict[str, Any], key: str, where: str, lo: float = -math.inf, hi: float = math.inf) -> list[float]:
    values = data.get(key)
    if not isinstance(values, list) or not values:
        raise BundleError(f"{where}: field {key}: expected a non-empty list of numbers")
    for i, x in enumerate(values):
        if not _is_number(x) or not math.isfinite(x) or not lo <= x <= hi:
            raise BundleError(f"{where}: field {key}[{i}]: value {x!r}, expected a finite number in [{lo}, {hi}]")
    return [float(x) for x in values]


def check_manifest_files(listed: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    """The manifest's `files` table: exactly the known file names, each {"sha256": hex, "bytes": int}."""
    if not isinstance(listed, dict):
        raise BundleError(f"{where}: field files: expected an object of file name -> {{sha256, bytes}}")
    for name, entry in listed.items():
        if "/" in name or "\\" in name or name in ("", ".", "..") or name.startswith("."):
            raise BundleError(f"{where}: field files: {name!r} is not a plain file name of the bundle "
                              f"(expected only {list(required + optional)})")
        if name not in required + optional:
            raise BundleError(f"{where}: field files: unknown file {name!r} (expected {list(required)} "
                              f"and optionally {list(optional)})")
        if not isinstance(entry, dict) or set(entry) != {"sha256", "bytes"}:
            keys = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise BundleError(f"{where}: field files.{name}: {keys}, expected exactly sha256 and bytes")
        if not isinstance(entry["sha256"], str) or not _SHA256.match(entry["sha256"]):
            raise BundleError(f"{where}: field files.{name}.sha256: {str(entry['sha256'])[:70]!r}, "
                              f"expected 64 lower-case hex digits")
        if not isinstance(entry["bytes"], int) or isinstance(entry["bytes"], bool) or entry["bytes"] < 0:
            raise BundleError(f"{where}: field files.{name}.bytes: {entry['bytes']!r}, expected a whole number >= 0")
    missing = [n for n in required if n not in listed]
    if missing:
        raise BundleError(f"{where}: field files does not list {missing[0]} (expected {list(required)})")


def check_calibration(data: dict[str, Any], where: str) -> None:
    """calibration.json: a known method with finite parameters, PD floor in [0, 1), PDs in [0, 1]."""
    check_finite(data, where)
    method = data.get("method")
    if method not in ("platt", "isotonic"):
        raise BundleError(f"{where}: field method: {method!r}, expected 'platt' or 'isotonic'")
    _number(data, "pd_floor", where, 0.0, 1.0, hi_open=True)
    _number(data, "level_shift", where, -50.0, 50.0, required=False)
    if method == "platt":
        _number(data, "slope", where)
        _number(data, "intercept", where)
    else:
        thresholds = _numbers(data, "thresholds", where)
        values = _numbers(data, "values", where, 0.0, 1.0)
        if len(thresholds) != len(values):
            raise BundleError(f"{where}: fields thresholds and values: {len(thresholds)} and {len(values)} "
                              f"entries, expected equally many")
        if any(b < a for a, b in zip(thresholds, thresholds[1:])):
            raise BundleError(f"{where}: field thresholds: expected a rising list")


def check_master_scale(data: dict[str, Any], where: str) -> None:
    """master_scale.json: unique grade names, rising upper bounds in (0, 1] ending at 1, PDs in their bands."""
    check_finite(data, where)
    grades = data.get("grades")
    if not isinstance(grades, list) or not grades or not all(isinstance(g, str) and g for g in grades) \
            or len(set(grades)) != len(grades):
        raise BundleError(f"{where}: field grades: expected a non-empty list of unique grade names")
    bounds = _numbers(data, "upper_bounds", where, 0.0, 1.0)
    if len(bounds) != len(grades):
        raise BundleError(f"{where}: field upper_bounds: {len(bounds)} bounds for {len(grades)} grades, "
                          f"expected one per grade")
    if bounds[0] <= 0 or any(b <= a for a, b in zip(bounds, bounds[1:])) or bounds[-1] != 1.0:
        raise BundleError(f"{where}: field upper_bounds: {bounds}, expected bounds rising strictly "
                          f"inside (0, 1] and ending at 1.0")
    floor = _number(data, "pd_floor", where, 0.0, bounds[0], hi_open=True, required=False) or 0.0
    if "assigned_pd" in data:
        assigned = _numbers(data, "assigned_pd", where, 0.0, 1.0)
        lower = [floor, *bounds[:-1]]
        if len(assigned) != len(bounds):
            raise BundleError(f"{where}: field assigned_pd: {len(assigned)} PDs, expected {len(bounds)}")
        for i, (lo, a, hi) in enumerate(zip(lower, assigned, bounds)):
            if not lo <= a <= hi:
                raise BundleError(f"{where}: field assigned_pd[{i}]: value {a}, expected a PD in "
                                  f"grade {grades[i]}'s band [{lo}, {hi}]")


def _check_labels(labels: Any, categories: list[str], at: str) -> None:
    """A categorical feature's labels: an object of its categories, each {"en": text, "zh": text} (either)."""
    if not isinstance(labels, dict):
        raise BundleError(f"{at}: field labels: expected an object of category -> texts")
    for value, texts in labels.items():
        if value not in categories:
            raise BundleError(f"{at}: field labels: {str(value)[:40]!r} is not one of its categories")
        if not isinstance(texts, dict) or not set(texts) <= {"en", "zh"} or \
                not all(isinstance(t, str) and t for t in texts.values()):
            raise BundleError(f"{at}: field labels.{value}: expected {{\"en\": text, \"zh\": text}} "
                              f"(non-empty strings)")


def check_feature_schema(data: dict[str, Any], where: str) -> None:
    """feature_schema.json: unique names, a known kind each, categories or a finite range with min <= max."""
    check_finite(data, where)
    feats = data.get("features")
    if not isinstance(feats, list) or not feats:
        raise BundleError(f"{where}: field features: expected a non-empty list")
    seen: set[str] = set()
    for i, f in enumerate(feats):
        at = f"{where}: field features[{i}]"
        if not isinstance(f, dict):
            raise BundleError(f"{at}: expected an object")
        name = f.get("name")
        if not isinstance(name, str) or not name or name in seen:
            raise BundleError(f"{at}.name: {name!r}, expected a unique non-empty feature name")
        seen.add(name)
        at = f"{where}: feature {name!r}"
        kind = f.get("kind")
        if kind not in ("numeric", "categorical"):
            raise BundleError(f"{at}: field kind {kind!r}, expected 'numeric' or 'categorical'")
        if not isinstance(f.get("nullable", True), bool):
            raise BundleError(f"{at}: field nullable {f.get('nullable')!r}, expected true or false")
        if kind == "categorical":
            cats = f.get("categories")
            if not isinstance(cats, list) or not cats or not all(isinstance(c, str) for c in cats) \
                    or len(set(cats)) != len(cats):
                raise BundleError(f"{at}: field categories: expected a non-empty list of unique strings")
            _check_labels(f.get("labels", {}), cats, at)
            continue
        for lo_key, hi_key in (("min", "max"), ("training_min", "training_max")):
            if (lo_key in f) != (hi_key in f):
                raise BundleError(f"{at}: fields {lo_key}/{hi_key}: expected both or neither")
            if lo_key in f:
                lo = _number(f, lo_key, at)
                hi = _number(f, hi_key, at)
                if lo > hi:  # type: ignore[operator]
                    raise BundleError(f"{at}: fields {lo_key}/{hi_key}: {lo} > {hi}, expected {lo_key} <= {hi_key}")


def model_id(bundle: Any) -> str:
    """The first 12 hex digits of the bundle's model.txt checksum: the id the scoring service answers
    with, its scoring log records and monitoring tags its runs by."""
    files = bundle.manifest.get("files", {}) if isinstance(bundle.manifest, dict) else {}
    sha = (files.get("model.txt") or {}).get("sha256")
    if not sha:
        sha = hashlib.sha256(bundle.booster.model_to_string().encode()).hexdigest()
    return str(sha)[:12]

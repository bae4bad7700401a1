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
from creditmodel.texts import Phrase

# where a message points: "bundle DIR: file.json" as the caller names it, or a Phrase of the catalogue
Where = str | Phrase

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


def check_finite(data: Any, where: Where) -> None:
    """Raise BundleError naming the first non-finite number of a parsed JSON document."""
    bad = first_non_finite(data)
    if bad == "(top level)":
        raise BundleError.of("error.contents.non_finite_top", where=where)
    if bad is not None:
        raise BundleError.of("error.contents.non_finite", where=where, path=bad)


def _number(data: dict[str, Any], key: str, where: Where, lo: float = -math.inf, hi: float = math.inf,
            *, lo_open: bool = False, hi_open: bool = False, required: bool = True) -> float | None:
    if key not in data:
        if required:
            raise BundleError.of("error.contents.field_missing", where=where, key=key)
        return None
    x = data[key]
    if not _is_number(x) or not math.isfinite(x):
        raise BundleError.of("error.contents.not_finite", where=where, key=key, value=x)
    if x < lo or x > hi or (lo_open and x == lo) or (hi_open and x == hi):
        raise BundleError.of("error.contents.outside", where=where, key=key, value=x, lo=lo, hi=hi,
                             opening="(" if lo_open else "[", closing=")" if hi_open else "]")
    return float(x)


def _numbers(data: dict[str, Any], key: str, where: Where, lo: float = -math.inf, hi: float = math.inf) -> list[float]:
    values = data.get(key)
    if not isinstance(values, list) or not values:
        raise BundleError.of("error.contents.numbers", where=where, key=key)
    for i, x in enumerate(values):
        if not _is_number(x) or not math.isfinite(x) or not lo <= x <= hi:
            raise BundleError.of("error.contents.numbers_item", where=where, key=key, i=i, value=x, lo=lo, hi=hi)
    return [float(x) for x in values]


def check_manifest_files(listed: Any, where: Where, required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    """The manifest's `files` table: exactly the known file names, each {"sha256": hex, "bytes": int}."""
    if not isinstance(listed, dict):
        raise BundleError.of("error.contents.files_not_object", where=where)
    for name, entry in listed.items():
        if "/" in name or "\\" in name or name in ("", ".", "..") or name.startswith("."):
            raise BundleError.of("error.contents.files_not_plain", where=where, name=name,
                                 allowed=list(required + optional))
        if name not in required + optional:
            raise BundleError.of("error.contents.files_unknown", where=where, name=name, required=list(required),
                                 optional=list(optional))
        if not isinstance(entry, dict) or set(entry) != {"sha256", "bytes"}:
            keys = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise BundleError.of("error.contents.file_keys", where=where, name=name, keys=keys)
        if not isinstance(entry["sha256"], str) or not _SHA256.match(entry["sha256"]):
            raise BundleError.of("error.contents.file_sha256", where=where, name=name,
                                 value=str(entry["sha256"])[:70])
        if not isinstance(entry["bytes"], int) or isinstance(entry["bytes"], bool) or entry["bytes"] < 0:
            raise BundleError.of("error.contents.file_bytes", where=where, name=name, value=entry["bytes"])
    missing = [n for n in required if n not in listed]
    if missing:
        raise BundleError.of("error.contents.files_missing", where=where, name=missing[0], required=list(required))


def check_calibration(data: dict[str, Any], where: Where) -> None:
    """calibration.json: a known method with finite parameters, PD floor in [0, 1), PDs in [0, 1]."""
    check_finite(data, where)
    method = data.get("method")
    if method not in ("platt", "isotonic"):
        raise BundleError.of("error.contents.method", where=where, method=method)
    _number(data, "pd_floor", where, 0.0, 1.0, hi_open=True)
    _number(data, "level_shift", where, -50.0, 50.0, required=False)
    if method == "platt":
        _number(data, "slope", where)
        _number(data, "intercept", where)
    else:
        thresholds = _numbers(data, "thresholds", where)
        values = _numbers(data, "values", where, 0.0, 1.0)
        if len(thresholds) != len(values):
            raise BundleError.of("error.contents.isotonic_lengths", where=where, n_thresholds=len(thresholds),
                                 n_values=len(values))
        if any(b < a for a, b in zip(thresholds, thresholds[1:])):
            raise BundleError.of("error.contents.thresholds_not_rising", where=where)


def check_master_scale(data: dict[str, Any], where: Where) -> None:
    """master_scale.json: unique grade names, rising upper bounds in (0, 1] ending at 1, PDs in their bands."""
    check_finite(data, where)
    grades = data.get("grades")
    if not isinstance(grades, list) or not grades or not all(isinstance(g, str) and g for g in grades) \
            or len(set(grades)) != len(grades):
        raise BundleError.of("error.contents.grades", where=where)
    bounds = _numbers(data, "upper_bounds", where, 0.0, 1.0)
    if len(bounds) != len(grades):
        raise BundleError.of("error.contents.bounds_count", where=where, n_bounds=len(bounds), n_grades=len(grades))
    if bounds[0] <= 0 or any(b <= a for a, b in zip(bounds, bounds[1:])) or bounds[-1] != 1.0:
        raise BundleError.of("error.contents.bounds_not_rising", where=where, bounds=bounds)
    floor = _number(data, "pd_floor", where, 0.0, bounds[0], hi_open=True, required=False) or 0.0
    if "assigned_pd" in data:
        assigned = _numbers(data, "assigned_pd", where, 0.0, 1.0)
        lower = [floor, *bounds[:-1]]
        if len(assigned) != len(bounds):
            raise BundleError.of("error.contents.assigned_count", where=where, n=len(assigned), expected=len(bounds))
        for i, (lo, a, hi) in enumerate(zip(lower, assigned, bounds)):
            if not lo <= a <= hi:
                raise BundleError.of("error.contents.assigned_outside", where=where, i=i, value=a, grade=grades[i],
                                     lo=lo, hi=hi)


def _check_labels(labels: Any, categories: list[str], at: Where) -> None:
    """A categorical feature's labels: an object of its categories, each {"en": text, "zh": text} (either)."""
    if not isinstance(labels, dict):
        raise BundleError.of("error.contents.labels_not_object", where=at)
    for value, texts in labels.items():
        if value not in categories:
            raise BundleError.of("error.contents.label_unknown", where=at, value=str(value)[:40])
        if not isinstance(texts, dict) or not set(texts) <= {"en", "zh"} or \
                not all(isinstance(t, str) and t for t in texts.values()):
            raise BundleError.of("error.contents.label_texts", where=at, value=value)


def check_feature_schema(data: dict[str, Any], where: Where) -> None:
    """feature_schema.json: unique names, a known kind each, categories or a finite range with min <= max."""
    check_finite(data, where)
    feats = data.get("features")
    if not isinstance(feats, list) or not feats:
        raise BundleError.of("error.contents.features", where=where)
    seen: set[str] = set()
    for i, f in enumerate(feats):
        if not isinstance(f, dict):
            raise BundleError.of("error.contents.feature_not_object", where=where, i=i)
        name = f.get("name")
        if not isinstance(name, str) or not name or name in seen:
            raise BundleError.of("error.contents.feature_name", where=where, i=i, name=name)
        seen.add(name)
        at = Phrase("error.contents.at_feature", {"where": where, "name": name})
        kind = f.get("kind")
        if kind not in ("numeric", "categorical"):
            raise BundleError.of("error.contents.kind", where=at, kind=kind)
        if not isinstance(f.get("nullable", True), bool):
            raise BundleError.of("error.contents.nullable", where=at, value=f.get("nullable"))
        if kind == "categorical":
            cats = f.get("categories")
            if not isinstance(cats, list) or not cats or not all(isinstance(c, str) for c in cats) \
                    or len(set(cats)) != len(cats):
                raise BundleError.of("error.contents.categories", where=at)
            _check_labels(f.get("labels", {}), cats, at)
            continue
        for lo_key, hi_key in (("min", "max"), ("training_min", "training_max")):
            if (lo_key in f) != (hi_key in f):
                raise BundleError.of("error.contents.range_half", where=at, lo_key=lo_key, hi_key=hi_key)
            if lo_key in f:
                lo = _number(f, lo_key, at)
                hi = _number(f, hi_key, at)
                if lo > hi:  # type: ignore[operator]
                    raise BundleError.of("error.contents.range_reversed", where=at, lo_key=lo_key, hi_key=hi_key,
                                         lo=lo, hi=hi)


def model_id(bundle: Any) -> str:
    """The first 12 hex digits of the bundle's model.txt checksum: the id the scoring service answers
    with, its scoring log records and monitoring tags its runs by."""
    files = bundle.manifest.get("files", {}) if isinstance(bundle.manifest, dict) else {}
    sha = (files.get("model.txt") or {}).get("sha256")
    if not sha:
        sha = hashlib.sha256(bundle.booster.model_to_string().encode()).hexdigest()
    return str(sha)[:12]

"""The feature schema: the exact columns, kinds and category codes a model was trained on.

The same schema encodes the matrix at training time, in the export bundle and in scoring
services, so a category can never map to a different code in two places. It also carries what a
scoring service needs to refuse a bad request: each feature's allowed range (from what the feature
means, e.g. a count is never negative, a share lies in [0, 1]), whether it may be null (features
with a fill value never are), its reason text, and the range seen in training (for information).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.exceptions import RequestError
from creditmodel.features.catalogue import BY_NAME, Feature
from creditmodel.texts import Phrase

ABSURD = 1e15  # no feature of a small-enterprise loan reaches this; larger values are input errors
_NON_NEGATIVE = ("count", "days_since", "cv")
_UNIT_INTERVAL = ("share", "hhi", "flag")


def domain_bounds(feature: Feature) -> tuple[float, float]:
    """The values a catalogue feature can take by its definition (not by the training sample)."""
    if feature.aggregation in _UNIT_INTERVAL:
        return 0.0, 1.0
    if feature.aggregation in _NON_NEGATIVE or (feature.aggregation == "max" and feature.fmt == "days"):
        return 0.0, ABSURD
    return -ABSURD, ABSURD


def refuse_complex(values: Any, what: str) -> None:
    """Raise a ValueError naming `what` when `values` hold complex numbers: NumPy would cast them to
    floats by dropping the imaginary part with no more than a warning, and a model would learn from
    half of each value."""
    dtype = getattr(values, "dtype", None)
    if pd.api.types.is_complex_dtype(dtype) if dtype is not None else np.iscomplexobj(values):
        raise ValueError(f"Complex data not supported: {what} holds complex numbers; expected real numbers")


def refuse_empty(frame: pd.DataFrame, what: str = "X") -> None:
    """Raise a ValueError when a matrix to fit on has no column or no row (LightGBM's own refusal of no
    column speaks of a forced-splits file)."""
    if frame.shape[1] == 0:
        raise ValueError(f"{what} has 0 feature(s) (shape={frame.shape}) while a minimum of 1 is required.")
    if frame.shape[0] == 0:
        raise ValueError(f"{what} has 0 sample(s) (shape={frame.shape}) while a minimum of 2 is required: a PD "
                         f"model needs rows of both classes")


@dataclass(frozen=True)
class FeatureSchema:
    """Ordered feature names; categorical ones carry their category list (code = position)."""

    names: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)  # numeric: allowed [lo, hi]
    required: frozenset[str] = frozenset()  # features that may not be null
    observed: dict[str, tuple[float, float]] = field(default_factory=dict)  # numeric: training min, max
    texts: dict[str, dict[str, str]] = field(default_factory=dict)  # beyond the catalogue: label, reason (en, zh)
    # categorical features named as a vocabulary of the run's data dictionary: its labels of their values
    # (value -> {"en": ..., "zh": ...}), what a reason code shows a loan officer for the value
    labels: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    @classmethod
    def for_columns(cls, columns: Sequence[str], features: Sequence[Feature] | None = None,
                    labels: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None) -> FeatureSchema:
        """Schema of catalogue features `columns`; object columns not in the catalogue are refused.

        features: the catalogue whose categories to use, e.g. ``catalogue(dictionary)`` for a bank's
        own vocabularies (default: the catalogue of the shipped data dictionary). labels: that
        dictionary's labels (``DataDictionary.labels``), kept for the categorical features named as a
        vocabulary, so the bundle's reason codes read the bank's words for its values.
        """
        known = BY_NAME if features is None else {f.name: f for f in features}
        cats = {}
        for name in columns:
            f = known.get(name)
            if f is not None and f.categories is not None:
                cats[name] = tuple(f.categories)
        kept = {name: {v: dict(labels[name][v]) for v in values if v in labels[name]}
                for name, values in cats.items() if labels is not None and name in labels}
        return replace(cls(tuple(columns), cats, *_catalogue_policy(columns, cats)), labels=kept)

    @classmethod
    def infer(cls, frame: pd.DataFrame) -> FeatureSchema:
        """Schema from a frame: catalogue categories where known, else sorted distinct values of text columns."""
        cats = {}
        for name in frame.columns:
            f = BY_NAME.get(name)
            if f is not None and f.categories is not None:
                cats[name] = tuple(f.categories)
            elif not pd.api.types.is_numeric_dtype(frame[name]):
                cats[name] = tuple(sorted(frame[name].dropna().astype(str).unique()))
        return cls(tuple(frame.columns), cats, *_catalogue_policy(frame.columns, cats))

    def profiled(self, frame: pd.DataFrame) -> FeatureSchema:
        """The same schema with the training range of each numeric feature recorded."""
        observed = {}
        for name in self.names:
            if name not in self.categories:
                refuse_complex(frame[name], f"feature {name!r}")
                col = pd.to_numeric(frame[name], errors="coerce")
                if col.notna().any():
                    observed[name] = (float(col.min()), float(col.max()))
        return replace(self, observed=observed)

    @property
    def categorical(self) -> list[str]:
        return [n for n in self.names if n in self.categories]

    def unknown_categories(self, frame: pd.DataFrame) -> dict[str, list[str]]:
        """Values of categorical columns that the schema does not know (nulls are allowed)."""
        out = {}
        for name, cats in self.categories.items():
            col = frame[name]
            bad = sorted(set(col[col.notna()].astype(str)) - set(cats))
            if bad:
                out[name] = bad
        return out

    def check_columns(self, columns: Sequence[str], where: str | Phrase = "") -> None:
        """Raise RequestError naming the first feature absent from `columns` (`where` says of what: data such
        as a path, or a Phrase of the message catalogue to be said in the error's language)."""
        present = set(columns)
        missing = [n for n in self.names if n not in present]
        if missing:
            if where:
                problem = Phrase("error.feature_missing", {"name": missing[0], "n": len(self.names),
                                                           "missing": len(missing)})
                raise RequestError.of("error.matrix.missing_in", where=where, problem=problem)
            raise RequestError.of("error.feature_missing", name=missing[0], n=len(self.names), missing=len(missing))

    def check(self, frame: pd.DataFrame) -> None:
        """Raise RequestError naming the first feature that is missing, null where not allowed, not a
        number, outside its allowed range, or an unknown category."""
        self.check_columns(frame.columns)
        for name in self.names:
            col = frame[name]
            if name in self.required and col.isna().any():
                raise RequestError.of("error.feature_null", name=name)
            if name in self.categories:
                bad = sorted(set(col[col.notna()].astype(str)) - set(self.categories[name]))
                if bad:
                    raise RequestError.of("error.feature_category", name=name, value=bad[0],
                                          categories=list(self.categories[name]))
                continue
            if col.dtype == bool:
                raise RequestError.of("error.feature_not_number", name=name, value=bool(col.iloc[0]))
            if col.dtype == object:
                flags = col.map(lambda v: isinstance(v, bool))
                if flags.any():
                    raise RequestError.of("error.feature_not_number", name=name, value=col[flags].iloc[0])
            numeric = pd.to_numeric(col, errors="coerce")
            bad = col[numeric.isna() & col.notna()]
            if len(bad):
                raise RequestError.of("error.feature_not_number", name=name, value=bad.iloc[0])
            values = numeric.to_numpy(dtype=float, na_value=np.nan)
            if np.isinf(values).any():
                raise RequestError.of("error.feature_infinite", name=name)
            lo, hi = self.bounds.get(name, (-ABSURD, ABSURD))
            outside = (values < lo) | (values > hi)
            if outside.any():
                raise RequestError.of("error.feature_outside_allowed", name=name, value=float(values[outside][0]),
                                      lo=lo, hi=hi)

    def encode(self, frame: pd.DataFrame, dtype: Any = np.float64) -> np.ndarray:
        """Float matrix in schema order; categories become their codes, unknown or null become NaN.

        Each column is written straight into the result (no whole-frame intermediate), so encoding needs
        the result's memory and one column's; `dtype` float32 halves it (the training matrix).
        """
        missing = [n for n in self.names if n not in frame.columns]
        if missing:
            raise ValueError(f"X lacks the feature {missing[0]!r} the model was trained on ({len(missing)} of "
                             f"{len(self.names)} missing)")
        out = np.empty((len(frame), len(self.names)), dtype=dtype)
        for j, name in enumerate(self.names):
            col = frame[name]
            if name in self.categories:
                codes = {c: float(i) for i, c in enumerate(self.categories[name])}
                out[:, j] = col.map(codes).astype("float64").to_numpy()
            else:
                refuse_complex(col, f"feature {name!r}")
                out[:, j] = pd.to_numeric(col, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: per feature its kind, categories or allowed range, null policy and reason text."""
        feats = []
        for n in self.names:
            f = BY_NAME.get(n)
            entry: dict[str, Any] = {"name": n, "kind": "categorical" if n in self.categories else "numeric",
                                     "nullable": n not in self.required}
            if n in self.categories:
                entry["categories"] = list(self.categories[n])
                if n in self.labels:
                    entry["labels"] = {v: dict(t) for v, t in self.labels[n].items()}
            else:
                lo, hi = self.bounds.get(n, (-ABSURD, ABSURD))
                entry["min"], entry["max"] = lo, hi
                if n in self.observed:
                    entry["training_min"], entry["training_max"] = self.observed[n]
            if f is not None:
                entry.update(label=f.label, description=f.description, direction=f.direction, reason=f.reason)
                if f.label_zh or f.reason_zh:
                    entry.update(label_zh=f.label_zh, reason_zh=f.reason_zh, source=f.source)
            elif n in self.texts:
                entry.update(self.texts[n])
            feats.append(entry)
        return {"features": feats}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSchema:
        feats = data["features"]
        return cls(
            tuple(f["name"] for f in feats),
            {f["name"]: tuple(f["categories"]) for f in feats if f["kind"] == "categorical"},
            {f["name"]: (float(f["min"]), float(f["max"])) for f in feats if f["kind"] == "numeric" and "min" in f},
            frozenset(f["name"] for f in feats if f.get("nullable", True) is False),
            {f["name"]: (float(f["training_min"]), float(f["training_max"])) for f in feats if "training_min" in f},
            {f["name"]: {k: f[k] for k in ("label", "reason", "label_zh", "reason_zh", "direction", "source")
                         if k in f} for f in feats if "label_zh" in f or "reason_zh" in f},
            {f["name"]: {v: dict(t) for v, t in f["labels"].items()} for f in feats
             if f["kind"] == "categorical" and "labels" in f},
        )

    def reason(self, name: str, lang: str = "en") -> str:
        """The loan officer's reason text of a feature in `lang` ("en" or "zh"; its name when it is unknown)."""
        f = BY_NAME.get(name)
        if f is not None:
            return (f.reason_zh or f.label_zh or f.reason or f.label) if lang == "zh" else (f.reason or f.label)
        t = self.texts.get(name, {})
        if lang == "zh":
            return t.get("reason_zh") or t.get("label_zh") or t.get("reason") or t.get("label") or name
        return t.get("reason") or t.get("label") or name


def _catalogue_policy(columns: Sequence[str], categories: dict[str, tuple[str, ...]]
                      ) -> tuple[dict[str, tuple[float, float]], frozenset[str]]:
    """Allowed ranges and never-null features of the catalogue features among `columns`."""
    bounds, required = {}, set()
    for name in columns:
        f = BY_NAME.get(name)
        if f is None:
            continue
        if name not in categories:
            bounds[name] = domain_bounds(f)
        if f.fill is not None:
            required.add(name)
    return bounds, frozenset(required)

"""The feature schema: the exact columns, kinds and category codes a model was trained on.

The same schema encodes the matrix at training time, in the export bundle and in scoring
services, so a category can never map to a different code in two places.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.features.catalogue import BY_NAME


@dataclass(frozen=True)
class FeatureSchema:
    """Ordered feature names; categorical ones carry their category list (code = position)."""

    names: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]

    @classmethod
    def for_columns(cls, columns: Sequence[str]) -> FeatureSchema:
        """Schema of catalogue features `columns`; object columns not in the catalogue are refused."""
        cats = {}
        for name in columns:
            f = BY_NAME.get(name)
            if f is not None and f.is_categorical:
                cats[name] = tuple(f.categories)
        return cls(tuple(columns), cats)

    @classmethod
    def infer(cls, frame: pd.DataFrame) -> FeatureSchema:
        """Schema from a frame: catalogue categories where known, else sorted distinct values of text columns."""
        cats = {}
        for name in frame.columns:
            f = BY_NAME.get(name)
            if f is not None and f.is_categorical:
                cats[name] = tuple(f.categories)
            elif not pd.api.types.is_numeric_dtype(frame[name]):
                cats[name] = tuple(sorted(frame[name].dropna().astype(str).unique()))
        return cls(tuple(frame.columns), cats)

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

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Float matrix in schema order; categories become their codes, unknown or null become NaN."""
        out = np.empty((len(frame), len(self.names)), dtype=np.float64)
        for j, name in enumerate(self.names):
            col = frame[name]
            if name in self.categories:
                codes = {c: float(i) for i, c in enumerate(self.categories[name])}
                out[:, j] = col.map(codes).astype("float64").to_numpy()
            else:
                out[:, j] = pd.to_numeric(col, errors="raise").astype("float64").to_numpy()
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [
                {"name": n, "kind": "categorical", "categories": list(self.categories[n])}
                if n in self.categories else {"name": n, "kind": "numeric"}
                for n in self.names
            ]
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSchema:
        feats = data["features"]
        return cls(tuple(f["name"] for f in feats),
                   {f["name"]: tuple(f["categories"]) for f in feats if f["kind"] == "categorical"})

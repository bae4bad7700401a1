"""Reason codes from SHAP values: the one TreeSHAP call, the ranking of adverse factors and their text.

Beside the feature schema because a reason is a feature's text with its value: validation
(``creditmodel.validation.explain``) and scoring (``creditmodel.service.scoring``) both use these
functions, and the scoring path stays free of plotting and statistics packages.

* :func:`shap_values`: LightGBM's exact TreeSHAP, ``booster.predict(X, pred_contrib=True)``, in
  log-odds (margin) space; base value + row sum = ``booster.predict(X, raw_score=True)``;
* :func:`top_adverse`: per row the ``n`` features with the largest positive (PD-raising) SHAP value,
  largest first, ties in column order; a row with fewer positive values gets fewer reasons;
* :func:`reason_text`: the catalogue's reason with the value as a loan officer reads it
  ("<reason>: <value>", :func:`format_value`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.features.catalogue import BY_NAME

__all__ = ["format_value", "reason_text", "shap_values", "top_adverse"]


def shap_values(booster: Any, encoded: np.ndarray, *, num_threads: int | None = None) -> tuple[np.ndarray, float]:
    """Exact TreeSHAP of a binary LightGBM booster on an encoded matrix: (values (n, k), base value).

    ``pred_contrib`` returns k + 1 columns per row; the last one is the expected value of the margin
    (the same on every row), the others the features' contributions. `num_threads`: LightGBM's
    per-call thread count (None: the booster's own setting).
    """
    encoded = np.asarray(encoded, dtype=np.float64)
    options = {} if num_threads is None else {"num_threads": num_threads}
    if len(encoded) == 0:  # LightGBM refuses empty input; the base value does not depend on the row
        base = float(booster.predict(np.full((1, encoded.shape[1]), np.nan), pred_contrib=True, **options)[0, -1])
        return np.empty((0, encoded.shape[1])), base
    contrib = np.asarray(booster.predict(encoded, pred_contrib=True, **options), dtype=np.float64)
    if contrib.shape != (len(encoded), encoded.shape[1] + 1):
        raise ValueError(f"pred_contrib returned shape {contrib.shape}; a binary model gives "
                         f"{(len(encoded), encoded.shape[1] + 1)}")
    return contrib[:, :-1], float(contrib[0, -1])


def top_adverse(values: np.ndarray, n: int) -> list[list[int]]:
    """Per row of a SHAP matrix, the column indices of its `n` largest positive values, largest first
    (ties keep column order); only values > 0 are adverse, so a row may get fewer than `n`."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or not len(values):
        return [[] for _ in range(len(values))]
    k = min(n, values.shape[1])
    order = np.argsort(-values, axis=1, kind="mergesort")[:, :k]
    top = np.take_along_axis(values, order, axis=1)
    return [[int(j) for j, c in zip(order[i], top[i]) if c > 0] for i in range(len(values))]


def format_value(name: str, value: object) -> str:
    """A feature value as a loan officer reads it ("CNY 12,000", "35%", "not available")."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "not available"
    fmt = BY_NAME[name].fmt if name in BY_NAME else "float"
    if fmt == "cat" or isinstance(value, str):
        return str(value).replace("_", " ")
    v = float(value)  # type: ignore[arg-type]
    if fmt == "pct":
        return f"{v:.0%}"
    if fmt == "cny":
        return f"CNY {v:,.0f}"
    if fmt in ("int", "days", "months"):
        unit = {"int": "", "days": " days", "months": " months"}[fmt]
        return f"{v:,.0f}{unit}"
    if fmt == "flag":
        return "yes" if v >= 0.5 else "no"
    if fmt == "years":
        return f"{v:.1f} years"
    return f"{v:.2f}"


def reason_text(name: str, value: object) -> str:
    """The catalogue's reason for a feature with the value behind it: "<reason>: <value>"."""
    f = BY_NAME.get(name)
    reason = (f.reason or f.label) if f is not None else name
    return f"{reason}: {format_value(name, value)}"


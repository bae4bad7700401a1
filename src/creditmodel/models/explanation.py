"""Per-loan explanations of a fitted PD model: exact TreeSHAP contributions and reason codes.

LightGBM's own TreeSHAP, ``booster.predict(X, pred_contrib=True)``: exact path-dependent TreeSHAP in
log-odds (margin) space; per row, base value + sum of the contributions = the raw margin. Reason codes
are the features that raise a loan's PD most, in the catalogue's reason text with the value behind it.
Kept beside the models (no plotting, no scipy) so that scoring and `PDModel` use them without the
validation stage; `creditmodel.validation.explain` builds its figures on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from creditmodel.features.catalogue import BY_NAME
from creditmodel.models.gbm import LightGBMPD

__all__ = ["Explanation", "shap_values", "explain", "format_value", "reason_text", "reason_codes"]

@dataclass
class Explanation:
    """SHAP values in log-odds (margin) space: base_value + row sum = the model's raw margin."""

    values: pd.DataFrame  # index = loan_id, one column per feature
    base_value: float
    data: pd.DataFrame  # the feature values explained, same index and columns
    categorical: tuple[str, ...] = ()  # the categorical features among the columns


def shap_values(booster, encoded: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact TreeSHAP of a binary LightGBM booster on an encoded matrix: (values (n, k), base value).

    ``pred_contrib`` returns k + 1 columns per row; the last one is the expected value of the margin
    (the same on every row), the others the features' contributions.
    """
    encoded = np.asarray(encoded, dtype=np.float64)
    if len(encoded) == 0:  # LightGBM refuses empty input; the base value does not depend on the row
        base = float(booster.predict(np.full((1, encoded.shape[1]), np.nan), pred_contrib=True)[0, -1])
        return np.empty((0, encoded.shape[1])), base
    contrib = np.asarray(booster.predict(encoded, pred_contrib=True), dtype=np.float64)
    if contrib.shape != (len(encoded), encoded.shape[1] + 1):
        raise ValueError(f"pred_contrib returned shape {contrib.shape}; a binary model gives "
                         f"{(len(encoded), encoded.shape[1] + 1)}")
    return contrib[:, :-1], float(contrib[0, -1])


def explain(model: LightGBMPD, X: pd.DataFrame, loan_id: pd.Series | np.ndarray) -> Explanation:
    """Exact TreeSHAP values of the LightGBM model for the rows of X (LightGBM's ``pred_contrib``)."""
    values, base = shap_values(model.booster_, model.schema_.encode(X))
    index = pd.Index(np.asarray(loan_id), name="loan_id")
    names = list(model.schema_.names)
    return Explanation(pd.DataFrame(values, index=index, columns=names), base,
                       X[names].set_axis(index, axis=0), tuple(model.schema_.categorical))


def format_value(name: str, value: object) -> str:
    """A feature value as a loan officer reads it."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "not available"
    fmt = BY_NAME[name].fmt if name in BY_NAME else "float"
    if fmt == "cat" or isinstance(value, str):
        return str(value).replace("_", " ")
    v = float(value)
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


def reason_codes(expl: Explanation, n: int = 3, features: bool = False) -> pd.DataFrame:
    """Per loan, the `n` features that raise its PD most, as the catalogue's reason text with the value
    ("Low receipts over the last 3 months: CNY 12,000"), with their SHAP (and, with `features`, the
    feature name in ``reason_<k>_feature``).

    Only features that push the PD up are reasons; a loan with fewer such features gets fewer reasons.
    """
    values = expl.values.to_numpy()
    names = np.asarray(expl.values.columns)
    order = np.argsort(-values, axis=1, kind="mergesort")[:, :n]
    rows = []
    for i, loan in enumerate(expl.values.index):
        row: dict[str, object] = {"loan_id": loan}
        for k in range(min(n, values.shape[1])):
            j = order[i, k]
            name, contribution = names[j], values[i, j]
            if contribution <= 0:
                row[f"reason_{k + 1}"], row[f"reason_{k + 1}_shap"] = None, None
                if features:
                    row[f"reason_{k + 1}_feature"] = None
                continue
            row[f"reason_{k + 1}"] = reason_text(name, expl.data.iat[i, j])
            row[f"reason_{k + 1}_shap"] = float(contribution)
            if features:
                row[f"reason_{k + 1}_feature"] = name
        rows.append(row)
    return pd.DataFrame(rows)

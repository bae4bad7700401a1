"""Per-loan explanations of a fitted PD model: exact TreeSHAP contributions and reason codes.

Exact path-dependent TreeSHAP in log-odds (margin) space, LightGBM's ``pred_contrib`` values from the
booster's tabulated trees (:mod:`creditmodel.models.treeshap`); per row, base value + sum of the
contributions = the raw margin. Reason codes
are the features that raise a loan's PD most, in the catalogue's reason text with the value behind it.
Kept beside the models (no plotting, no scipy) so that scoring and `PDModel` use them without the
validation stage; `creditmodel.validation.explain` builds its figures on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from creditmodel.features.reasons import format_value, reason_text  # noqa: F401  (one place, re-exported)
from creditmodel.models.gbm import LightGBMPD
from creditmodel.models.treeshap import shap_values

__all__ = ["Explanation", "shap_values", "explain", "format_value", "reason_text", "reason_codes"]

@dataclass
class Explanation:
    """SHAP values in log-odds (margin) space: base_value + row sum = the model's raw margin."""

    values: pd.DataFrame  # index = loan_id, one column per feature
    base_value: float
    data: pd.DataFrame  # the feature values explained, same index and columns
    categorical: tuple[str, ...] = ()  # the categorical features among the columns


def explain(model: LightGBMPD, X: pd.DataFrame, loan_id: pd.Series | np.ndarray) -> Explanation:
    """Exact TreeSHAP values of the LightGBM model for the rows of X (LightGBM's ``pred_contrib`` values)."""
    values, base = shap_values(model.booster_, model.schema_.encode(X))
    index = pd.Index(np.asarray(loan_id), name="loan_id")
    names = list(model.schema_.names)
    return Explanation(pd.DataFrame(values, index=index, columns=names), base,
                       X[names].set_axis(index, axis=0), tuple(model.schema_.categorical))


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

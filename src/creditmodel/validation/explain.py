"""SHAP explanations: which features drive the PD, globally and for each loan as readable reason codes."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import shap  # noqa: E402

from creditmodel.features.catalogue import BY_NAME  # noqa: E402
from creditmodel.models.gbm import LightGBMPD  # noqa: E402
from creditmodel.validation.plots import save_figure  # noqa: E402


@dataclass
class Explanation:
    """SHAP values in log-odds (margin) space: base_value + row sum = the model's raw margin."""

    values: pd.DataFrame  # index = loan_id, one column per feature
    base_value: float
    data: pd.DataFrame  # the feature values explained, same index and columns


def explain(model: LightGBMPD, X: pd.DataFrame, loan_id: pd.Series | np.ndarray) -> Explanation:
    """Exact TreeSHAP values of the LightGBM model for the rows of X."""
    encoded = model.schema_.encode(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explainer = shap.TreeExplainer(model.booster_)
        values = np.asarray(explainer.shap_values(encoded), dtype=np.float64)
    if values.ndim == 3:  # some shap versions return one slice per class
        values = values[..., -1]
    base = float(np.ravel(explainer.expected_value)[-1])
    index = pd.Index(np.asarray(loan_id), name="loan_id")
    names = list(model.schema_.names)
    return Explanation(pd.DataFrame(values, index=index, columns=names), base,
                       X[names].set_axis(index, axis=0))


def global_importance(expl: Explanation) -> pd.Series:
    """Mean absolute SHAP value per feature, largest first."""
    return expl.values.abs().mean().sort_values(ascending=False).rename("mean_abs_shap")


def plot_importance(importance: pd.Series, path: Path, top: int = 20) -> Path:
    """Horizontal bar chart of the `top` features by mean |SHAP|, labelled in business language."""
    shown = importance.head(top)[::-1]
    labels = [BY_NAME[n].label if n in BY_NAME else n for n in shown.index]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(shown) + 1.2))
    ax.barh(labels, shown.to_numpy(), color="#3b6ea5")
    ax.set(xlabel="mean |SHAP| (log-odds of default)", title="What drives the PD (validation split)")
    ax.tick_params(axis="y", labelsize=8)
    return save_figure(fig, path)


def format_value(name: str, value: object) -> str:
    """A feature value as a loan officer reads it."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "not available"
    fmt = BY_NAME[name].fmt if name in BY_NAME else "float"
    if fmt == "cat":
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


def reason_codes(expl: Explanation, n: int = 3) -> pd.DataFrame:
    """Per loan, the `n` features that raise its PD most, as the catalogue's reason text with the value
    ("Low receipts over the last 3 months: CNY 12,000"), with their SHAP.

    Only features that push the PD up are reasons; a loan with fewer such features gets fewer reasons.
    """
    values = expl.values.to_numpy()
    names = np.asarray(expl.values.columns)
    order = np.argsort(-values, axis=1, kind="mergesort")[:, :n]
    rows = []
    for i, loan in enumerate(expl.values.index):
        row: dict[str, object] = {"loan_id": loan}
        for k in range(n):
            j = order[i, k]
            name, contribution = names[j], values[i, j]
            if contribution <= 0:
                row[f"reason_{k + 1}"], row[f"reason_{k + 1}_shap"] = None, None
                continue
            row[f"reason_{k + 1}"] = reason_text(name, expl.data.iat[i, j])
            row[f"reason_{k + 1}_shap"] = float(contribution)
        rows.append(row)
    return pd.DataFrame(rows)

"""The model card: what a model is for, what data it saw, how well it did, and what it must not do.

Written into every export bundle (model_card.json) so the pricing step, a scoring service and a
reviewer read the same facts, and served by the scoring service at GET /v1/model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from creditmodel.features.labels import describe_label

INTENDED_USE = ("Probability of default (as the target defines it) of small and micro enterprise loan applications of a county "
                "rural cooperative bank, as of the decision date, for credit decisions and risk-based pricing.")
NOT_FOR = [
    "regulatory capital of the bank without a separate IRB model approval",
    "individuals (consumer loans) or large corporates: the features describe small enterprises",
    "applications whose features were not computed as of the decision date by the same catalogue",
]
LIMITATIONS = [
    "PDs are calibrated to the long-run average default rate of the observation period plus the margin of "
    "conservatism; a downturn beyond that period is not in the data.",
    "Out-of-range or unknown feature values are refused, not extrapolated.",
]
VALIDATION_PENDING = ("the verdict is the validation report's (validation_report.html, logged with the MLflow run "
                      "and recorded as the registry version's validation_status); preliminary findings are "
                      "information only")
VALIDATION_PENDING_ZH = ("结论以验证报告为准（validation_report.html，随 MLflow 运行记录，并写入模型注册版本的 "
                         "validation_status 标签）；初步检查结果仅供参考")

REFIT_NOTE = ("Refitted on train + validation after early stopping and calibration were chosen on the validation "
              "period, calibrated out of fold: metrics on the validation split are in-sample; the out-of-time "
              "split is the held-out evidence.")


def data_window(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per split: first and last decision date, loans and defaults."""
    out = {}
    for split, part in frame.groupby("split", sort=False):
        dates = pd.to_datetime(part["decision_date"])
        out[str(split)] = {"first_decision_date": str(dates.min().date()), "last_decision_date": str(dates.max().date()),
                           "loans": int(len(part)), "defaults": int(part["default"].sum()),
                           "default_rate": round(float(part["default"].mean()), 6)}
    return out


def build_model_card(
    *,
    frame: pd.DataFrame,
    metrics: pd.DataFrame,
    preliminary_findings: list[str],
    features: list[str],
    config: dict[str, Any],
    extraction_date: str,
) -> dict[str, Any]:
    """The card as plain JSON-ready data; `metrics` is the pipeline's per-model, per-split table.

    The card is written before the model's validation report (the report validates this very
    bundle), so its validation status is "pending": the verdict is the report's, recorded on the
    registry version, and `creditmodel export` writes it into the card of an exported bundle."""
    perf: dict[str, dict[str, dict[str, float | None]]] = {}  # None: not finite (e.g. one class only)
    for row in metrics.itertuples():
        perf.setdefault(row.model, {})[row.split] = {
            k: (None if not np.isfinite(getattr(row, k)) else round(float(getattr(row, k)), 6))
            for k in ("auc", "gini", "ks", "brier", "mean_pd", "default_rate")}
    label = config.get("label", {})
    target = describe_label(label.get("kind", "dpd"), window_months=int(label.get("window_months", 12)),
                            dpd_threshold=int(label.get("dpd_threshold", 90)), column=label.get("column"))
    return {
        "model": "LightGBM gradient-boosted trees, calibrated PD, master-scale grade",
        "benchmark": "WoE logistic scorecard (optbinning), scorecard.csv",
        "intended_use": INTENDED_USE,
        "not_for": NOT_FOR,
        "limitations": LIMITATIONS + ([REFIT_NOTE] if config.get("train", {}).get("refit_on_validation") else []),
        "target": target["en"],
        "target_zh": target["zh"],
        "label": {k: label.get(k) for k in ("kind", "window_months", "dpd_threshold", "column") if k in label},
        "extraction_date": extraction_date,
        "data_window": data_window(frame),
        "split": config.get("split", {}),
        "calibration": config.get("calibration", {}),
        "features": {"count": len(features), "schema": "feature_schema.json"},
        "performance": perf,
        "validation": {"status": "pending", "note": VALIDATION_PENDING, "note_zh": VALIDATION_PENDING_ZH,
                       "preliminary_findings": preliminary_findings},
    }

"""Segment models: does a separate LightGBM per segment (e.g. industry) beat one model with the segment
as a feature? Fitted only where a segment has enough defaults; the comparison is reported, and the
single model stays the main one unless the analyst decides otherwise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from creditmodel.features.matrix import FeatureSchema
from creditmodel.models.gbm import LightGBMPD
from creditmodel.models.metrics import auc
from creditmodel.models.pd_model import PDModel


def segment_models(
    frame: pd.DataFrame,
    columns: list[str],
    params: dict[str, Any],
    *,
    segment: str = "industry",
    min_train_defaults: int = 40,
    calibration: str = "platt",
    feature_schema: FeatureSchema | None = None,
) -> dict[Any, PDModel]:
    """One PDModel per value of `segment` with at least `min_train_defaults` training defaults (and both
    classes in its validation rows): LightGBM with `params` fitted on the segment's train rows, stopping
    early on and calibrated on its validation rows."""
    if segment not in frame.columns:
        raise ValueError(f"segment column {segment!r} is not in the feature matrix")
    schema = feature_schema or FeatureSchema.for_columns(columns)
    fitted = {}
    for value, part in frame.groupby(segment, sort=True, observed=True):
        train, valid = part[part["split"] == "train"], part[part["split"] == "valid"]
        if train["default"].sum() < min_train_defaults or valid["default"].nunique() < 2:
            continue
        fitted[value] = PDModel(LightGBMPD(**params, feature_schema=schema), calibration).fit(
            train[columns], train["default"], eval_set=(valid[columns], valid["default"]))
    return fitted


def segmented_pd(frame: pd.DataFrame, columns: list[str], global_pd: np.ndarray, models: dict[Any, PDModel],
                 segment: str = "industry") -> np.ndarray:
    """Each row's PD from its segment's own model where there is one, else the global model's PD."""
    out = np.asarray(global_pd, dtype=np.float64).copy()
    for value, model in models.items():
        rows = (frame[segment] == value).to_numpy()
        out[rows] = model.predict_pd(frame.loc[rows, columns])
    return out


def compare_segment_models(
    frame: pd.DataFrame,
    columns: list[str],
    global_pd: np.ndarray,
    params: dict[str, Any],
    *,
    segment: str = "industry",
    min_train_defaults: int = 40,
    calibration: str = "platt",
    feature_schema: FeatureSchema | None = None,
) -> pd.DataFrame:
    """Out-of-time AUC per segment and overall, global model against segment models.

    global_pd: the main model's PDs for the rows of `frame` (same order). Segments with fewer than
    `min_train_defaults` training defaults keep the global model's PDs.
    """
    models = segment_models(frame, columns, params, segment=segment, min_train_defaults=min_train_defaults,
                            calibration=calibration, feature_schema=feature_schema)
    segmented = segmented_pd(frame, columns, global_pd, models, segment)
    fitted = {value: int(frame.loc[(frame[segment] == value) & (frame["split"] == "train"), "default"].sum())
              for value in models}
    oot = (frame["split"] == "oot").to_numpy()
    rows_out = []
    for value in [*sorted(fitted), "all"]:
        mask = oot & ((frame[segment] == value).to_numpy() if value != "all" else True)
        y = frame.loc[mask, "default"].to_numpy()
        rows_out.append({"segment": value, "own_model": value in fitted or value == "all",
                         "train_defaults": fitted.get(value, int(frame.loc[frame["split"] == "train", "default"].sum())
                                                      if value == "all" else 0),
                         "oot_loans": int(mask.sum()), "oot_defaults": int(y.sum()),
                         "global_auc": auc(y, np.asarray(global_pd)[mask]),
                         "segmented_auc": auc(y, segmented[mask])})
    out = pd.DataFrame(rows_out)
    out["difference"] = out["segmented_auc"] - out["global_auc"]
    return out

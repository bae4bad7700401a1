"""A small calibrated model on a synthetic world's offline features, for the benchmarks that need a bundle."""

from __future__ import annotations

from typing import Any

import pandas as pd


def small_model(tables: dict[str, pd.DataFrame], extraction_date: Any, frame: pd.DataFrame,
                kept: list[Any]) -> tuple[Any, Any, Any]:
    """LightGBM (60 trees), its calibrator and master scale, trained on the labelled rows of `frame`
    (the offline features of `kept` for some loans of `tables`); not what a run would train, only a
    model of the right shape for timing scoring."""
    from creditmodel.config import RunConfig
    from creditmodel.features.labels import make_labels
    from creditmodel.features.matrix import FeatureSchema
    from creditmodel.models.calibration import PDCalibrator
    from creditmodel.models.gbm import LightGBMPD
    from creditmodel.models.master_scale import MasterScale

    labels = make_labels(tables, pd.Timestamp(extraction_date))
    frame = frame.assign(default=frame["loan_id"].map(labels))
    train = frame[frame["default"].notna()]
    cols = [f.name for f in kept]
    schema = FeatureSchema.for_columns(cols, kept)
    model = LightGBMPD(n_estimators=60, feature_schema=schema).fit(train[cols], train["default"].astype(int))
    margin = model.decision_function(train[cols])
    cal = PDCalibrator().fit(margin, train["default"].astype(int).to_numpy())
    ms = RunConfig().master_scale
    scale = MasterScale(ms.grades, ms.upper_bounds, pd_floor=cal.pd_floor, assigned_pd=ms.assigned_pd).fit(
        cal.predict(margin))
    return model, cal, scale

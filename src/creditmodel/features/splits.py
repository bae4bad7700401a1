"""Time-based splits: train, validation and out-of-time test, never a random split across time."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

SPLITS = ("train", "valid", "oot")


def time_split(decision_date: pd.Series, valid_start: date, oot_start: date) -> pd.Series:
    """'train' before valid_start, 'valid' up to oot_start, 'oot' from oot_start on."""
    d = pd.to_datetime(decision_date)
    out = np.where(d < pd.Timestamp(valid_start), "train", np.where(d < pd.Timestamp(oot_start), "valid", "oot"))
    return pd.Series(out, index=decision_date.index, name="split")

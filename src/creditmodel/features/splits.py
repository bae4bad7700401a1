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


def holdout_split(loan_id: pd.Series, valid_fraction: float, test_fraction: float, seed: int = 0) -> pd.Series:
    """Random split for data with a single decision date: 'valid' and 'oot' (the test hold-out) by fraction.

    The draw depends only on the set of loan ids and the seed, not on row order.
    """
    ids = np.sort(loan_id.unique())
    u = pd.Series(np.random.default_rng(seed).random(ids.size), index=ids)
    draw = loan_id.map(u).to_numpy()
    out = np.where(draw < test_fraction, "oot", np.where(draw < test_fraction + valid_fraction, "valid", "train"))
    return pd.Series(out, index=loan_id.index, name="split")

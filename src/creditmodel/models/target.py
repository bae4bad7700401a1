"""The target of a PD model: one label per row, 0 (performing) or 1 (default), both present.

Every estimator of the kit checks it here, so a wrong target is one line that says what it holds,
not a value cast silently (``np.asarray(y, dtype=int)`` turns 0.7 into 0) or a refusal from deep
inside LightGBM or optbinning.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from creditmodel.features.matrix import refuse_complex

__all__ = ["binary_target"]


def _shown(values: np.ndarray, k: int = 5) -> str:
    head = ", ".join(repr(v.item()) for v in values[:k])
    return f"[{head}{', …' if len(values) > k else ''}]"


def binary_target(y: Any, what: str = "y") -> np.ndarray:
    """`y` as a float64 vector of 0.0 and 1.0, or a ValueError naming what it holds instead."""
    refuse_complex(y, what)
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D (one label per row), got shape {arr.shape}")
    missing = int(pd.isna(arr).sum()) if arr.dtype == object or arr.dtype.kind == "f" else 0
    if missing:
        raise ValueError(f"{what} holds {missing} missing label(s); a PD model needs 0 or 1 on every row")
    if arr.dtype == object:  # numbers in an object column (a pandas column of mixed origin) are numbers
        try:
            arr = pd.to_numeric(pd.Series(arr), errors="raise").to_numpy()
        except (TypeError, ValueError):
            pass
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"Unknown label type: {what} holds text or other values {_shown(np.unique(arr.astype(str)))}; "
                         f"a PD model needs the numbers 0 (performing) and 1 (default)")
    values = np.unique(arr)
    if arr.dtype.kind == "f" and np.any(values != np.round(values)):
        raise ValueError(f"Unknown label type: continuous; {what} holds {_shown(values)}; a PD model needs the "
                         f"labels 0 (performing) and 1 (default)")
    if not np.all(np.isin(values, (0, 1))):
        raise ValueError(f"Only binary classification is supported: {what} holds the labels {_shown(values)}; "
                         f"a PD model needs 0 (performing) and 1 (default)")
    if len(values) < 2:
        held = f"only one class, the label {values[0].item():g}" if len(values) else "no label"
        raise ValueError(f"{what} holds {held}; a PD model needs both classes, 0 (performing) and 1 (default)")
    return arr.astype(np.float64)

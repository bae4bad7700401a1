"""Population stability of the model's inputs and output as of a date.

The reference is the model's development sample as its model card records it (the training window
of decision dates), re-built from the data with the same catalogue; the comparison is the new
business of the last ``months`` months up to the as-of date (what the model scores today), and, when
the service's scoring log is given, the PDs the service actually answered. Re-rated PDs of the open
book against their own origination are reported by the run itself (``psi_pd_origination_to_now``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from creditmodel.data.dictionary import DataDictionary
from creditmodel.monitoring.rerate import OriginationFeatures, _features, as_of_tables
from creditmodel.validation.stats import TestResult, csi, psi

__all__ = ["Stability", "development_window", "stability"]

CSI_COLUMNS = ["feature", "kind", "psi", "bins", "status"]


@dataclass
class Stability:
    """PSI of the PD (and grades) of recent applications against development, CSI per feature."""

    reference: str  # e.g. "development sample 2019-01-01 to 2022-06-30 (2,628 loans)"
    n_reference: int = 0
    n_recent: int = 0
    pd_reference: pd.Series = field(default_factory=lambda: pd.Series(dtype="float64"))
    pd_recent: pd.Series = field(default_factory=lambda: pd.Series(dtype="float64"))
    psi_pd: TestResult | None = None
    psi_grade: TestResult | None = None
    csi: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CSI_COLUMNS))


def development_window(bundle: Any) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last decision date of the bundle's training sample (model card), or None."""
    card = getattr(bundle, "model_card", None) or {}
    train = (card.get("data_window") or {}).get("train") or {}
    try:
        return pd.Timestamp(train["first_decision_date"]), pd.Timestamp(train["last_decision_date"])
    except (KeyError, TypeError, ValueError):
        return None


def stability(bundle: Any, tables: Mapping[str, pd.DataFrame], as_of: object, months: int = 3,
              dictionary: DataDictionary | None = None, origination: OriginationFeatures | None = None) -> Stability:
    """PSI of the PDs and grades and CSI of the features of loans applied for in the ``months`` months
    up to ``as_of`` against the development sample, both at their decision dates; nothing dated after
    ``as_of`` is read. Without a development window in the model card, or without loans on either
    side, the result carries counts only."""
    as_of = pd.Timestamp(as_of).normalize()
    window = development_window(bundle)
    if window is None:
        return Stability(reference="no development window in the bundle's model card")
    first, last = window[0], min(window[1], as_of)
    known = as_of_tables(tables, as_of)
    loans = known["loans"]
    dates = loans["application_date"]
    dev = loans[(dates >= first) & (dates <= last)]
    recent = loans[(dates > as_of - pd.DateOffset(months=months)) & (dates <= as_of)]
    out = Stability(reference=f"{first.date()} .. {last.date()}", n_reference=len(dev), n_recent=len(recent))
    if dev.empty or recent.empty:
        return out
    both = pd.concat([dev, recent], ignore_index=True).drop_duplicates("loan_id")
    frame = (origination.of(both) if origination is not None else _features(bundle, known, both, dictionary)
             ).set_index("loan_id")
    names = list(bundle.schema.names)
    f_dev, f_recent = frame.loc[dev["loan_id"].to_numpy(), names], frame.loc[recent["loan_id"].to_numpy(), names]
    if origination is not None:  # the run's PDs at origination, each loan scored once
        out.pd_reference = pd.Series(origination.pd_of(dev), index=f_dev.index, name="pd")
        out.pd_recent = pd.Series(origination.pd_of(recent), index=f_recent.index, name="pd")
    else:
        out.pd_reference = pd.Series(bundle.predict_pd(f_dev.reset_index()), index=f_dev.index, name="pd")
        out.pd_recent = pd.Series(bundle.predict_pd(f_recent.reset_index()), index=f_recent.index, name="pd")
    out.psi_pd = psi(out.pd_reference, out.pd_recent)
    out.psi_grade = psi(pd.Series(bundle.grade(out.pd_reference.to_numpy())),
                        pd.Series(bundle.grade(out.pd_recent.to_numpy())), categorical=True)
    out.csi = csi(f_dev, f_recent, names).sort_values(["psi", "feature"], ascending=[False, True]).reset_index(drop=True)
    return out


def live_psi(reference_pd: pd.Series, live_pd: Any) -> TestResult | None:
    """PSI of the PDs the service answered against the development sample's PDs (None if either is empty)."""
    live = pd.Series(live_pd, dtype="float64").dropna()
    if reference_pd.empty or live.empty:
        return None
    return psi(reference_pd, live)

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
from creditmodel.validation.stats import TestResult, csi_against, csi_reference, psi

__all__ = ["Stability", "development_window", "stability", "stability_samples"]

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
    csi_reference: dict[str, Any] | None = None  # the development side of the CSI (validation.stats.csi_reference)


def development_window(bundle: Any) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last decision date of the bundle's training sample (model card), or None."""
    card = getattr(bundle, "model_card", None) or {}
    train = (card.get("data_window") or {}).get("train") or {}
    try:
        return pd.Timestamp(train["first_decision_date"]), pd.Timestamp(train["last_decision_date"])
    except (KeyError, TypeError, ValueError):
        return None


def stability_samples(bundle: Any, loans: pd.DataFrame, as_of: pd.Timestamp, months: int = 3,
                      ) -> tuple[pd.Timestamp, pd.Timestamp, pd.DataFrame, pd.DataFrame] | None:
    """The development window (first, last decision date up to ``as_of``) and the rows of ``loans`` in
    it and in the ``months`` months up to ``as_of``; None without a window in the model card."""
    window = development_window(bundle)
    if window is None:
        return None
    first, last = window[0], min(window[1], as_of)
    dates = loans["application_date"]
    dev = loans[(dates >= first) & (dates <= last)]
    recent = loans[(dates > as_of - pd.DateOffset(months=months)) & (dates <= as_of)]
    return first, last, dev, recent


def stability(bundle: Any, tables: Mapping[str, pd.DataFrame], as_of: object, months: int = 3,
              dictionary: DataDictionary | None = None, origination: OriginationFeatures | None = None,
              reference: Mapping[str, Any] | None = None) -> Stability:
    """PSI of the PDs and grades and CSI of the features of loans applied for in the ``months`` months
    up to ``as_of`` against the development sample, both at their decision dates; nothing dated after
    ``as_of`` is read. Without a development window in the model card, or without loans on either
    side, the result carries counts only.

    ``reference``: the development sample's CSI side as an earlier run of the same sample carried it
    (``validation.stats.csi_reference``), with ``origination`` holding the sample's PDs: its features
    are then not built again."""
    as_of = pd.Timestamp(as_of).normalize()
    known = as_of_tables(tables, as_of)
    samples = stability_samples(bundle, known["loans"], as_of, months)
    if samples is None:
        return Stability(reference="no development window in the bundle's model card")
    first, last, dev, recent = samples
    out = Stability(reference=f"{first.date()} .. {last.date()}", n_reference=len(dev), n_recent=len(recent),
                    csi_reference=dict(reference) if reference is not None else None)
    if dev.empty or recent.empty:
        return out
    names = list(bundle.schema.names)
    carried = reference is not None and origination is not None
    both = recent.drop_duplicates("loan_id") if carried else \
        pd.concat([dev, recent], ignore_index=True).drop_duplicates("loan_id")
    if origination is not None:  # the run's features and PDs at origination, each loan built and scored once
        origination.hold(both)
        # a column at a time: the development sample of a large book is the largest object of a run
        f_recent = pd.DataFrame(dict(origination.columns_of(recent, names)))
        out.pd_reference = pd.Series(origination.pd_of(dev), index=pd.Index(dev["loan_id"].to_numpy(), name="loan_id"),
                                     name="pd")
        out.pd_recent = pd.Series(origination.pd_of(recent), index=f_recent.index, name="pd")
        side: dict[str, Any] = dict(reference) if carried and reference is not None else {}
        if not carried:
            for name, column in origination.columns_of(dev, names):
                side.update(csi_reference(column.to_frame(), [name]))
    else:
        frame = _features(bundle, known, both, dictionary).set_index("loan_id")
        f_dev, f_recent = frame.loc[dev["loan_id"].to_numpy(), names], frame.loc[recent["loan_id"].to_numpy(), names]
        out.pd_reference = pd.Series(bundle.predict_pd(f_dev.reset_index()), index=f_dev.index, name="pd")
        out.pd_recent = pd.Series(bundle.predict_pd(f_recent.reset_index()), index=f_recent.index, name="pd")
        side = csi_reference(f_dev, names)
    out.csi_reference = side
    out.psi_pd = psi(out.pd_reference, out.pd_recent)
    out.psi_grade = psi(pd.Series(bundle.grade(out.pd_reference.to_numpy())),
                        pd.Series(bundle.grade(out.pd_recent.to_numpy())), categorical=True)
    table = csi_against(side, f_recent)
    out.csi = table.sort_values(["psi", "feature"], ascending=[False, True]).reset_index(drop=True)
    return out


def live_psi(reference_pd: pd.Series, live_pd: Any) -> TestResult | None:
    """PSI of the PDs the service answered against the development sample's PDs (None if either is empty)."""
    live = pd.Series(live_pd, dtype="float64").dropna()
    if reference_pd.empty or live.empty:
        return None
    return psi(reference_pd, live)

"""Default labels: 90+ days past due within a fixed performance window after the decision date."""

from __future__ import annotations

import pandas as pd


def default_labels(
    loans: pd.DataFrame,
    repayments: pd.DataFrame,
    extraction_date: pd.Timestamp,
    *,
    window_months: int = 12,
    dpd_threshold: int = 90,
) -> pd.Series:
    """Per loan_id: 1 if days_past_due reached `dpd_threshold` within the window, 0 if not, <NA> if the
    window had not ended by `extraction_date` (an incomplete window is never called good)."""
    decision = pd.to_datetime(loans["application_date"]).dt.normalize()
    window_end = decision + pd.DateOffset(months=window_months)
    ends = pd.Series(window_end.to_numpy(), index=loans["loan_id"].to_numpy())
    starts = pd.Series(decision.to_numpy(), index=loans["loan_id"].to_numpy())
    rep = repayments[["loan_id", "date", "days_past_due"]]
    rep = rep[rep["loan_id"].isin(ends.index)]
    date = pd.to_datetime(rep["date"])
    in_window = (date > rep["loan_id"].map(starts)) & (date <= rep["loan_id"].map(ends))
    bad = rep.loc[in_window & (rep["days_past_due"] >= dpd_threshold), "loan_id"].unique()
    label = pd.Series(0, index=ends.index, dtype="Int64", name=f"default_{window_months}m")
    label[label.index.isin(bad)] = 1
    label[(ends > pd.Timestamp(extraction_date)).to_numpy()] = pd.NA
    label.index.name = "loan_id"
    return label

"""Default labels, as a bank defines them, each as of a fixed performance window after the decision date.

Three definitions (``[label] kind`` in the run configuration):

* ``dpd``: 1 if any repayment record in (decision date, decision date + window] reached
  ``dpd_threshold`` days past due, 0 if none did;
* ``default_date``: 1 if the loan's default date (a column of the loans table) lies in
  (decision date, decision date + window], 0 if it has none or a later one;
* ``flag``: the bank's own 0/1 default flag on the loans table, taken as recorded (the bank's
  definition and window, e.g. a lifetime charge-off flag).

For ``dpd`` and ``default_date`` a loan whose window had not ended by the extraction date is not
labelled (<NA>): an incomplete window is never called good.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from creditmodel.exceptions import DataContractError

KINDS = ("dpd", "flag", "default_date")


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


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds, so messages read `2`, not `np.int64(2)`."""
    return value.item() if isinstance(value, np.generic) else value


def _loan_column(loans: pd.DataFrame, column: str) -> pd.Series:
    name = column.split(".", 1)[1] if column.startswith("loans.") else column
    if name not in loans.columns:
        raise DataContractError.of("error.labels.no_column", name=name, columns=", ".join(map(str, loans.columns)))
    return loans[name]


def flag_labels(loans: pd.DataFrame, column: str) -> pd.Series:
    """Per loan_id: the bank's 0/1 default flag `column` as recorded; null stays unlabelled (<NA>)."""
    raw = _loan_column(loans, column)
    values = pd.to_numeric(raw.map(lambda v: int(v) if isinstance(v, (bool, np.bool_)) else v), errors="coerce")
    bad = raw[raw.notna() & ~values.isin([0, 1])]
    if len(bad):
        raise DataContractError.of("error.labels.not_flag", name=column.removeprefix("loans."),
                                   value=_plain(bad.iloc[0]), n=len(bad))
    label = pd.Series(values.to_numpy(), index=loans["loan_id"].to_numpy(), name="default_flag").astype("Int64")
    label.index.name = "loan_id"
    return label


def default_date_labels(loans: pd.DataFrame, column: str, extraction_date: pd.Timestamp, *,
                        window_months: int = 12) -> pd.Series:
    """Per loan_id: 1 if the default date `column` lies in (decision, decision + window], 0 if it is
    empty or later, <NA> if the window had not ended by `extraction_date`."""
    raw = _loan_column(loans, column)
    when = pd.to_datetime(raw, errors="coerce")
    unreadable = raw[raw.notna() & when.isna()]
    if len(unreadable):
        raise DataContractError.of("error.labels.not_date", name=column.removeprefix("loans."),
                                   value=_plain(unreadable.iloc[0]), n=len(unreadable))
    when = when.dt.normalize().to_numpy()
    decision = pd.to_datetime(loans["application_date"]).dt.normalize()
    ends = (decision + pd.DateOffset(months=window_months)).to_numpy()
    early = pd.notna(when) & (when <= decision.to_numpy())
    if early.any():
        first = loans["loan_id"].to_numpy()[early][0]
        raise DataContractError.of("error.labels.early_default", name=column.removeprefix("loans."),
                                   n=int(early.sum()), first=first)
    bad = pd.notna(when) & (when <= ends)
    label = pd.Series(bad.astype(int), index=loans["loan_id"].to_numpy(), dtype="Int64",
                      name=f"default_{window_months}m")
    label[ends > np.datetime64(pd.Timestamp(extraction_date))] = pd.NA
    label.index.name = "loan_id"
    return label


def make_labels(tables: dict[str, pd.DataFrame], extraction_date: pd.Timestamp, *, kind: str = "dpd",
                window_months: int = 12, dpd_threshold: int = 90, column: str | None = None) -> pd.Series:
    """Labels of every loan by the configured definition (see the module docstring)."""
    if kind == "dpd":
        if tables.get("repayments") is None:
            raise DataContractError.of("error.labels.no_repayments")
        return default_labels(tables["loans"], tables["repayments"], extraction_date,
                              window_months=window_months, dpd_threshold=dpd_threshold)
    if column is None:
        raise DataContractError.of("error.labels.no_column_given", kind=kind)
    if kind == "flag":
        return flag_labels(tables["loans"], column)
    if kind == "default_date":
        return default_date_labels(tables["loans"], column, extraction_date, window_months=window_months)
    raise DataContractError.of("error.labels.unknown_kind", kind=kind, kinds=list(KINDS))


def label_columns(kind: str, column: str | None) -> list[str]:
    """Columns of the loans table that carry the outcome: never features."""
    if kind == "dpd" or column is None:
        return []
    return [column.removeprefix("loans.")]


def describe_label(kind: str = "dpd", *, window_months: int = 12, dpd_threshold: int = 90,
                   column: str | None = None) -> dict[str, str]:
    """The label definition in words, in English and Simplified Chinese (model card, report)."""
    col = f"loans.{column.removeprefix('loans.')}" if column else ""
    if kind == "dpd":
        return {"en": f"default = {dpd_threshold}+ days past due on a repayment record within {window_months} "
                      f"months after the decision date; loans whose window had not ended by the extraction date "
                      f"are not labelled",
                "zh": f"违约定义：决策日后{window_months}个月内任一还款记录逾期达到{dpd_threshold}天及以上；"
                      f"截至数据提取日表现期未满的贷款不参与标注"}
    if kind == "default_date":
        return {"en": f"default = the bank's default date ({col}) falls within {window_months} months after the "
                      f"decision date; loans whose window had not ended by the extraction date are not labelled",
                "zh": f"违约定义：本行记录的违约日期（{col}）落在决策日后{window_months}个月内；"
                      f"截至数据提取日表现期未满的贷款不参与标注"}
    if kind == "flag":
        return {"en": f"default = the bank's own default flag {col} = 1, as recorded (the bank's definition and "
                      f"window; recent loans have had less time to default)",
                "zh": f"违约定义：本行自有违约标志 {col} = 1（按本行口径与表现期记录；"
                      f"近期发放的贷款可观察违约的时间较短）"}
    raise ValueError(f"label kind {kind!r} is not one of {list(KINDS)}")

"""Backtest of the matured cohorts as outcomes arrive: per quarter of origination, the loans whose
12-month window has ended by the as-of date, their mean PD at origination against the realised
default rate, with the validation suite's Jeffreys and binomial tests and traffic lights, and the AUC
of the PDs on each cohort."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.config import RunConfig
from creditmodel.features.labels import make_labels
from creditmodel.models.metrics import auc
from creditmodel.monitoring.rerate import OriginationFeatures, _features, as_of_tables
from creditmodel.validation.stats import binomial_p, jeffreys_p, status_from_p

__all__ = ["BACKTEST_COLUMNS", "backtest", "backtest_table", "matured_loans", "matured_outcomes", "quarters"]

BACKTEST_COLUMNS = ["quarter", "loans", "defaults", "mean_pd", "default_rate", "auc", "jeffreys_p", "binomial_p",
                    "status"]


def matured_outcomes(tables: Mapping[str, pd.DataFrame], as_of: object,
                     config: RunConfig) -> tuple[pd.Series, pd.DataFrame]:
    """The outcome (1 = default) of each loan whose window has ended by ``as_of``, by loan_id, and
    those loans' rows of the loans table. Nothing dated after ``as_of`` is read."""
    as_of = pd.Timestamp(as_of).normalize()
    known = as_of_tables(tables, as_of)
    label = config.label
    y = make_labels(dict(known), as_of, kind=label.kind, window_months=label.window_months,
                    dpd_threshold=label.dpd_threshold, column=label.column)
    matured = y[y.notna()]
    return matured, known["loans"].set_index("loan_id").loc[matured.index].reset_index()


def matured_loans(bundle: Any, tables: Mapping[str, pd.DataFrame], as_of: object, config: RunConfig,
                  origination: OriginationFeatures | None = None,
                  outcomes: tuple[pd.Series, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per loan whose outcome window has ended by ``as_of``: loan_id, quarter of origination,
    outcome y (1 = default) and PD at origination by ``bundle``. Nothing dated after ``as_of`` is read.
    ``origination`` shares the features at origination with the rest of a monitoring run, ``outcomes``
    the :func:`matured_outcomes` it computed."""
    as_of = pd.Timestamp(as_of).normalize()
    if outcomes is None:
        outcomes = matured_outcomes(tables, as_of, config)  # which cuts the tables at the date itself
    matured, loans = outcomes
    if loans.empty:
        return pd.DataFrame({"loan_id": pd.Series(dtype="int64"), "quarter": pd.Series(dtype=object),
                             "y": pd.Series(dtype="int64"), "pd": pd.Series(dtype="float64")})
    if origination is not None:  # features at a loan's own decision date read nothing later: no cut needed
        pd_ = origination.pd_of(loans)
    else:
        pd_ = bundle.predict_pd(_features(bundle, as_of_tables(tables, as_of), loans, config.data_dictionary()))
    return pd.DataFrame({"loan_id": loans["loan_id"].to_numpy(),
                         "quarter": quarters(loans["application_date"]),
                         "y": matured.loc[loans["loan_id"]].to_numpy(np.int64), "pd": pd_})


def quarters(dates: pd.Series) -> np.ndarray:
    """Each date's quarter as text ("2023Q3", as a quarterly Period writes it), each distinct quarter
    written once: a large book's matured loans fall in a few dozen quarters."""
    days = pd.DatetimeIndex(dates)
    code = days.year.to_numpy(np.int64) * 4 + days.quarter.to_numpy(np.int64) - 1
    distinct, back = np.unique(code, return_inverse=True)
    return np.array([f"{c // 4}Q{c % 4 + 1}" for c in distinct.tolist()], dtype=object)[back]


def backtest_table(scored: pd.DataFrame, config: RunConfig) -> pd.DataFrame:
    """Per quarter of origination of ``scored`` (from :func:`matured_loans`): loans, defaults, mean PD,
    default rate, AUC (NaN without both outcomes), Jeffreys and binomial p-values and the traffic light
    (red/amber/green) of the worse p-value."""
    if scored.empty:
        return pd.DataFrame({c: [] for c in BACKTEST_COLUMNS})
    g = scored.groupby("quarter", sort=True)
    out = pd.DataFrame({"loans": g.size(), "defaults": g["y"].sum(), "mean_pd": g["pd"].mean()})
    out["default_rate"] = out["defaults"] / out["loans"]
    out["auc"] = pd.Series({q: auc(c["y"].to_numpy(), c["pd"].to_numpy()) for q, c in g}, dtype="float64")
    out["jeffreys_p"] = jeffreys_p(out["defaults"], out["loans"], out["mean_pd"])
    out["binomial_p"] = binomial_p(out["defaults"], out["loans"], out["mean_pd"])
    v = config.validation
    out["status"] = [status_from_p(min(a, b), v.p_red, v.p_amber) for a, b in zip(out["jeffreys_p"], out["binomial_p"])]
    return out.reset_index()[BACKTEST_COLUMNS]


def backtest(bundle: Any, tables: Mapping[str, pd.DataFrame], as_of: object, config: RunConfig) -> pd.DataFrame:
    """The backtest table of every cohort matured by ``as_of`` (see :func:`backtest_table`)."""
    return backtest_table(matured_loans(bundle, tables, as_of, config), config)

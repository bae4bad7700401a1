"""One monitoring run as of a date: re-rating, migration, watch list, NPL and EVA, as frames."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from creditmodel.config import RunConfig
from creditmodel.monitoring.backtest import backtest
from creditmodel.monitoring.book import (
    eva_by,
    live_book,
    loan_eva,
    npl_by,
    npl_per_year,
)
from creditmodel.monitoring.rerate import migration_matrix, migration_summary, rerate
from creditmodel.monitoring.triggers import parse_triggers, watch_list
from creditmodel.validation.stats import psi

__all__ = ["MonitoringResult", "monitor"]


@dataclass
class MonitoringResult:
    """The frames a monitoring run writes, and its headline figures."""

    as_of: pd.Timestamp
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def monitor(bundle: Any, tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp | dt.date | str, config: RunConfig
            ) -> MonitoringResult:
    """Monitor the live book of ``tables`` as of ``as_of`` with ``bundle`` (see the package docstring)."""
    as_of = pd.Timestamp(as_of).normalize()
    dictionary = config.data_dictionary()
    triggers = parse_triggers(config.monitoring.triggers)  # bad config fails before any work
    tolerance = config.monitoring.npl_tolerance
    book = live_book(tables, as_of, dictionary)
    rated = rerate(bundle, tables, book, as_of, dictionary)
    book = book.merge(rated, on="loan_id", how="left")
    watch = watch_list(tables, book, as_of, triggers)
    eva = loan_eva(book, book["pd_now"], config.pricing)
    first_year = int(tables["loans"]["application_date"].min().year)
    years = list(range(first_year, as_of.year))  # the year ends before the date, then the date itself
    frames = {
        "rerating": book[["loan_id", "enterprise_id", "officer_id", "team", "industry", "balance", "days_past_due",
                          "pd_origination", "grade_origination", "pd_now", "grade_now", "notches",
                          "reason_1", "reason_2", "reason_3"]],
        "migration": migration_matrix(rated, list(bundle.master_scale.grades)).reset_index(),
        "watch_list": watch,
        "npl_by_team": npl_by(book, "team", tolerance),
        "npl_by_officer": npl_by(book, ["team", "officer_id"], tolerance),
        "npl_by_year": pd.concat([npl_per_year(tables, years, None, dictionary, tolerance) if years else pd.DataFrame(),
                                  npl_by(book, None, tolerance).assign(year=as_of.year)], ignore_index=True),
        "eva_loans": eva,
        "eva_by_officer": eva_by(eva, ["team", "officer_id"]),
        "eva_by_team": eva_by(eva, "team"),
        "backtest": backtest(bundle, tables, as_of, config),
    }
    whole = npl_by(book, None, tolerance).iloc[0]
    drift = psi(rated["pd_origination"], rated["pd_now"]) if len(rated) else None
    summary = {
        "as_of": str(as_of.date()),
        "bundle": bundle.manifest.get("bundle_id") or bundle.manifest.get("model_version") or str(bundle.path.name),
        **migration_summary(rated),
        "psi_pd_origination_to_now": float(drift.value) if drift else float("nan"),
        "psi_status": drift.status if drift else "n/a",
        "npl_ratio": float(whole["npl_ratio"]),
        "npl_tolerance": tolerance,
        "npl_ratio_by_team": {r.team: float(r.npl_ratio) for r in frames["npl_by_team"].itertuples()},
        "officers_over_tolerance": int((~frames["npl_by_officer"]["within_tolerance"]).sum()),
        "eva_total": float(frames["eva_by_team"]["eva"].sum()),
        "backtest_quarters_red": [q for q, st in zip(frames["backtest"]["quarter"], frames["backtest"]["status"])
                                  if st == "red"],
        "watch_list_loans": int(watch["loan_id"].nunique()) if len(watch) else 0,
        "watch_list_by_trigger": {k: int(v) for k, v in watch["trigger"].value_counts().items()} if len(watch) else {},
    }
    return MonitoringResult(as_of, frames, summary)

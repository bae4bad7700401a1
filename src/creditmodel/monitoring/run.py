"""One monitoring run as of a date: re-rating, migration, watch list, NPL and EVA, as frames."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.config import RunConfig
from creditmodel.export.contents import model_id
from creditmodel.models.metrics import auc
from creditmodel.monitoring.backtest import backtest_table, matured_loans, matured_outcomes
from creditmodel.monitoring.book import (
    eva_by,
    live_book,
    live_books,
    loan_eva,
    npl_by,
)
from creditmodel.monitoring.carried import carried_frames, read_carried
from creditmodel.monitoring.rerate import (
    OriginationFeatures,
    as_of_tables,
    migration_matrix,
    migration_summary,
    rerate,
)
from creditmodel.monitoring.stability import Stability, live_psi, stability, stability_samples
from creditmodel.monitoring.triggers import parse_triggers, trigger_events, watch_list
from creditmodel.priority import lower_thread_priority
from creditmodel.validation.stats import psi

__all__ = ["MonitoringResult", "model_id", "monitor"]


@dataclass
class MonitoringResult:
    """The frames a monitoring run writes, and its headline figures."""

    as_of: pd.Timestamp
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    stability: Stability | None = None
    carried: tuple[dict[str, pd.DataFrame], dict[str, Any]] | None = None  # for the next date (monitoring.carried)


def monitor(bundle: Any, tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp | dt.date | str, config: RunConfig,
            scoring_log: str | Path | None = None, previous: str | Path | None = None) -> MonitoringResult:
    """Monitor the live book of ``tables`` as of ``as_of`` with ``bundle`` (see the package docstring).

    ``previous``: the output directory of an earlier run of this bundle on the same data; its ratings at
    origination are carried (``monitoring.carried``), so only the loans applied for since and the open
    book as of the date are built. The results are the same as without it. Every run's result carries
    its own (``MonitoringResult.carried``).

    ``scoring_log``: the scoring service's log directory (``serve --scoring-log``); the PDs it answered
    with this bundle's model are compared with the development sample (PSI). The log is the service's
    own traffic up to now, read whole: it is reported beside the as-of figures, never used for them."""
    as_of = pd.Timestamp(as_of).normalize()
    live = None
    if scoring_log is not None:  # read first: a bad log is one line before any work
        from creditmodel.service.scoring_log import read_scoring_log

        live = read_scoring_log(scoring_log, model=model_id(bundle))
    dictionary = config.data_dictionary()
    if hasattr(bundle, "check_currency"):
        bundle.check_currency(dictionary, "monitor")
    triggers = parse_triggers(config.monitoring.triggers)  # bad config fails before any work
    tolerance = config.monitoring.npl_tolerance
    book = live_book(tables, as_of, dictionary)
    # one catalogue build at origination for every loan applied for by the date: the open book, the
    # matured cohorts and the stability samples are all drawn from them
    # the balances are read by the live books alone, which cut them at each date themselves: cutting a
    # large book's balances here would copy them for nothing
    known = as_of_tables({name: t for name, t in tables.items() if name != "balances"}, as_of)
    origination = OriginationFeatures(bundle, known, dictionary, reasons=config.monitoring.reasons,
                                      chunk_rows=config.monitoring.chunk_rows, lanes=config.monitoring.lanes)
    carried_from, reference = None, None
    samples = stability_samples(bundle, known["loans"], as_of)
    development = None if samples is None else {"first": str(samples[0].date()), "last": str(samples[1].date()),
                                                "loans": int(len(samples[2]))}
    if previous is not None:
        carried = read_carried(previous, bundle, tables["loans"])
        origination.seed(carried.pds)
        carried_from = carried.as_of
        old = dict(carried.development or {})
        csi_side = old.pop("csi", None)
        if development is not None and csi_side is not None and old == development:
            reference = csi_side  # the same development sample: its side of the CSI as carried
    # ... and the open book as of the date in the same queries; every row scored once; the features are
    # kept only for the stability samples, which compare them
    keep: Any = [] if samples is None else samples[3]["loan_id"].to_numpy() if reference is not None else \
        np.concatenate([samples[2]["loan_id"].to_numpy(), samples[3]["loan_id"].to_numpy()])
    first_year = int(tables["loans"]["application_date"].min().year)
    years = list(range(first_year, as_of.year))  # the year ends before the date, then the date itself
    # what does not depend on the rating (the year-end books, the events of every trigger but downgrades)
    # is computed in a second thread while the catalogue queries, which leave a core idle part of the
    # time, rate the book (at a lower priority: the queries keep their cores); each side reads its own data, so
    # the results are those of one thread
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitoring", initializer=lower_thread_priority) as pool:
        unrated = pool.submit(lambda: (
            live_books(tables, [pd.Timestamp(year=y, month=12, day=31) for y in years], dictionary),
            trigger_events(tables, book, as_of, [t for t in triggers if t.kind != "downgrade"]),
            matured_outcomes(known, as_of, config)))
        origination.build(known["loans"], as_of, book[[c for c in tables["loans"].columns if c in book.columns]],
                          keep=keep)
        rated = rerate(bundle, known, book, as_of, dictionary, origination, reasons=config.monitoring.reasons)
        year_ends, events, outcomes = unrated.result()
        rows_built = origination.rows_built
        # the backtest and the stability read the ratings at origination (and build what they lack): the second
        # thread computes them while this one, which no longer reads those, joins the book, its watch list and EVA
        then = pool.submit(lambda: (
            matured_loans(bundle, known, as_of, config, origination, outcomes=outcomes),
            stability(bundle, known, as_of, dictionary=dictionary, origination=origination, reference=reference)))
        book = book.merge(rated, on="loan_id", how="left")
        watch = watch_list(tables, book, as_of, triggers, events=events)
        eva = loan_eva(book, book["pd_now"], config.pricing)
        matured, stable = then.result()
    year_books = [*zip(years, year_ends), (as_of.year, book)]
    frames = {
        "rerating": book[["loan_id", "enterprise_id", "officer_id", "team", "industry", "balance", "days_past_due",
                          "pd_origination", "grade_origination", "pd_now", "grade_now", "notches",
                          "reason_1", "reason_2", "reason_3", "reason_1_zh", "reason_2_zh", "reason_3_zh",
                          "reason_1_feature", "reason_2_feature", "reason_3_feature"]],
        "migration": migration_matrix(rated, list(bundle.master_scale.grades)).reset_index(),
        "watch_list": watch,
        "npl_by_team": npl_by(book, "team", tolerance),
        "npl_by_officer": npl_by(book, ["team", "officer_id"], tolerance),
        # the year-end books, then the book of the as-of date (column date says which)
        "npl_by_year": pd.concat([npl_by(b, None, tolerance).assign(year=y, date=b["as_of"].iloc[0] if len(b) else
                                                                      pd.Timestamp(year=y, month=12, day=31))
                                  for y, b in year_books], ignore_index=True),
        "npl_by_year_team": pd.concat([npl_by(b, "team", tolerance).assign(year=y, date=b["as_of"].iloc[0] if len(b)
                                                                           else pd.Timestamp(year=y, month=12, day=31))
                                       for y, b in year_books], ignore_index=True),
        "eva_loans": eva,
        "eva_by_officer": eva_by(eva, ["team", "officer_id"]),
        "eva_by_team": eva_by(eva, "team"),
        "backtest": backtest_table(matured, config),
        "csi": stable.csi,
    }
    whole = npl_by(book, None, tolerance).iloc[0]
    drift = psi(rated["pd_origination"], rated["pd_now"]) if len(rated) else None
    summary = {
        "as_of": str(as_of.date()),
        "bundle": bundle.manifest.get("bundle_id") or bundle.manifest.get("model_version") or str(bundle.path.name),
        "model_id": model_id(bundle),
        **migration_summary(rated),
        "psi_pd_origination_to_now": float(drift.value) if drift else float("nan"),
        "psi_status": drift.status if drift else "n/a",
        "stability_reference": stable.reference,
        "recent_applications": stable.n_recent,
        "psi_pd_recent_to_development": float(stable.psi_pd.value) if stable.psi_pd else float("nan"),
        "psi_pd_recent_status": stable.psi_pd.status if stable.psi_pd else "n/a",
        "psi_grade_recent_to_development": float(stable.psi_grade.value) if stable.psi_grade else float("nan"),
        "features_csi_red": [f for f, st in zip(stable.csi["feature"], stable.csi["status"]) if st == "red"],
        "npl_ratio": float(whole["npl_ratio"]),
        "npl_tolerance": tolerance,
        "npl_ratio_by_team": {r.team: float(r.npl_ratio) for r in frames["npl_by_team"].itertuples()},
        "officers_over_tolerance": int((~frames["npl_by_officer"]["within_tolerance"]).sum()),
        "eva_total": float(frames["eva_by_team"]["eva"].sum()),
        "backtest_quarters_red": [q for q, st in zip(frames["backtest"]["quarter"], frames["backtest"]["status"])
                                  if st == "red"],
        "backtest_loans": int(len(matured)),
        "backtest_default_rate": float(matured["y"].mean()) if len(matured) else float("nan"),
        "backtest_auc": auc(matured["y"].to_numpy(), matured["pd"].to_numpy()) if len(matured) else float("nan"),
        "watch_list_loans": int(watch["loan_id"].nunique()) if len(watch) else 0,
        "watch_list_by_trigger": {k: int(v) for k, v in watch["trigger"].value_counts().items()} if len(watch) else {},
    }
    summary.update({"rows_built": int(rows_built), "carried_from": carried_from})
    assert origination.pds is not None
    carry = carried_frames(bundle, as_of, known["loans"], origination.pds,
                           None if development is None or stable.csi_reference is None
                           else {**development, "csi": stable.csi_reference})
    if live is not None:
        live_pd = pd.Series([r["pd"] for r in live], dtype="float64")
        live_test = live_psi(stable.pd_reference, live_pd)
        times = sorted(str(r.get("time", "")) for r in live)
        summary.update({"live_scores": len(live), "live_psi": float(live_test.value) if live_test else float("nan"),
                        "live_psi_status": live_test.status if live_test else "n/a",
                        "live_mean_pd": float(live_pd.mean()) if len(live) else float("nan"),
                        "live_scores_from": times[0] if times else None, "live_scores_to": times[-1] if times else None})
    return MonitoringResult(as_of, frames, summary, stable, carry)

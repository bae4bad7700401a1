"""Window edges: a window of w days holds rows dated in [d - w days, d).

A row exactly at the window start is in, a row a moment earlier is out, a row on the decision date
is out; a window without rows gives the feature's declared fill (0 for counts and sums, else null).
"""

import numpy as np
import pandas as pd
import pytest

from creditmodel.data.schema import TABLES
from creditmodel.features.build import _needs, build_features
from creditmodel.features.catalogue import BY_NAME, CATALOGUE, REPORTING_LAG_DAYS

D = pd.Timestamp
DECISION = D("2023-07-01")
DAY, SECOND = pd.Timedelta(days=1), pd.Timedelta(seconds=1)


def _base() -> dict[str, pd.DataFrame]:
    """Enterprise 1 applies for loan 10 on DECISION, in group 7 that enterprise 2 joined a month earlier
    (loan 20); loan 5 is enterprise 1's earlier loan. Every other table is empty."""
    tables = {name: pd.DataFrame({c.name: pd.Series(dtype=_dtype(c.kind)) for c in t.columns})
              for name, t in TABLES.items()}
    tables["enterprises"] = pd.DataFrame({
        "enterprise_id": [1, 2], "registration_date": [D("2015-01-01")] * 2, "legal_form": ["sole_trader"] * 2,
        "industry": ["furniture"] * 2, "county": ["330523"] * 2, "registered_capital": [1e5] * 2,
        "owner_birth_year": pd.array([1980] * 2, "Int64")})
    tables["loans"] = pd.DataFrame({
        "loan_id": [5, 10, 20], "enterprise_id": [1, 1, 2],
        "application_date": [D("2020-01-01"), DECISION, D("2023-06-01")],
        "product": ["micro", "joint_guarantee_group", "joint_guarantee_group"],
        "guarantee_type": ["unsecured", "joint_group", "joint_group"], "amount": [1e5] * 3,
        "term_months": [36, 12, 12], "rate": [0.08] * 3, "group_id": pd.array([None, 7, 7], "Int64")})
    return tables


def _dtype(kind: str) -> str:
    return {"int": "int64", "float": "float64", "str": "object", "bool": "bool", "date": "datetime64[ns]",
            "timestamp": "datetime64[ns]"}[kind]


def _row(table: str, date: pd.Timestamp) -> dict:
    """One row of `table` dated `date`, belonging to enterprise 1 (or to group member 2's loan)."""
    return {
        "transactions": {"enterprise_id": 1, "ts": date, "amount": 100.0, "direction": "in", "channel": "pos",
                         "counterparty": 3},
        "registration_events": {"enterprise_id": 1, "event_date": date, "kind": "penalty", "amount": 500.0},
        "court_cases": {"case_id": 1, "enterprise_id": 1, "filed_date": date, "closed_date": pd.NaT,
                        "amount": 1e4, "dishonest_debtor": True},
        "environment_checks": {"enterprise_id": 1, "check_date": date, "passed": False},
        "financial_statements": {"enterprise_id": 1, "period_end": date, "revenue": 1e6, "assets": 8e5,
                                 "liabilities": 4e5, "inventory": 1e5, "receivables": 5e4, "net_profit": 5e4},
        "loans": {"loan_id": 6, "enterprise_id": 1, "application_date": date, "product": "micro",
                  "guarantee_type": "unsecured", "amount": 5e4, "term_months": 6, "rate": 0.08, "group_id": pd.NA},
        "repayments": {"loan_id": 5, "date": date, "days_past_due": 45},
        "member_repayments": {"loan_id": 20, "date": date, "days_past_due": 45},
    }[table]


def _features(table: str | None = None, date: pd.Timestamp | None = None, features=CATALOGUE) -> pd.Series:
    tables = _base()
    if table is not None:
        name = "repayments" if table == "member_repayments" else table
        row = pd.DataFrame([_row(table, date)]).astype(tables[name].dtypes.to_dict())
        tables[name] = pd.concat([tables[name], row], ignore_index=True)
    loans = tables["loans"]
    frame = build_features(tables, applications=loans[loans["loan_id"] == 10], features=features)
    return frame.set_index("loan_id").loc[10]


# table, feature, window start (days before the decision date), value with the row in, value without it
EDGES = [
    ("transactions", "txn_inflow_1m", 30, 100.0, 0.0),
    ("transactions", "txn_inflow_12m", 365, 100.0, 0.0),
    ("transactions", "txn_counterparties_3m", 90, 1.0, 0.0),
    ("registration_events", "reg_penalties_12m", 365, 1.0, 0.0),
    ("court_cases", "court_cases_12m", 365, 1.0, 0.0),
    ("environment_checks", "env_failed_24m", 730, 1.0, 0.0),
    ("financial_statements", "fs_statements_3y", 1095, 1.0, 0.0),
    ("loans", "hist_prior_loans_12m", 365, 1.0, 0.0),
    ("repayments", "hist_max_dpd_1m", 30, 45.0, np.nan),
    ("member_repayments", "grp_worst_dpd_3m", 90, 45.0, np.nan),
]


def _same(a: float, b: float) -> bool:
    return (np.isnan(a) and np.isnan(b)) or a == b


@pytest.mark.parametrize("table, name, days, inside, outside", EDGES, ids=[f"{e[0]}-{e[1]}" for e in EDGES])
def test_window_start_is_in_and_the_decision_date_is_out(table, name, days, inside, outside):
    only = [BY_NAME[name]]
    start = DECISION - pd.Timedelta(days=days)
    before = SECOND if table == "transactions" else DAY  # ts is a timestamp, the others are dates
    # a statement is dated by when it becomes available: period end + reporting lag
    known = DECISION - pd.Timedelta(days=REPORTING_LAG_DAYS if table == "financial_statements" else 0)
    assert _same(_features(table, start, only)[name], inside), "a row exactly at the window start is in"
    assert _same(_features(table, start - before, only)[name], outside), "a row before the window start is out"
    assert _same(_features(table, known - before, only)[name], inside), "a row just before the decision date is in"
    assert _same(_features(table, known, only)[name], outside), "a row on the decision date is out"
    assert _same(_features(features=only)[name], outside)


def test_statement_is_read_only_after_the_reporting_lag():
    lag = pd.Timedelta(days=REPORTING_LAG_DAYS)
    assert _features("financial_statements", DECISION - lag - DAY)["fs_revenue"] == 1e6
    assert np.isnan(_features("financial_statements", DECISION - lag)["fs_revenue"])  # available on d: too late


def _fill(name: str) -> float:
    fill = next(f.fill for f in CATALOGUE if f.name == name)
    return np.nan if fill is None else fill


@pytest.mark.parametrize("table", ["transactions", "registration_events", "court_cases", "environment_checks",
                                   "financial_statements", "loans", "repayments", "member_repayments"])
def test_an_empty_window_gives_the_declared_fill(table):
    """A lone row older than every window: each windowed feature of its source reads as empty."""
    name = "repayments" if table == "member_repayments" else table
    sources = {f.source for f in CATALOGUE if f.source != "derived" and name in _needs(f.source)}
    windowed = [f for f in CATALOGUE if f.source in sources and f.window_days is not None]
    row = _features(table, DECISION - pd.Timedelta(days=1200), windowed)
    nothing = _features(features=windowed)
    windowed = [f.name for f in windowed]
    assert windowed
    for feature in windowed:
        assert _same(row[feature], _fill(feature)), feature
        assert _same(nothing[feature], _fill(feature)), feature


def test_a_source_without_rows_gives_the_declared_fill():
    row = _features()
    for f in CATALOGUE:
        if f.source not in ("application", "enterprises", "derived", "guarantee_group", "loan_history"):
            assert _same(row[f.name], _fill(f.name)), f.name

"""Point in time, source by source, on the synthetic world.

For each source table: a row belonging to a loan's enterprise (or, for the joint-guarantee group, to
another member) is added inside the window. (a) Dated exactly on the decision date or after it, the
row changes nothing: the features equal those without it. (b) Dated inside the window, it changes
only features of the sources that read that table (and derived features built on them), and at
least the ones it obviously must.
"""

import numpy as np
import pandas as pd
import pytest

from creditmodel.features.build import _needs, _referenced, build_features
from creditmodel.features.catalogue import CATALOGUE, REPORTING_LAG_DAYS
from creditmodel.features.online import tables_needed

# every table the catalogue reads (life-after-the-loan and security tables feed no feature)
FEATURE_SOURCES = set(tables_needed(CATALOGUE))


def _pick_loan(tables: dict[str, pd.DataFrame]) -> tuple[pd.Series, pd.Series, int]:
    """A joint-guarantee loan decided in 2023 whose enterprise borrowed before, with a group member
    who applied before it: (the loan, the member's loan, the enterprise's earlier loan id)."""
    loans = tables["loans"].sort_values("loan_id")
    for _, loan in loans[loans["group_id"].notna() & (loans["application_date"] >= "2023-01-01")].iterrows():
        d = loan["application_date"]
        members = loans[(loans["group_id"] == loan["group_id"]) & (loans["application_date"] < d)
                        & (loans["enterprise_id"] != loan["enterprise_id"])]
        earlier = loans[(loans["enterprise_id"] == loan["enterprise_id"])
                        & (loans["application_date"] < d - pd.Timedelta(days=60))]
        if len(members) and len(earlier):
            return loan, members.iloc[0], int(earlier["loan_id"].iloc[0])
    raise AssertionError("the synthetic world has no suitable loan")


def _new_row(case: str, loan: pd.Series, member: pd.Series, earlier: int, date: pd.Timestamp) -> dict:
    e = loan["enterprise_id"]
    return {
        "transactions": {"enterprise_id": e, "ts": date, "amount": 12_345.67, "direction": "in", "channel": "pos",
                         "counterparty": 999_999_999},
        "registration_events": {"enterprise_id": e, "event_date": date, "kind": "penalty", "amount": 777.0},
        "court_cases": {"case_id": 999_999, "enterprise_id": e, "filed_date": date, "closed_date": pd.NaT,
                        "amount": 55_555.0, "dishonest_debtor": True},
        "environment_checks": {"enterprise_id": e, "check_date": date, "passed": False},
        "financial_statements": {"enterprise_id": e, "period_end": date, "revenue": 4.4e6, "assets": 3.3e6,
                                 "liabilities": 2.2e6, "inventory": 5e5, "receivables": 4e5, "net_profit": -1e5},
        "loans": {"loan_id": 999_999, "enterprise_id": e, "application_date": date, "product": "micro",
                  "guarantee_type": "unsecured", "amount": 54_321.0, "term_months": 12, "rate": 0.08,
                  "group_id": pd.NA},
        "repayments": {"loan_id": earlier, "date": date, "days_past_due": 999},
        "group_repayments": {"loan_id": member["loan_id"], "date": date, "days_past_due": 999},
        "group_loans": {"loan_id": 999_999, "enterprise_id": 999_999, "application_date": date,
                        "product": "joint_guarantee_group", "guarantee_type": "joint_group", "amount": 1e5,
                        "term_months": 12, "rate": 0.08, "group_id": loan["group_id"]},
    }[case]


# case: table, days before the decision date that put the row inside the window, sources it may change,
# features it must change
CASES = {
    "transactions": ("transactions", 10, None, {"txn_inflow_1m", "txn_inflow_count_12m", "txn_pos_share_3m",
                                                 "txn_counterparties_12m", "txn_inflow_cv_12m", "loan_to_inflow_12m"}),
    "registration_events": ("registration_events", 100, None, {"reg_penalties_12m", "reg_penalties_ever",
                                                               "reg_penalty_amount_24m", "public_adverse_records_24m"}),
    "court_cases": ("court_cases", 100, None, {"court_cases_12m", "court_open_cases", "court_dishonest_debtor_now",
                                               "court_days_since_last_case", "court_open_amount_to_loan"}),
    "environment_checks": ("environment_checks", 100, None, {"env_failed_12m", "env_checks_36m",
                                                             "env_last_check_failed"}),
    "financial_statements": ("financial_statements", REPORTING_LAG_DAYS + 10, None,
                             {"fs_revenue", "fs_statement_age_days", "fs_statements_3y", "loan_to_revenue"}),
    "loans": ("loans", 100, None, {"hist_prior_loans", "hist_prior_loans_12m", "hist_open_loans"}),
    "repayments": ("repayments", 20, None, {"hist_max_dpd_1m", "hist_max_dpd_ever", "hist_ever_90dpd"}),
    # rows of another member of the loan's joint-guarantee group reach only the group's features
    "group_repayments": ("repayments", 20, {"guarantee_group"}, {"grp_worst_dpd_3m", "grp_members_defaulted"}),
    "group_loans": ("loans", 5, {"guarantee_group"}, {"grp_members"}),
}


@pytest.fixture(scope="module")
def world_and_loan(small_world):
    tables = small_world.tables
    loan, member, earlier = _pick_loan(tables)
    # only the rows of the enterprises involved, so that each build is quick
    ents = set(tables["loans"].loc[tables["loans"]["group_id"] == loan["group_id"], "enterprise_id"])
    ents.add(loan["enterprise_id"])
    loan_ids = tables["loans"].loc[tables["loans"]["enterprise_id"].isin(ents), "loan_id"]
    small = {name: df[df["loan_id"].isin(loan_ids)] if name == "repayments" else df[df["enterprise_id"].isin(ents)]
             for name, df in tables.items() if name in FEATURE_SOURCES}
    return small, loan, member, earlier, _features(small, loan["loan_id"])


def _features(tables: dict[str, pd.DataFrame], loan_id: int) -> pd.Series:
    loans = tables["loans"]
    return build_features(tables, applications=loans[loans["loan_id"] == loan_id]).set_index("loan_id").loc[loan_id]


def _with_row(tables: dict[str, pd.DataFrame], table: str, row: dict) -> dict[str, pd.DataFrame]:
    out = dict(tables)
    new = pd.DataFrame([row]).astype(tables[table].dtypes.to_dict())
    out[table] = pd.concat([tables[table], new], ignore_index=True)
    return out


def _changed(a: pd.Series, b: pd.Series) -> set[str]:
    """The features (and keys) whose values differ between two rows of a feature matrix."""
    out = set()
    for name in a.index:
        x, y = a[name], b[name]
        if pd.isna(x) and pd.isna(y):
            continue
        numeric = isinstance(x, (float, np.floating)) and isinstance(y, (float, np.floating))
        if pd.isna(x) or pd.isna(y) or (not np.isclose(x, y, rtol=1e-12, atol=0) if numeric else x != y):
            out.add(name)
    return out


def _allowed(table: str, sources: set[str] | None) -> set[str]:
    """Features of the sources that read `table` (or of `sources`), and the derived features using them."""
    if sources is None:
        sources = {f.source for f in CATALOGUE if f.source != "derived" and table in _needs(f.source)}
    base = {f.name for f in CATALOGUE if f.source in sources}
    return base | {f.name for f in CATALOGUE if f.source == "derived" and set(_referenced(f, CATALOGUE)) & base}


@pytest.mark.parametrize("case", list(CASES))
def test_a_row_changes_only_its_sources_features_and_only_before_the_decision_date(world_and_loan, case):
    tables, loan, member, earlier, absent = world_and_loan
    table, days, sources, must = CASES[case]
    d = pd.Timestamp(loan["application_date"])

    # (a) on the decision date or after it, the row is as good as absent (a statement is dated by its
    # availability: period end + reporting lag)
    dates = [d, d + pd.Timedelta(days=30)]
    if table == "financial_statements":
        dates.insert(0, d - pd.Timedelta(days=REPORTING_LAG_DAYS))
    for date in dates:
        late = _features(_with_row(tables, table, _new_row(case, loan, member, earlier, date)), loan["loan_id"])
        assert not _changed(absent, late), (case, date)

    # (b) inside the window it changes features of its own sources only
    inside = d - pd.Timedelta(days=days)
    present = _features(_with_row(tables, table, _new_row(case, loan, member, earlier, inside)), loan["loan_id"])
    changed = _changed(absent, present)
    assert changed <= _allowed(table, sources), sorted(changed - _allowed(table, sources))
    assert must <= changed, sorted(must - changed)


def test_every_source_table_is_covered():
    event_tables = FEATURE_SOURCES - {"enterprises"}
    assert event_tables <= {table for table, *_ in CASES.values()}

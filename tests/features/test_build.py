import numpy as np
import pandas as pd
import pytest

from creditmodel.data.schema import TABLES
from creditmodel.features.build import available_features, build_features, feature_columns
from creditmodel.features.catalogue import CATALOGUE


def _as_of(tables: dict[str, pd.DataFrame], loan: pd.Series, mode: str) -> dict[str, pd.DataFrame]:
    """The tables as they stood at the loan's decision date: future rows dropped or scrambled."""
    d = pd.Timestamp(loan["application_date"])
    out = {}
    for name, df in tables.items():
        date_col = TABLES[name].event_date
        future = pd.to_datetime(df[date_col]) >= d
        if name == "loans":
            future &= df["loan_id"] != loan["loan_id"]
        if name == "enterprises":
            future[:] = False
        df = df.copy()
        if mode == "drop":
            df = df[~future]
        else:  # change every future row beyond recognition
            for col in df.columns:
                if col in ("amount", "revenue", "assets", "liabilities", "net_profit", "days_past_due"):
                    df.loc[future, col] = df.loc[future, col] * 7 + 3
            if "passed" in df:
                df.loc[future, "passed"] = ~df.loc[future, "passed"]
            if "channel" in df:
                df.loc[future, "channel"] = "cash"
        if name == "court_cases":  # a case closed after the decision date was open at it
            df.loc[pd.to_datetime(df["closed_date"]) >= d, "closed_date"] = pd.NaT
        out[name] = df
    return out


@pytest.mark.parametrize("mode", ["drop", "change"])
def test_features_use_no_data_on_or_after_the_decision_date(small_world, mode):
    tables = small_world.tables
    full = build_features(tables).set_index("loan_id")
    loans = tables["loans"]
    rng = np.random.default_rng(0)
    sample = loans.iloc[rng.choice(len(loans), size=25, replace=False)]
    for _, loan in sample.iterrows():
        as_of = _as_of(tables, loan, mode)
        one = build_features(as_of, applications=loans[loans["loan_id"] == loan["loan_id"]]).set_index("loan_id")
        pd.testing.assert_frame_equal(one, full.loc[[loan["loan_id"]]], check_exact=False, rtol=1e-12)


def test_catalogue_is_complete_and_unique(small_world):
    frame = build_features(small_world.tables)
    assert len(CATALOGUE) >= 25
    assert feature_columns(frame) == [f.name for f in CATALOGUE]
    assert len({f.name for f in CATALOGUE}) == len(CATALOGUE)
    assert frame["loan_id"].is_unique and len(frame) == len(small_world.tables["loans"])
    # every source yields information: no feature is constant or all missing
    for col in feature_columns(frame):
        assert frame[col].nunique(dropna=True) > 1, col


def _hand_tables() -> dict[str, pd.DataFrame]:
    D = pd.Timestamp
    return {
        "enterprises": pd.DataFrame({"enterprise_id": [1], "registration_date": [D("2020-07-01")],
                                     "legal_form": ["sole_trader"], "industry": ["furniture"], "county": ["330523"],
                                     "registered_capital": [np.nan], "owner_birth_year": pd.array([1980], "Int64")}),
        "loans": pd.DataFrame({"loan_id": [5, 10], "enterprise_id": [1, 1],
                               "application_date": [D("2022-01-01"), D("2023-07-01")],
                               "product": ["micro", "working_capital"], "guarantee_type": ["unsecured", "collateral"],
                               "amount": [50_000.0, 200_000.0], "term_months": [12, 24], "rate": [0.08, 0.06],
                               "group_id": pd.array([None, None], "Int64")}),
        "repayments": pd.DataFrame({"loan_id": [5, 5, 5, 10], "date": [D("2022-05-01"), D("2022-06-01"),
                                                                     D("2023-07-15"), D("2023-08-01")],
                                    "days_past_due": [30, 95, 120, 0]}),
        "transactions": pd.DataFrame({
            "enterprise_id": [1] * 6,
            "ts": [D("2023-06-15 10:00"), D("2023-05-01 09:00"), D("2022-01-01 12:00"), D("2023-07-01 08:00"),
                   D("2023-06-20 15:00"), D("2023-02-01 11:00")],
            "amount": [100.0, 300.0, 1000.0, 5000.0, 200.0, 600.0],
            "direction": ["in", "in", "in", "in", "out", "in"],
            "channel": ["cash", "pos", "pos", "cash", "transfer", "direct_link"],
            "counterparty": [7, 8, 8, 9, 10, 8]}),
        "court_cases": pd.DataFrame({"case_id": [1, 2], "enterprise_id": [1, 1],
                                     "filed_date": [D("2023-01-01"), D("2023-07-02")],
                                     "closed_date": [D("2023-08-01"), pd.NaT], "amount": [40_000.0, 9.0],
                                     "dishonest_debtor": [False, True]}),
        "environment_checks": pd.DataFrame({"enterprise_id": [1, 1, 1], "check_date": [D("2022-03-01"),
                                            D("2023-03-01"), D("2023-09-01")], "passed": [True, False, True]}),
        "financial_statements": pd.DataFrame({
            "enterprise_id": [1, 1, 1], "period_end": [D("2021-12-31"), D("2022-12-31"), D("2023-12-31")],
            "revenue": [1000.0, 2000.0, 9.0], "assets": [500.0, 1000.0, 9.0], "liabilities": [250.0, 800.0, 1.0],
            "inventory": [100.0, 400.0, 1.0], "receivables": [50.0, 100.0, 1.0], "net_profit": [10.0, -100.0, 1.0]}),
        "registration_events": pd.DataFrame({"enterprise_id": [1, 1, 1], "event_date": [D("2022-01-10"),
                                             D("2023-02-01"), D("2023-07-01")],
                                             "kind": ["abnormal_listing", "penalty", "abnormal_removal"],
                                             "amount": [np.nan, 5000.0, np.nan]}),
    }


def test_hand_computed_features():
    t = _hand_tables()
    row = build_features(t).set_index("loan_id").loc[10]
    # receipts in [2022-07-01, 2023-07-01): 100 (cash) + 300 (pos) + 600 (direct link); 5000 is on the decision date
    assert row["txn_inflow_12m"] == 1000.0
    assert row["txn_cash_share_12m"] == pytest.approx(0.1)
    assert row["txn_pos_share_12m"] == pytest.approx(0.3)
    assert row["txn_direct_link_share_12m"] == pytest.approx(0.6)
    assert row["txn_outflow_to_inflow_12m"] == pytest.approx(0.2)
    assert row["txn_inflow_count_3m"] == 2  # 2023-05-01 and 2023-06-15
    assert row["txn_inflow_trend_3m"] == pytest.approx(400 / 600)
    assert row["txn_counterparties_12m"] == 2
    assert row["txn_days_since_last_inflow"] == 16
    assert row["txn_max_gap_days_12m"] == 89  # 2023-02-01 -> 2023-05-01
    assert row["txn_active_months_12m"] == 3
    monthly = np.array([100, 300, 600] + [0] * 9, dtype=float)
    assert row["txn_inflow_cv_12m"] == pytest.approx(monthly.std() / monthly.mean())
    assert row["court_open_cases"] == 1 and row["court_open_amount"] == 40_000
    assert row["court_cases_36m"] == 1 and row["court_dishonest_debtor"] == 0
    assert row["env_checks_36m"] == 2 and row["env_failed_36m"] == 1 and row["env_last_check_failed"] == 1
    assert row["fs_revenue"] == 2000 and row["fs_leverage"] == pytest.approx(0.8)
    assert row["fs_profit_margin"] == pytest.approx(-0.05) and row["fs_months_since_statement"] == 7
    assert row["hist_prior_loans"] == 1 and row["hist_ever_90dpd"] == 1 and row["hist_max_dpd_24m"] == 95
    assert row["hist_delinquent_months_24m"] == 2
    assert row["reg_abnormal_listed_now"] == 1  # removal is on the decision date: not yet known
    assert row["reg_penalties_24m"] == 1 and row["reg_penalty_amount_24m"] == 5000
    assert row["firm_age_years"] == pytest.approx(1095 / 365.25)
    assert row["owner_age"] == 43 and np.isnan(row["registered_capital"])
    assert row["loan_to_inflow_12m"] == pytest.approx(200.0)
    assert row["loan_to_revenue"] == pytest.approx(100.0)
    first = build_features(t).set_index("loan_id").loc[5]
    assert first["hist_prior_loans"] == 0 and np.isnan(first["hist_ever_90dpd"])  # thin file: unknown, not good


def test_absent_optional_sources_drop_their_features():
    t = _hand_tables()
    del t["transactions"], t["environment_checks"]
    kept, missing = available_features(t)
    assert missing == ["environment_checks", "transactions"]
    frame = build_features(t)
    assert not any(c.startswith(("txn_", "env_")) for c in frame.columns)
    assert "loan_to_inflow_12m" not in frame and "loan_to_revenue" in frame
    assert len(feature_columns(frame)) == len(kept)

import numpy as np
import pandas as pd
import pytest

from creditmodel.data.schema import TABLES
from creditmodel.features.build import (
    available_features,
    build_features,
    compile_query,
    feature_columns,
    source_clause,
)
from creditmodel.features.catalogue import CATALOGUE, REPORTING_LAG_DAYS


def _as_of(tables: dict[str, pd.DataFrame], loan: pd.Series, mode: str) -> dict[str, pd.DataFrame]:
    """The tables as they stood at the loan's decision date: future rows dropped or scrambled.

    Only the rows of the loan's enterprise and of its joint-guarantee group are kept (which also
    shows that no other borrower's rows reach its features).
    """
    d = pd.Timestamp(loan["application_date"])
    loans = tables["loans"]
    ents = {loan["enterprise_id"]}
    if pd.notna(loan["group_id"]):
        ents |= set(loans.loc[loans["group_id"] == loan["group_id"], "enterprise_id"])
    own_loans = loans.loc[loans["enterprise_id"].isin(ents), "loan_id"]
    out = {}
    for name, df in tables.items():
        if "enterprise_id" in df.columns:
            df = df[df["enterprise_id"].isin(ents)]
        elif "loan_id" in df.columns:  # repayments and the other loan-keyed tables
            df = df[df["loan_id"].isin(own_loans)]
        date_col = TABLES[name].event_date
        if date_col is None:  # undated (e.g. the officers roster): nothing in it lies in the future
            out[name] = df
            continue
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
            if "group_id" in df:  # a future loan that joins the loan's group
                df.loc[future, "group_id"] = loan["group_id"]
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
    # a random sample, plus joint-guarantee loans whose group was still forming at the decision date
    grouped = loans[loans["group_id"].notna()].groupby("group_id")["loan_id"].nth(1)
    sample = pd.concat([loans.iloc[rng.choice(len(loans), size=16, replace=False)],
                        loans[loans["loan_id"].isin(grouped.head(4))]])
    for _, loan in sample.iterrows():
        as_of = _as_of(tables, loan, mode)
        one = build_features(as_of, applications=loans[loans["loan_id"] == loan["loan_id"]]).set_index("loan_id")
        pd.testing.assert_frame_equal(one, full.loc[[loan["loan_id"]]], check_exact=False, rtol=1e-12)


def test_catalogue_is_complete_and_unique(small_world):
    frame = build_features(small_world.tables)
    assert len(CATALOGUE) >= 100
    assert feature_columns(frame) == [f.name for f in CATALOGUE]
    assert len({f.name for f in CATALOGUE}) == len(CATALOGUE)
    assert frame["loan_id"].is_unique and len(frame) == len(small_world.tables["loans"])


def test_threads_do_not_change_the_features(small_world):
    one = build_features(small_world.tables)
    two = build_features(small_world.tables, threads=2)
    pd.testing.assert_frame_equal(one, two, check_exact=False, rtol=1e-9)


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
    assert row["txn_transfer_share_12m"] == 0
    assert row["txn_outflow_to_inflow_12m"] == pytest.approx(0.2)
    assert row["txn_net_flow_12m"] == 800
    assert row["txn_inflow_count_3m"] == 2  # 2023-05-01 and 2023-06-15
    assert row["txn_inflow_1m"] == 100 and row["txn_outflow_1m"] == 200 and row["txn_net_flow_1m"] == -100
    assert row["txn_outflow_to_inflow_1m"] == pytest.approx(2.0)
    assert row["txn_inflow_trend_3m"] == pytest.approx(400 / 600)
    assert np.isnan(row["txn_inflow_trend_6m"])  # nothing in the 180 days before the last 180
    assert row["txn_inflow_ratio_1m_3m"] == pytest.approx(100 / (400 / 3))
    assert row["txn_inflow_ratio_3m_12m"] == pytest.approx(400 / (1000 / 4))
    assert row["txn_inflow_amount_cv_12m"] == pytest.approx(np.std([100, 300, 600], ddof=1) / np.mean([100, 300, 600]))
    assert row["txn_avg_inflow_amount_12m"] == pytest.approx(1000 / 3)
    assert row["txn_counterparties_12m"] == 2 and row["txn_counterparties_3m"] == 2
    assert row["txn_top_payer_share_12m"] == pytest.approx(0.9)  # counterparty 8: 300 + 600
    assert row["txn_payer_hhi_12m"] == pytest.approx(0.9**2 + 0.1**2)
    assert row["txn_days_since_last_inflow"] == 16
    # runs without receipts, the window start (2022-07-01) and the decision date closing the ends: 215, 89, 45, 16
    assert row["txn_max_gap_days_12m"] == 215 and row["txn_long_gaps_12m"] == 3
    assert row["txn_large_inflow_count_12m"] == 0
    # 12 periods of 365/12 days back from the decision date: 100 in period 0, 300 in 1, 600 in 4
    monthly = np.array([100, 300, 0, 0, 600] + [0] * 7, dtype=float)
    assert row["txn_active_months_12m"] == 3
    assert row["txn_inflow_cv_12m"] == pytest.approx(monthly.std() / monthly.mean())
    slope = np.polyfit(-np.arange(12), monthly, 1)[0]  # per period, time running forwards
    assert row["txn_inflow_slope_12m"] == pytest.approx(slope / monthly.mean())
    assert row["txn_deficit_months_12m"] == 1  # period 0: 200 out against 100 in
    assert row["txn_worst_month_to_mean_12m"] == 0
    assert row["court_open_cases"] == 1 and row["court_open_amount"] == 40_000
    assert row["court_cases_36m"] == 1 and row["court_cases_12m"] == 1 and row["court_dishonest_debtor_ever"] == 0
    assert row["court_days_since_last_case"] == 181 and row["court_open_amount_to_loan"] == pytest.approx(0.2)
    assert row["env_checks_36m"] == 2 and row["env_failed_36m"] == 1 and row["env_last_check_failed"] == 1
    assert row["env_checks_12m"] == 1 and row["env_failed_share_24m"] == pytest.approx(0.5)
    assert row["env_days_since_failed_check"] == 122
    # statements: 2022-12-31 is available from 2023-03-31 (90-day lag), the one before is 2021-12-31
    assert row["fs_revenue"] == 2000 and row["fs_leverage"] == pytest.approx(0.8)
    assert row["fs_profit_margin"] == pytest.approx(-0.05) and row["fs_statement_age_days"] == 182
    assert row["fs_revenue_growth"] == pytest.approx(1.0) and row["fs_leverage_change"] == pytest.approx(0.3)
    assert row["fs_margin_change"] == pytest.approx(-0.06) and row["fs_statements_3y"] == 2
    assert row["fs_quick_ratio"] == pytest.approx(0.75) and row["fs_liquidity"] == pytest.approx(0.625)
    assert row["fs_asset_turnover"] == pytest.approx(2.0) and row["fs_loss_making"] == 1
    assert row["hist_prior_loans"] == 1 and row["hist_ever_90dpd"] == 1 and row["hist_max_dpd_24m"] == 95
    assert row["hist_delinquent_months_24m"] == 2
    # records exist, but none in the last 365 days: unknown, not "never late"
    assert np.isnan(row["hist_max_dpd_12m"]) and np.isnan(row["hist_delinquent_months_12m"])
    assert row["hist_days_since_delinquency"] == 395 and row["hist_defaulted_loans"] == 1
    assert row["hist_on_time_share_24m"] == 0 and row["hist_open_loans"] == 0
    assert row["hist_months_since_first_loan"] == 18 and row["loan_to_max_prior_amount"] == pytest.approx(4.0)
    assert row["reg_abnormal_listed_now"] == 1  # removal is on the decision date: not yet known
    assert row["reg_abnormal_listed_before"] == 0 and row["reg_days_since_abnormal_listing"] == 537
    assert row["reg_penalties_24m"] == 1 and row["reg_penalty_amount_24m"] == 5000
    assert row["public_adverse_records_24m"] == 4  # a penalty, a listing, a court case, a failed inspection
    assert row["firm_age_years"] == pytest.approx(1095 / 365.25)
    assert row["owner_age"] == 43 and np.isnan(row["registered_capital"])
    assert row["loan_to_inflow_12m"] == pytest.approx(200.0)
    assert row["principal_to_monthly_inflow"] == pytest.approx((200_000 / 24) / (1000 / 12))
    assert row["loan_to_revenue"] == pytest.approx(100.0)
    assert row["fs_revenue_to_inflow_12m"] == pytest.approx(2.0)
    assert row["grp_members"] == 0 and np.isnan(row["grp_worst_dpd_12m"])
    first = build_features(t).set_index("loan_id").loc[5]
    assert first["hist_prior_loans"] == 0 and np.isnan(first["hist_ever_90dpd"])  # thin file: unknown, not good
    # 2021-12-31 ended the day before, but is not available until 2022-03-31
    assert first["fs_statements_3y"] == 0 and np.isnan(first["fs_revenue"])


def test_statement_reporting_lag():
    t = _hand_tables()
    d = pd.Timestamp("2023-07-01")
    fs = t["financial_statements"]
    for days_before, usable in ((REPORTING_LAG_DAYS + 1, True), (REPORTING_LAG_DAYS, False)):
        fs.loc[1, "period_end"] = d - pd.Timedelta(days=days_before)  # the 2022 statement, moved
        row = build_features(t).set_index("loan_id").loc[10]
        assert row["fs_revenue"] == (2000 if usable else 1000), days_before
        assert row["fs_statement_age_days"] == (days_before if usable else 547)


def test_joint_guarantee_group_uses_members_known_before_the_decision_date():
    D = pd.Timestamp
    ent = _hand_tables()["enterprises"]
    t = {
        "enterprises": pd.concat([ent.assign(enterprise_id=i) for i in (1, 2, 3)], ignore_index=True),
        "loans": pd.DataFrame({
            "loan_id": [1, 2, 3, 4, 5], "enterprise_id": [1, 2, 3, 2, 1],
            "application_date": [D("2023-03-01"), D("2023-03-05"), D("2023-03-05"), D("2022-01-01"), D("2022-03-01")],
            "product": ["joint_guarantee_group"] * 3 + ["micro"] * 2,
            "guarantee_type": ["joint_group"] * 3 + ["unsecured"] * 2,
            "amount": [1e5] * 5, "term_months": [12] * 5, "rate": [0.08] * 5,
            "group_id": pd.array([7, 7, 7, None, None], "Int64")}),
        # enterprise 1 (member since 2023-03-01): its earlier loan 5 was 100 then 45 days past due;
        # enterprise 2 applies on the same day as enterprise 3, so it is not yet a member for loan 3
        "repayments": pd.DataFrame({"loan_id": [5, 5, 4, 1], "date": [D("2022-05-01"), D("2023-02-15"),
                                                                  D("2023-01-01"), D("2023-04-01")],
                                    "days_past_due": [100, 45, 200, 0]}),
    }
    frame = build_features(t).set_index("loan_id")
    three = frame.loc[3]
    assert three["grp_members"] == 1 and three["grp_worst_dpd_3m"] == 45 and three["grp_worst_dpd_12m"] == 100
    assert three["grp_members_defaulted"] == 1
    assert frame.loc[2, "grp_members"] == 1 and frame.loc[2, "grp_worst_dpd_12m"] == 100
    first = frame.loc[1]  # the first member sees no group yet
    assert first["grp_members"] == 0 and np.isnan(first["grp_worst_dpd_12m"])
    assert frame.loc[[4, 5], "grp_members"].eq(0).all()


def test_absent_optional_sources_drop_their_features():
    t = _hand_tables()
    del t["transactions"], t["environment_checks"]
    kept, missing = available_features(t)
    assert missing == ["environment_checks", "transactions"]
    frame = build_features(t)
    assert not any(c.startswith(("txn_", "env_")) for c in frame.columns)
    assert "loan_to_inflow_12m" not in frame and "fs_revenue_to_inflow_12m" not in frame
    assert "public_adverse_records_24m" not in frame and "loan_to_revenue" in frame
    assert len(feature_columns(frame)) == len(kept)


def test_applications_without_group_id_are_scored():
    t = _hand_tables()
    frame = build_features(t, applications=t["loans"].drop(columns="group_id"))
    assert frame["grp_members"].eq(0).all()


def test_look_back_follows_the_widest_window():
    sql = compile_query([f for f in CATALOGUE if f.source == "environment_checks"])
    assert "s.check_date >= a.decision_date - INTERVAL 1095 DAY" in sql
    narrow = [f for f in CATALOGUE if f.name in ("env_checks_12m", "env_failed_12m")]
    assert "s.check_date >= a.decision_date - INTERVAL 365 DAY" in compile_query(narrow)
    ever = [f for f in CATALOGUE if f.source == "court_cases"]  # court_cases_ever reads all history
    assert "INTERVAL" not in source_clause("court_cases", ever)


def test_build_reports_the_sources_it_used_and_its_progress(small_world):
    from creditmodel.features.build import build_features, source_summary

    tables = {k: v for k, v in small_world.tables.items() if k != "court_cases"}
    messages = []
    frame = build_features(tables, progress=messages.append, progress_every=0.01)
    summary = source_summary(tables).set_index("source")
    assert summary.loc["transactions", "status"] == "used"
    assert summary.loc["transactions", "rows"] == len(tables["transactions"])
    court = [s for s in summary.index if "court" in summary.loc[s, "tables"]]
    assert court and (summary.loc[court, "status"] == "absent").all()
    assert (summary.loc[court, "features"] == 0).all()
    assert summary["features"].sum() == frame.shape[1] - 3
    assert any(m.startswith("source transactions: used") for m in messages)
    assert any("court_cases missing" in m for m in messages)
    assert messages[-1] == f"features: {len(frame):,} applications x {frame.shape[1] - 3} features"
    said = []  # in Chinese, as `creditmodel features` says them under CREDITMODEL_LANG=zh
    build_features(tables, progress=said.append, lang="zh")
    t = summary.loc["transactions"]
    assert f"数据源 transactions：已使用，{t['tables']} 共 {t['rows']:,} 行 -> {t['features']} 个特征" in said
    assert any(m.startswith("数据源 ") and m.endswith("（缺少 court_cases）") for m in said)
    assert said[-1] == f"特征：{len(frame):,} 笔申请 × {frame.shape[1] - 3} 个特征"

"""Contracts: every class of bad input gives one DataContractError line naming table and column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from creditmodel.data import schema
from creditmodel.data.contracts import contract, validate_tables
from creditmodel.exceptions import DataContractError

EXTRACTION = pd.Timestamp("2024-06-30")


def make_tables() -> dict[str, pd.DataFrame]:
    """A tiny valid world: 3 enterprises, 4 loans, 6 repayments and 1-2 rows of each optional table."""
    d = pd.to_datetime
    return {
        "enterprises": pd.DataFrame(
            {
                "enterprise_id": [1, 2, 3],
                "registration_date": d(["2015-03-01", "2018-07-15", "2020-01-10"]),
                "legal_form": ["sole_trader", "limited_company", "farmer_household"],
                "industry": ["bamboo_products", "furniture", "vegetables"],
                "county": ["安吉县", "德清县", "长兴县"],
                "registered_capital": [np.nan, 1_000_000.0, 50_000.0],
                "owner_birth_year": [1970, None, 1985],
            }
        ),
        "registration_events": pd.DataFrame(
            {
                "enterprise_id": [1, 2],
                "event_date": d(["2019-05-01", "2021-02-02"]),
                "kind": ["legal_rep_change", "penalty"],
                "amount": [np.nan, 5_000.0],
            }
        ),
        "court_cases": pd.DataFrame(
            {
                "case_id": [100],
                "enterprise_id": [2],
                "filed_date": d(["2022-03-03"]),
                "closed_date": [pd.NaT],
                "amount": [120_000.0],
                "dishonest_debtor": [False],
            }
        ),
        "environment_checks": pd.DataFrame(
            {"enterprise_id": [1, 3], "check_date": d(["2022-06-01", "2023-06-01"]), "passed": [True, False]}
        ),
        "transactions": pd.DataFrame(
            {
                "enterprise_id": [1, 1],
                "ts": d(["2023-01-05 10:31:00", "2023-01-06 15:02:11"]),
                "amount": [320.5, 1200.0],
                "direction": ["in", "out"],
                "channel": ["pos", "transfer"],
                "counterparty": [77, 78],
            }
        ),
        "financial_statements": pd.DataFrame(
            {
                "enterprise_id": [2, 2],
                "period_end": d(["2022-12-31", "2023-12-31"]),
                "revenue": [5e6, 6e6],
                "assets": [3e6, 3.5e6],
                "liabilities": [1e6, 1.2e6],
                "inventory": [2e5, 2.5e5],
                "receivables": [1e5, 1.5e5],
                "net_profit": [-5e4, 3e5],
            }
        ),
        "loans": pd.DataFrame(
            {
                "loan_id": [10, 11, 12, 13],
                "enterprise_id": [1, 2, 3, 3],
                "application_date": d(["2022-01-10", "2022-05-20", "2023-02-01", "2024-06-30"]),
                "product": ["micro", "working_capital", "joint_guarantee_group", "growth"],
                "guarantee_type": ["unsecured", "collateral", "joint_group", "third_party"],
                "amount": [50_000.0, 2_000_000.0, 100_000.0, 300_000.0],
                "term_months": [12, 36, 12, 24],
                "rate": [0.065, 0.048, None, 0.07],
                "group_id": [None, None, 5, None],
            }
        ),
        "repayments": pd.DataFrame(
            {
                "loan_id": [10, 10, 11, 11, 12, 12],
                "date": d(["2022-02-10", "2022-03-10", "2022-06-20", "2022-07-20", "2023-03-01", "2023-04-01"]),
                "days_past_due": [0, 3, 0, 0, 31, 95],
            }
        ),
        "collateral": pd.DataFrame(
            {"loan_id": [11, 11], "collateral_type": ["building", "land_use_right"], "value": [1_500_000.0, 800_000.0]}
        ),
        "guarantees": pd.DataFrame({"loan_id": [13], "guarantor_id": [1]}),
        "officers": pd.DataFrame({"officer_id": [1, 2], "team": ["bamboo", "other_trades"]}),
        "loan_accounts": pd.DataFrame(
            {
                "loan_id": [10, 11, 12, 13],
                "officer_id": [1, 2, 2, 2],
                "written_off_date": d([None, None, "2023-10-01", None]),
                "written_off_amount": [None, None, 91_666.67, None],
                "recovered_date": [pd.NaT] * 4,
                "recovered_amount": [None] * 4,
            }
        ),
        "balances": pd.DataFrame(
            {
                "loan_id": [10, 10, 11, 11, 12, 12],
                "date": d(["2022-02-10", "2022-03-10", "2022-06-20", "2022-07-20", "2023-03-01", "2023-04-01"]),
                "balance": [45_833.33, 41_666.67, 1_944_444.44, 1_888_888.89, 91_666.67, 91_666.67],
                "interest": [270.83, 248.26, 8_000.0, 7_777.78, 0.0, 0.0],
            }
        ),
    }


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    return make_tables()


def error_of(tables, **kwargs) -> str:
    with pytest.raises(DataContractError) as info:
        validate_tables(tables, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg, msg  # one line
    assert "Traceback" not in msg and "SchemaError" not in msg, msg
    return msg


# ---------------------------------------------------------------------------- valid input


def test_valid_tables_are_coerced_to_the_contract(tables):
    tables["loans"] = tables["loans"].assign(extra="dropped")[
        ["extra"] + list(reversed(tables["loans"].columns))
    ]
    out = validate_tables(tables, extraction_date=EXTRACTION)
    assert list(out) == list(schema.TABLES)  # schema order
    for name, df in out.items():
        assert list(df.columns) == schema.TABLES[name].column_names
        assert len(df) == len(tables[name])
    loans, ent = out["loans"], out["enterprises"]
    assert loans["loan_id"].dtype == "int64"
    assert loans["group_id"].dtype == "Int64"  # nullable int
    assert loans["amount"].dtype == "float64"
    assert pd.api.types.is_string_dtype(loans["product"].dtype)
    assert loans["application_date"].dtype == "datetime64[ns]"
    assert out["transactions"]["ts"].dtype == "datetime64[ns]"
    assert out["court_cases"]["dishonest_debtor"].dtype == "bool"
    assert ent["owner_birth_year"].tolist()[0] == 1970 and pd.isna(ent["owner_birth_year"][1])
    assert ent["county"].tolist() == ["安吉县", "德清县", "长兴县"]
    assert loans["group_id"].tolist()[2] == 5
    # the caller's frames are untouched
    assert "extra" in tables["loans"].columns


def test_values_in_other_representations_are_read(tables):
    loans = tables["loans"].astype({"amount": object, "term_months": float})
    loans["amount"] = ["50000", "2000000.0", 100_000, " 300000 "]
    loans["application_date"] = ["2022-01-10", "2022/05/20", "20230201", "2024-06-30"]
    tables["loans"] = loans
    tables["court_cases"]["dishonest_debtor"] = ["false"]
    out = validate_tables(tables)
    assert out["loans"]["amount"].tolist() == [50_000.0, 2_000_000.0, 100_000.0, 300_000.0]
    assert out["loans"]["term_months"].dtype == "int64"
    assert out["loans"]["application_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2022-01-10", "2022-05-20", "2023-02-01", "2024-06-30"
    ]
    assert out["court_cases"]["dishonest_debtor"].tolist() == [False]


def test_optional_tables_may_be_absent(tables):
    only_required = {name: tables[name] for name in schema.REQUIRED_TABLES}
    out = validate_tables(only_required)
    assert set(out) == set(schema.REQUIRED_TABLES)


def test_contract_is_built_from_the_declarations():
    for name, t in schema.TABLES.items():
        c = contract(name)
        assert isinstance(c, pa.DataFrameSchema)
        assert list(c.columns) == t.column_names
        for col in t.columns:
            assert c.columns[col.name].nullable == col.nullable
    assert contract("repayments").unique == ["loan_id", "date"]
    assert contract("loans").columns["loan_id"].unique
    assert str(contract("loans").columns["group_id"].dtype) == "Int64"
    with pytest.raises(DataContractError, match="unknown table 'nope'"):
        contract("nope")


# ---------------------------------------------------------------------------- table level


def test_missing_required_table(tables):
    del tables["repayments"]
    msg = error_of(tables)
    assert msg.startswith("repayments: required table missing (tables given: enterprises, ")


def test_unknown_table_name(tables):
    tables["loanz"] = tables["loans"]
    msg = error_of(tables)
    assert "unknown table 'loanz'" in msg


def test_empty_table(tables):
    tables["loans"] = tables["loans"].iloc[0:0]
    msg = error_of(tables)
    assert msg.startswith("loans: table is empty")


def test_empty_optional_table_is_an_error(tables):
    tables["court_cases"] = tables["court_cases"].iloc[0:0]
    assert error_of(tables).startswith("court_cases: table is empty")


# ---------------------------------------------------------------------------- column level


def test_missing_column(tables):
    tables["loans"] = tables["loans"].drop(columns="term_months")
    msg = error_of(tables)
    assert msg.startswith("loans.term_months: required column missing"), msg


def test_text_in_amount(tables):
    tables["loans"] = tables["loans"].astype({"amount": object})
    tables["loans"].loc[1, "amount"] = "two million"
    msg = error_of(tables)
    assert msg == "loans.amount: value 'two million' cannot be read as a number; 1 row, e.g. loan_id 11"


def test_fraction_in_integer_column(tables):
    tables["loans"]["term_months"] = [12, 36.5, 12, 24]
    msg = error_of(tables)
    assert msg.startswith("loans.term_months: value 36.5 cannot be read as an integer"), msg


def test_unreadable_boolean(tables):
    tables["environment_checks"]["passed"] = ["yes", "maybe"]
    msg = error_of(tables)
    assert msg.startswith("environment_checks.passed: value 'maybe' cannot be read as a boolean"), msg
    assert "row 1" in msg


def test_unparseable_date(tables):
    tables["loans"]["application_date"] = ["2022-01-10", "2022-13-45", "2023-02-01", "2024-06-30"]
    msg = error_of(tables)
    assert msg.startswith("loans.application_date: value '2022-13-45' cannot be read as a date"), msg


def test_unknown_category(tables):
    tables["loans"]["guarantee_type"] = ["gold", "collateral", "gold", "silver"]
    msg = error_of(tables)
    assert msg == (
        "loans.guarantee_type: values 'gold', 'silver' not in allowed categories "
        "(unsecured, third_party, collateral, joint_group); to allow them, add them to "
        "vocabularies.guarantee_type of the data dictionary; 3 rows, e.g. loan_id 10, 12, 13"
    )


def test_negative_amount(tables):
    tables["loans"]["amount"] = [50_000.0, -5.0, 100_000.0, 300_000.0]
    msg = error_of(tables)
    assert msg == "loans.amount: value -5 below minimum 1; 1 row, e.g. loan_id 11"


def test_absurd_amount(tables):
    # above the approval authority is a policy flag, not a data error; only the valid domain is
    tables["loans"]["amount"] = [5e9, 2e6, 100_000.0, 300_000.0]
    validate_tables(tables)
    tables["loans"]["amount"] = [5e13, 2e6, 100_000.0, 300_000.0]
    msg = error_of(tables)
    assert msg == "loans.amount: value 50000000000000 above maximum 1000000000000; 1 row, e.g. loan_id 10"


def test_null_in_non_nullable_column(tables):
    tables["loans"]["product"] = ["micro", None, "growth", "growth"]
    msg = error_of(tables)
    assert msg == "loans.product: null value in non-nullable column; 1 row, e.g. loan_id 11"


def test_null_in_non_nullable_int_and_bool(tables):
    tables["repayments"]["days_past_due"] = [0, None, 0, 0, 31, 95]
    assert error_of(tables).startswith("repayments.days_past_due: null value in non-nullable column; 1 row, e.g. row 1")
    tables = make_tables()
    tables["court_cases"]["dishonest_debtor"] = [None]
    assert error_of(tables).startswith("court_cases.dishonest_debtor: null value in non-nullable column")


def test_null_in_key_of_table_without_rows_ids(tables):
    tables["transactions"]["enterprise_id"] = [1, None]
    msg = error_of(tables)
    assert msg == "transactions.enterprise_id: null value in non-nullable column; 1 row, e.g. row 1"


def test_duplicate_single_key(tables):
    tables["loans"]["loan_id"] = [10, 11, 11, 13]
    msg = error_of(tables)
    assert msg == "loans.loan_id: duplicate key value 11; 2 rows, e.g. rows 1, 2"


def test_duplicate_composite_key(tables):
    rep = tables["repayments"]
    tables["repayments"] = pd.concat([rep, rep.iloc[[2]]], ignore_index=True)
    msg = error_of(tables)
    assert msg == "repayments.loan_id, date: duplicate key value (11, 2022-06-20); 2 rows, e.g. rows 2, 6"


# ---------------------------------------------------------------------------- cross-table


def test_loan_of_unknown_enterprise(tables):
    tables["loans"]["enterprise_id"] = [1, 2, 99, 3]
    msg = error_of(tables)
    assert msg == "loans.enterprise_id: value 99 not found in enterprises.enterprise_id; 1 row, e.g. loan_id 12"


def test_repayment_of_unknown_loan(tables):
    tables["repayments"]["loan_id"] = [10, 10, 11, 11, 42, 42]
    msg = error_of(tables)
    assert msg == "repayments.loan_id: value 42 not found in loans.loan_id; 2 rows, e.g. rows 4, 5"


def test_orphan_in_optional_table(tables):
    tables["transactions"]["enterprise_id"] = [1, 7]
    assert error_of(tables).startswith("transactions.enterprise_id: value 7 not found in enterprises.enterprise_id")


def test_future_dated_rows(tables):
    # rows dated on the extraction date itself are fine (loan 13, and a transaction that day)
    tables["transactions"]["ts"] = pd.to_datetime(["2023-01-05", "2024-06-30 23:59:00"], format="ISO8601")
    validate_tables(tables, extraction_date=EXTRACTION)
    tables["loans"]["application_date"] = pd.to_datetime(["2022-01-10", "2031-01-01", "2023-02-01", "2024-07-01"])
    validate_tables(tables)  # no extraction date -> no check
    msg = error_of(tables, extraction_date=EXTRACTION)
    assert msg == (
        "loans.application_date: values 2031-01-01, 2024-07-01 later than extraction date "
        "2024-06-30; 2 rows, e.g. loan_id 11, 13"
    )
    assert error_of(tables, extraction_date="2024-06-30") == msg


def test_future_transaction_timestamp(tables):
    tables["transactions"]["ts"] = pd.to_datetime(["2023-01-05", "2024-07-01 00:00:01"], format="ISO8601")
    msg = error_of(tables, extraction_date=EXTRACTION)
    assert msg.startswith("transactions.ts: value 2024-07-01T00:00:01 later than extraction date 2024-06-30; 1 row, e.g. row 1")


# ---------------------------------------------------------------------------- reporting


def test_several_failures_report_the_first_and_count_the_rest(tables):
    tables["loans"]["guarantee_type"] = ["gold", "collateral", "joint_group", "third_party"]
    tables["loans"]["amount"] = [50_000.0, -1.0, 100_000.0, 300_000.0]
    tables["repayments"]["days_past_due"] = [0, -3, 0, 0, 31, 95]
    msg = error_of(tables)
    assert msg.startswith("loans.guarantee_type: value 'gold' not in allowed categories")
    assert msg.endswith("(+2 more failures)")


def test_at_most_five_examples(tables):
    loans = pd.concat([tables["loans"]] * 3, ignore_index=True)
    loans["loan_id"] = range(100, 112)
    loans["product"] = [f"p{i}" for i in range(12)]
    tables["loans"] = loans
    tables["repayments"]["loan_id"] = 100
    tables["repayments"]["date"] = pd.date_range("2023-01-01", periods=6, freq="MS")
    msg = error_of(tables)
    assert msg.startswith("loans.product: values 'p0', 'p1', 'p2', 'p3', 'p4', ... not in allowed categories")
    assert msg.endswith("12 rows, e.g. loan_id 100, 101, 102, 103, 104")


def test_not_a_dataframe(tables):
    tables["loans"] = tables["loans"].to_dict()
    assert "loans: not a pandas DataFrame" in error_of(tables)


def test_duplicate_column_label(tables):
    tables["repayments"] = pd.concat([tables["repayments"], tables["repayments"][["date"]]], axis=1)
    assert error_of(tables).startswith("repayments.date: column appears 2 times")


def test_bad_extraction_date(tables):
    assert "extraction_date" in error_of(tables, extraction_date="someday")


def test_custom_index_is_ignored(tables):
    tables["loans"] = tables["loans"].set_index(pd.Index([7, 7, 8, 9]))
    out = validate_tables(tables)
    assert out["loans"].index.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("name", list(schema.TABLES))
def test_every_table_has_a_contract_matching_fixture(name):
    one = make_tables()[name]
    out = contract(name).validate(one)
    assert list(out.columns) == schema.TABLES[name].column_names


@pytest.mark.parametrize("table, change, match", [
    ("collateral", {"value": [-1.0, 800_000.0]}, "value"),
    ("collateral", {"collateral_type": ["building", "gold"]}, "gold"),
    ("guarantees", {"guarantor_id": [99]}, "99"),
])
def test_bad_security_rows_are_one_line(tables, table, change, match):
    tables[table] = tables[table].assign(**change)
    assert match in error_of(tables, extraction_date=EXTRACTION)

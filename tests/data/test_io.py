"""Reading and writing the canonical tables: parquet directories, CSV (encodings, delimiters), DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from creditmodel.data import schema
from creditmodel.data.contracts import validate_tables
from creditmodel.data.io import load_tables, read_tables, write_tables
from creditmodel.exceptions import ConfigError, DataContractError


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    """Tiny valid tables: the required ones plus one optional table with a timestamp column."""
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
        "environment_checks": pd.DataFrame(
            {"enterprise_id": [1, 3], "check_date": d(["2022-06-01", "2023-06-01"]), "passed": [True, False]}
        ),
        "transactions": pd.DataFrame(
            {
                "enterprise_id": [1, 2],
                "ts": d(["2023-01-05 10:31:00", "2023-01-06 15:02:11"]),
                "amount": [320.5, 1200.0],
                "direction": ["in", "out"],
                "channel": ["pos", "cash"],
                "counterparty": [77, 78],
            }
        ),
        "loans": pd.DataFrame(
            {
                "loan_id": [10, 11, 12],
                "enterprise_id": [1, 2, 3],
                "application_date": d(["2022-01-10", "2022-05-20", "2023-02-01"]),
                "product": ["micro", "working_capital", "joint_guarantee_group"],
                "guarantee_type": ["unsecured", "collateral", "joint_group"],
                "amount": [50_000.0, 2_000_000.0, 100_000.0],
                "term_months": [12, 36, 12],
                "rate": [0.065, 0.048, None],
                "group_id": [None, None, 5],
            }
        ),
        "repayments": pd.DataFrame(
            {
                "loan_id": [10, 11, 12],
                "date": d(["2022-02-10", "2022-06-20", "2023-03-01"]),
                "days_past_due": [0, 0, 95],
            }
        ),
    }


def assert_same(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> None:
    """Equal after validation (which fixes dtypes and column order)."""
    got, want = validate_tables(got), validate_tables(want)
    assert list(got) == list(want)
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], check_dtype=True)


def write_csv(tables: dict[str, pd.DataFrame], root: Path, **kwargs) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(root / f"{name}.csv", index=False, **kwargs)
    return root


def raises(fn, *args, **kwargs) -> str:
    with pytest.raises(DataContractError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------------------- parquet


def test_parquet_directory_round_trip(tables, tmp_path):
    out = write_tables(tables, tmp_path / "world")
    assert out == tmp_path / "world"
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.parquet" for n in tables)
    # other files and subdirectories are ignored
    (out / "README.txt").write_text("not a table")
    (out / "_truth").mkdir()
    tables["loans"].to_parquet(out / "_truth" / "pd.parquet")
    got = read_tables(out)
    assert set(got) == set(tables)
    assert_same(got, tables)
    assert got["enterprises"]["county"].tolist() == ["安吉县", "德清县", "长兴县"]
    loaded = load_tables(out, extraction_date=pd.Timestamp("2024-01-01"))
    assert loaded["loans"]["application_date"].dtype == "datetime64[ns]"


def test_write_into_existing_empty_directory(tables, tmp_path):
    (tmp_path / "empty").mkdir()
    out = write_tables(tables, tmp_path / "empty")
    assert (out / "loans.parquet").is_file()


def test_write_refuses_non_empty_directory(tables, tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "keep.txt").write_text("precious")
    with pytest.raises(ConfigError) as info:
        write_tables(tables, target)
    msg = str(info.value)
    assert "not empty: it holds 'keep.txt', which creditmodel did not write" in msg and str(target) in msg
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_write_leaves_nothing_behind_when_it_fails(tables, tmp_path):
    tables["transactions"] = tables["transactions"].astype({"counterparty": object})
    tables["transactions"].loc[1, "counterparty"] = object()  # parquet cannot store this
    msg = raises(write_tables, tables, tmp_path / "out")
    assert "transactions" in msg
    assert list(tmp_path.iterdir()) == []  # no out dir, no temp dir


def test_missing_source(tmp_path):
    msg = raises(read_tables, tmp_path / "nowhere")
    assert "nowhere" in msg and "not found" in msg


def test_directory_without_tables(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    assert "no canonical table" in raises(read_tables, tmp_path)


def test_table_in_both_parquet_and_csv(tables, tmp_path):
    root = write_tables(tables, tmp_path / "w")
    tables["loans"].to_csv(root / "loans.csv", index=False)
    msg = raises(read_tables, root)
    assert "'loans'" in msg and "loans.parquet" in msg and "loans.csv" in msg


def test_corrupt_parquet(tables, tmp_path):
    root = write_tables(tables, tmp_path / "w")
    (root / "loans.parquet").write_bytes(b"not parquet at all")
    assert "loans.parquet: cannot read as parquet" in raises(read_tables, root)


def test_optional_tables_absent_is_fine(tables, tmp_path):
    required = {n: tables[n] for n in schema.REQUIRED_TABLES}
    got = load_tables(write_tables(required, tmp_path / "w"))
    assert set(got) == set(schema.REQUIRED_TABLES)


def test_load_tables_validates(tables, tmp_path):
    tables["loans"]["guarantee_type"] = ["unsecured", "gold", "joint_group"]
    root = write_tables(tables, tmp_path / "w")
    msg = raises(load_tables, root)
    assert msg.startswith("loans.guarantee_type: value 'gold' not in allowed categories")
    del tables["repayments"]
    tables["loans"]["guarantee_type"] = "unsecured"
    assert "repayments: required table missing" in raises(load_tables, write_tables(tables, tmp_path / "x"))


# ---------------------------------------------------------------------------- parquet parts


def write_parts(df: pd.DataFrame, directory: Path, bounds: list[int], names=None) -> list[Path]:
    """Split ``df`` at ``bounds`` into parquet parts named part-00000.parquet, ... (or ``names``)."""
    directory.mkdir(parents=True)
    edges = [0, *bounds, len(df)]
    names = names or [f"part-{i:05d}.parquet" for i in range(len(edges) - 1)]
    paths = []
    for name, lo, hi in zip(names, edges[:-1], edges[1:]):
        df.iloc[lo:hi].to_parquet(directory / name, index=False)
        paths.append(directory / name)
    return paths


def test_partitioned_round_trip(tables, tmp_path):
    big = {n: df for n, df in tables.items() if n not in ("transactions", "repayments")}
    out = write_tables(big, tmp_path / "world")
    tx = pd.concat([tables["transactions"]] * 5, ignore_index=True)
    tx["counterparty"] = np.arange(len(tx))
    write_parts(tx, out / "transactions", [3, 4, 7])  # parts of 3, 1, 3 and 3 rows
    write_parts(tables["repayments"], out / "repayments", [1])
    (out / "repayments" / "_SUCCESS").write_text("")  # markers and hidden files are not parts
    got = read_tables(out)
    assert set(got) == set(tables)
    assert got["transactions"]["counterparty"].tolist() == list(range(10))  # parts in order
    assert_same(got, {**tables, "transactions": tx})
    loaded = load_tables(out, extraction_date=pd.Timestamp("2024-01-01"))
    assert len(loaded["transactions"]) == 10 and len(loaded["repayments"]) == 3


def test_parts_are_read_in_numeric_order(tables, tmp_path):
    out = write_tables({"enterprises": tables["enterprises"]}, tmp_path / "w")
    tx = pd.concat([tables["transactions"]] * 6, ignore_index=True).assign(counterparty=range(12))
    write_parts(tx, out / "transactions", [2, 4, 6, 8, 10],
                names=["part-1.parquet", "part-2.parquet", "part-3.parquet", "part-9.parquet",
                       "part-10.parquet", "part-11.parquet"])
    assert read_tables(out)["transactions"]["counterparty"].tolist() == list(range(12))


def test_table_as_file_and_directory(tables, tmp_path):
    root = write_tables(tables, tmp_path / "w")
    write_parts(tables["transactions"], root / "transactions", [1])
    msg = raises(read_tables, root)
    assert "'transactions'" in msg and "transactions.parquet" in msg and "transactions/" in msg
    assert "keep one" in msg


def test_table_as_csv_and_directory(tables, tmp_path):
    root = write_csv(tables, tmp_path / "csv")
    write_parts(tables["loans"], root / "loans", [1])
    msg = raises(read_tables, root)
    assert "'loans'" in msg and "loans.csv" in msg and "loans/" in msg


def test_table_directory_without_parts(tables, tmp_path):
    root = write_tables({n: tables[n] for n in ("enterprises", "loans")}, tmp_path / "w")
    (root / "repayments").mkdir()
    (root / "repayments" / "notes.txt").write_text("x")
    msg = raises(read_tables, root)
    assert "repayments" in msg and "no parquet parts" in msg


def test_parts_that_do_not_fit_together(tables, tmp_path):
    root = write_tables({"enterprises": tables["enterprises"]}, tmp_path / "w")
    write_parts(tables["transactions"], root / "transactions", [1])
    (root / "transactions" / "part-00001.parquet").write_bytes(b"not parquet")
    msg = raises(read_tables, root)
    assert "transactions" in msg and "cannot read the 2 parquet parts" in msg


# ---------------------------------------------------------------------------- CSV


def test_csv_round_trip_parses_dates(tables, tmp_path):
    root = write_csv(tables, tmp_path / "csv")
    got = read_tables(root)
    assert got["loans"]["application_date"].dtype == "datetime64[ns]"
    assert got["transactions"]["ts"].dt.strftime("%Y-%m-%d %H:%M:%S").tolist() == [
        "2023-01-05 10:31:00", "2023-01-06 15:02:11"
    ]
    assert_same(got, tables)


def test_csv_other_delimiter(tables, tmp_path):
    root = write_csv(tables, tmp_path / "csv", sep=";")
    assert_same(read_tables(root, delimiter=";"), tables)


def test_csv_wrong_delimiter(tables, tmp_path):
    root = write_csv(tables, tmp_path / "csv", sep=";")
    msg = raises(read_tables, root)
    assert ".csv" in msg and "delimiter looks wrong" in msg and "';'" in msg


def test_csv_tab_delimiter_read_as_comma(tables, tmp_path):
    root = write_csv(tables, tmp_path / "csv", sep="\t")
    assert "delimiter looks wrong" in raises(read_tables, root)


def test_gbk_csv_needs_the_encoding(tables, tmp_path):
    root = write_csv(tables, tmp_path / "gbk", encoding="gbk")
    msg = raises(read_tables, root)
    assert "enterprises.csv" in msg and "--encoding" in msg and "gbk" in msg
    got = load_tables(root, encoding="gbk")
    assert got["enterprises"]["county"].tolist() == ["安吉县", "德清县", "长兴县"]


def test_unknown_encoding(tables, tmp_path):
    root = write_csv(tables, tmp_path / "csv")
    assert "unknown encoding 'klingon'" in raises(read_tables, root, encoding="klingon")


def test_csv_with_bom_and_text_ids(tables, tmp_path):
    root = write_csv(tables, tmp_path / "csv", encoding="utf-8-sig")
    got = load_tables(root)
    assert list(got["enterprises"].columns)[0] == "enterprise_id"
    ent = tables["enterprises"].assign(county=["0571", "0572", "0573"])
    ent.to_csv(root / "enterprises.csv", index=False)
    assert read_tables(root)["enterprises"]["county"].tolist() == ["0571", "0572", "0573"]


def test_csv_unparseable_date(tables, tmp_path):
    root = write_csv(tables, tmp_path / "csv")
    loans = tables["loans"].astype({"application_date": object})
    loans.loc[1, "application_date"] = "2022-02-30"
    loans.to_csv(root / "loans.csv", index=False)
    msg = raises(read_tables, root)
    assert msg.startswith("loans.application_date: value '2022-02-30' is not a valid date in loans.csv")


def test_csv_text_in_amount(tables, tmp_path):
    root = write_csv(tables, tmp_path / "csv")
    loans = tables["loans"].astype({"amount": object})
    loans.loc[2, "amount"] = "10万"
    loans.to_csv(root / "loans.csv", index=False)
    msg = raises(load_tables, root)
    assert msg == "loans.amount: value '10万' cannot be read as a number; 1 row, e.g. loan_id 12"


def test_empty_csv(tables, tmp_path):
    root = write_csv(tables, tmp_path / "csv")
    (root / "repayments.csv").write_text("")
    assert "repayments.csv: the CSV file is empty" in raises(read_tables, root)
    (root / "repayments.csv").write_text("loan_id,date,days_past_due\n")
    assert raises(load_tables, root).startswith("repayments: table is empty")


# ---------------------------------------------------------------------------- DuckDB


def test_duckdb_round_trip(tables, tmp_path):
    path = tmp_path / "bank.duckdb"
    con = duckdb.connect(str(path))
    for name, df in tables.items():
        con.register("frame", df)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
        con.unregister("frame")
    con.execute("CREATE TABLE unrelated AS SELECT 1 AS x")
    con.close()
    got = read_tables(path)
    assert set(got) == set(tables)
    assert_same(got, tables)
    # opened read-only: another read-only reader at the same time is fine
    ro = duckdb.connect(str(path), read_only=True)
    try:
        assert load_tables(path)["enterprises"]["county"].tolist()[0] == "安吉县"
    finally:
        ro.close()


def test_not_a_duckdb_file(tmp_path):
    bad = tmp_path / "bank.db"
    bad.write_text("hello")
    assert "cannot open as a DuckDB database" in raises(read_tables, bad)
    other = tmp_path / "tables.xlsx"
    other.write_text("x")
    assert "not a data source" in raises(read_tables, other)

"""One application's catalogue on SQLite equals DuckDB's and the offline matrix.

``OnlineFeatures`` copies the borrower's rows out of the DuckDB store into an in-memory SQLite
database and runs the catalogue's query translated by ``features.sqlite``. On the edge-case world of
the engine parity tests (rows exactly on the decision date, at each window start and a second / a day
before it, empty windows, leap day, month ends, a joint-guarantee group) its features equal the DuckDB
engine's and the offline feature matrix: floats to 1e-12, counts, categories and NULLs exactly. Each
rewrite of the translation is checked against DuckDB on hand-picked values, and a catalogue that does
not translate runs on DuckDB (or, asked for SQLite, is one line).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import sqlite3
import subprocess
import sys
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd
import pytest
from edge_world import EDGE_ID, merged_tables, online_rows
from edge_world import edge_tables as make_edge_tables

from creditmodel.exceptions import StoreError
from creditmodel.features import sqlite
from creditmodel.features.build import build_features, row_lookback
from creditmodel.features.catalogue import CATALOGUE, feature
from creditmodel.features.online import (
    Application,
    OnlineFeatures,
    build_store,
    catalogue_document,
    catalogue_from_document,
)
from creditmodel.features.spark import frame_mismatches

RTOL = 1e-12


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    tables = merged_tables(make_edge_tables())
    path = tmp_path_factory.mktemp("edge") / "store.duckdb"
    build_store(tables, path)
    loans = tables["loans"]
    grouped = loans[(loans["loan_id"] < EDGE_ID) & loans["group_id"].notna()]
    sample = pd.concat([loans[loans["loan_id"] > EDGE_ID],  # every edge loan, loans of groups, others
                        grouped.sample(min(12, len(grouped)), random_state=2),
                        loans[(loans["loan_id"] < EDGE_ID) & loans["group_id"].isna()].sample(12, random_state=2)])
    return {"tables": tables, "path": path, "loans": sample, "offline": build_features(tables)}




def _problems(expected, got) -> str:
    problems = frame_mismatches(expected.reset_index(drop=True), got.reset_index(drop=True), rtol=RTOL)
    by_name = {f.name: f for f in CATALOGUE}
    return "\n".join(f"  {c}: {why}\n    {by_name[c].sql if c in by_name else ''}" for c, why in problems.items())


def test_sqlite_equals_duckdb_and_the_offline_matrix_on_the_edge_world(edge):
    features = catalogue_from_document(catalogue_document(CATALOGUE))  # as a bundle carries them
    lite = OnlineFeatures(features, edge["path"])
    duck = OnlineFeatures(features, edge["path"], engine="duckdb")
    try:
        assert (lite.engine, duck.engine) == ("sqlite", "duckdb")  # the default runs the catalogue on SQLite
        got, got_duck = online_rows(lite, edge["loans"]), online_rows(duck, edge["loans"])
        values = lite.compute_values(Application(EDGE_ID, date(2024, 3, 1), 1e5, 12, "working_capital", "unsecured"))
    finally:
        lite.close()
        duck.close()
    assert (got["loan_id"] > EDGE_ID).sum() == 7
    assert not frame_mismatches(got_duck, got, rtol=RTOL), _problems(got_duck, got)
    expected = edge["offline"].set_index("loan_id").loc[got["loan_id"]].reset_index()[list(got.columns)]
    assert not frame_mismatches(expected, got, rtol=RTOL), _problems(expected, got)
    assert got.dtypes.to_dict() == expected.dtypes.to_dict()
    assert got["decision_date"].tolist() == pd.to_datetime(edge["loans"]["application_date"]).tolist()
    rich = got[got["loan_id"] == EDGE_ID + 2].iloc[0]  # the borrower with a row at every edge
    assert rich[[f.name for f in CATALOGUE if not f.is_categorical]].notna().mean() > 0.8
    assert (got["grp_members"] > 0).sum() >= 5  # the group block reached the members' rows
    assert set(values) == {f.name for f in CATALOGUE}
    # the borrowers without court cases (most) were not looked up in that table, and still equal the offline rows
    court = set(edge["tables"]["court_cases"]["enterprise_id"])
    assert set(lite._lite.present["court_cases"]) == court
    assert 0 < (~edge["loans"]["enterprise_id"].isin(court)).sum() < len(edge["loans"])


def test_only_rows_a_block_can_read_are_copied():
    # the look-back of each table is the widest window of the blocks that read it, on its own date column:
    # the account statement's year, the statements' and the environmental checks' three years; a table some
    # feature reads with all its history (court cases, registry events) or a block of several tables (loans
    # and repayments) is copied whole
    assert row_lookback(CATALOGUE) == {"transactions": 365, "financial_statements": 1095, "environment_checks": 1095}
    whole = dataclasses.replace(feature("txn_inflow_3m"), name="my_inflow_ever", window_days=None,
                                sql="sum(CASE WHEN s.direction = 'in' THEN s.amount END)")
    assert "transactions" not in row_lookback([*CATALOGUE, whole])
    assert row_lookback([feature("txn_inflow_3m"), feature("txn_inflow_6m")]) == {"transactions": 180}


# --- each rewrite against DuckDB -----------------------------------------------------------------------

_ROWS = [  # (a, b, x, t1, t2): numbers with NULLs and signs, dates across year, month, leap-day and epoch edges
    (1, 0, 2.5, datetime(2023, 12, 31, 23, 59, 59, 999999), datetime(2024, 1, 1)),
    (-3, 2, -2.5, datetime(2024, 2, 28, 12), datetime(2024, 2, 29, 0, 0, 1)),
    (0, 0, 3.5, datetime(2024, 2, 29), datetime(2025, 3, 1)),
    (7, None, None, datetime(1969, 12, 31, 6), datetime(1970, 1, 1)),
    (None, 4, -0.49999999999999994, datetime(2022, 1, 31), datetime(2022, 3, 1, 23, 59)),
    (5, -1, 1e9 + 0.5, datetime(2000, 12, 31), datetime(2001, 1, 1)),
]
_EXPRESSIONS = [
    "a / b", "x / 2", "a / NULLIF(b, 0)", "CAST(x AS INT)", "CAST(x AS BIGINT)", "CAST(a > 0 AS INT)",
    "CAST(a AS SMALLINT)", "CAST(x / 1e7 AS TINYINT)",
    "GREATEST(a, b)", "LEAST(a, b, 1)", "IF(a > 0, x, -x)", "COALESCE(x, a)",
    "POWER(x, 2)", "SQRT(ABS(x))", "FLOOR(x)", "CEIL(x)", "LN(ABS(x) + 1)", "LOG(ABS(x) + 1)", "EXP(LEAST(x, 5))",
    "YEAR(t1)", "YEAR(CAST(t2 AS DATE))", "CAST(t1 AS DATE) < CAST(t2 AS DATE)",
    "t1 >= t2 - INTERVAL 1 DAY", "t1 < t2 - INTERVAL '30' DAY", "CAST(t2 - INTERVAL 2 WEEK AS DATE) > t1",
    "t2 + INTERVAL 90 DAY > t1 + INTERVAL 3 HOUR",
    *[f"DATE_DIFF('{u}', t1, t2)" for u in ("DAY", "WEEK", "MONTH", "QUARTER", "YEAR", "HOUR", "MINUTE", "SECOND")],
    *[f"DATE_DIFF('{u}', CAST(t2 AS DATE), CAST(t1 AS DATE))" for u in ("DAY", "MONTH", "YEAR")],
    "CAST(DATE '2024-02-29' AS DATE) > t1", "CAST('2020-01-01' AS DATE) < t2",
]


def _both(expression: str, group: bool = False):
    """The expression's values over _ROWS on DuckDB and, translated, on SQLite."""
    frame = pd.DataFrame(_ROWS, columns=["a", "b", "x", "t1", "t2"]).astype({"a": "Int64", "b": "Int64"})
    query = f"SELECT {expression} AS v FROM t" + ("" if group else " ORDER BY rowid_")
    con = duckdb.connect()
    con.register("frame", frame.assign(rowid_=range(len(frame))))
    con.execute("CREATE TABLE t AS SELECT * FROM frame")
    duck = [r[0] for r in con.execute(query).fetchall()]
    lite = sqlite.connect()
    lite.execute("CREATE TABLE t (a INTEGER, b INTEGER, x REAL, t1 INTEGER, t2 INTEGER, rowid_ INTEGER)")
    lite.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)",
                     [(a, b, x, sqlite.micros(t1), sqlite.micros(t2), i) for i, (a, b, x, t1, t2) in enumerate(_ROWS)])
    got = [r[0] for r in lite.execute(sqlite.to_sqlite_sql(query)).fetchall()]
    return duck, got


def _same(x, y) -> bool:
    if x is None or y is None or isinstance(x, str):
        return x == y or (y is None and isinstance(x, float) and math.isnan(x))  # SQLite holds NaN as NULL
    if isinstance(x, bool):
        return int(x) == y
    if isinstance(x, date):
        return sqlite.micros(x) == y
    return x == y or abs(x - y) <= RTOL * max(abs(x), abs(y))


@pytest.mark.parametrize("expression", _EXPRESSIONS)
def test_each_rewrite_gives_what_duckdb_gives(expression):
    duck, got = _both(expression)
    assert all(_same(x, y) for x, y in zip(duck, got)) and len(duck) == len(got), (duck, got)


def test_division_by_zero_and_rounding_are_duckdb_s():
    duck, got = _both("a / b")
    assert got[0] == math.inf and got[2] is None and duck[2] != duck[2]  # 1/0 is inf; 0/0 NaN, NULL in SQLite
    duck, got = _both("CAST(x AS INT)")
    assert got == duck and got[:3] == [2, -2, 4]  # half to even, where SQLite would truncate 3.5 to 3
    assert got[4:] == [0, 1_000_000_000]  # -0.49999999999999994 is not -0.5, 1e9 + 0.5 goes to the even 1e9


def test_a_cast_out_of_range_fails_on_both():
    query = "SELECT CAST(x AS {}) FROM (SELECT 3e9 AS x)"
    with pytest.raises(duckdb.ConversionException):
        duckdb.connect().execute(query.format("INT")).fetchall()
    lite = sqlite.connect()
    with pytest.raises(sqlite3.OperationalError):
        lite.execute(sqlite.to_sqlite_sql(query.format("INT"))).fetchall()
    assert lite.execute(sqlite.to_sqlite_sql(query.format("BIGINT"))).fetchone()[0] == 3_000_000_000
    small = "SELECT CAST(x AS SMALLINT) FROM (SELECT 40000.0 AS x)"  # beyond 16 bits on both
    with pytest.raises(duckdb.ConversionException):
        duckdb.connect().execute(small).fetchall()
    with pytest.raises(sqlite3.OperationalError):
        lite.execute(sqlite.to_sqlite_sql(small)).fetchall()


@pytest.mark.parametrize("aggregate", ["STDDEV_SAMP(x)", "STDDEV_SAMP(a)", "MAX(t1)", "SUM(a) / COUNT(*)",
                                       "DATE_DIFF('DAY', MIN(t1), MAX(t2))", "AVG(x)"])
def test_aggregates_give_what_duckdb_gives(aggregate):
    duck, got = _both(aggregate, group=True)
    assert _same(duck[0], got[0]), (duck, got)


def test_stddev_samp_follows_duckdb_on_many_values():
    rng = np.random.default_rng(3)
    values = rng.lognormal(12, 2, 5000).tolist()
    con = duckdb.connect()
    expected = con.execute("SELECT stddev_samp(v) FROM (SELECT unnest(?) AS v)", [values]).fetchone()[0]
    lite = sqlite.connect()
    lite.execute("CREATE TABLE t (v REAL)")
    lite.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    got = lite.execute(sqlite.to_sqlite_sql("SELECT STDDEV_SAMP(v) FROM t")).fetchone()[0]
    assert got == pytest.approx(expected, rel=RTOL)
    assert got == pytest.approx(np.std(values, ddof=1), rel=1e-9)  # and the textbook value


@pytest.mark.parametrize("expression", ["regexp_matches(x, 'a')", "list_sum([1, 2])", "t1 - INTERVAL 1 MONTH",
                                        "arg_max(a, t1)", "DATE_DIFF('MILLENNIUM', t1, t2)", "CAST(x AS DECIMAL(9, 2))",
                                        "quantile_cont(x, 0.5)", "INTERVAL 1.5 DAY + t1",
                                        "CAST(2.5 AS INT)", "CAST(t1 AS VARCHAR)",
                                        "CAST(x AS UBIGINT)"])
def test_what_has_no_faithful_translation_is_refused(expression):
    with pytest.raises(sqlite.SqliteTranslationError, match="no SQLite translation|is not among"):
        sqlite.to_sqlite_sql(f"SELECT {expression} FROM t")


def test_a_cast_to_text_only_of_what_reads_the_same():
    con, lite = duckdb.connect(), sqlite.connect()
    lite.execute("CREATE TABLE t (code INTEGER, name TEXT, t1 INTEGER)")
    lite.execute("INSERT INTO t VALUES (-7, 'bamboo', 0)")
    query = "SELECT CAST(code AS VARCHAR), CAST(name AS VARCHAR) FROM t"
    expected = con.execute(query.replace("FROM t", "FROM (SELECT -7 AS code, 'bamboo' AS name) t")).fetchall()
    assert lite.execute(sqlite.to_sqlite_sql(query, frozenset({"code", "name"}))).fetchall() == expected
    with pytest.raises(sqlite.SqliteTranslationError, match="a cast to text"):
        sqlite.to_sqlite_sql("SELECT CAST(t1 AS VARCHAR) FROM t", frozenset({"code", "name"}))


def test_a_catalogue_that_does_not_translate_runs_on_duckdb(edge):
    odd = dataclasses.replace(feature("txn_inflow_3m"), name="my_median_inflow",
                              sql="quantile_cont(CASE WHEN s.direction = 'in' THEN s.amount END, 0.5)")
    features = [*CATALOGUE[:20], odd]
    online = OnlineFeatures(features, edge["path"])
    try:
        assert online.engine == "duckdb"
        row = online.features(EDGE_ID, "2024-03-01", amount=1e5, term_months=12, product="working_capital",
                              guarantee_type="unsecured")
        assert "my_median_inflow" in row.columns
    finally:
        online.close()
    with pytest.raises(StoreError) as err:
        OnlineFeatures(features, edge["path"], engine="sqlite")
    assert "cannot run on SQLite" in str(err.value) and "quantile_cont" in str(err.value).lower()
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="engine 'spark' is not one of auto, sqlite, duckdb"):
        OnlineFeatures(features, edge["path"], engine="spark")


def test_each_thread_has_its_own_sqlite_database(edge):
    from concurrent.futures import ThreadPoolExecutor

    online = OnlineFeatures(CATALOGUE, edge["path"])
    loans = edge["loans"].head(8)
    try:
        alone = online_rows(online, loans)
        with ThreadPoolExecutor(4) as pool:
            parts = list(pool.map(lambda i: online_rows(online, loans.iloc[[i]]), range(len(loans))))
    finally:
        online.close()
    assert not frame_mismatches(alone, pd.concat(parts, ignore_index=True), rtol=0)


def test_sqlite_version_has_what_the_translation_needs():
    # window functions (3.25) and NULLS LAST (3.30): the rest is registered from Python
    assert sqlite3.sqlite_version_info >= (3, 30)


def test_no_other_process_can_write_the_store_while_it_is_open(edge, tmp_path):
    # what the ids read at open rely on: DuckDB locks the file, so the store an OnlineFeatures holds cannot
    # change under it
    path = tmp_path / "store.duckdb"
    shutil.copy(edge["path"], path)
    online = OnlineFeatures(CATALOGUE, path)
    try:
        write = (f"import duckdb; duckdb.connect({str(path)!r}).execute("
                 "\"INSERT INTO court_cases VALUES (1, 1, DATE '2020-01-01', NULL, 1.0, FALSE)\")")
        done = subprocess.run([sys.executable, "-c", write], capture_output=True, text=True, timeout=120)
        assert done.returncode != 0 and "lock" in done.stderr.lower(), done.stderr
    finally:
        online.close()
    done = subprocess.run([sys.executable, "-c", write], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr  # closed, the store takes the write

"""A PostgreSQL store gives the features a DuckDB store gives, and both equal the offline matrix (and Spark's).

On the edge-case world of the engine parity tests (rows exactly on the decision date, at each window
start and a second / a day before it, empty windows, leap day, month ends, a joint-guarantee group), the
catalogue's SQL transpiled for PostgreSQL, restricted to one borrower and run as a prepared statement,
equals the DuckDB store's online features and the offline feature matrix: floats to 1e-12, counts,
categories and NULLs exactly. A store that cannot be reached, a schema that holds other tables or lacks
what the catalogue reads, and a load that fails half-way are one line naming the store, password never
printed, nothing written.
"""

from __future__ import annotations

import shutil
import socket
import subprocess

import duckdb
import numpy as np
import pandas as pd
import pytest
from edge_world import EDGE_ID, merged_tables, online_rows
from edge_world import edge_tables as make_edge_tables

from creditmodel.exceptions import StoreError
from creditmodel.features.build import build_features
from creditmodel.features.catalogue import CATALOGUE
from creditmodel.features.online import OnlineFeatures, build_store, catalogue_document, catalogue_from_document
from creditmodel.features.spark import frame_mismatches

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: the PostgreSQL store is not tested")

from creditmodel.features import online_pg  # noqa: E402
from creditmodel.features.online_pg import (  # noqa: E402
    PostgresOnlineFeatures,
    build_store_pg,
    open_online,
    parse_pg_store,
)
from creditmodel.features.postgres import PostgresTranslationError, to_postgres_sql  # noqa: E402

RTOL = 1e-12
# Engines sum doubles in different orders; where a feature subtracts nearly equal sums (the inflow slope's
# 12*sum(k*x) - 66*sum(x)) a last-bit difference of the sums shows as ~1e-12 relative of a small result,
# ~1e-16 absolute. Across a whole world the comparison allows that much absolute difference too.
ATOL = 1e-12


@pytest.fixture(scope="module")
def pg_db(postgres_server):
    return postgres_server("online_pg")


@pytest.fixture(scope="module")
def edge(pg_db, tmp_path_factory):
    tables = merged_tables(make_edge_tables())
    path = tmp_path_factory.mktemp("edge") / "store.duckdb"
    build_store(tables, path)
    url = f"{pg_db}?schema=edge"
    counts = build_store_pg(tables, url)
    loans = tables["loans"]
    grouped = loans[(loans["loan_id"] < EDGE_ID) & loans["group_id"].notna()]
    sample = pd.concat([loans[loans["loan_id"] > EDGE_ID],  # every edge loan, loans of groups, others
                        grouped.sample(min(12, len(grouped)), random_state=2),
                        loans[(loans["loan_id"] < EDGE_ID) & loans["group_id"].isna()].sample(12, random_state=2)])
    return {"tables": tables, "path": path, "url": url, "counts": counts, "loans": sample,
            "offline": build_features(tables)}




def _offline(offline: pd.DataFrame, got: pd.DataFrame) -> pd.DataFrame:
    return offline.set_index("loan_id").loc[got["loan_id"]].reset_index()[list(got.columns)]


def _problems(expected, got) -> str:
    problems = frame_mismatches(expected.reset_index(drop=True), got.reset_index(drop=True), rtol=RTOL)
    by_name = {f.name: f for f in CATALOGUE}
    return "\n".join(f"  {c}: {why}\n    {by_name[c].sql if c in by_name else ''}" for c, why in problems.items())


def test_the_store_holds_the_tables_typed_sorted_and_indexed(edge, pg_db):
    with psycopg.connect(pg_db) as con:
        n = con.execute("SELECT count(*) FROM edge.transactions").fetchone()[0]
        kinds = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE "
                                 "table_schema = 'edge' AND table_name = 'transactions'").fetchall())
        meta = dict(con.execute("SELECT key, value FROM edge.store_meta").fetchall())
        indexes = {r[0] for r in con.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'edge'").fetchall()}
        amounts = np.array([r[0] for r in con.execute("SELECT amount FROM edge.transactions").fetchall()])
    txn = edge["tables"]["transactions"]
    assert n == len(txn) == edge["counts"]["transactions"]
    assert kinds == {"enterprise_id": "bigint", "ts": "timestamp without time zone", "amount": "double precision",
                     "direction": "text", "channel": "text", "counterparty": "bigint"}
    assert meta["format"] == "creditmodel-store" and meta["first_date"] <= meta["last_date"]
    assert any("(enterprise_id, ts)" in d for d in indexes) and any("(loan_id, date)" in d for d in indexes)
    # the doubles arrive bit for bit (shortest round-trip text through COPY)
    assert np.array_equal(np.sort(amounts), np.sort(txn["amount"].to_numpy()))


def test_postgres_equals_duckdb_and_the_offline_matrix_on_the_edge_world(edge):
    features = catalogue_from_document(catalogue_document(CATALOGUE))  # as a bundle carries them
    pg = PostgresOnlineFeatures(features, edge["url"])
    duck = OnlineFeatures(features, edge["path"])
    try:
        got_pg, got_duck = online_rows(pg, edge["loans"]), online_rows(duck, edge["loans"])
    finally:
        pg.close()
        duck.close()
    assert (got_pg["loan_id"] > EDGE_ID).sum() == 7
    assert not frame_mismatches(got_duck, got_pg, rtol=RTOL), _problems(got_duck, got_pg)
    expected = _offline(edge["offline"], got_pg)
    assert not frame_mismatches(expected, got_pg, rtol=RTOL), _problems(expected, got_pg)
    assert got_pg.dtypes.to_dict() == expected.dtypes.to_dict()
    rich = got_pg[got_pg["loan_id"] == EDGE_ID + 2].iloc[0]  # the borrower with a row at every edge
    assert rich[[f.name for f in CATALOGUE if not f.is_categorical]].notna().mean() > 0.8
    assert (got_pg["grp_members"] > 0).sum() >= 5  # the group block reached the members' rows


@pytest.mark.slow  # starts a Spark session
def test_postgres_equals_spark_on_the_edge_world(edge):
    pytest.importorskip("pyspark", reason="pyspark is not installed: the Spark engine is not tested")
    if shutil.which("java") is None or subprocess.run(["java", "-version"], capture_output=True).returncode != 0:
        pytest.skip("no working `java` on PATH: Spark needs a Java 17+ runtime")
    from creditmodel.features.spark import SMALL_DATA_CONF, build_features_spark, get_spark

    spark = get_spark("local[2]", shuffle_partitions=2, show_progress=False, driver_memory="1g",
                      log_level="ERROR", **SMALL_DATA_CONF)
    loans = edge["tables"]["loans"]
    apps = loans[loans["loan_id"].isin(edge["loans"]["loan_id"])]
    on_spark = build_features_spark(edge["tables"], apps, spark=spark)
    pg = PostgresOnlineFeatures(CATALOGUE, edge["url"])
    try:
        got = online_rows(pg, edge["loans"])
    finally:
        pg.close()
    expected = on_spark.set_index("loan_id").loc[got["loan_id"]].reset_index()[list(got.columns)]
    assert not frame_mismatches(expected, got, rtol=1e-9), _problems(expected, got)  # Spark's own tolerance


def test_rows_added_on_or_after_the_decision_date_never_reach_a_feature(edge, pg_db):
    loans = edge["loans"].head(8)
    url = f"{pg_db}?schema=future"
    build_store_pg(edge["tables"], url)
    with psycopg.connect(pg_db, autocommit=True) as con:
        d = pd.Timestamp(loans["application_date"].max())  # on or after every sampled decision date
        for loan in loans.itertuples():
            for day in (0, 3):
                con.execute("INSERT INTO future.transactions VALUES (%s, %s, 8e6, 'in', 'cash', 424242)",
                            [int(loan.enterprise_id), d + pd.Timedelta(days=day)])
            con.execute("INSERT INTO future.repayments VALUES (%s, %s, 120)", [int(loan.loan_id), d.date()])
    before = PostgresOnlineFeatures(CATALOGUE, edge["url"])
    after = PostgresOnlineFeatures(CATALOGUE, url)
    try:
        assert not frame_mismatches(online_rows(before, loans), online_rows(after, loans), rtol=0)
    finally:
        before.close()
        after.close()


# --- the translation, expression by expression, against DuckDB -----------------------------------------

_PAIRS = [("2024-01-01 23:59:59", "2024-01-02 00:00:00"), ("2024-01-02 00:00:00", "2024-01-01 23:59:59"),
          ("2024-01-31 00:00:00", "2024-02-01 00:00:00"), ("2024-01-31 12:00:00", "2024-02-29 11:00:00"),
          ("2023-12-31 23:59:59", "2024-01-01 00:00:00"), ("2024-03-31 00:00:00", "2024-02-29 00:00:00"),
          ("2020-02-29 00:00:00", "2024-02-28 23:59:59"), ("2024-01-06 00:00:00", "2024-01-13 00:00:00"),
          ("2024-01-08 00:00:00", "2024-01-06 00:00:00"), ("2024-01-01 12:59:00", "2024-01-01 13:01:00")]
_EXPRESSIONS = [
    *(f"date_diff('{u}', a, b)" for u in ("day", "week", "month", "quarter", "year", "hour", "minute", "second")),
    *(f"date_diff('{u}', CAST(a AS DATE), CAST(b AS DATE))" for u in ("day", "month", "year")),
    "CAST(CAST(a AS DATE) - INTERVAL 1 MONTH AS DATE)", "CAST(b + INTERVAL 90 DAY AS DATE)",
    "b >= CAST(a AS DATE) - INTERVAL 30 DAY", "date_diff('day', CAST(a AS DATE), CAST(b AS DATE)) / 365.25",
    "date_diff('hour', a, b) / 48", "CAST(date_diff('hour', a, b) / 4.0 AS BIGINT)", "year(a) - 2000",
    "log(abs(date_diff('minute', a, b)) + 1)", "CAST(floor(date_diff('day', a, b) * 12 / 365.0) AS INTEGER)",
]


def _grid(select: list[str]) -> str:
    rows = ", ".join(f"(CAST('{a}' AS TIMESTAMP), CAST('{b}' AS TIMESTAMP))" for a, b in _PAIRS)
    return f"SELECT {', '.join(f'{e} AS c{i}' for i, e in enumerate(select))} FROM (VALUES {rows}) t(a, b)"


def test_date_arithmetic_and_division_match_duckdb(pg_db):
    sql = _grid(_EXPRESSIONS)
    duck = duckdb.sql(sql).fetchall()
    with psycopg.connect(pg_db) as con:
        got = con.execute(to_postgres_sql(sql)).fetchall()
    for i, expr in enumerate(_EXPRESSIONS):
        d_col, p_col = [r[i] for r in duck], [r[i] for r in got]
        if isinstance(d_col[0], float):
            assert [float(x) for x in p_col] == pytest.approx(d_col, rel=RTOL, abs=0), (expr, d_col, p_col)
        else:
            assert p_col == d_col, (expr, d_col, p_col)


def test_aggregates_match_duckdb(pg_db):
    """Integer division of counts, arg_max skipping NULLs, FILTER on empty groups, stddev of one row."""
    sql = """SELECT k, count(*) FILTER (WHERE x > 5) / nullif(count(*), 0) AS share, arg_max(x, t) AS am,
                    arg_min(x, t) AS mn, sum(x) FILTER (WHERE x > 100) AS sf, stddev_samp(x) AS sd,
                    CAST(sum(x) / 3 AS INTEGER) AS ci, greatest(max(x), NULL) AS g,
                    quantile_cont(x, 0.5) AS med, bool_or(x > 5) AS anyx
             FROM (SELECT k, CAST(x AS DOUBLE) AS x, t FROM (VALUES (1, 1.5, 1), (1, NULL, 2), (2, 2.5, 1),
                   (2, 7.0, 3), (3, NULL, 1)) v(k, x, t)) w GROUP BY k ORDER BY k"""
    duck = duckdb.sql(sql).fetchall()
    with psycopg.connect(pg_db) as con:
        got = con.execute(to_postgres_sql(sql)).fetchall()
    assert len(got) == len(duck) == 3
    for g, d in zip(got, duck):
        assert [None if x is None else pytest.approx(x, rel=RTOL) for x in d] == [
            float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x for x in g], (g, d)
    assert duck[0][2] == 1.5 and duck[1][1] == 0.5  # the NULL of the latest row skipped; 1/2 is not 0


def test_untranslatable_expressions_are_named():
    with pytest.raises(PostgresTranslationError, match="(?i)decade"):
        to_postgres_sql("SELECT date_diff('decade', a, b) FROM t")
    with pytest.raises(PostgresTranslationError, match="top-n"):
        to_postgres_sql("SELECT arg_max(x, y, 3) FROM t")


# --- bad input: one line naming the store, nothing written ------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tables_of(pg_db, schema):
    with psycopg.connect(pg_db) as con:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                          [schema]).fetchall()}


def test_an_unreachable_server_is_one_line_without_the_password(small_world):
    url = f"postgresql://bank:s3cret@127.0.0.1:{free_port()}/credit"
    for attempt in (lambda: build_store_pg(small_world.tables, url), lambda: PostgresOnlineFeatures(CATALOGUE, url)):
        with pytest.raises(StoreError, match="cannot connect") as err:
            attempt()
        assert "s3cret" not in str(err.value) and "\n" not in str(err.value)
        assert "postgresql://bank@127.0.0.1" in str(err.value)
    with pytest.raises(StoreError, match="schema 'Bad-Name'"):
        parse_pg_store("postgresql://bank@db/credit?schema=Bad-Name")
    assert parse_pg_store("postgresql://bank:pw@db:5433/credit?schema=s1&sslmode=disable") == (
        "postgresql://bank:pw@db:5433/credit?sslmode=disable", "s1", "postgresql://bank@db:5433/credit?schema=s1")


def test_a_schema_with_other_tables_is_refused_and_left_alone(small_world, pg_db):
    with psycopg.connect(pg_db, autocommit=True) as con:
        con.execute("CREATE SCHEMA bankdata")
        con.execute("CREATE TABLE bankdata.customers (id bigint)")
    with pytest.raises(StoreError, match="schema 'bankdata' holds tables creditmodel did not write .customers"):
        build_store_pg(small_world.tables, f"{pg_db}?schema=bankdata", force=True)
    assert _tables_of(pg_db, "bankdata") == {"customers"}


def test_a_kit_store_is_replaced_only_with_force(small_world, pg_db):
    url = f"{pg_db}?schema=again"
    build_store_pg(small_world.tables, url)
    with pytest.raises(StoreError, match="already holds a creditmodel store; --force replaces it"):
        build_store_pg(small_world.tables, url)
    fewer = {**small_world.tables, "transactions": small_world.tables["transactions"].head(100)}
    assert build_store_pg(fewer, url, force=True)["transactions"] == 100
    with psycopg.connect(pg_db) as con:
        assert con.execute("SELECT count(*) FROM again.transactions").fetchone()[0] == 100


def test_a_load_that_fails_half_way_writes_nothing(small_world, pg_db, monkeypatch):
    url = f"{pg_db}?schema=half"
    build_store_pg(small_world.tables, url)
    before = _tables_of(pg_db, "half")
    # an index on a column the table lacks fails after every table was copied: the whole load rolls back
    monkeypatch.setattr(online_pg, "_indexes", lambda name: [("no_such_column",)])
    with pytest.raises(StoreError, match=r"loading failed, nothing was written \(column \"no_such_column\""):
        build_store_pg({**small_world.tables, "transactions": small_world.tables["transactions"].head(5)}, url,
                       force=True)
    assert _tables_of(pg_db, "half") == before
    with psycopg.connect(pg_db) as con:
        assert con.execute("SELECT count(*) FROM half.transactions").fetchone()[0] == len(
            small_world.tables["transactions"])


def test_a_store_that_does_not_fit_the_catalogue_is_refused_in_one_line(small_world, pg_db, edge):
    url = f"{pg_db}?schema=broken"
    build_store_pg(small_world.tables, url)
    with psycopg.connect(pg_db, autocommit=True) as con:
        con.execute("ALTER TABLE broken.transactions DROP COLUMN channel")
    with pytest.raises(StoreError, match=r"broken: table 'transactions' lacks column 'channel'") as err:
        open_online(CATALOGUE, url)
    assert "\n" not in str(err.value)
    with psycopg.connect(pg_db, autocommit=True) as con:
        con.execute("DROP TABLE broken.repayments")
    with pytest.raises(StoreError, match=r"table 'repayments' is missing"):
        open_online(CATALOGUE, url)
    with pytest.raises(StoreError, match=r"schema 'nothing_here' holds no tables; build a store"):
        open_online(CATALOGUE, f"{pg_db}?schema=nothing_here")
    with psycopg.connect(pg_db, autocommit=True) as con:  # the tables, but not written by creditmodel
        con.execute("CREATE SCHEMA lookalike")
        for t in ("enterprises", "loans", "store_meta"):
            con.execute(f"CREATE TABLE lookalike.{t} AS SELECT * FROM edge.{t}" if t != "store_meta" else
                        "CREATE TABLE lookalike.store_meta (key text, value text)")
    with pytest.raises(StoreError, match="store_meta is not a creditmodel store's"):
        open_online([f for f in CATALOGUE if f.source in ("application", "enterprises")], f"{pg_db}?schema=lookalike")


def test_store_build_cli_loads_postgresql(small_world, pg_db, tmp_path, capsys):
    from creditmodel.cli import main
    from creditmodel.data.synthetic import write_world

    data = tmp_path / "world"
    write_world(small_world, data)
    assert main(["store", "build", "--data", str(data), "--out", f"{pg_db}?schema=cli"]) == 0
    out = capsys.readouterr().out
    assert "?schema=cli" in out and f"transactions {len(small_world.tables['transactions']):,}" in out
    assert main(["store", "build", "--data", str(data), "--out", f"{pg_db}?schema=cli"]) == 2
    assert "--force replaces it" in capsys.readouterr().err
    url = f"postgresql://u:pw@127.0.0.1:{free_port()}/x"
    assert main(["store", "build", "--data", str(data), "--out", url]) == 2
    err = capsys.readouterr().err
    assert "cannot connect" in err and "pw" not in err.replace("postgresql://u@", "")
    online = open_online(CATALOGUE, f"{pg_db}?schema=cli")
    assert isinstance(online, PostgresOnlineFeatures) and online.known(int(small_world.tables["loans"]["enterprise_id"][0]))
    online.close()


# --- many borrowers as of one date ----------------------------------------------------------------------


def test_as_of_in_bulk_equals_duckdb_and_the_offline_matrix(small_world, pg_db, tmp_path):
    from datetime import date

    from creditmodel.features.asof import AsOfFeatures
    from creditmodel.features.build import available_features
    from creditmodel.features.online_pg import open_as_of

    tables = small_world.tables
    kept, _ = available_features(tables)
    path = tmp_path / "store.duckdb"
    build_store(tables, path)
    url = f"{pg_db}?schema=asof"
    build_store_pg(tables, url)
    d = date(2023, 7, 1)
    with AsOfFeatures(kept, path) as duck, open_as_of(kept, url) as pg:
        assert type(pg).__name__ == "PostgresAsOfFeatures"
        who_duck, who_pg = duck.borrowers(d), pg.borrowers(d)
        assert len(who_pg) > 50 and who_pg["loan_id"].tolist() == who_duck["loan_id"].tolist()
        assert who_pg["enterprise_id"].tolist() == who_duck["enterprise_id"].tolist()
        bulk_duck, bulk_pg = duck.compute_many(who_duck, d), pg.compute_many(who_pg, d)
        assert not frame_mismatches(bulk_duck, bulk_pg, rtol=RTOL, atol=ATOL), _problems(bulk_duck, bulk_pg)
        assert (bulk_pg["grp_members"] > 0).sum() >= 3
        apps = who_duck.assign(application_date=pd.Timestamp(d))
        offline = build_features(tables, apps, features=kept).set_index("loan_id").loc[who_duck["loan_id"]]
        names = [f.name for f in kept]
        assert not frame_mismatches(offline[names].reset_index(drop=True), bulk_pg[names], rtol=RTOL, atol=ATOL)
        # a list with terms, an unknown enterprise among them: scored as new to the bank
        known = int(tables["enterprises"]["enterprise_id"].iloc[3])
        listed = pg.check_listed(pd.DataFrame({"enterprise_id": [known, 987_654_321], "amount": [150_000.0, 80_000],
                                               "term_months": [12, 24], "product": ["working_capital", "micro"],
                                               "guarantee_type": ["unsecured", "third_party"]}))
        a, b = duck.compute_many(duck.borrowers(d, listed), d), pg.compute_many(pg.borrowers(d, listed), d)
        assert not frame_mismatches(a, b, rtol=RTOL, atol=ATOL)
        assert pg.known_many(listed["enterprise_id"]).tolist() == [True, False]
        without_terms = pd.DataFrame({"enterprise_id": who_duck["enterprise_id"].head(5)})
        assert pg.borrowers(d, pg.check_listed(without_terms))["loan_id"].tolist() == \
            duck.borrowers(d, duck.check_listed(without_terms))["loan_id"].tolist()

"""The catalogue gives the same features on Spark (local mode) as on DuckDB.

One Spark session serves the module. The whole catalogue runs once on a small synthetic world
merged with hand-made edge tables (rows exactly on the decision date, exactly at each window
start and one second / one day before it, at 00:00:00 and 23:59:59 the day before, empty
windows, borrowers with no rows at all or only rows outside every window, leap day and month
ends), so one Spark query covers both. Counts and other integer-valued columns must be equal,
floats within 1e-9 relative, nulls in the same places, columns and dtypes identical.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from edge_world import DAY, EDGE_ID, merged_tables  # the edge-case world, shared with the PostgreSQL parity test
from edge_world import edge_tables as make_edge_tables

from creditmodel.features.build import available_features, build_features, compile_query
from creditmodel.features.catalogue import CATALOGUE

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed: the Spark engine is not tested")
if shutil.which("java") is None or subprocess.run(["java", "-version"], capture_output=True).returncode != 0:
    pytest.skip("no working `java` on PATH: Spark needs a Java 17+ runtime", allow_module_level=True)

from creditmodel.features.spark import (  # noqa: E402
    SMALL_DATA_CONF,
    SparkTranslationError,
    build_features_spark,
    frame_mismatches,
    get_spark,
    register_tables,
    spark_query,
    to_spark_sql,
    write_features_spark,
)

pytestmark = pytest.mark.slow  # starts a Spark session

RTOL = 1e-9


@pytest.fixture(scope="module")
def spark():
    session = get_spark("local[2]", shuffle_partitions=2, show_progress=False, driver_memory="1g",
                        log_level="ERROR", **SMALL_DATA_CONF)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def edge_tables():
    return make_edge_tables()


@pytest.fixture(scope="module")
def tables(edge_tables):
    """A small synthetic world and the edge tables, side by side (disjoint ids)."""
    return merged_tables(edge_tables)


@pytest.fixture(scope="module")
def both(tables, spark, tmp_path_factory):
    duck = build_features(tables)
    try:
        got = build_features_spark(tables, spark=spark)
    except Exception as err:  # name the features Spark rejects, then fail
        pytest.fail(f"the catalogue fails on Spark: {str(err).strip().splitlines()[0]}\n"
                    + _spark_rejects(spark, tables, tmp_path_factory.mktemp("stage")))
    return duck, got


def _spark_rejects(spark, tables, stage) -> str:
    """Each feature analysed alone by Spark: the ones it rejects, with Spark's reason."""
    register_tables(spark, tables, stage=stage)
    rejected = []
    for f in CATALOGUE:
        if f.source == "derived":
            continue
        try:
            spark.sql(spark_query([f], pretty=False))
        except Exception as err:  # noqa: BLE001 - reported, one line per feature
            rejected.append(f"  {f.name}: {str(err).strip().splitlines()[0][:300]}\n    {f.sql}")
    return ("features Spark rejects:\n" + "\n".join(rejected)) if rejected else \
        "every feature is accepted alone: the failure is at run time (e.g. ANSI division by zero)"


def _explain(names: list[str]) -> str:
    by_name = {f.name: f for f in CATALOGUE}
    return "\n".join(f"  {n}: {by_name[n].sql}" if n in by_name else f"  {n}" for n in names)


# --- parity --------------------------------------------------------------------------------------


def test_full_catalogue_matches_duckdb(both):
    duck, spark_frame = both
    assert list(duck.columns)[3:] == [f.name for f in CATALOGUE]  # every feature computed
    problems = frame_mismatches(duck, spark_frame, rtol=RTOL)
    assert not problems, "Spark differs from DuckDB on:\n" + "\n".join(
        f"  {col}: {why}" for col, why in problems.items()) + "\nDefinitions:\n" + _explain(list(problems))
    assert duck.dtypes.to_dict() == spark_frame.dtypes.to_dict()


def test_edge_loans_match_and_are_not_trivial(both):
    duck, spark_frame = both
    edge = duck["loan_id"] >= EDGE_ID
    assert edge.sum() == 7
    problems = frame_mismatches(duck[edge].reset_index(drop=True), spark_frame[edge].reset_index(drop=True),
                                rtol=RTOL)
    assert not problems, problems
    # the edge rows reach most features: the borrower with every edge has values, the empty one fills
    rich = duck[duck["loan_id"] == EDGE_ID + 2].iloc[0]  # the second loan of the borrower with every edge
    empty = duck[duck["enterprise_id"] == EDGE_ID + 3].iloc[0]
    numeric = [f.name for f in CATALOGUE if not f.is_categorical]
    assert rich[numeric].notna().mean() > 0.8
    for f in CATALOGUE:
        if f.source in ("transactions", "registration_events", "court_cases", "environment_checks") \
                and f.fill is not None:
            assert empty[f.name] == f.fill, f.name


_COUNT = re.compile(r"^count\(\*\) FILTER \(WHERE s\.direction = '(in|out)' "
                    r"AND s\.ts >= a\.decision_date - INTERVAL (\d+) DAY\)$")


def test_windowed_transaction_counts_hand_checked(both, edge_tables):
    """Independent reference: count rows with d - w days <= ts < d in pandas, for every plain count."""
    duck, spark_frame = both
    txn = edge_tables["transactions"]
    checked = 0
    for f in CATALOGUE:
        m = _COUNT.match(f.sql) if f.source == "transactions" else None
        if not m:
            continue
        direction, w = m.group(1), int(m.group(2))
        for frame in (duck, spark_frame):
            for _, row in frame[frame["loan_id"] > EDGE_ID].iterrows():
                d = row["decision_date"]
                rows = txn[(txn["enterprise_id"] == row["enterprise_id"]) & (txn["direction"] == direction)
                           & (txn["ts"] < d) & (txn["ts"] >= d - w * DAY)]
                assert row[f.name] == len(rows), (f.name, row["loan_id"])
        checked += 1
    assert checked >= 2


def test_parquet_paths_missing_sources_and_applications(spark, edge_tables, tmp_path):
    """The scale path: parquet in (pandas' nanosecond timestamps), parquet out; absent sources are
    skipped as in DuckDB; applications without a group are scored."""
    src = tmp_path / "tables"
    src.mkdir()
    kept_tables = {k: v for k, v in edge_tables.items() if k not in ("court_cases", "financial_statements")}
    for name, df in kept_tables.items():
        df.to_parquet(src / f"{name}.parquet", index=False)
    loans = edge_tables["loans"]
    apps = loans[loans["loan_id"] != EDGE_ID + 2].drop(columns=["group_id", "rate"])
    apps.to_parquet(tmp_path / "apps.parquet", index=False)

    out = write_features_spark(src, tmp_path / "features", tmp_path / "apps.parquet", spark=spark)
    got = pd.read_parquet(out).sort_values(["decision_date", "loan_id"], kind="stable").reset_index(drop=True)
    got["decision_date"] = got["decision_date"].astype("datetime64[ns]")
    expected = build_features(kept_tables, applications=apps)
    kept, missing = available_features(kept_tables)
    assert missing == ["court_cases", "financial_statements"]
    assert list(got.columns)[3:] == [f.name for f in kept]
    for f in kept:  # parquet keeps strings as strings; build_features gives objects
        if f.is_categorical:
            got[f.name] = got[f.name].astype(object).where(got[f.name].notna(), None)
    assert not frame_mismatches(expected, got, rtol=RTOL)


# --- the translation itself ----------------------------------------------------------------------

_PAIRS = [  # (a, b) timestamps around day, month, quarter and year boundaries
    ("2024-01-01 23:59:59", "2024-01-02 00:00:00"), ("2024-01-02 00:00:00", "2024-01-01 23:59:59"),
    ("2024-01-31 00:00:00", "2024-02-01 00:00:00"), ("2024-01-31 12:00:00", "2024-02-29 11:00:00"),
    ("2023-12-31 23:59:59", "2024-01-01 00:00:00"), ("2024-03-31 00:00:00", "2024-02-29 00:00:00"),
    ("2020-02-29 00:00:00", "2024-02-28 23:59:59"), ("2024-01-06 00:00:00", "2024-01-13 00:00:00"),
    ("2024-01-08 00:00:00", "2024-01-06 00:00:00"), ("2024-01-01 12:00:00", "2024-01-08 11:00:00"),
    ("2024-01-01 12:59:00", "2024-01-01 13:01:00"), ("2024-06-30 00:00:00", "2023-06-30 00:00:01"),
]
_EXPRESSIONS = [
    *(f"date_diff('{u}', a, b)" for u in ("day", "week", "month", "quarter", "year", "hour", "minute", "second")),
    *(f"date_diff('{u}', CAST(a AS DATE), CAST(b AS DATE))" for u in ("day", "month", "year")),
    *(f"date_sub('{u}', a, b)" for u in ("day", "hour")),
    "CAST(CAST(a AS DATE) - INTERVAL 1 MONTH AS DATE)", "CAST(CAST(b AS DATE) - INTERVAL 12 MONTH AS DATE)",
    "CAST(CAST(a AS DATE) - INTERVAL 365 DAY AS DATE)", "CAST(b + INTERVAL 90 DAY AS DATE)",
    "b >= CAST(a AS DATE) - INTERVAL 30 DAY", "b < CAST(a AS DATE)", "CAST(a AS DATE) = CAST(b AS DATE)",
    "date_diff('day', CAST(a AS DATE), CAST(b AS DATE)) / 365.25",
    "CAST(date_diff('hour', a, b) / 48 AS INTEGER)", "CAST(date_diff('hour', a, b) / 4.0 AS BIGINT)",
    "log(abs(date_diff('minute', a, b)) + 1)", "year(a) - 2000", "CAST(floor(date_diff('day', a, b) * 12 / 365.0) AS INTEGER)",
]


def _grid_sql(select: list[str]) -> str:
    rows = ", ".join(f"(CAST('{a}' AS TIMESTAMP), CAST('{b}' AS TIMESTAMP))" for a, b in _PAIRS)
    return f"SELECT {', '.join(f'{e} AS c{i}' for i, e in enumerate(select))} FROM (VALUES {rows}) t(a, b)"


def test_date_arithmetic_matches_duckdb(spark):
    import duckdb

    sql = _grid_sql(_EXPRESSIONS)
    duck = duckdb.sql(sql).fetchall()
    got = [tuple(r) for r in spark.sql(to_spark_sql(sql)).collect()]
    for i, expr in enumerate(_EXPRESSIONS):
        d_col = [r[i] for r in duck]
        s_col = [r[i] for r in got]
        if isinstance(d_col[0], float):
            assert np.allclose(s_col, d_col, rtol=RTOL), (expr, d_col, s_col)
        else:
            assert s_col == d_col, (expr, d_col, s_col)


def test_aggregate_null_semantics_match_duckdb(spark):
    """max_by/arg_max skip NULL values in DuckDB; FILTER on empty groups; stddev of one row."""
    import duckdb

    sql = """SELECT k, arg_max(x, t) AS am, max_by(x, t) AS mb, arg_min(x, t) AS mn,
                    count(*) FILTER (WHERE x > 100) AS cf, sum(x) FILTER (WHERE x > 100) AS sf,
                    stddev_samp(x) AS sd, avg(x) FILTER (WHERE t > 2) AS af,
                    CAST(sum(x) / 3 AS INTEGER) AS ci, greatest(max(x), NULL) AS g
             FROM (SELECT k, CAST(x AS DOUBLE) AS x, t FROM (VALUES (1, 1.5, 1), (1, NULL, 2), (2, 2.5, 1),
                   (2, 7.0, 3), (3, NULL, 1)) v(k, x, t)) GROUP BY k ORDER BY k"""
    duck = duckdb.sql(sql).fetchall()
    got = [tuple(r) for r in spark.sql(to_spark_sql(sql)).collect()]
    assert len(got) == len(duck) == 3
    for g, d in zip(got, duck):
        assert [None if x is None else pytest.approx(x, rel=RTOL) for x in d] == list(g), (g, d)
    assert duck[0][1:3] == (1.5, 1.5)  # the NULL of the latest row is skipped: the 1.5 of t=1


def test_untranslatable_expressions_are_named():
    with pytest.raises(SparkTranslationError, match="(?i)decade"):
        to_spark_sql("SELECT date_diff('decade', a, b) FROM t")
    with pytest.raises(SparkTranslationError, match="top-n"):
        to_spark_sql("SELECT arg_max(x, y, 3) FROM t")


def test_catalogue_transpiles_feature_by_feature():
    """Every feature translates on its own too, so a failure names its feature."""
    failed = {}
    for f in CATALOGUE:
        if f.source == "derived":
            continue  # they name other features; the full query covers them
        try:
            to_spark_sql(compile_query([f]))
        except SparkTranslationError as err:
            failed[f.name] = str(err)
    assert not failed, failed

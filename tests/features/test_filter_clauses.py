"""FILTER clauses lowered to CASE: the text it writes, and the same values as DuckDB's FILTER."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from creditmodel.features.build import compile_query
from creditmodel.features.catalogue import CATALOGUE
from creditmodel.features.filter_clauses import NULL_SKIPPING, lower_filters


@pytest.mark.parametrize(("sql", "expected"), [
    ("sum(s.amount) FILTER (WHERE s.direction = 'in')", "sum(CASE WHEN s.direction = 'in' THEN s.amount END)"),
    ("count(*) FILTER (WHERE c.ts >= a.d - INTERVAL 90 DAY)", "count(CASE WHEN c.ts >= a.d - INTERVAL 90 DAY THEN 1 END)"),
    ("count(DISTINCT s.x) filter (where s.z > 1)", "count(DISTINCT CASE WHEN s.z > 1 THEN s.x END)"),
    ("CASE WHEN max(s.d) FILTER (WHERE NOT s.ok AND (s.w)) = max(s.d) FILTER (WHERE (s.w)) THEN 1 END",
     "CASE WHEN max(CASE WHEN NOT s.ok AND (s.w) THEN s.d END) = max(CASE WHEN (s.w) THEN s.d END) THEN 1 END"),
    ("date_diff('day', CAST(max(s.ts) FILTER (WHERE s.tag = ')(') AS DATE), a.d)",
     "date_diff('day', CAST(max(CASE WHEN s.tag = ')(' THEN s.ts END) AS DATE), a.d)"),
    ("sum(s.amount) / nullif(sum(s.amount) FILTER (WHERE s.in), 0)",
     "sum(s.amount) / nullif(sum(CASE WHEN s.in THEN s.amount END), 0)"),
])
def test_lowered_text(sql: str, expected: str) -> None:
    assert lower_filters(sql) == expected


def test_aggregates_that_count_nulls_keep_their_filter() -> None:
    for sql in ("arg_max(s.x, s.y) FILTER (WHERE s.z)", "list(s.x) FILTER (WHERE s.z)", "sum(s.amount)"):
        assert lower_filters(sql) == sql


def test_unbalanced_text_is_refused() -> None:
    with pytest.raises(ValueError, match="unbalanced"):
        lower_filters("sum(s.x) FILTER (WHERE (s.z)")


def test_the_compiled_catalogue_has_no_filter_left() -> None:
    assert "FILTER" not in compile_query(CATALOGUE).upper()


def test_same_values_as_duckdb_filter() -> None:
    """Every null-skipping aggregate, lowered, equals DuckDB's own FILTER bit for bit, nulls and empty
    groups included."""
    rng = np.random.default_rng(3)
    n = 4000
    x = rng.lognormal(8, 2, n)
    x[rng.random(n) < 0.1] = np.nan
    con = duckdb.connect()
    con.execute("CREATE TABLE s AS SELECT * FROM (SELECT unnest($g) AS g, unnest($x) AS x, unnest($c) AS c)",
                {"g": rng.integers(0, 300, n).tolist(), "x": [None if np.isnan(v) else float(v) for v in x],
                 "c": [None if r < 0.05 else bool(r < 0.4) for r in rng.random(n)]})
    aggs = [f"{a}(s.x) FILTER (WHERE s.c AND s.x > 2000)" for a in sorted(NULL_SKIPPING)]
    aggs += ["count(*) FILTER (WHERE s.c)", "count(DISTINCT s.x) FILTER (WHERE NOT s.c)"]
    for agg in aggs:
        lowered = lower_filters(agg)
        assert "FILTER" not in lowered
        old = con.execute(f"SELECT g, {agg} FROM s GROUP BY g ORDER BY g").fetchall()
        new = con.execute(f"SELECT g, {lowered} FROM s GROUP BY g ORDER BY g").fetchall()
        assert old == new, agg
        assert any(v is None for _, v in old) or agg.startswith("count"), agg  # empty selections were covered


def test_transaction_blocks_share_one_join_with_the_same_values(small_world) -> None:
    """The catalogue's transaction blocks read one shared join (``txn_year``); each block compiled alone
    (its own join, no CTE) gives the same values (to 1e-12: a sum may add the same rows in another order)."""
    from creditmodel.features.build import _TXN_SOURCES, build_features

    txn = [f for f in CATALOGUE if f.source in _TXN_SOURCES]
    assert compile_query(txn).startswith("WITH txn_year AS")
    shared = build_features(small_world.tables, features=txn).set_index("loan_id")
    for source in _TXN_SOURCES:
        alone = [f for f in txn if f.source == source]
        assert not compile_query(alone).startswith("WITH")
        own = build_features(small_world.tables, features=alone).set_index("loan_id")
        pd.testing.assert_frame_equal(shared[own.columns], own, check_exact=False, rtol=1e-12, atol=0)


def test_a_plain_transaction_feature_beyond_a_year_keeps_its_own_join() -> None:
    from dataclasses import replace

    from creditmodel.features.build import _TXN_SOURCES

    txn = [f for f in CATALOGUE if f.source in _TXN_SOURCES]
    long = replace(next(f for f in txn if f.source == "transactions"), name="txn_inflow_24m", window_days=730,
                   sql="sum(s.amount) FILTER (WHERE s.direction = 'in' AND s.ts >= a.decision_date - INTERVAL 730 DAY)")
    query = compile_query([*txn, long])
    assert not query.startswith("WITH") and "INTERVAL 730 DAY THEN s.amount" in query


def test_a_catalogue_compiled_by_the_previous_version_is_refused_in_one_line() -> None:
    from creditmodel.features.online import catalogue_document, catalogue_from_document

    doc = {**catalogue_document(CATALOGUE[:20]), "version": 1}
    with pytest.raises(ValueError, match=r"version '1', expected 'creditmodel-feature-catalogue' version 2 "
                                         r"\(export the bundle again\)"):
        catalogue_from_document(doc)

"""The data contracts as counts in DuckDB SQL: the fast gate of ``data map`` on millions of rows.

``row_guard`` and ``key_violations`` express in SQL the rules that ``contracts.py`` builds from
the same declarations (``schema.py`` and the data dictionary): every column present with its
kind's type, no nulls (or NaN) where the column is not nullable, the vocabularies, the valid
domains, dates within the range pandas can hold and not after the extraction date (per row), key
uniqueness and foreign keys (per table). They only detect; a table set with any violation goes
through ``contracts.validate_tables``, which names every failure in the contracts' own words. The gate is
at least as strict as the contracts (a test plants each kind of fault and checks both agree), so
data it passes is data the contracts pass.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from creditmodel.data import schema
from creditmodel.data.dictionary import DataDictionary, default_dictionary
from creditmodel.data.mapping_sql import KIND_TYPES, ident, literal

__all__ = ["row_guard", "key_violations", "parquet_table_violations", "tables"]

# the datetime64[ns] range the contracts' frames can hold
_FIRST, _LAST = "TIMESTAMP '1677-09-22'", "TIMESTAMP '2262-04-11'"


def tables(dictionary: DataDictionary | None) -> dict[str, schema.Table]:
    if dictionary is None or dictionary is default_dictionary():
        return schema.TABLES
    return schema.resolve_tables(dictionary)


def _cutoff(extraction_date: Any) -> dt.datetime | None:
    """The extraction date as a datetime (pandas only for a value that is not a date already)."""
    if extraction_date is None:
        return None
    if isinstance(extraction_date, dt.datetime):
        return extraction_date.to_pydatetime() if hasattr(extraction_date, "to_pydatetime") else extraction_date
    if isinstance(extraction_date, dt.date):
        return dt.datetime(extraction_date.year, extraction_date.month, extraction_date.day)
    import pandas as pd

    return pd.Timestamp(extraction_date).to_pydatetime()


def _bound(col: schema.Column, value: Any) -> str:
    """A bound as a literal of the column's own type (no cast of every value to compare)."""
    if col.kind == "int" and float(value).is_integer() and abs(float(value)) < 2**62:
        return str(int(float(value)))
    return repr(float(value))


def _rules(col: schema.Column, cutoff: Any, known: frozenset[Any] | None = None) -> list[str]:
    c = ident(col.name)
    rules = []
    if not col.nullable:
        rules.append(f"{c} IS NULL" + (f" OR isnan({c})" if col.kind == "float" else ""))
    if col.categories is not None and not (known is not None and known <= set(col.categories)):
        rules.append(f"{c} NOT IN ({', '.join(literal(v) for v in col.categories)})")
    if col.min_value is not None:
        rules.append(f"{c} < {_bound(col, col.min_value)}" if col.kind in ("int", "float") else "FALSE")
    if col.max_value is not None:
        rules.append(f"{c} > {_bound(col, col.max_value)}" if col.kind in ("int", "float") else "FALSE")
    if col.kind in ("date", "timestamp"):
        rules.append(f"{c} < {_FIRST} OR {c} > {_LAST}")
        if cutoff is not None:
            whole_day = cutoff.time() == dt.time(0)
            limit = (cutoff + dt.timedelta(days=1)) if whole_day else cutoff
            rules.append(f"{c} {'>=' if whole_day else '>'} {literal(limit)}")
    return rules


def row_guard(t: schema.Table, types: dict[str, str], extraction_date: Any = None,
              known: dict[str, frozenset[Any]] | None = None) -> str | None:
    """A condition true for a row that breaks one of ``t``'s row rules (kinds, nulls, vocabularies,
    domains, dates), over columns of the given DuckDB types; None when a column is absent or not of
    its kind (the contracts must say which). ``known``: the only values some columns can hold
    besides null (a value map's targets); a vocabulary holding them all is not checked per row."""
    cutoff = _cutoff(extraction_date)
    rules = []
    for col in t.columns:
        if str(types.get(col.name, "")).upper() != KIND_TYPES[col.kind]:
            return None
        rules += [f"({rule})" for rule in _rules(col, cutoff, (known or {}).get(col.name))]
    return " OR ".join(rules) or "FALSE"


def key_violations(con: Any, queries: dict[str, str], dictionary: DataDictionary | None = None) -> int:
    """Rows breaking a key or a foreign key, plus one per missing required table, unknown table or
    empty table. ``queries``: name -> SQL query over ``con`` giving the table."""
    specs = tables(dictionary)
    count = sum(1 for name in schema.REQUIRED_TABLES if name not in queries)
    count += sum(1 for name in queries if name not in specs)
    for name, query in queries.items():
        if name not in specs:
            continue
        count += con.execute(f"SELECT count(*) = 0 FROM ({query})").fetchall()[0][0]
        count += _key_violations(con, specs[name], query, queries)
    return int(count)


def _key_violations(con: Any, t: schema.Table, query: str, parents: dict[str, str]) -> int:
    """Rows of ``query`` (table ``t``) sharing a key, plus rows whose foreign key is not in its parent's
    query (``parents``: name -> SQL; a parent not given is not checked)."""
    count = 0
    if t.key:
        keys = ", ".join(ident(k) for k in t.key)
        count += con.execute(f"SELECT count(*) FROM (SELECT {keys} FROM ({query}) GROUP BY ALL "
                             f"HAVING count(*) > 1)").fetchall()[0][0]
    for column, target in t.foreign_keys.items():
        parent, parent_column = target.split(".")
        if parent not in parents:
            continue
        count += con.execute(f"SELECT count(*) FROM ({query}) AS child ANTI JOIN ({parents[parent]}) AS parent "
                             f"ON child.{ident(column)} = parent.{ident(parent_column)} "
                             f"WHERE child.{ident(column)} IS NOT NULL").fetchall()[0][0]
    return int(count)


def parquet_table_violations(table: Any, parents: dict[str, Any], dictionary: DataDictionary | None = None,
                             extraction_date: Any = None) -> int:
    """Rows of a table left in its parquet files (a :class:`~creditmodel.data.parquet_table.ParquetTable`)
    that break its row rules, its key or a foreign key into ``parents`` (validated frames, by table
    name), counted in DuckDB without holding the table; 1 when a column is missing or will not take its
    kind's type. Zero means the contracts would pass the table."""
    import duckdb

    t = tables(dictionary)[table.name]
    names = ", ".join(f"CAST({ident(c.name)} AS {KIND_TYPES[c.kind]}) AS {ident(c.name)}" for c in t.columns)
    query = f"SELECT {names} FROM {table.source()}"
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        try:
            types = {r[0]: str(r[1]) for r in con.execute(f"DESCRIBE {query}").fetchall()}
            guard = row_guard(t, types, extraction_date)
            if guard is None:
                return 1
            count = con.execute(f"SELECT count(*) FROM ({query}) WHERE {guard}").fetchall()[0][0]
            given = {}
            for name, frame in parents.items():
                if frame is not None:
                    con.register(f"parent_{name}", frame)
                    given[name] = f"SELECT * FROM parent_{name}"
            count += _key_violations(con, t, query, given)
        except duckdb.Error:  # a value that will not take its column's type
            return 1
    return int(count)

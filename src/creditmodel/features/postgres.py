"""The feature catalogue's DuckDB SQL written out as PostgreSQL SQL with DuckDB's meaning.

As ``features.spark`` does for Spark: the catalogue is compiled once, for DuckDB
(``build.compile_query``); sqlglot parses that query and writes it for PostgreSQL, and where the two
engines give the same SQL a different meaning ``to_postgres_sql`` rewrites the expression so that
PostgreSQL computes what DuckDB computes:

* ``a / b`` is always a floating-point division in DuckDB; PostgreSQL divides integers as integers
  (``count(*) / count(*)`` would be 0 or 1). The dividend is cast to DOUBLE PRECISION.
* ``date_diff(unit, a, b)`` counts unit *boundaries* crossed in DuckDB: days become a difference of
  dates, weeks that divided by 7 (truncated), months/quarters/years a difference of calendar fields,
  hours/minutes/seconds a difference of truncated timestamps.
* Decimal literals (``365.25``) are NUMERIC in PostgreSQL, so arithmetic on them is decimal and
  its rounding differs from DuckDB's doubles; they are cast to DOUBLE PRECISION.
* ``arg_max``/``max_by`` (and the ``min`` forms) have no PostgreSQL aggregate: the first element of an
  ``array_agg`` ordered by the key, over rows whose value and key are not NULL (as DuckDB skips them).

The rest is sqlglot's own translation (``INTERVAL '30 DAY'``, ``EXTRACT(YEAR FROM d)``, ``POWER``,
``FILTER``, ``percentile_cont ... WITHIN GROUP``, explicit ``NULLS LAST`` where DuckDB's default null
ordering differs). PostgreSQL's ``log(x)`` is base 10 like DuckDB's. Parameters (``$d`` in DuckDB)
become psycopg's ``%(d)s``. Anything without a faithful translation raises ``PostgresTranslationError``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from creditmodel.exceptions import CreditModelError
from creditmodel.features.build import compile_query
from creditmodel.features.catalogue import CATALOGUE, Feature
from creditmodel.features.transpile import date_unit, rewrite_bottom_up

__all__ = ["PostgresTranslationError", "to_postgres_sql", "postgres_query"]


class PostgresTranslationError(CreditModelError):
    """A DuckDB feature expression has no faithful PostgreSQL translation."""


_SECONDS = {"HOUR": 3600, "MINUTE": 60, "SECOND": 1}
_FIELDS = {"MONTH": 12, "QUARTER": 4}



def _cast(e: exp.Expression, to: str) -> exp.Expression:
    return exp.Cast(this=e.copy(), to=exp.DataType.build(to, dialect="postgres"))


def _extract(field: str, e: exp.Expression) -> exp.Expression:
    return exp.Extract(this=exp.var(field), expression=e.copy())


def _where(node: exp.Expression) -> str:
    return node.sql("duckdb")[:160]


def _boundary_diff(unit: str, start: exp.Expression, end: exp.Expression, node: exp.Expression) -> exp.Expression:
    """DuckDB date_diff(unit, start, end): the number of unit boundaries between start and end, as BIGINT."""
    days = exp.Paren(this=exp.Sub(this=_cast(end, "DATE"), expression=_cast(start, "DATE")))
    if unit == "DAY":
        return _cast(days, "BIGINT")
    if unit == "WEEK":  # whole weeks of calendar days, truncated toward zero (integer division)
        return _cast(exp.Paren(this=exp.Div(this=days, expression=exp.Literal.number(7), typed=True)), "BIGINT")
    years = exp.Paren(this=exp.Sub(this=_extract("YEAR", end), expression=_extract("YEAR", start)))
    if unit == "YEAR":
        return _cast(years, "BIGINT")
    if unit in _FIELDS:
        field = exp.Paren(this=exp.Sub(this=_extract(unit, end), expression=_extract(unit, start)))
        total = exp.Add(this=exp.Mul(this=years, expression=exp.Literal.number(_FIELDS[unit])), expression=field)
        return _cast(exp.Paren(this=total), "BIGINT")
    if unit in _SECONDS:
        trunc = [exp.Anonymous(this="DATE_TRUNC", expressions=[exp.Literal.string(unit.lower()),
                                                              _cast(e, "TIMESTAMP")]) for e in (start, end)]
        epoch = _extract("EPOCH", exp.Paren(this=exp.Sub(this=trunc[1], expression=trunc[0])))
        return _cast(exp.Paren(this=exp.Div(this=epoch, expression=exp.Literal.number(_SECONDS[unit]), typed=True)),
                     "BIGINT")
    raise PostgresTranslationError.of("error.postgres.date_diff_unit", where=_where(node), unit_name=unit)


def _first_by(value: exp.Expression, key: exp.Expression, descending: bool) -> exp.Expression:
    """(array_agg(value ORDER BY key) FILTER (WHERE value and key are not NULL))[1]."""
    order = exp.Order(expressions=[exp.Ordered(this=key.copy(), desc=descending, nulls_first=False)])
    agg = exp.ArrayAgg(this=exp.Order(this=value.copy(), expressions=order.expressions))
    cond = exp.and_(exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())),
                    exp.Not(this=exp.Is(this=key.copy(), expression=exp.Null())))
    filtered = exp.Filter(this=agg, expression=exp.Where(this=cond))
    return exp.Bracket(this=exp.Paren(this=filtered), expressions=[exp.Literal.number(1)], offset=1)


def _rewrite(node: exp.Expr) -> exp.Expr:
    """PostgreSQL SQL with DuckDB's meaning for one node (its children are already rewritten)."""
    if isinstance(node, exp.DateDiff):
        return _boundary_diff(date_unit(node.args.get("unit")), node.expression, node.this, node)
    if isinstance(node, exp.Div) and not node.args.get("typed"):  # DuckDB's `/` divides in DOUBLE
        return exp.Div(this=_cast(node.this, "DOUBLE PRECISION"), expression=node.expression.copy(), typed=True)
    if isinstance(node, (exp.ArgMax, exp.ArgMin)):
        if node.args.get("count") is not None:
            raise PostgresTranslationError.of("error.postgres.top_n", where=_where(node))
        if isinstance(node.parent, exp.Filter):
            raise PostgresTranslationError.of("error.postgres.arg_max_filter", where=_where(node))
        return _first_by(node.this, node.expression, isinstance(node, exp.ArgMax))
    if isinstance(node, exp.Literal) and node.is_number and not node.is_int:
        return _cast(node, "DOUBLE PRECISION")
    return node


def to_postgres_sql(duckdb_sql: str, *, pretty: bool = False) -> str:
    """Translate one DuckDB query (parameters ``$name`` allowed) into PostgreSQL SQL with the same results;
    parameters come out as psycopg's ``%(name)s``."""
    try:
        tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
    except sqlglot.errors.ParseError as err:
        raise PostgresTranslationError.of("error.postgres.parse", detail=str(err).splitlines()[0]) from err
    tree = rewrite_bottom_up(tree, _rewrite)
    try:
        return tree.sql(dialect="postgres", pretty=pretty, unsupported_level=ErrorLevel.RAISE)
    except sqlglot.errors.UnsupportedError as err:
        raise PostgresTranslationError.of("error.postgres.unsupported", detail=str(err).splitlines()[0]) from err


def postgres_query(features: Sequence[Feature] = CATALOGUE, *, pretty: bool = True) -> str:
    """The PostgreSQL SQL that computes `features` for every row of the `apps` relation (for review)."""
    return to_postgres_sql(compile_query(features), pretty=pretty)

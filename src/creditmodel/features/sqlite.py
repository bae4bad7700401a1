"""The feature catalogue's DuckDB SQL written out as SQLite SQL with DuckDB's meaning, for one borrower.

Why: DuckDB sets up every operator of a plan for 2,048-row vectors before the first row arrives, and
the catalogue's plan has some 260 of them; over the few hundred rows of one borrower that set-up is
most of an application's time. SQLite, in the Python standard library, runs a prepared statement
row by row with next to no set-up. ``OnlineFeatures`` copies the borrower's rows out of the DuckDB
store into an in-memory SQLite database and runs the catalogue's query there, translated by this
module; features equal the DuckDB ones to 1e-12 (the parity tests check each feature).

As ``features.postgres`` does for PostgreSQL: sqlglot parses the compiled DuckDB query and writes it
for SQLite, and where the two engines give the same SQL a different meaning ``to_sqlite_sql``
rewrites the expression so that SQLite computes what DuckDB computes:

* SQLite has no date types. Dates and timestamps are integer microseconds since 1970-01-01 (a date
  is its midnight), exact for every value DuckDB's TIMESTAMP holds; ``INTERVAL 'n' DAY`` (and
  hours, minutes, seconds, weeks) is that many microseconds; ``CAST(x AS DATE)`` floors to the day;
  ``date_diff`` counts unit boundaries as DuckDB does; ``year(x)`` reads the calendar.
* ``a / b`` divides in floating point (SQLite divides integers as integers); a divisor that may be 0
  goes through ``creditmodel_div``, which gives DuckDB's infinities where SQLite would give NULL.
* ``CAST(double AS INTEGER)`` rounds half to even in DuckDB and truncates in SQLite:
  ``creditmodel_int`` rounds as DuckDB does (comparisons, booleans and floors need no rounding;
  a constant such as ``CAST(2.5 AS INT)`` is DECIMAL in DuckDB, rounded otherwise, and is refused).
* ``stddev_samp`` is not in SQLite: an aggregate with DuckDB's algorithm (Welford's updates).
* ``greatest``/``least`` skip NULLs as DuckDB's do (SQLite's ``max(a, b)`` is NULL if either is).
* ``power``, ``sqrt``, ``floor``, ``ceil``, ``ln``, ``log`` (base 10, as DuckDB's) and ``exp`` come
  from Python's ``math``: SQLite has its own only when the library was built with them.
* A cast to text is kept only for a parameter or a column that holds text or integers in every table
  (``text_columns``): a date would read as its microseconds, a boolean as 1.

Parameters (``$d`` in DuckDB) become SQLite's ``:d``. Only the constructs listed in ``_SAFE`` (and
the rewrites above) are translated; anything else raises ``SqliteTranslationError`` and
``OnlineFeatures`` runs that catalogue on DuckDB instead, so a bank's own feature in any DuckDB SQL
keeps working, at DuckDB's speed.
"""

from __future__ import annotations

import functools
import math
import sqlite3
from datetime import date, datetime
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from creditmodel.features.transpile import date_unit, rewrite_bottom_up

__all__ = ["DAY_US", "INTEGER_TYPES", "SqliteTranslationError", "column_type", "connect", "micros", "supported_type",
           "to_sqlite_sql"]

DAY_US = 86_400_000_000  # microseconds in a day
_UNIT_US = {"WEEK": 7 * DAY_US, "DAY": DAY_US, "HOUR": 3_600_000_000, "MINUTE": 60_000_000, "SECOND": 1_000_000}
_EPOCH = date(1970, 1, 1)

# the expression nodes whose SQLite meaning is DuckDB's (with the rewrites of _rewrite); any other
# node makes the catalogue run on DuckDB
_SAFE: tuple[type[exp.Expression], ...] = (
    exp.Select, exp.With, exp.CTE, exp.TableAlias, exp.Subquery, exp.From, exp.Join, exp.Where, exp.Group,
    exp.Order, exp.Ordered, exp.Having, exp.Table, exp.Column, exp.Identifier, exp.Alias, exp.Star, exp.Paren,
    exp.Literal, exp.Null, exp.Boolean, exp.Placeholder, exp.DataType, exp.Union, exp.Distinct,
    exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In, exp.Between,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Neg, exp.Case, exp.If, exp.Coalesce, exp.Nullif, exp.Cast,
    exp.Sum, exp.Count, exp.Max, exp.Min, exp.Avg, exp.StddevSamp, exp.Window, exp.RowNumber, exp.Lag,
    exp.Greatest, exp.Least, exp.Abs, exp.Floor, exp.Ceil, exp.Sqrt, exp.Pow, exp.Ln, exp.Exp, exp.Log,
    exp.Year, exp.DateDiff, exp.Interval, exp.Var,
)
_INT_TYPES = exp.DataType.INTEGER_TYPES
_INT_BITS = {exp.DataType.Type.TINYINT: 8, exp.DataType.Type.SMALLINT: 16, exp.DataType.Type.INT: 32,
             exp.DataType.Type.BIGINT: 64}  # the signed integers a rounded cast is translated for
_REAL_TYPES = {exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT}
_DATE_TYPES = {exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.DATETIME}
_TEXT_TYPES = {exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT}


class SqliteTranslationError(ValueError):
    """A DuckDB feature expression has no faithful SQLite translation. Not a boundary error: the catalogue then
    runs on DuckDB, or the StoreError of ``OnlineFeatures(engine="sqlite")`` quotes it as its detail."""


def _refuse(node: exp.Expression, why: str) -> SqliteTranslationError:
    return SqliteTranslationError(f"no SQLite translation of {node.sql('duckdb')[:120]!r}: {why}")


def micros(value: date | datetime) -> int:
    """A date or (naive) timestamp as integer microseconds since 1970-01-01, as the SQLite tables hold it."""
    if isinstance(value, datetime):
        days = (value.date() - _EPOCH).days
        return days * DAY_US + ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond
    return (value - _EPOCH).days * DAY_US


def _fn(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=[a.copy() for a in args])


def _num(n: int) -> exp.Expression:
    return exp.Literal.number(n)


def _floor_to(e: exp.Expression, unit_us: int) -> exp.Expression:
    """e floored to a multiple of unit_us, for either sign: e - ((e % u) + u) % u."""
    u = _num(unit_us)
    mod = exp.Mod(this=exp.Paren(this=exp.Add(this=exp.Paren(this=exp.Mod(this=e.copy(), expression=u)),
                                              expression=u.copy())), expression=u.copy())
    return exp.Paren(this=exp.Sub(this=e.copy(), expression=mod))


def _calendar(fmt: str, e: exp.Expression) -> exp.Expression:
    """A calendar field (strftime's %Y, %m) of a micros value, as an integer."""
    seconds = exp.Div(this=_floor_to(e, 1_000_000), expression=_num(1_000_000), typed=True)
    text = _fn("strftime", exp.Literal.string(fmt), seconds, exp.Literal.string("unixepoch"))
    return exp.Cast(this=text, to=exp.DataType.build("INTEGER"))



def _date_diff(node: exp.DateDiff) -> exp.Expression:
    """DuckDB date_diff(unit, start, end): the number of unit boundaries between start and end."""
    unit, start, end = date_unit(node.args.get("unit")), node.expression, node.this
    if unit in ("DAY", "HOUR", "MINUTE", "SECOND"):
        span = exp.Sub(this=_floor_to(end, _UNIT_US[unit]), expression=_floor_to(start, _UNIT_US[unit]))
        return exp.Paren(this=exp.Div(this=exp.Paren(this=span), expression=_num(_UNIT_US[unit]), typed=True))
    if unit == "WEEK":  # whole weeks of calendar days, truncated toward zero (SQLite's integer division)
        days = exp.Sub(this=_floor_to(end, DAY_US), expression=_floor_to(start, DAY_US))
        return exp.Paren(this=exp.Div(this=exp.Paren(this=days), expression=_num(_UNIT_US["WEEK"]), typed=True))
    years = exp.Paren(this=exp.Sub(this=_calendar("%Y", end), expression=_calendar("%Y", start)))
    if unit == "YEAR":
        return years
    if unit in ("MONTH", "QUARTER"):
        months = exp.Sub(this=_calendar("%m", end), expression=_calendar("%m", start))
        if unit == "MONTH":
            return exp.Paren(this=exp.Add(this=exp.Mul(this=years, expression=_num(12)),
                                          expression=exp.Paren(this=months)))
        quarters = [exp.Paren(this=exp.Div(this=exp.Paren(this=exp.Sub(this=_calendar("%m", e), expression=_num(1))),
                                           expression=_num(3), typed=True)) for e in (end, start)]
        return exp.Paren(this=exp.Add(this=exp.Mul(this=years, expression=_num(4)),
                                      expression=exp.Paren(this=exp.Sub(this=quarters[0], expression=quarters[1]))))
    raise _refuse(node, f"date_diff unit {unit}")


def _interval(node: exp.Interval) -> exp.Expression:
    unit = date_unit(node.args.get("unit"))
    value = node.this
    if unit not in _UNIT_US or not (isinstance(value, exp.Literal)):
        raise _refuse(node, "an interval other than a whole number of weeks, days, hours, minutes or seconds")
    text = value.name.strip()
    if not text.lstrip("-").isdigit():
        raise _refuse(node, "an interval of a fractional number of units")
    return _num(int(text) * _UNIT_US[unit])


def _exact_integer(e: exp.Expression) -> bool:
    """Whether an expression's value is already whole (a cast to INTEGER needs no rounding)."""
    while isinstance(e, exp.Paren):
        e = e.this
    if isinstance(e, exp.Anonymous):  # a rewrite of this module's, already translated
        return e.name in ("creditmodel_floor", "creditmodel_ceil", "creditmodel_int")
    return isinstance(e, (exp.Predicate, exp.Not, exp.And, exp.Or, exp.Floor, exp.Ceil, exp.Count, exp.Placeholder,
                          exp.Boolean)) or (isinstance(e, exp.Literal) and e.is_int)


def _divisor_nonzero(e: exp.Expression) -> bool:
    while isinstance(e, exp.Paren):
        e = e.this
    if isinstance(e, exp.Nullif):  # NULLIF(x, 0): never 0
        zero = e.expression
        return isinstance(zero, exp.Literal) and zero.is_number and float(zero.name) == 0
    return isinstance(e, exp.Literal) and e.is_number and float(e.name) != 0


def _rewrite(node: exp.Expr, text_columns: frozenset[str] = frozenset()) -> exp.Expr:
    """SQLite SQL with DuckDB's meaning for one node (its children are already rewritten)."""
    if not isinstance(node, _SAFE) and not (isinstance(node, exp.Anonymous) and node.name.startswith("creditmodel_")):
        raise _refuse(node, f"{type(node).__name__} is not among the constructs translated")
    if isinstance(node, exp.Interval):
        return _interval(node)
    if isinstance(node, exp.DateDiff):
        return _date_diff(node)
    if isinstance(node, exp.Year):
        return _calendar("%Y", node.this)
    if isinstance(node, exp.Div) and not node.args.get("typed"):
        if _divisor_nonzero(node.expression):
            real = exp.Cast(this=node.this.copy(), to=exp.DataType.build("DOUBLE"))
            return exp.Div(this=real, expression=node.expression.copy(), typed=True)
        return _fn("creditmodel_div", node.this, node.expression)
    if isinstance(node, exp.StddevSamp):
        return _fn("creditmodel_stddev_samp", node.this)
    if isinstance(node, exp.If) and not isinstance(node.parent, exp.Case):  # IF(c, a, b); a CASE's WHENs stay
        false = node.args.get("false")
        return exp.Case(ifs=[exp.If(this=node.this.copy(), true=node.args["true"].copy())],
                        default=false.copy() if false is not None else None)
    if isinstance(node, exp.Log) and node.args.get("expression") is None:  # DuckDB log(x) is log10
        return _fn("creditmodel_log10", node.this)
    if isinstance(node, exp.Ln):
        return _fn("creditmodel_ln", node.this)
    if isinstance(node, (exp.Pow, exp.Sqrt, exp.Exp, exp.Floor, exp.Ceil)):
        if isinstance(node, exp.Floor | exp.Ceil) and node.args.get("decimals") is not None:
            raise _refuse(node, "floor/ceil to decimals")
        name = {exp.Pow: "creditmodel_pow", exp.Sqrt: "creditmodel_sqrt", exp.Exp: "creditmodel_exp",
                exp.Floor: "creditmodel_floor", exp.Ceil: "creditmodel_ceil"}[type(node)]
        return _fn(name, node.this, *([node.expression] if isinstance(node, exp.Pow) else []))
    if isinstance(node, (exp.Greatest, exp.Least)):
        args = [node.this, *node.expressions]
        return _fn("creditmodel_greatest" if isinstance(node, exp.Greatest) else "creditmodel_least", *args)
    if isinstance(node, exp.Cast):
        to = node.to.this
        if to in _DATE_TYPES:
            if isinstance(node.this, exp.Literal) and node.this.is_string:
                try:
                    value = datetime.fromisoformat(node.this.name)
                except ValueError:
                    raise _refuse(node, "a date literal that is not ISO 8601") from None
                return _num(micros(value.date() if to == exp.DataType.Type.DATE else value))
            return _floor_to(node.this, DAY_US) if to == exp.DataType.Type.DATE else node.this.copy()
        if to in _REAL_TYPES:
            return exp.Cast(this=node.this.copy(), to=exp.DataType.build("DOUBLE"))
        if to in _INT_TYPES:
            if _exact_integer(node.this):
                return exp.Cast(this=node.this.copy(), to=exp.DataType.build("BIGINT"))
            if not node.this.find(exp.Column, exp.Placeholder, exp.Anonymous):
                raise _refuse(node, "a cast of a constant to an integer (DuckDB rounds its DECIMAL otherwise)")
            bits = _INT_BITS.get(to)
            if bits is None:
                raise _refuse(node, f"a cast to {node.to.sql('duckdb')}")
            return _fn("creditmodel_int", node.this, _num(bits))
        if to == exp.DataType.Type.BOOLEAN and _exact_integer(node.this):  # booleans are SQLite's 0 and 1
            return exp.Cast(this=node.this.copy(), to=exp.DataType.build("BIGINT"))
        if to in _TEXT_TYPES and (isinstance(node.this, exp.Placeholder)  # an application's text field
                                  or isinstance(node.this, exp.Column) and node.this.name in text_columns):
            return node
        if to in _TEXT_TYPES:  # a date would come out as its microseconds, a boolean as 1
            raise _refuse(node, "a cast to text of anything but a parameter or a column of text or integers")
        raise _refuse(node, f"a cast to {node.to.sql('duckdb')}")
    return node


@functools.lru_cache(maxsize=8)  # each worker of a service, each store opened over one catalogue
def to_sqlite_sql(duckdb_sql: str, text_columns: frozenset[str] = frozenset()) -> str:
    """Translate one DuckDB query (parameters ``$name`` allowed) into SQLite SQL with the same results on
    tables whose dates and timestamps are microseconds (``micros``); parameters come out as ``:name``.

    text_columns: the names of columns that hold text or integers wherever they occur, whose cast to text
    reads the same on both engines (any other cast to text is refused: a date would come out as its
    microseconds, a boolean as 1)."""
    try:
        tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
    except sqlglot.errors.ParseError as err:
        raise SqliteTranslationError(f"the query does not parse: {str(err).splitlines()[0]}") from err
    tree = rewrite_bottom_up(tree, lambda node: _rewrite(node, text_columns))
    try:
        return tree.sql(dialect="sqlite", unsupported_level=ErrorLevel.RAISE)
    except sqlglot.errors.UnsupportedError as err:
        raise SqliteTranslationError(str(err).splitlines()[0]) from err


# --- the functions the translation calls -------------------------------------------------------------


def _div(a: float | None, b: float | None) -> float | None:
    """DuckDB's a / b in DOUBLE: x/0 is +-inf, 0/0 NaN (which SQLite stores as NULL)."""
    if a is None or b is None:
        return None
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1.0, b)
    return float(a) / b


def _int(x: float | int | None, bits: int = 64) -> int | None:
    """DuckDB's CAST(double AS BIGINT) (INTEGER: bits=32, ...): rounded half to even; out of range fails."""
    if x is None:
        return None
    if not isinstance(x, int):
        if not math.isfinite(x):
            raise ValueError(f"cannot cast {x} to an integer")
        x = round(x)  # half to even, as DuckDB rounds a DOUBLE
    if not -(2 ** (bits - 1)) <= x < 2 ** (bits - 1):
        raise ValueError(f"{x} is out of range for a {bits}-bit integer")
    return x


def _null_skipping(pick: Any) -> Any:
    def f(*xs: Any) -> Any:
        present = [x for x in xs if x is not None]
        return pick(present) if present else None
    return f


def _math(fn: Any) -> Any:
    def f(*xs: Any) -> Any:
        if any(x is None for x in xs):
            return None
        if fn in (math.floor, math.ceil) and not math.isfinite(xs[0]):
            return float(xs[0])
        try:
            return float(fn(*xs))
        except (ValueError, OverflowError):
            return math.nan
    return f


class _StddevSamp:
    """DuckDB's stddev_samp: Welford's running mean and sum of squares, NULLs skipped, NULL below two rows."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def step(self, x: float | None) -> None:
        if x is None:
            return
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def finalize(self) -> float | None:
        if self.n <= 1:
            return None
        return math.sqrt(self.m2 / (self.n - 1))


def connect() -> sqlite3.Connection:
    """An in-memory SQLite database with the functions ``to_sqlite_sql`` translates to."""
    con = sqlite3.connect(":memory:")
    det = {"deterministic": True}
    con.create_function("creditmodel_div", 2, _div, **det)
    con.create_function("creditmodel_int", 2, _int, **det)
    con.create_function("creditmodel_greatest", -1, _null_skipping(max), **det)
    con.create_function("creditmodel_least", -1, _null_skipping(min), **det)
    con.create_function("creditmodel_pow", 2, _math(math.pow), **det)
    con.create_function("creditmodel_sqrt", 1, _math(math.sqrt), **det)
    con.create_function("creditmodel_exp", 1, _math(math.exp), **det)
    con.create_function("creditmodel_floor", 1, _math(math.floor), **det)
    con.create_function("creditmodel_ceil", 1, _math(math.ceil), **det)
    con.create_function("creditmodel_ln", 1, _math(math.log), **det)
    con.create_function("creditmodel_log10", 1, _math(math.log10), **det)
    con.create_aggregate("creditmodel_stddev_samp", 1, _StddevSamp)
    return con


def column_type(duckdb_type: str) -> str:
    """The SQLite column type that holds a DuckDB column of a store (dates and timestamps as micros)."""
    t = duckdb_type.upper()
    if t in ("DOUBLE", "FLOAT", "REAL"):
        return "REAL"
    if t in ("VARCHAR", "TEXT"):
        return "TEXT"
    return "INTEGER"


INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"})


_SUPPORTED = {*INTEGER_TYPES, "DOUBLE", "VARCHAR", "BOOLEAN", "DATE", "TIMESTAMP", "TIMESTAMP_MS", "TIMESTAMP_S"}


def supported_type(duckdb_type: str) -> bool:
    """Whether a DuckDB column type of a store maps to SQLite without changing a value."""
    return duckdb_type.upper() in _SUPPORTED

"""The conversions of a mapping file as DuckDB SQL: one expression per canonical column.

A column of the mapping (``ColumnMapping``: a value map, a date format with a pivot year, money
strings, an id rule, a factor, a cast to the column's kind) becomes a chain of named SQL steps
over the source relation. The last step is the converted value; some steps are *checks*, boolean
expressions true for a row whose value cannot be converted. ``data map`` evaluates every column
of a table in one parallel DuckDB pass (no loop over rows, no copy through pandas), counts the
failed checks and, only when one failed, looks up the offending source values for the message.

The rules are those of the mapping file's documentation: text is trimmed (also of the
full-width and no-break spaces of spreadsheets) and an empty cell is null; money strings such as
"$1,200.00", "1,200元", "12.5万" or "(1,200)" are validated by one regular expression whose groups
give the number, its sign and its unit; numbers must look like numbers (a cast alone would round
"1.5" to the integer 2 and read "0x10" as 16).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Step", "ColumnSQL", "column_sql", "literal", "ident", "sql_type", "KIND_TYPES", "MONEY_RE"]

# the SQL type of each declared kind, as the converted column holds it
KIND_TYPES = {"int": "BIGINT", "float": "DOUBLE", "str": "VARCHAR", "bool": "BOOLEAN",
              "date": "TIMESTAMP", "timestamp": "TIMESTAMP"}
Type = Literal["text", "int", "float", "bool", "ts", "null", "other"]

_SPACES = " \t\n\r\v\f\u3000\u00a0"  # trimmed from text, also the full-width and no-break spaces
_WS = r"[\s\x{3000}\x{00a0}]*"  # RE2 syntax, as DuckDB's regular expressions
MONEY_RE = (
    rf"^{_WS}(?P<open>[(（])?{_WS}(?P<sign>[-+−])?{_WS}(?:US\$|HK\$|\$|¥|￥|€|£|RMB|CNY|USD|EUR|HKD)?{_WS}"
    rf"(?P<sign2>[-+−])?{_WS}(?P<num>(?:\d{{1,3}}(?:[,，]\d{{3}})+|\d+)(?:\.\d*)?|\.\d+){_WS}"
    rf"(?P<unit>万元|万|亿元|亿|千元|千|[kK]|M|mn)?{_WS}(?:元|圆|块|RMB|CNY|USD|EUR|HKD)?{_WS}(?P<close>[)）])?{_WS}$"
)
# the common shape of an amount ("1,234.56", "1234", "1,234元"): read by a cast, without submatches
_PLAIN_MONEY = r"^(\d{1,3}(,\d{3})+|\d+)(\.\d*)?元?$"
_ONE_RUN = r"^[^0-9\s\x{3000}\x{00a0}]*([0-9]{1,18})[^0-9\s\x{3000}\x{00a0}]*$"
_UNITS = {"万": 1e4, "万元": 1e4, "亿": 1e8, "亿元": 1e8, "千": 1e3, "千元": 1e3, "k": 1e3, "K": 1e3,
          "M": 1e6, "mn": 1e6}
_INT_RE = r"[-+]?\d+(\.0*)?"
_FLOAT_RE = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
_TRUE = ("1", "true", "t", "yes", "y", "是", "真")
_FALSE = ("0", "false", "f", "no", "n", "否", "假")
# dates without a declared format: ISO first (a cast), then these
_DATE_FORMATS = ("%Y/%m/%d", "%Y%m%d", "%Y/%m/%d %H:%M:%S", "%Y%m%d %H:%M:%S", "%Y-%m-%d %H:%M")
MONEY_HINT = r"[,，$¥￥元万]"  # in a failed number: the column probably wants money = true


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL literal of a Python scalar (str, int, float, bool, date, datetime or None)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return f"CAST({value} AS BIGINT)"
    if isinstance(value, float):
        return f"CAST({value!r} AS DOUBLE)"
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.replace(tzinfo=None).isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"TIMESTAMP '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def sql_type(duckdb_type: str) -> Type:
    """The conversion family of a DuckDB column type."""
    t = duckdb_type.upper()
    if t in ("VARCHAR", "BLOB") or t.startswith("VARCHAR") or t == "UUID":
        return "text"
    if t in ("BOOLEAN", "BOOL"):
        return "bool"
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
             "UBIGINT", "UHUGEINT"):
        return "int"
    if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return "float"
    if t.startswith("TIMESTAMP") or t == "DATE":
        return "ts"
    if t == '"NULL"' or t == "NULL":
        return "null"
    return "other"


@dataclass
class Step:
    """One named SQL expression of a column's chain; a check is true where the row fails."""

    name: str
    sql: str
    check: str | None = None  # what the values should have been, e.g. "money amounts (...)"
    of: str | None = None  # the step whose (text) values are shown in a failure message
    map_check: bool = False  # a value map's unmapped codes: counted per code in the message


@dataclass
class ColumnSQL:
    """A column's conversion: its steps, in order, and the name of the step holding the value."""

    steps: list[Step] = field(default_factory=list)
    value: str = ""
    clean_text: bool = False  # the value is text already trimmed (a value map's targets)
    values: frozenset[Any] | None = None  # every value the column can hold besides null, when known
    collisions: str | None = None  # hashed ids: the text step whose distinct count must be kept

    def checks(self) -> list[Step]:
        return [s for s in self.steps if s.check is not None]


class _Chain:
    def __init__(self, prefix: str) -> None:
        self.prefix, self.col = prefix, ColumnSQL()

    def add(self, sql: str, **kw: Any) -> str:
        name = f"{self.prefix}_{len(self.col.steps)}"
        self.col.steps.append(Step(name, sql, **kw))
        return ident(name)


def _raw(x: str, typ: Type) -> str:
    """The text of an expression of any type, untrimmed."""
    if typ == "float":  # a whole number read as a float (e.g. a spreadsheet's 1001.0) is its digits
        return (f"CASE WHEN {x} = floor({x}) AND abs({x}) < 9e18 THEN CAST(CAST({x} AS BIGINT) AS VARCHAR) "
                f"ELSE CAST({x} AS VARCHAR) END")
    return x if typ == "text" else f"CAST({x} AS VARCHAR)"


def _lazy(cheap: str, costly: str) -> str:
    """``cheap AND costly`` with ``costly`` evaluated only where ``cheap`` holds (DuckDB evaluates
    both sides of AND on every row, but a CASE branch only on the rows that reach it)."""
    return f"CASE WHEN {cheap} THEN {costly} ELSE FALSE END"


def _trim(r: str) -> str:
    """Trimmed text (an empty cell is null): slow, so used where a fast path on the raw text failed."""
    return f"nullif(trim({r}, {literal(_SPACES)}), '')"


def _text(x: str, typ: Type) -> str:
    """Trimmed text of an expression of any type; an empty cell is null."""
    r = _raw(x, typ)
    spaces = ", ".join(literal(ch) for ch in _SPACES)
    return (f"CASE WHEN {r} = '' OR {r}[1] IN ({spaces}) OR {r}[-1] IN ({spaces}) THEN {_trim(r)} "
            f"ELSE {r} END")


def _number(c: _Chain, x: str, typ: Type, kind: str) -> tuple[str, Type]:
    if typ == "bool" or typ == "null":
        return f"CAST({x} AS {'BIGINT' if kind == 'int' else 'DOUBLE'})", "int" if kind == "int" else "float"
    if typ in ("int", "float"):
        if kind == "int" and typ == "float":
            c.add(f"{x} IS NOT NULL AND ({x} <> floor({x}) OR abs({x}) >= 9.2e18)", check="whole numbers", of=x)
            return f"CAST({x} AS BIGINT)", "int"
        return (f"CAST({x} AS {'BIGINT' if kind == 'int' else 'DOUBLE'})"), "int" if kind == "int" else "float"
    r = c.add(_raw(x, typ))
    t = _trim(r)
    if kind == "int":
        cast = ("CASE WHEN contains({0}, '.') THEN TRY_CAST(TRY_CAST({0} AS DOUBLE) AS BIGINT) "
                "ELSE TRY_CAST({0} AS BIGINT) END")
        # the common shape first: a number written as DuckDB writes it back (digits, no sign but
        # '-', no leading zero, no space) is read by a cast alone; the rest by the regular expression
        f = c.add(f"TRY_CAST({r} AS BIGINT)")
        v = c.add(f"CASE WHEN CAST({f} AS VARCHAR) = {r} THEN {f} "
                  f"WHEN regexp_full_match({r}, '{_INT_RE}') THEN {cast.format(r)} "
                  f"WHEN regexp_full_match({t}, '{_INT_RE}') THEN {cast.format(t)} END")
        c.add(_lazy(f"{v} IS NULL AND {r} IS NOT NULL", f"{t} IS NOT NULL"), check="whole numbers", of=t)
        return v, "int"
    v = c.add(f"CASE WHEN regexp_full_match({r}, '{_FLOAT_RE}') THEN TRY_CAST({r} AS DOUBLE) "
              f"WHEN regexp_full_match({t}, '{_FLOAT_RE}') THEN TRY_CAST({t} AS DOUBLE) END")
    c.add(_lazy(f"{v} IS NULL AND {r} IS NOT NULL", f"{t} IS NOT NULL"), check="numbers", of=t)
    return v, "float"


def _money(c: _Chain, x: str, typ: Type) -> tuple[str, Type]:
    if typ in ("int", "float", "bool", "null"):
        return f"CAST({x} AS DOUBLE)", "float"
    r = c.add(_raw(x, typ))
    plain = c.add(f"regexp_full_match({r}, {literal(_PLAIN_MONEY)})")
    groups = "['open', 'sign', 'sign2', 'num', 'unit', 'close']"
    # the whole expression allows spaces around every part: no trimming needed
    p = c.add(f"CASE WHEN NOT {plain} THEN regexp_extract({r}, {literal(MONEY_RE)}, {groups}) END")
    # the groups are looked at only where the common shape did not match (a CASE, not an AND, which
    # would read them on every row)
    c.add(f"CASE WHEN {plain} THEN FALSE WHEN {p}.num = '' OR ({p}.open = '') <> ({p}.close = '') "
          f"THEN {_trim(r)} IS NOT NULL ELSE FALSE END",
          check='money amounts (expected e.g. 1200, "$1,200.00", "1,200元", "12.5万", "(1,200)")', of=_trim(r))
    scale = " ".join(f"WHEN {literal(u)} THEN {f!r}" for u, f in _UNITS.items())
    v = c.add(f"CASE WHEN {plain} THEN CAST(replace(replace({r}, ',', ''), '元', '') AS DOUBLE)"
              f" WHEN {p}.num <> '' THEN TRY_CAST(replace(replace({p}.num, ',', ''), '，', '') AS DOUBLE)"
              f" * CASE {p}.unit {scale} ELSE 1.0 END"
              f" * CASE WHEN {p}.open <> '' OR {p}.sign IN ('-', '−') OR {p}.sign2 IN ('-', '−')"
              f" THEN -1.0 ELSE 1.0 END END")
    return v, "float"


def _value_map(c: _Chain, spec: Any, x: str, typ: Type) -> tuple[str, Type]:
    pairs = spec.pairs()
    targets = list(pairs.values())
    sample = next(iter(targets), spec.other)
    if isinstance(sample, bool):
        out: Type = "bool"
    elif isinstance(sample, int) and all(isinstance(t, int) for t in targets):
        out = "int"
    elif isinstance(sample, (int, float)):
        out = "float"
    else:
        out = "text"
    cast = {"bool": "BOOLEAN", "int": "BIGINT", "float": "DOUBLE", "text": "VARCHAR"}[out]

    def target(v: Any) -> str:
        # text targets are trimmed here, once, as a str column's values would be in every row
        if out == "text" and isinstance(v, str) and v.strip(_SPACES):
            v = v.strip(_SPACES)
        return f"CAST({literal(v)} AS {cast})"

    clean = out == "text" and all(isinstance(v, str) and v.strip(_SPACES) for v in [*targets, spec.other]
                                  if v is not None)
    r = c.add(_raw(x, typ))
    whens = " ".join(f"WHEN {literal(k)} THEN {target(v)}" for k, v in pairs.items())
    other = "NULL" if spec.other is None else target(spec.other)
    # the codes as given first (one CASE, no trimming); a code with spaces around it is trimmed,
    # and a cell of spaces only is null
    v = c.add(f"CASE WHEN {r} IS NULL THEN NULL ELSE CASE {r} {whens} ELSE "
              f"CASE trim({r}, {literal(_SPACES)}) WHEN '' THEN NULL {whens} ELSE {other} END END END")
    if spec.other is None:  # a mapped code is never null here: null means unmapped (or an empty cell)
        c.add(_lazy(f"{v} IS NULL AND {r} IS NOT NULL", f"{_trim(r)} IS NOT NULL"), check="in map", of=_trim(r),
              map_check=True)
    c.col.clean_text = clean
    if clean:
        c.col.values = frozenset(t.strip(_SPACES) for t in [*targets, spec.other] if t is not None)
    return v, out


def _to_bool(c: _Chain, x: str, typ: Type) -> tuple[str, Type]:
    if typ == "bool":
        return x, "bool"
    s = c.add(f"lower({_text(x, typ)})")
    true, false = ", ".join(literal(v) for v in _TRUE), ", ".join(literal(v) for v in _FALSE)
    c.add(f"{s} IS NOT NULL AND {s} NOT IN ({true}, {false})",
          check="booleans (expected 1/0, true/false, yes/no, 是/否)", of=s)
    return f"CASE WHEN {s} IN ({true}) THEN TRUE WHEN {s} IN ({false}) THEN FALSE END", "bool"


def _dates(c: _Chain, spec: Any, x: str, typ: Type) -> tuple[str, Type]:
    if typ == "ts":
        return f"CAST({x} AS TIMESTAMP)", "ts"
    if typ == "null":
        return "CAST(NULL AS TIMESTAMP)", "ts"
    if spec.date is None:
        if typ in ("int", "float"):  # yyyymmdd numbers
            s = c.add(f"CASE WHEN {x} = floor({x}) AND {x} BETWEEN 10000101 AND 99991231 "
                      f"THEN CAST(CAST({x} AS BIGINT) AS VARCHAR) END")
            v = c.add(f"try_strptime({s}, '%Y%m%d')")
            c.add(f"{x} IS NOT NULL AND {v} IS NULL", check="dates (expected yyyymmdd numbers)", of=x)
            return v, "ts"
        s = c.add(_text(x, typ))
        formats = ", ".join(literal(f) for f in _DATE_FORMATS)
        v = c.add(f"coalesce(TRY_CAST({s} AS TIMESTAMP), try_strptime({s}, [{formats}]))")
        c.add(f"{s} IS NOT NULL AND {v} IS NULL",
              check='dates (expected e.g. 2024-01-31; set date = "%d/%m/%Y" for another format)', of=s)
        return v, "ts"
    r = c.add(_raw(x, typ))
    fmt = literal(spec.date)
    p0 = c.add(f"CAST(try_strptime({r}, {fmt}) AS TIMESTAMP)")
    p = c.add(f"CASE WHEN {p0} IS NULL AND {r} IS NOT NULL THEN CAST(try_strptime({_trim(r)}, {fmt}) AS TIMESTAMP) "
              f"ELSE {p0} END")
    c.add(_lazy(f"{p} IS NULL AND {r} IS NOT NULL", f"{_trim(r)} IS NOT NULL"), check=f"dates in the format {spec.date!r}",
          of=_trim(r))
    if spec.pivot is None:
        return p, "ts"
    # %y reads 00-68 as 20xx and 69-99 as 19xx; move each date into [pivot, pivot + 100): a date
    # already there (two comparisons) is kept, the others move by whole centuries
    first, end = (literal(dt.datetime(y, 1, 1)) for y in (spec.pivot, spec.pivot + 100))
    shift = f"-100 * CAST(floor((year({p}) - {spec.pivot}) / 100) AS INTEGER)"
    return c.add(f"CASE WHEN {p} >= {first} AND {p} < {end} THEN {p} ELSE {p} + to_years({shift}) END"), "ts"


def _digit_ids(c: _Chain, x: str, typ: Type) -> tuple[str, Type]:
    if typ == "int":
        return f"CAST({x} AS BIGINT)", "int"
    r = c.add(_raw(x, typ))
    t = _trim(r)
    # one run of digits, alone ("0001234") or in text ("C0001234"): one regular expression on the
    # raw text; else (only there) every digit of the trimmed text ("12-34"), if 1 to 18 of them
    every = f"TRY_CAST(regexp_extract(regexp_replace({t}, '[^0-9]', '', 'g'), '^[0-9]{{1,18}}$') AS BIGINT)"
    run = c.add(f"TRY_CAST(nullif(regexp_extract({r}, {literal(_ONE_RUN)}, 1), '') AS BIGINT)")
    v = c.add(f"CASE WHEN {run} IS NOT NULL THEN {run} ELSE {every} END")  # (coalesce is not lazy)
    c.add(_lazy(f"{v} IS NULL AND {r} IS NOT NULL", f"{t} IS NOT NULL"), check="ids with 1 to 18 digits", of=t)
    return v, "int"


def _hash_ids(c: _Chain, x: str, typ: Type) -> tuple[str, Type]:
    s = c.add(_text(x, typ))
    c.col.collisions = ident(c.col.steps[-1].name)
    # the upper 63 bits of the MD5 of the id's text: the same in every table and every DuckDB version
    return c.add(f"CAST(md5_number_upper({s}) >> 1 AS BIGINT)"), "int"


def _kind(c: _Chain, x: str, typ: Type, kind: str | None) -> tuple[str, Type]:
    if kind in ("int", "float"):
        return _number(c, x, typ, kind)
    if kind == "bool":
        return _to_bool(c, x, typ)
    if kind in ("date", "timestamp"):
        return _dates(c, _NoFormat, x, typ)
    if kind == "str":
        return (_text(x, typ) if typ == "text" else f"CAST({x} AS VARCHAR)"), "text"
    return x, typ


class _NoFormat:
    date = None
    pivot = None


def column_sql(prefix: str, spec: Any, source: str, source_type: str, kind: str | None) -> ColumnSQL:
    """The SQL steps that make one canonical column from ``source`` (an expression of ``source_type``).

    ``kind`` is the column's declared kind (the mapping's cast, else the schema's or the data
    dictionary's; None for a further column the schema does not know, which keeps its source type
    unless the mapping converts it)."""
    c = _Chain(prefix)
    x, typ = source, sql_type(source_type)
    if spec.id == "hash":
        x, typ = _hash_ids(c, x, typ)
    elif spec.id == "digits":
        x, typ = _digit_ids(c, x, typ)
    else:
        if spec.map is not None:
            x, typ = _value_map(c, spec, x, typ)
        if spec.money:
            x, typ = _money(c, x, typ)
        if spec.date is not None:
            x, typ = _dates(c, spec, x, typ)
        elif kind in ("date", "timestamp"):
            x, typ = _dates(c, _NoFormat, x, typ)
        elif kind in ("int", "float", "bool"):
            x, typ = _kind(c, x, typ, kind)
        elif kind == "str" and not (c.col.clean_text and typ == "text"):
            x, typ = _kind(c, x, typ, kind)
        if spec.factor != 1.0:
            if typ not in ("int", "float"):
                x, typ = _number(c, x, typ, "float")
            x, typ = c.add(f"CAST({x} AS DOUBLE) * {spec.factor!r}"), "float"
            if kind == "int":
                x, typ = _number(c, x, typ, "int")
    if c.col.values is not None:  # the value map's step last but for checks (which hold no value)?
        last = next(step for step in reversed(c.col.steps) if step.check is None)
        if x != ident(last.name) or typ != "text":
            c.col.values = None  # a step after the value map changed its values
    c.col.value = c.add(x)
    return c.col

"""Declarative mapping of a bank's own extracts to the canonical tables (``creditmodel data map``).

A mapping file (TOML) says, per canonical table, where its rows come from (a CSV/TSV file in any
encoding, an Excel sheet, a Parquet file, or a SQL query against a database named by a SQLAlchemy
URL; a file may be reshaped first by a DuckDB query over it) and how each canonical column is
made from the source: a renamed column, a constant, a row
number, a SQL expression, with casts, value maps (many source codes -> one canonical value),
date formats (two-digit years with a pivot year), money strings ("$1,200.00", "1,200元",
"12.5万", "(1,200)") and a unit/currency factor. The result is validated against the contracts
and written as canonical parquet, all or nothing, with ``_dataset.json`` giving the as-of date.

Sources are read columnar (pyarrow / DuckDB) and every conversion is vectorised, with no loop over
rows (``benchmarks/bench_mapping.py`` measures it on 10M transactions). Each problem leaves as a
one-line ``DataContractError`` (source data) or ``ConfigError`` (the mapping file) naming the
table, column and values at fault.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from creditmodel.data import schema
from creditmodel.data.contracts import validate_tables
from creditmodel.data.dictionary import DataDictionary, load_dictionary
from creditmodel.exceptions import ConfigError, DataContractError

__all__ = ["TableMapping", "ColumnMapping", "Source", "Mapping", "load_mapping", "map_tables", "write_mapped"]

Scalar = str | int | float | bool
_CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".data", ".dat")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_EXAMPLES = 5
_NULL_DTYPES = {"int": "Int64", "float": "Float64", "str": "string", "bool": "boolean",
                "date": "datetime64[us]", "timestamp": "datetime64[us]"}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --------------------------------------------------------------------------------------------
# the mapping file
# --------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where a table's rows come from: a file (``path``) or a database (``url`` + ``query``)."""

    path: str | None = None
    url: str | None = Field(None, description="SQLAlchemy URL, e.g. postgresql://user@host:5432/db")
    query: str | None = Field(None, description="SQL on the database (url), or DuckDB SQL over the file, "
                                                 "which it calls `source` (path), e.g. to unpivot months")
    format: Literal["csv", "excel", "parquet", "sql"] | None = None  # default: from the suffix
    encoding: str = "utf-8"
    delimiter: str | None = None  # default "," (tab for .tsv)
    header: bool = True
    names: list[str] | None = Field(None, description="column names when the file has no header")
    skip_rows: int = Field(0, ge=0)
    sheet: str | int = 0

    @model_validator(mode="after")
    def _one_kind(self) -> Source:
        if (self.path is None) == (self.url is None):
            raise ValueError("give either path (a file) or url and query (a database)")
        if self.url is not None and not (self.query and self.query.strip()):
            raise ValueError("a database source needs query = \"SELECT ...\"")
        if self.header and self.names:
            raise ValueError("names are for a file without a header line: set header = false too")
        if not self.header and not self.names:
            raise ValueError("header = false needs names = [...] (one name per source column)")
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise ValueError(f"delimiter must be one character, got {self.delimiter!r}")
        return self

    @property
    def kind(self) -> str:
        if self.format:
            return self.format
        if self.url is not None:
            return "sql"
        suffix = Path(self.path or "").suffix.lower()
        if suffix in _EXCEL_SUFFIXES:
            return "excel"
        if suffix in _PARQUET_SUFFIXES:
            return "parquet"
        if suffix in _CSV_SUFFIXES:
            return "csv"
        raise ValueError(
            f"cannot tell the format of {self.path!r} from its suffix; set format = \"csv\", "
            f"\"excel\" or \"parquet\""
        )


class ColumnMapping(_Strict):
    """How one canonical column is made: exactly one of column / value / expr / row_number."""

    column: str | None = None
    value: Scalar | dt.date | dt.datetime | None = None
    expr: str | None = Field(None, description="SQL expression over the source columns (DuckDB)")
    row_number: bool = False
    start: int = 1
    cast: Literal["int", "float", "str", "bool", "date", "timestamp"] | None = None
    map: dict[str, Scalar | list[str]] | None = None
    other: Scalar | None = None
    date: str | None = Field(None, description="strptime format, e.g. %d/%m/%y")
    pivot: int | None = Field(None, ge=1000, le=9000)
    money: bool = False
    factor: float = 1.0
    id: Literal["digits", "hash"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ColumnMapping:
        given: list[str] = [k for k in ("column", "value", "expr") if k in self.model_fields_set]
        given += ["row_number"] if self.row_number else []
        if len(given) != 1:
            raise ValueError("give exactly one of column, value, expr or row_number = true"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.pivot is not None and (self.date is None or "%y" not in self.date):
            raise ValueError("pivot applies to two-digit years: give date = \"...%y...\" too")
        if self.money and (self.date is not None or self.map is not None):
            raise ValueError("money = true cannot be combined with date or map")
        if self.date is not None and self.map is not None:
            raise ValueError("date cannot be combined with map")
        if "other" in self.model_fields_set and self.map is None:
            raise ValueError("other is the default of a value map: give map too")
        if self.factor != 1.0 and self.cast in ("str", "bool", "date", "timestamp"):
            raise ValueError(f"factor applies to numbers, not to cast = {self.cast!r}")
        if self.map is not None:
            seen: dict[str, Any] = {}
            for key, target in self.map.items():
                codes = target if isinstance(target, list) else [key]
                canonical = key if isinstance(target, list) else target
                for code in codes:
                    if code in seen and seen[code] != canonical:
                        raise ValueError(f"map: source value {code!r} maps to both {seen[code]!r} "
                                         f"and {canonical!r}")
                    seen[code] = canonical
            kinds = {type(v) for v in seen.values()} | ({type(self.other)} if self.other is not None else set())
            if kinds == {int, float}:
                kinds = {float}
            if len(kinds) > 1:
                raise ValueError("map: canonical values must all be of one type "
                                 f"(got {', '.join(sorted(k.__name__ for k in kinds))})")
        return self

    def pairs(self) -> dict[str, Scalar]:
        """The value map as source code -> canonical value."""
        out: dict[str, Scalar] = {}
        for key, target in (self.map or {}).items():
            if isinstance(target, list):
                out.update({code: key for code in target})
            else:
                out[key] = target
        return out


class TableMapping(_Strict):
    """One canonical table: its source, an optional row filter and how each column is made."""

    source: Source
    filter: str | None = Field(None, description="SQL condition over the source columns (DuckDB)")
    columns: dict[str, str | ColumnMapping]

    @field_validator("columns")
    @classmethod
    def _not_empty(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            raise ValueError("no columns: give at least one canonical column")
        return v

    def column_specs(self) -> dict[str, ColumnMapping]:
        return {name: ColumnMapping(column=spec) if isinstance(spec, str) else spec
                for name, spec in self.columns.items()}


class Mapping(_Strict):
    """A whole mapping file: as-of date, data dictionary and one entry per canonical table."""

    extraction_date: dt.date
    dictionary: str | None = None
    tables: dict[str, TableMapping]

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, v: dict[str, TableMapping]) -> dict[str, TableMapping]:
        unknown = [name for name in v if name not in schema.TABLES]
        if unknown:
            raise ValueError(f"unknown table {unknown[0]!r}; expected one of: {', '.join(schema.TABLES)}")
        return v


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "ColumnMapping")))]
    return ".".join(parts) or "mapping"


def load_mapping(path: str | Path) -> tuple[Mapping, Path]:
    """Read and validate a mapping file; returns it and the directory relative paths resolve against."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"{path}: mapping file not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: mapping file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({_first_line(exc)})") from None
    try:
        mapping = Mapping.model_validate(raw)
    except ValidationError as exc:
        # a column given as a table fails both "str" and ColumnMapping: report the table's problem
        errors = [e for e in exc.errors() if e["type"] != "string_type"] or exc.errors()
        err = errors[0]
        more = len(errors) - 1
        msg = err["msg"].removeprefix("Value error, ")
        got = "" if err["type"] in ("missing", "value_error") else f" (got {err.get('input')!r:.60})"
        raise ConfigError(f"{path}: {_loc(err['loc'])}: {msg}{got}"
                          + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")) from None
    for name, table in mapping.tables.items():
        try:
            _ = table.source.kind  # the property validates the source
        except ValueError as exc:
            raise ConfigError(f"{path}: tables.{name}.source: {exc}") from None
    return mapping, path.resolve().parent


# --------------------------------------------------------------------------------------------
# reading a source
# --------------------------------------------------------------------------------------------


def _text_columns(specs: dict[str, ColumnMapping], kinds: dict[str, str]) -> set[str]:
    """Source columns read as text: codes keep their zeros, money and dates are parsed here."""
    out = set()
    for name, spec in specs.items():
        if spec.column is None:
            continue
        target = spec.cast or kinds.get(name)
        if spec.money or spec.date or spec.map is not None or spec.id or target == "str":
            out.add(spec.column)
    return out


def _where(source: Source, base: Path) -> str:
    if source.path is not None:
        return Path(source.path).name
    return "the SQL query"


def _resolve(source: Source, base: Path) -> Path:
    p = Path(source.path).expanduser()  # type: ignore[arg-type]
    return p if p.is_absolute() else base / p


def _read_csv(path: Path, source: Source, table: str, needed: set[str] | None, text: set[str]) -> pa.Table:
    import pyarrow.csv as pcsv

    delimiter = source.delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    read = pcsv.ReadOptions(encoding=source.encoding, skip_rows=source.skip_rows,
                            column_names=None if source.header else source.names,
                            block_size=16 << 20)
    parse = pcsv.ParseOptions(delimiter=delimiter)
    try:
        head = pcsv.open_csv(path, read_options=read, parse_options=parse,
                             convert_options=pcsv.ConvertOptions(column_types={}))
        columns = [_clean(c) for c in head.schema.names]
        raw_names = head.schema.names
        head.close()
        _check_columns(table, path.name, columns, needed)
        include = [r for r, c in zip(raw_names, columns) if needed is None or c in needed]
        convert = pcsv.ConvertOptions(
            include_columns=include,
            column_types={r: pa.string() for r, c in zip(raw_names, columns) if c in text},
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )
        data = pcsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    except UnicodeDecodeError as exc:
        raise DataContractError(
            f"{table}: cannot decode {path.name} as {source.encoding} ({exc.reason} at byte "
            f"{exc.start}); set source.encoding (e.g. \"gbk\" or \"gb18030\" for Chinese bank exports)"
        ) from None
    except LookupError:
        raise DataContractError(f"{table}: unknown encoding {source.encoding!r} for {path.name}") from None
    except pa.ArrowInvalid as exc:
        if "utf8" in str(exc).lower():  # pyarrow checks UTF-8 itself when no transcoding is asked for
            raise DataContractError(
                f"{table}: cannot decode {path.name} as {source.encoding} (invalid UTF-8 in the data); "
                f"set source.encoding (e.g. \"gbk\" or \"gb18030\" for Chinese bank exports)"
            ) from None
        raise DataContractError(
            f"{table}: cannot parse {path.name} as delimited text with delimiter {delimiter!r}: "
            f"{_first_line(exc)}"
        ) from None
    return data.rename_columns([_clean(c) for c in data.column_names])


def _clean(name: Any) -> str:
    return str(name).lstrip("\ufeff").strip()


def _check_columns(table: str, where: str, columns: list[str], needed: set[str] | None) -> None:
    if needed is None:
        return
    missing = sorted(needed - set(columns))
    if missing:
        shown = ", ".join(repr(c) for c in columns[:20]) + (", ..." if len(columns) > 20 else "")
        raise DataContractError(
            f"{table}: source column {missing[0]!r} not found in {where}"
            + (f" (nor {', '.join(repr(m) for m in missing[1:4])})" if len(missing) > 1 else "")
            + f"; it has: {shown}"
        )


def _frame_to_arrow(df: pd.DataFrame, text: set[str]) -> pa.Table:
    arrays = {}
    for name in df.columns:
        s = df[name]
        # typed columns stay typed (numbers, Decimals, dates, spreadsheet date cells); text as text
        if name not in text or pd.api.types.is_datetime64_any_dtype(s.dtype):
            try:
                arrays[name] = pa.array(s, from_pandas=True)
                continue
            except (pa.ArrowTypeError, pa.ArrowInvalid):
                pass
        values = [None if v is None or v is pd.NaT or v is pd.NA or (isinstance(v, float) and np.isnan(v))
                  else _as_text(v) for v in s.tolist()]
        arrays[name] = pa.array(values, type=pa.string())
    return pa.table(arrays)


def _as_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dt.datetime, pd.Timestamp)):
        return v.isoformat(sep=" ")
    return str(v).strip()


def _read_excel(path: Path, source: Source, table: str, needed: set[str] | None, text: set[str]) -> pa.Table:
    try:
        df = pd.read_excel(path, sheet_name=source.sheet, header=0 if source.header else None,
                           names=source.names if not source.header else None,
                           skiprows=source.skip_rows or None, engine="openpyxl")
    except ImportError:
        raise DataContractError(f"{table}: reading Excel needs openpyxl (pip install openpyxl)") from None
    except ValueError as exc:
        raise DataContractError(f"{table}: cannot read sheet {source.sheet!r} of {path.name}: "
                                f"{_first_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - openpyxl / zipfile raise many types for a bad file
        raise DataContractError(f"{table}: cannot read {path.name} as an Excel workbook "
                                f"({type(exc).__name__}: {_first_line(exc)})") from None
    df.columns = [_clean(c) for c in df.columns]
    _check_columns(table, f"{path.name} sheet {source.sheet!r}", list(df.columns), needed)
    if needed is not None:
        df = df[[c for c in df.columns if c in needed]]
    return _frame_to_arrow(df, text)


def _read_parquet(path: Path, table: str, needed: set[str] | None) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        _check_columns(table, path.name, names, needed)
        return pq.read_table(path, columns=None if needed is None else [c for c in names if c in needed])
    except DataContractError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise DataContractError(f"{table}: cannot read {path.name} as parquet ({_first_line(exc)})") from None


def _engine_url(url: str) -> str:
    """postgresql:// means psycopg 3 here (the driver creditmodel depends on), not psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _shown_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparseable URL is shown without anything after '@'
        return re.sub(r"//[^@/]*@", "//***@", url)


def _read_sql(source: Source, table: str, needed: set[str] | None, text: set[str]) -> pa.Table:
    import sqlalchemy as sa

    url = _engine_url(source.url or "")
    try:
        engine = sa.create_engine(url)
    except sa.exc.NoSuchModuleError:
        raise DataContractError(f"{table}: source.url {_shown_url(url)!r}: unknown database kind; "
                                f"expected a SQLAlchemy URL such as postgresql://user@host:5432/db") from None
    except (sa.exc.ArgumentError, ValueError, ImportError) as exc:
        raise DataContractError(f"{table}: source.url {_shown_url(url)!r} is not a usable SQLAlchemy URL "
                                f"({_first_line(exc)})") from None
    try:
        with engine.connect() as con:
            result = con.execute(sa.text(source.query or ""))
            if not result.returns_rows:
                raise DataContractError(f"{table}: the SQL query returns no rows; expected a SELECT")
            df = pd.DataFrame.from_records(result.fetchall(), columns=list(result.keys()), coerce_float=False)
    except sa.exc.OperationalError as exc:
        raise DataContractError(f"{table}: cannot connect to {_shown_url(url)} "
                                f"({_first_line(exc.orig) if exc.orig else _first_line(exc)})") from None
    except sa.exc.SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)  # the driver's own error, when there is one
        raise DataContractError(f"{table}: the SQL query failed on {_shown_url(url)} "
                                f"({_first_line(orig) if orig else _first_line(exc)})") from None
    finally:
        engine.dispose()
    df.columns = [_clean(c) for c in df.columns]
    _check_columns(table, "the SQL query's result", list(df.columns), needed)
    if needed is not None:
        df = df[[c for c in df.columns if c in needed]]
    return _frame_to_arrow(df, text)


def _read_source(table: str, spec: TableMapping, base: Path, kinds: dict[str, str]) -> pa.Table:
    specs = spec.column_specs()
    uses_sql = spec.filter is not None or any(s.expr is not None for s in specs.values()) or (
        spec.source.path is not None and spec.source.query is not None)
    needed = None if uses_sql else {s.column for s in specs.values() if s.column is not None}
    source = spec.source
    # with a query over a file the mapped names are the query's: the file is read with its own types
    text = set() if source.path is not None and source.query is not None else _text_columns(specs, kinds)
    if source.kind == "sql":
        return _read_sql(source, table, needed, text)
    path = _resolve(source, base)
    if not path.is_file():
        raise DataContractError(f"{table}: source file {path} not found")
    if source.kind == "excel":
        data = _read_excel(path, source, table, needed, text)
    elif source.kind == "parquet":
        data = _read_parquet(path, table, needed)
    else:
        data = _read_csv(path, source, table, needed, text)
    return data if source.query is None else _query_file(table, data, source.query)


def _query_file(table: str, data: pa.Table, query: str) -> pa.Table:
    """A file source reshaped by DuckDB SQL over it (the file is the table ``source``)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("source", data)
        return con.sql(query).to_arrow_table()
    except duckdb.Error as exc:
        raise DataContractError(f"{table}: source.query failed: {_first_line(exc)}") from None
    finally:
        con.close()


def _apply_sql(table: str, data: pa.Table, spec: TableMapping) -> tuple[pa.Table, dict[str, str]]:
    """Filter rows and evaluate ``expr`` columns with DuckDB; returns the table and expr -> column."""
    exprs = {name: s.expr for name, s in spec.column_specs().items() if s.expr is not None}
    if spec.filter is None and not exprs:
        return data, {}
    import duckdb

    alias = {name: f"__expr_{i}" for i, name in enumerate(exprs)}
    select = ", ".join(["*"] + [f"({e}) AS \"{alias[n]}\"" for n, e in exprs.items()])
    query = f"SELECT {select} FROM source" + (f" WHERE ({spec.filter})" if spec.filter else "")
    con = duckdb.connect()
    try:
        con.register("source", data)
        try:
            out = con.sql(query).to_arrow_table()
        except duckdb.Error as exc:
            culprit = next((f"columns.{n}.expr {e!r}" for n, e in exprs.items() if _fails(con, e)), None)
            what = culprit or (f"filter {spec.filter!r}" if spec.filter else "expressions")
            raise DataContractError(f"{table}: {what} failed: {_first_line(exc)}") from None
    finally:
        con.close()
    return out, alias


def _fails(con: Any, expr: str) -> bool:
    try:
        con.execute(f"SELECT ({expr}) FROM source LIMIT 1")
        return False
    except Exception:  # noqa: BLE001 - any DuckDB error marks this expression as the culprit
        return True


# --------------------------------------------------------------------------------------------
# converting one column (vectorised, on Arrow arrays)
# --------------------------------------------------------------------------------------------

_WS = r"[\s\x{3000}\x{00a0}]*"  # also the full-width and no-break spaces of spreadsheets (RE2 syntax)
_MONEY = (
    rf"^{_WS}(?P<open>[(（])?{_WS}(?P<sign>[-+−])?{_WS}(?:US\$|HK\$|\$|¥|￥|€|£|RMB|CNY|USD|EUR|HKD)?{_WS}"
    rf"(?P<sign2>[-+−])?{_WS}(?P<num>(?:\d{{1,3}}(?:[,，]\d{{3}})+|\d+)(?:\.\d*)?|\.\d+){_WS}"
    rf"(?P<unit>万元|万|亿元|亿|千元|千|[kK]|M|mn)?{_WS}(?:元|圆|块|RMB|CNY|USD|EUR|HKD)?{_WS}(?P<close>[)）])?{_WS}$"
)
_INT = r"^\s*[-+]?\d+(\.0*)?\s*$"
_FLOAT = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
_TRUE = ("1", "true", "t", "yes", "y", "是", "真")
_FALSE = ("0", "false", "f", "no", "n", "否", "假")


class _Col:
    """Names used in messages: canonical table.column and where it came from."""

    def __init__(self, table: str, name: str, spec: ColumnMapping, where: str) -> None:
        self.table, self.name, self.spec, self.where = table, name, spec, where

    def __str__(self) -> str:
        origin = (f" (source column {self.spec.column!r} in {self.where})" if self.spec.column is not None
                  else f" (expr {self.spec.expr!r})" if self.spec.expr is not None else "")
        return f"{self.table}.{self.name}{origin}"

    def fail(self, array: pa.Array, bad: pa.Array, expected: str) -> DataContractError:
        values = pc.filter(array, bad)
        counts = pc.value_counts(values).to_pylist()
        counts.sort(key=lambda d: -d["counts"])
        n = len(values)
        shown = ", ".join(f"{d['values']!r}" for d in counts[:_EXAMPLES])
        return DataContractError(f"{self}: {n} value{'s' if n != 1 else ''} {'are' if n != 1 else 'is'} not "
                                 f"{expected}, e.g. {shown}")


def _strings(array: pa.Array) -> pa.Array:
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return array
    if pa.types.is_floating(array.type):
        ints = pc.equal(pc.floor(array), array)
        if pc.all(pc.or_kleene(ints, pc.is_null(array))).as_py():
            array = pc.cast(array, pa.int64(), safe=False)
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), pa.string())
    return pc.cast(array, pa.string())


def _trimmed(array: pa.Array) -> pa.Array:
    s = _strings(array)
    if isinstance(s, pa.ChunkedArray):
        s = s.combine_chunks()
    # outer spaces, also the full-width and no-break ones of spreadsheets (the ASCII pass is 6x faster)
    _, data = _bytes(s)
    wide = bool((data >= 0xC2).any())
    s = pc.utf8_trim_whitespace(s) if wide else pc.ascii_trim_whitespace(s)
    empty = pc.equal(s, "")
    return pc.if_else(empty, pa.scalar(None, pa.string()), s) if pc.any(empty).as_py() else s


def _bytes(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of a string array as numpy views: byte-level parsing without a row loop."""
    a = pc.cast(array, pa.large_string())
    offsets = np.frombuffer(a.buffers()[1], dtype=np.int64)[a.offset:a.offset + len(a) + 1]
    data = np.frombuffer(a.buffers()[2], dtype=np.uint8) if a.buffers()[2] is not None else np.zeros(0, np.uint8)
    return offsets, data


def _rows_of(positions: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The row (string) each byte position belongs to."""
    return np.searchsorted(offsets, positions, side="right") - 1


class _Text:
    """The bytes of a string column once, with which byte values occur: most tokens are absent."""

    def __init__(self, s: pa.Array) -> None:
        offsets, data = _bytes(s)
        self.data = data[offsets[0]:offsets[-1]]
        self.offsets = offsets - offsets[0]
        self.occurs = np.bincount(self.data, minlength=256) > 0
        self._raw: bytes | None = None

    def has(self, token: str) -> bool:
        b = token.encode("utf-8")
        if not all(self.occurs[c] for c in b):
            return False
        if len(b) == 1:
            return True
        if self._raw is None:
            self._raw = self.data.tobytes()
        return b in self._raw


def _token_positions(text: _Text, token: str) -> np.ndarray:
    """Byte positions where ``token`` (UTF-8) starts."""
    b = token.encode("utf-8")
    data = text.data
    if not text.has(token):
        return np.zeros(0, dtype=np.int64)
    n = len(data) - len(b) + 1
    start = data[:n] == b[0]
    for k in range(1, len(b)):
        start &= data[k:k + n] == b[k]
    return np.flatnonzero(start)


def _token_rows(text: _Text, token: str, positions: np.ndarray | None = None) -> np.ndarray:
    """Per string, whether it contains ``token``: found byte-wise, counted sparsely (no cumulative sum)."""
    hit = np.zeros(len(text.offsets) - 1, dtype=bool)
    found = _token_positions(text, token) if positions is None else positions
    hit[_rows_of(found, text.offsets)] = True
    return hit


def _keep_bytes(array: pa.Array, keep: np.ndarray, offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    """The strings with only the bytes marked in ``keep`` (same validity)."""
    dropped = np.flatnonzero(~keep)
    new_offsets = offsets - np.searchsorted(dropped, offsets)  # bytes dropped before each string
    validity = pc.is_valid(array).buffers()[1] if array.null_count else None
    return pa.LargeStringArray.from_buffers(len(array), pa.py_buffer(new_offsets.astype(np.int64)),
                                            pa.py_buffer(np.ascontiguousarray(data[keep])), validity)


# decorations a money string may carry around its number (the regular expression says where)
_DECORATIONS = ("US$", "HK$", "$", "¥", "￥", "€", "£", "RMB", "CNY", "USD", "EUR", "HKD", "元", "圆", "块",
                "万", "亿", "千", "mn", "k", "K", "M", ",", "，", "(", ")", "（", "）", "+", "-", "−", " ", "\t",
                "\u3000", "\u00a0")
_SCALES = (("万", 1e4), ("亿", 1e8), ("千", 1e3), ("k", 1e3), ("K", 1e3), ("mn", 1e6))


def _money(col: _Col, array: pa.Array) -> pa.Array:
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type) or pa.types.is_decimal(array.type):
        return pc.cast(array, pa.float64())
    s = _strings(array).combine_chunks() if isinstance(array, pa.ChunkedArray) else _strings(array)
    s = pc.if_else(pc.equal(pc.ascii_trim_whitespace(s), ""), pa.scalar(None, pa.string()), s) \
        if pc.any(pc.equal(s, "")).as_py() else s
    # validate with one regular expression (a DFA pass); then, the shape being known, strip the
    # decorations present with literal replacements and read signs and units byte-wise
    ok = pc.fill_null(pc.match_substring_regex(s, _MONEY), True)
    text = _Text(s)
    opened = _token_rows(text, "(") | _token_rows(text, "（")
    closed = _token_rows(text, ")") | _token_rows(text, "）")
    ok = pc.and_(ok, pa.array(opened == closed))
    bad = pc.and_(pc.is_valid(s), pc.invert(ok))
    if pc.any(bad).as_py():
        raise col.fail(s, bad, "money amounts (expected e.g. 1200, \"$1,200.00\", \"1,200元\", \"12.5万\", \"(1,200)\")")
    digits = s
    for token in _DECORATIONS:
        if text.has(token):
            digits = pc.replace_substring(digits, token, "")
    number = pc.cast(digits, pa.float64()).to_numpy(zero_copy_only=False)
    negative = opened | _token_rows(text, "-") | _token_rows(text, "−")
    scale = np.ones(len(s))
    for unit, factor in _SCALES:
        scale[_token_rows(text, unit)] = factor
    ems = np.setdiff1d(_token_positions(text, "M"), _token_positions(text, "RMB") + 1)
    scale[_token_rows(text, "M", ems)] = 1e6  # "2.5M", not the M of "RMB 1,000"
    value = number * scale * np.where(negative, -1.0, 1.0)
    return pa.array(value, mask=~pc.is_valid(s).to_numpy(zero_copy_only=False))


def _number(col: _Col, array: pa.Array, kind: str) -> pa.Array:
    target = pa.int64() if kind == "int" else pa.float64()
    if pa.types.is_boolean(array.type):
        return pc.cast(array, target)
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type) or pa.types.is_decimal(array.type):
        if kind == "int" and not pa.types.is_integer(array.type):
            whole = pc.equal(pc.floor(pc.cast(array, pa.float64())), pc.cast(array, pa.float64()))
            bad = pc.invert(pc.fill_null(whole, True))
            if pc.any(bad).as_py():
                raise col.fail(array, bad, "whole numbers")
            return pc.cast(array, target, safe=False)
        return pc.cast(array, target)
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), target)
    s = _trimmed(array)
    ok = pc.match_substring_regex(s, _INT if kind == "int" else _FLOAT)
    bad = pc.and_(pc.is_valid(s), pc.invert(pc.fill_null(ok, False)))
    if pc.any(bad).as_py():
        hint = " (money strings such as \"1,200\" need money = true)" if pc.any(
            pc.match_substring_regex(pc.filter(s, bad), r"[,，$¥￥元万]")).as_py() else ""
        raise col.fail(s, bad, ("whole numbers" if kind == "int" else "numbers") + hint)
    if kind == "int":
        return pc.cast(pc.cast(s, pa.float64()), pa.int64()) if pc.any(
            pc.match_substring_regex(s, r"\.")).as_py() else pc.cast(s, pa.int64())
    return pc.cast(s, pa.float64())


def _value_map(col: _Col, array: pa.Array) -> pa.Array:
    spec = col.spec
    pairs = spec.pairs()
    s = _trimmed(array)
    keys = pa.array(list(pairs), type=pa.string())
    targets = list(pairs.values())
    sample = next((t for t in targets), spec.other)
    if isinstance(sample, bool):
        typ = pa.bool_()
    elif isinstance(sample, int) and all(isinstance(t, int) for t in targets):
        typ = pa.int64()
    elif isinstance(sample, (int, float)):
        typ = pa.float64()
    else:
        typ = pa.string()
    values = pa.array(targets, type=typ)
    index = pc.index_in(s, value_set=keys)
    out = pc.take(values, index)
    unmapped = pc.and_(pc.is_valid(s), pc.is_null(index))
    if pc.any(unmapped).as_py():
        if spec.other is None:
            missing = pc.value_counts(pc.filter(s, unmapped)).to_pylist()
            missing.sort(key=lambda d: -d["counts"])
            shown = ", ".join(f"{d['values']!r} ({d['counts']} row{'s' if d['counts'] != 1 else ''})"
                              for d in missing[:_EXAMPLES])
            more = f" and {len(missing) - _EXAMPLES} more" if len(missing) > _EXAMPLES else ""
            raise DataContractError(
                f"{col}: {len(missing)} source value{'s' if len(missing) != 1 else ''} not in map: "
                f"{shown}{more}; add them to map or set other = \"...\""
            )
        out = pc.if_else(unmapped, pa.scalar(spec.other, typ), out)
    return out


def _to_bool(col: _Col, array: pa.Array) -> pa.Array:
    if pa.types.is_boolean(array.type):
        return array
    s = pc.utf8_lower(_trimmed(array))
    is_true, is_false = pc.is_in(s, pa.array(_TRUE)), pc.is_in(s, pa.array(_FALSE))
    bad = pc.and_(pc.is_valid(s), pc.invert(pc.or_(is_true, is_false)))
    if pc.any(bad).as_py():
        raise col.fail(s, bad, "booleans (expected 1/0, true/false, yes/no, 是/否)")
    return pc.if_else(pc.is_valid(s), is_true, pa.scalar(None, pa.bool_()))


def _dates(col: _Col, array: pa.Array, kind: str) -> pa.Array:
    spec = col.spec
    if pa.types.is_timestamp(array.type) or pa.types.is_date(array.type):
        return pc.cast(array, pa.timestamp("us"))
    if spec.date is None:
        return array  # the contracts read ISO-like text and yyyymmdd numbers, naming the column
    s = _trimmed(array)
    parsed = pc.strptime(s, format=spec.date, unit="us", error_is_null=True)
    bad = pc.and_(pc.is_valid(s), pc.is_null(parsed))
    if pc.any(bad).as_py():
        raise col.fail(s, bad, f"dates in the format {spec.date!r}")
    if spec.pivot is not None:
        # %y reads 69-99 as 19xx and 00-68 as 20xx; move each date into [pivot, pivot + 100)
        year = pc.year(parsed).to_numpy(zero_copy_only=False)
        shift = spec.pivot + np.mod(year - spec.pivot, 100) - year  # 0, +100 or -100 per row
        shift = pa.array(np.where(np.isnan(year.astype(float)), 0, shift).astype("int64"))
        if pc.any(pc.not_equal(shift, 0)).as_py():
            ts = parsed.to_pandas()
            years = pd.Series(shift.to_numpy(zero_copy_only=False), index=ts.index)
            moved = _shift_years(ts, years)
            parsed = pa.array(moved, type=pa.timestamp("us"), from_pandas=True)
    return parsed


def _shift_years(ts: pd.Series, years: pd.Series) -> pd.Series:
    """Add a whole number of years to each date (29 February moves to 28 February if needed)."""
    out = ts.copy()
    for k in years.dropna().unique():
        if k == 0:
            continue
        sel = years == k
        out[sel] = ts[sel] + pd.DateOffset(years=int(k))
    return out


def _hash_ids(col: _Col, array: pa.Array) -> pa.Array:
    """A stable 63-bit integer per distinct text id (the same in every table that uses it)."""
    s = _trimmed(array)
    values = pd.Series(s.to_numpy(zero_copy_only=False), dtype=object)
    present = values.notna()
    h = pd.util.hash_array(values[present].astype(str).to_numpy(), categorize=True) & np.uint64(2**63 - 1)
    out = np.zeros(len(values), dtype="int64")
    out[present.to_numpy()] = h.astype("int64")
    result = pa.array(out, mask=~present.to_numpy())
    if pc.count_distinct(result).as_py() != pc.count_distinct(s).as_py():  # ~1e-5 at 10M ids
        raise DataContractError(f"{col}: two distinct ids hash to the same number; use id = \"digits\" "
                                f"or a numeric id column")
    return result


def _digit_ids(col: _Col, array: pa.Array) -> pa.Array:
    if pa.types.is_integer(array.type):
        return array
    s = _trimmed(array)
    try:  # digits only, e.g. '0001234': read as they are (a sign is left to the contracts' min 0)
        return pc.cast(s, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    text = _Text(s)
    digits = _keep_bytes(s, (text.data >= 48) & (text.data <= 57), text.offsets, text.data)
    bad = pc.and_(pc.is_valid(s), pc.or_(pc.equal(digits, ""), pc.greater(pc.binary_length(digits), 18)))
    if pc.any(bad).as_py():
        raise col.fail(s, bad, "ids with 1 to 18 digits")
    return pc.cast(digits, pa.int64())


def _convert(col: _Col, array: pa.Array, kind: str | None) -> pa.Array:
    spec = col.spec
    if spec.id == "hash":
        return _hash_ids(col, array)
    if spec.id == "digits":
        return _digit_ids(col, array)
    if spec.map is not None:
        array = _value_map(col, array)
    if spec.money:
        array = _money(col, array)
    if spec.date is not None or kind in ("date", "timestamp"):
        array = _dates(col, array, kind or "date")
    elif kind in ("int", "float"):
        array = _number(col, array, kind)
    elif kind == "bool":
        array = _to_bool(col, array)
    elif kind == "str":
        array = _trimmed(array) if spec.map is None else array
    if spec.factor != 1.0:
        if not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)):
            array = _number(col, array, "float")
        array = pc.multiply(pc.cast(array, pa.float64()), spec.factor)
        if kind == "int":
            array = _number(col, array, "int")
    return array


def _constant(value: Any, n: int) -> pa.Array:
    if isinstance(value, dt.datetime):
        return pa.array(np.full(n, np.datetime64(value, "us")))
    if isinstance(value, dt.date):
        return pa.array(np.full(n, np.datetime64(value, "D")).astype("datetime64[us]"))
    return pa.repeat(pa.scalar(value), n)


def _attribute_kinds(table: str, dictionary: DataDictionary) -> dict[str, str]:
    kinds = {}
    for attr in dictionary.attributes:
        if attr.table == table:
            kinds[attr.name] = {"numeric": "float", "categorical": "str", "bool": "bool"}.get(attr.kind, "str")
    return kinds


def _map_table(table: str, spec: TableMapping, base: Path, dictionary: DataDictionary) -> pd.DataFrame:
    canonical = {c.name: c.kind for c in schema.TABLES[table].columns}
    kinds = {**_attribute_kinds(table, dictionary), **canonical}
    data = _read_source(table, spec, base, kinds)
    data, alias = _apply_sql(table, data, spec)
    n = data.num_rows
    where = _where(spec.source, base)
    _check_columns(table, where, data.column_names,
                   {s.column for s in spec.column_specs().values() if s.column is not None})
    out: dict[str, Any] = {}
    uses: dict[str, int] = {}
    for col_spec in spec.column_specs().values():
        if col_spec.column is not None:
            uses[col_spec.column] = uses.get(col_spec.column, 0) + 1
    for name, col_spec in spec.column_specs().items():
        col = _Col(table, name, col_spec, where)
        if col_spec.column is not None:
            array = data.column(col_spec.column).combine_chunks()
            uses[col_spec.column] -= 1
            if not uses[col_spec.column]:  # free the source text as soon as it is converted
                data = data.drop_columns([col_spec.column])
        elif col_spec.expr is not None:
            array = data.column(alias[name]).combine_chunks()
        elif col_spec.row_number:
            array = pa.array(np.arange(col_spec.start, col_spec.start + n, dtype="int64"))
        else:
            array = _constant(col_spec.value, n)
        array = _convert(col, array, col_spec.cast or kinds.get(name))
        if pa.types.is_timestamp(array.type):
            out[name] = pd.Series(array.to_numpy(zero_copy_only=False), dtype="datetime64[us]")
        elif pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            out[name] = pd.Series(array.to_pandas(), dtype="str" if array.null_count == 0 else object)
        else:
            out[name] = array.to_pandas()
    for column in schema.TABLES[table].columns:  # optional columns the bank does not have: null
        if column.nullable and column.name not in out:
            out[column.name] = pd.Series(pd.NA if column.kind not in ("date", "timestamp") else pd.NaT,
                                         index=pd.RangeIndex(n), dtype=_NULL_DTYPES[column.kind])
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------
# the whole mapping
# --------------------------------------------------------------------------------------------


def _load_dictionary(mapping: Mapping, base: Path) -> DataDictionary:
    """The mapping's data dictionary (relative to the mapping file), or the shipped default."""
    if mapping.dictionary is None:
        return load_dictionary(None)
    path = Path(mapping.dictionary).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise ConfigError(f"dictionary: file {path} not found (named in the mapping file)")
    return load_dictionary(path)


def map_tables(mapping: Mapping, base: Path) -> dict[str, pd.DataFrame]:
    """Build and validate every canonical table of ``mapping`` (paths relative to ``base``).

    The validated canonical columns come back with every further mapped column kept beside them
    (e.g. the bank's default flag or default date, which a run's label may name): a run decides
    what it uses and lists what it ignores; mapping never drops a column the mapping asked for."""
    dictionary = _load_dictionary(mapping, base)
    tables = {name: _map_table(name, spec, base, dictionary) for name, spec in mapping.tables.items()}
    valid = validate_tables(tables, dictionary=dictionary, extraction_date=pd.Timestamp(mapping.extraction_date))
    for name, frame in valid.items():
        extra = [c for c in tables[name].columns if c not in frame.columns]
        if extra and len(frame) == len(tables[name]):
            valid[name] = pd.concat([frame, tables[name][extra].set_axis(frame.index)], axis=1)
    return valid


def write_mapped(mapping_path: str | Path, out_dir: str | Path, *, force: bool = False
                 ) -> tuple[Path, dict[str, pd.DataFrame]]:
    """``creditmodel data map``: map, validate and write the tables and ``_dataset.json``, all or nothing.

    The output is checked first (creditmodel.outputs): never the mapping file, a source file or a
    folder holding them, and never a directory the kit did not write."""
    from creditmodel.data.io import write_tables
    from creditmodel.outputs import check_output

    mapping, base = load_mapping(mapping_path)
    inputs: dict[str, Path | None] = {"--mapping": Path(mapping_path)}
    for name, table in mapping.tables.items():
        if table.source.path is not None:
            inputs[f"tables.{name}.source"] = _resolve(table.source, base)
    check_output(out_dir, kind="dir", inputs=inputs, force=force)
    tables = map_tables(mapping, base)
    written = write_tables(tables, Path(out_dir).expanduser(), extraction_date=mapping.extraction_date, force=force)
    return written, tables

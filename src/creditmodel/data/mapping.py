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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from creditmodel.data import schema
from creditmodel.data.dictionary import DataDictionary, load_dictionary
from creditmodel.data.mapping_sql import KIND_TYPES, MONEY_HINT, ColumnSQL, Step, column_sql, ident, literal
from creditmodel.exceptions import ConfigError, DataContractError, TextedValueError, first_line
from creditmodel.texts import Phrase, listed, said, text
from creditmodel.texts.pydantic_errors import pydantic_phrase

if TYPE_CHECKING:  # pandas and pyarrow are imported where a frame is made (Excel, SQL, a CSV in another
    # encoding, the contracts), not by data map's path from a UTF-8 CSV to parquet
    import pandas as pd
    import pyarrow as pa

__all__ = ["TableMapping", "ColumnMapping", "Source", "Mapping", "load_mapping", "map_tables", "write_mapped",
           "convert_values"]

Scalar = str | int | float | bool
_CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".data", ".dat")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_EXAMPLES = 5


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
            raise TextedValueError.of("error.mapping.source.path_or_url")
        if self.url is not None and not (self.query and self.query.strip()):
            raise TextedValueError.of("error.mapping.source.needs_query")
        if self.header and self.names:
            raise TextedValueError.of("error.mapping.source.names_with_header")
        if not self.header and not self.names:
            raise TextedValueError.of("error.mapping.source.header_needs_names")
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise TextedValueError.of("error.mapping.source.delimiter", value=self.delimiter)
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
        raise TextedValueError.of("error.mapping.source.format", path=self.path)


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
            if given:
                raise TextedValueError.of("error.mapping.column.exactly_one_got", given=", ".join(given))
            raise TextedValueError.of("error.mapping.column.exactly_one")
        if self.pivot is not None and (self.date is None or "%y" not in self.date):
            raise TextedValueError.of("error.mapping.column.pivot")
        if self.money and (self.date is not None or self.map is not None):
            raise TextedValueError.of("error.mapping.column.money_with")
        if self.date is not None and self.map is not None:
            raise TextedValueError.of("error.mapping.column.date_with_map")
        if "other" in self.model_fields_set and self.map is None:
            raise TextedValueError.of("error.mapping.column.other_without_map")
        if self.factor != 1.0 and self.cast in ("str", "bool", "date", "timestamp"):
            raise TextedValueError.of("error.mapping.column.factor", cast=self.cast)
        if self.map is not None:
            seen: dict[str, Any] = {}
            for key, target in self.map.items():
                codes = target if isinstance(target, list) else [key]
                canonical = key if isinstance(target, list) else target
                for code in codes:
                    if code in seen and seen[code] != canonical:
                        raise TextedValueError.of("error.mapping.column.map_twice", code=code, first=seen[code],
                                                  second=canonical)
                    seen[code] = canonical
            kinds = {type(v) for v in seen.values()} | ({type(self.other)} if self.other is not None else set())
            if kinds == {int, float}:
                kinds = {float}
            if len(kinds) > 1:
                raise TextedValueError.of("error.mapping.column.map_types",
                                          types=", ".join(sorted(k.__name__ for k in kinds)))
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
            raise TextedValueError.of("error.mapping.no_columns")
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
            raise TextedValueError.of("error.contract.unknown_table", name=unknown[0], expected=", ".join(schema.TABLES))
        return v


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "ColumnMapping")))]
    return ".".join(parts) or "mapping"


def _problem(err: Any) -> Any:
    """What pydantic says of a value of the mapping file, as a field: the texts of this module's validators;
    pydantic's own message in the language of the error where the catalogue has it (``error.input.*``, with
    what pydantic adds after a comma kept as it writes it); else pydantic's English."""
    msg = str(err["msg"]).removeprefix("Value error, ")
    phrase = pydantic_phrase(err, exact=False)
    if phrase is None:
        return msg
    english = text(phrase.id, "en", **phrase.fields)
    if english == msg:
        return phrase
    if msg.startswith(english + ", "):
        return Phrase("error.mapping.problem_detail", {"problem": phrase, "detail": msg[len(english) + 2:]})
    return msg


def load_mapping(path: str | Path) -> tuple[Mapping, Path]:
    """Read and validate a mapping file; returns it and the directory relative paths resolve against."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError.of("error.mapping.file_not_found", path=path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError.of("error.mapping.file_not_utf8", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError.of("error.config.not_toml", path=path, detail=first_line(exc)) from None
    try:
        mapping = Mapping.model_validate(raw)
    except ValidationError as exc:
        # a column given as a table fails both "str" and ColumnMapping: report the table's problem
        errors = [e for e in exc.errors() if e["type"] != "string_type"] or exc.errors()
        err = errors[0]
        more = len(errors) - 1
        got = "" if err["type"] in ("missing", "value_error") else Phrase("error.mapping.got", {"value": err.get("input")})
        raise ConfigError.of("error.mapping.invalid", path=path, loc=_loc(err["loc"]), problem=_problem(err), got=got,
                             more=Phrase("error.mapping.more.one" if more == 1 else "error.mapping.more.many",
                                         {"n": more}) if more else "") from None
    for name, table in mapping.tables.items():
        try:
            _ = table.source.kind  # the property validates the source
        except ValueError as exc:
            raise ConfigError.of("error.mapping.bad_source", path=path, name=name, problem=said(exc)) from None
    return mapping, path.resolve().parent


# --------------------------------------------------------------------------------------------
# reading a source
# --------------------------------------------------------------------------------------------


def _text_columns(specs: dict[str, ColumnMapping], kinds: dict[str, str | None]) -> set[str]:
    """Source columns read as text: codes keep their zeros, and every column with a kind is converted
    (and its values checked) here, not guessed by a reader from the first rows."""
    out = set()
    for name, spec in specs.items():
        if spec.column is None:
            continue
        if spec.money or spec.date or spec.map is not None or spec.id or (spec.cast or kinds.get(name)):
            out.add(spec.column)
    return out


def _where(source: Source, base: Path) -> str | Phrase:
    if source.path is not None:
        return Path(source.path).name
    return Phrase("error.mapping.where.query")


def _resolve(source: Source, base: Path) -> Path:
    p = Path(source.path).expanduser()  # type: ignore[arg-type]
    return p if p.is_absolute() else base / p


def _read_csv(path: Path, source: Source, table: str, needed: set[str] | None, text: set[str]) -> pa.Table:
    import pyarrow as pa
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
        raise DataContractError.of("error.mapping.decode", table=table, file=path.name, encoding=source.encoding,
                                   reason=exc.reason, byte=exc.start) from None
    except LookupError:
        raise DataContractError.of("error.mapping.unknown_encoding", table=table, encoding=source.encoding,
                                   file=path.name) from None
    except pa.ArrowInvalid as exc:
        if "utf8" in str(exc).lower():  # pyarrow checks UTF-8 itself when no transcoding is asked for
            raise DataContractError.of("error.mapping.decode_invalid", table=table, file=path.name,
                                       encoding=source.encoding, invalid="UTF-8") from None
        raise DataContractError.of("error.mapping.csv_parse", table=table, file=path.name, delimiter=delimiter,
                                   detail=first_line(exc)) from None
    return data.rename_columns([_clean(c) for c in data.column_names])


def _clean(name: Any) -> str:
    return str(name).lstrip("\ufeff").strip()


def _check_columns(table: str, where: str | Phrase, columns: list[str], needed: set[str] | None) -> None:
    if needed is None:
        return
    missing = sorted(needed - set(columns))
    if missing:
        shown = ", ".join(repr(c) for c in columns[:20]) + (", ..." if len(columns) > 20 else "")
        if len(missing) > 1:
            raise DataContractError.of("error.mapping.column_missing_nor", table=table, column=missing[0], where=where,
                                       others=", ".join(repr(m) for m in missing[1:4]), shown=shown)
        raise DataContractError.of("error.mapping.column_missing", table=table, column=missing[0], where=where,
                                   shown=shown)


def _frame_to_arrow(df: pd.DataFrame, text: set[str]) -> pa.Table:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

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
    if isinstance(v, dt.datetime):  # also a pandas Timestamp
        return v.isoformat(sep=" ")
    return str(v).strip()


def _read_excel(path: Path, source: Source, table: str, needed: set[str] | None, text: set[str]) -> pa.Table:
    import pandas as pd

    try:
        df = pd.read_excel(path, sheet_name=source.sheet, header=0 if source.header else None,
                           names=source.names if not source.header else None,
                           skiprows=source.skip_rows or None, engine="openpyxl")
    except ImportError:
        raise DataContractError.of("error.mapping.excel_needs_openpyxl", table=table) from None
    except ValueError as exc:
        raise DataContractError.of("error.mapping.excel_sheet", table=table, sheet=source.sheet, file=path.name,
                                   detail=first_line(exc)) from None
    except Exception as exc:  # noqa: BLE001 - openpyxl / zipfile raise many types for a bad file
        raise DataContractError.of("error.mapping.excel_unreadable", table=table, file=path.name,
                                   kind=type(exc).__name__, detail=first_line(exc)) from None
    df.columns = [_clean(c) for c in df.columns]
    _check_columns(table, Phrase("error.mapping.where.sheet", {"file": path.name, "sheet": source.sheet}),
                   list(df.columns), needed)
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
        raise DataContractError.of("error.mapping.parquet_unreadable", table=table, file=path.name,
                                   detail=first_line(exc)) from None


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
    import pandas as pd
    import sqlalchemy as sa

    url = _engine_url(source.url or "")
    try:
        engine = sa.create_engine(url)
    except sa.exc.NoSuchModuleError:
        raise DataContractError.of("error.mapping.sql_unknown_kind", table=table, url=_shown_url(url)) from None
    except (sa.exc.ArgumentError, ValueError, ImportError) as exc:
        raise DataContractError.of("error.mapping.sql_bad_url", table=table, url=_shown_url(url),
                                   detail=first_line(exc)) from None
    try:
        with engine.connect() as con:
            result = con.execute(sa.text(source.query or ""))
            if not result.returns_rows:
                raise DataContractError.of("error.mapping.sql_no_rows", table=table)
            df = pd.DataFrame.from_records(result.fetchall(), columns=list(result.keys()), coerce_float=False)
    except sa.exc.OperationalError as exc:
        raise DataContractError.of("error.mapping.sql_connect", table=table, url=_shown_url(url),
                                   detail=first_line(exc.orig) if exc.orig else first_line(exc)) from None
    except sa.exc.SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)  # the driver's own error, when there is one
        raise DataContractError.of("error.mapping.sql_failed", table=table, url=_shown_url(url),
                                   detail=first_line(orig) if orig else first_line(exc)) from None
    finally:
        engine.dispose()
    df.columns = [_clean(c) for c in df.columns]
    _check_columns(table, Phrase("error.mapping.where.query_result"), list(df.columns), needed)
    if needed is not None:
        df = df[[c for c in df.columns if c in needed]]
    return _frame_to_arrow(df, text)


def _csv_encoding(encoding: str) -> str | None:
    """The name DuckDB's own CSV reader knows the encoding by, or None (read by pyarrow instead)."""
    import codecs

    name = codecs.lookup(encoding).name  # LookupError: unknown
    return {"utf-8": "utf-8", "utf-8-sig": "utf-8", "latin-1": "latin-1", "iso8859-1": "latin-1",
            "utf-16": "utf-16"}.get(name)


def _sniff(con: Any, path: Path, opts: list[str]) -> tuple[Any, ...]:
    """DuckDB's sniffer on the file with the options given: quote, escape, new line, comment, rows
    skipped, columns (name and type) and the date and timestamp formats."""
    return tuple(con.execute(f"SELECT Quote, Escape, NewLineDelimiter, Comment, SkipRows, Columns, DateFormat, "
                             f"TimestampFormat FROM sniff_csv({literal(str(path))}, {', '.join(opts)})").fetchall()[0])


def _duckdb_csv(con: Any, path: Path, source: Source, table: str, needed: set[str] | None, text: set[str],
                encoding: str) -> str:
    """The CSV as a DuckDB view (read in parallel, streamed, mapped columns as text).

    The file is sniffed once (twice when a column read as a typed value sits beside columns read
    as text, whose values must take no part in its detection) and read with the sniffed dialect
    and column types written out, as ``sniff_csv`` reports them: later uses of the view do not
    sniff the file again. Columns the mapping does not use are read as text (never converted)."""
    import duckdb

    delimiter = source.delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    opts = [f"header = {'true' if source.header else 'false'}", f"delim = {literal(delimiter)}",
            f"encoding = {literal(encoding)}"]
    if source.skip_rows:
        opts.append(f"skip = {source.skip_rows}")
    if source.names:
        opts.append("names = [" + ", ".join(literal(n) for n in source.names) + "]")
    try:
        sniffed = _sniff(con, path, opts)
        raw = [c["name"] for c in sniffed[5]]
        columns = [_clean(c) for c in raw]
        _check_columns(table, path.name, columns, needed)
        used = {r for r, c in zip(raw, columns) if needed is None or c in needed}
        as_text = {r for r, c in zip(raw, columns) if c in text or r not in used}
        if as_text and any(r not in as_text for r in raw):  # typed columns detected without the text ones
            sniffed = _sniff(con, path, [*opts, "types = {" + ", ".join(f"{literal(r)}: 'VARCHAR'" for r in raw
                                                                         if r in as_text) + "}"])
        quote, escape, new_line, comment, skip, detected, date_format, ts_format = sniffed
        types = {c["name"]: "VARCHAR" if c["name"] in as_text else c["type"] for c in detected}

        def given(v: str) -> str:
            return literal("" if v == "(empty)" else v)

        read = [o for o in opts if not o.startswith(("skip", "names"))]
        read += [f"quote = {given(quote)}", f"escape = {given(escape)}", f"comment = {given(comment)}",
                 f"skip = {int(skip)}"]
        if new_line in ("\\n", "\\r\\n", "\\r"):
            read.append(f"new_line = {literal(new_line)}")
        if date_format is not None:
            read.append(f"dateformat = {literal(date_format)}")
        if ts_format is not None:
            read.append(f"timestampformat = {literal(ts_format)}")
        read.append("columns = {" + ", ".join(f"{literal(r)}: {literal(t)}" for r, t in types.items()) + "}")
        select = ", ".join(f"{ident(r)} AS {ident(c)}" for r, c in zip(raw, columns) if r in used)
        view = f"src_{table}"
        con.execute(f"CREATE TEMP VIEW {view} AS SELECT {select} FROM "
                    f"read_csv({literal(str(path))}, auto_detect = false, {', '.join(read)})").fetchall()
        con.execute(f"SELECT * FROM {view} LIMIT 1").fetchall()  # the dialect and types, checked now
    except duckdb.Error as exc:
        raise _csv_error(exc, table, path, source, delimiter) from None
    return view


# pyarrow's null strings (``pyarrow.csv.ConvertOptions().null_values``), for a decoded CSV read as it reads it
_ARROW_NULLS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "N/A", "NA",
                "NULL", "NaN", "n/a", "nan", "null")


def _decoded_csv(con: Any, path: Path, source: Source, table: str, needed: set[str]) -> str:
    """A CSV in an encoding DuckDB's reader does not know (GBK, GB18030, ...) whose columns are all
    read as text: decoded by Python into a UTF-8 copy that DuckDB reads as ``_read_csv`` (pyarrow)
    would (quotes doubled, no escape, pyarrow's null strings, empty lines skipped), and kept as a
    table (pyarrow holds the table in memory too), without importing pyarrow and numpy."""
    import codecs
    import tempfile

    import duckdb

    delimiter = source.delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    decoder = codecs.getincrementaldecoder(source.encoding)()
    with tempfile.TemporaryDirectory(prefix="creditmodel-map-") as tmp:
        copy = Path(tmp) / "source.csv"
        done = 0
        with path.open("rb") as src, copy.open("w", encoding="utf-8", newline="") as out:
            while True:
                block = src.read(16 << 20)
                pending = len(decoder.getstate()[0])
                try:
                    out.write(decoder.decode(block, final=not block))
                except UnicodeDecodeError as exc:
                    raise DataContractError.of("error.mapping.decode", table=table, file=path.name,
                                               encoding=source.encoding, reason=exc.reason,
                                               byte=done - pending + exc.start) from None
                if not block:
                    break
                done += len(block)
        opts = [f"header = {'true' if source.header else 'false'}", f"delim = {literal(delimiter)}",
                "quote = '\"'", "escape = '\"'", f"skip = {source.skip_rows}", "all_varchar = true",
                "nullstr = [" + ", ".join(literal(n) for n in _ARROW_NULLS) + "]"]
        if source.names:
            opts.append("names = [" + ", ".join(literal(n) for n in source.names) + "]")
        call = f"read_csv({literal(str(copy))}, {', '.join(opts)})"
        try:
            raw = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {call}").fetchall()]
            columns = [_clean(c) for c in raw]
            _check_columns(table, path.name, columns, needed)
            select = ", ".join(f"{ident(r)} AS {ident(c)}" for r, c in zip(raw, columns) if c in needed)
            view = f"decoded_{table}"
            con.execute(f"CREATE TEMP TABLE {view} AS SELECT {select} FROM {call}").fetchall()
        except duckdb.Error as exc:
            raise _csv_error(exc, table, path, source, delimiter) from None
    return view


def _csv_error(exc: Exception, table: str, path: Path, source: Source, delimiter: str) -> DataContractError:
    text = str(exc)
    if "invalid unicode" in text.lower():
        return DataContractError.of("error.mapping.decode_invalid", table=table, file=path.name,
                                    encoding=source.encoding, invalid=source.encoding)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    detail = next((ln for ln in lines if ln.lower().startswith(("expected", "could not convert", "value with"))),
                  lines[0] if lines else type(exc).__name__)
    where = next((ln for ln in lines if "line:" in ln.lower()), "")
    fields = {"table": table, "file": path.name, "delimiter": delimiter,
              "detail": detail.removeprefix("Invalid Input Error: ")}
    if where and where not in detail:
        return DataContractError.of("error.mapping.csv_parse_at", **fields, line=where.split("Error")[-1].strip(" :"))
    return DataContractError.of("error.mapping.csv_parse", **fields)


def _source_view(con: Any, table: str, spec: TableMapping, base: Path, kinds: dict[str, str | None]) -> str:
    """Register the table's source rows in ``con``; returns the name of the view holding them."""
    specs = spec.column_specs()
    uses_sql = spec.filter is not None or any(s.expr is not None for s in specs.values()) or (
        spec.source.path is not None and spec.source.query is not None)
    needed = None if uses_sql else {s.column for s in specs.values() if s.column is not None}
    source = spec.source
    # with a query over a file the mapped names are the query's: the file is read with its own types
    text = set() if source.path is not None and source.query is not None else _text_columns(specs, kinds)
    view = f"src_{table}"
    if source.kind == "sql":
        con.register(view, _read_sql(source, table, needed, text))
        return view
    path = _resolve(source, base)
    if not path.is_file():
        raise DataContractError.of("error.mapping.source_not_found", table=table, path=path)
    if source.kind == "csv":
        try:
            encoding = _csv_encoding(source.encoding)
        except LookupError:
            raise DataContractError.of("error.mapping.unknown_encoding", table=table, encoding=source.encoding,
                                       file=path.name) from None
        if encoding is not None:
            view = _duckdb_csv(con, path, source, table, needed, text, encoding)
        elif needed is not None and needed <= text:  # nothing to infer a type for: no pyarrow needed
            view = _decoded_csv(con, path, source, table, needed)
        else:
            con.register(view, _read_csv(path, source, table, needed, text))
    elif source.kind == "excel":
        con.register(view, _read_excel(path, source, table, needed, text))
    else:
        con.register(view, _read_parquet(path, table, needed))
    if source.query is None:
        return view
    import duckdb

    con.execute(f"CREATE TEMP VIEW source AS SELECT * FROM {view}").fetchall()
    try:
        con.execute(f"CREATE TEMP TABLE query_{table} AS {source.query}").fetchall()
    except duckdb.Error as exc:
        raise DataContractError.of("error.mapping.query_failed", table=table, detail=first_line(exc)) from None
    finally:
        con.execute("DROP VIEW IF EXISTS source").fetchall()
    return f"query_{table}"


def _filtered(con: Any, table: str, view: str, spec: TableMapping) -> tuple[str, dict[str, str]]:
    """The source rows after the mapping's filter, with its ``expr`` columns and a row order."""
    import duckdb

    specs = spec.column_specs()
    exprs = {name: s.expr for name, s in specs.items() if s.expr is not None}
    alias = {name: f"__expr_{i}" for i, name in enumerate(exprs)}
    numbered = any(s.row_number for s in specs.values())
    select = ", ".join(["*"] + [f"({e}) AS {ident(alias[n])}" for n, e in exprs.items()])
    if numbered:  # row numbers follow the file's order: number the rows as read, then filter
        con.execute(f"CREATE TEMP TABLE ordered_{table} AS SELECT * FROM {view}").fetchall()
        view, select = f"ordered_{table}", select + ", rowid AS __row"
    name = f"rows_{table}"
    query = f"SELECT {select} FROM {view}" + (f" WHERE ({spec.filter})" if spec.filter else "")
    try:
        con.execute(f"CREATE TEMP VIEW {name} AS {query}").fetchall()
        con.execute(f"SELECT * FROM {name} LIMIT 0").fetchall()
    except duckdb.Error as exc:
        culprit = next((f"columns.{n}.expr {e!r}" for n, e in exprs.items() if _fails(con, view, e)), None)
        what = culprit or (f"filter {spec.filter!r}" if spec.filter else Phrase("error.mapping.expressions"))
        raise DataContractError.of("error.mapping.rows_failed", table=table, what=what, detail=first_line(exc)) from None
    return name, alias


def _fails(con: Any, view: str, expr: str) -> bool:
    try:
        con.execute(f"SELECT ({expr}) FROM {view} LIMIT 1").fetchall()
        return False
    except Exception:  # noqa: BLE001 - any DuckDB error marks this expression as the culprit
        return True


# --------------------------------------------------------------------------------------------
# converting a table (DuckDB SQL, in one parallel pass)
# --------------------------------------------------------------------------------------------


class _Col:
    """Names used in messages: canonical table.column and where it came from."""

    def __init__(self, table: str, name: str, spec: ColumnMapping, where: str | Phrase) -> None:
        self.table, self.name, self.spec, self.where = table, name, spec, where

    def said(self) -> str | Phrase:
        """The column as a field of a message (said in the message's language)."""
        if self.spec.column is not None:
            return Phrase("error.mapping.col.source", {"table": self.table, "name": self.name,
                                                       "column": self.spec.column, "where": self.where})
        if self.spec.expr is not None:
            return Phrase("error.mapping.col.expr", {"table": self.table, "name": self.name, "expr": self.spec.expr})
        return f"{self.table}.{self.name}"


def _attribute_kinds(table: str, dictionary: DataDictionary) -> dict[str, str]:
    kinds = {}
    for attr in dictionary.attributes:
        if attr.table == table:
            kinds[attr.name] = {"numeric": "float", "categorical": "str", "bool": "bool"}.get(attr.kind, "str")
    return kinds


def _levels(rows: str, columns: dict[str, ColumnSQL]) -> str:
    """Nested SELECTs adding each column's i-th step at level i (a step reads only earlier ones)."""
    query = f"SELECT * FROM {rows}"
    depth = max((len(c.steps) for c in columns.values()), default=0)
    for level in range(depth):
        adds = [f"{step.sql} AS {ident(step.name)}" for c in columns.values()
                for step in c.steps[level:level + 1]]
        query = f"SELECT *, {', '.join(adds)} FROM ({query})"
    return query


def _failure(con: Any, col: _Col, levels: str, step: Any, count: int) -> DataContractError:
    """The message of a failed check: how many values, and the commonest ones."""
    rows = con.execute(f"SELECT {step.of} AS v, count(*) AS n FROM ({levels}) WHERE {ident(step.name)} "
                   f"GROUP BY 1 ORDER BY n DESC, v LIMIT {_EXAMPLES + 1}").fetchall()
    if step.map_check:
        distinct = con.execute(f"SELECT count(DISTINCT {step.of}) FROM ({levels}) WHERE {ident(step.name)}").fetchall()[0][0]
        shown = listed([Phrase("error.mapping.value_rows.one" if n == 1 else "error.mapping.value_rows.many",
                                {"value": v, "n": n}) for v, n in rows[:_EXAMPLES]])
        more = Phrase("error.mapping.and_more", {"n": distinct - _EXAMPLES}) if distinct > _EXAMPLES else ""
        return DataContractError.of("error.mapping.not_in_map.one" if distinct == 1 else "error.mapping.not_in_map.many",
                                    col=col.said(), n=distinct, shown=shown, more=more)
    expected = _expected(step.check, col.spec)
    if step.check in ("numbers", "whole numbers"):
        hinted = con.execute(f"SELECT count(*) FROM ({levels}) WHERE {ident(step.name)} "
                         f"AND regexp_matches(CAST({step.of} AS VARCHAR), {literal(MONEY_HINT)})").fetchall()[0][0]
        if hinted:
            expected = Phrase("error.mapping.expect.money_hint", {"expected": expected})
    shown = ", ".join(repr(v) for v, _ in rows[:_EXAMPLES])
    return DataContractError.of("error.mapping.not_valid.one" if count == 1 else "error.mapping.not_valid.many",
                                col=col.said(), n=count, expected=expected, shown=shown)


# what a failed check's values should have been (``mapping_sql.Step.check``), as texts of the catalogue
_EXPECTED = {
    "numbers": ("numbers", {}),
    "whole numbers": ("whole_numbers", {}),
    'money amounts (expected e.g. 1200, "$1,200.00", "1,200元", "12.5万", "(1,200)")':
        ("money", {"examples": '1200, "$1,200.00", "1,200元", "12.5万", "(1,200)"'}),
    "booleans (expected 1/0, true/false, yes/no, 是/否)": ("booleans", {}),
    "dates (expected yyyymmdd numbers)": ("yyyymmdd", {}),
    'dates (expected e.g. 2024-01-31; set date = "%d/%m/%Y" for another format)': ("dates", {}),
    "ids with 1 to 18 digits": ("ids", {}),
}


def _expected(check: str | None, spec: ColumnMapping) -> str | Phrase:
    """What the values of a failed check should have been, said in the message's language (a check this
    module does not know keeps its words)."""
    if check in _EXPECTED:
        id_, fields = _EXPECTED[check]
        return Phrase(f"error.mapping.expect.{id_}", fields)
    if spec.date is not None and check == f"dates in the format {spec.date!r}":
        return Phrase("error.mapping.expect.date_format", {"format": spec.date})
    return str(check)


def _convert_table(con: Any, table: str, spec: TableMapping, base: Path, dictionary: DataDictionary) -> _Converted:
    """One table's conversion: canonical columns (typed, in schema order), then the dictionary's
    attributes and further mapped columns."""
    canonical = {c.name: c.kind for c in schema.TABLES[table].columns}
    kinds: dict[str, str | None] = {**_attribute_kinds(table, dictionary), **canonical}
    view = _source_view(con, table, spec, base, kinds)
    rows, alias = _filtered(con, table, view, spec)
    return _evaluate(con, table, rows, spec.column_specs(), alias, kinds, _where(spec.source, base))


@dataclass
class _Converted:
    """One table's conversion as a query (not yet run) and what explains a failure of it."""

    table: str
    query: str  # canonical columns in schema order, then further mapped ones; a failed check raises
    levels: str  # the source rows with every step of every column
    checks: list[tuple[str, Step]]
    columns: dict[str, ColumnSQL]
    specs: dict[str, ColumnMapping]
    where: str | Phrase

    def diagnose(self, con: Any) -> DataContractError | None:
        """The first failed check (in column order) with its commonest values, or None."""
        if self.checks:
            counts = con.execute("SELECT " + ", ".join(f"count_if({ident(s.name)})" for _, s in self.checks)
                                 + f" FROM ({self.levels})").fetchall()[0]
            for (name, step), count in zip(self.checks, counts):
                if count:
                    return _failure(con, _Col(self.table, name, self.specs[name], self.where), self.levels,
                                    step, count)
        for name, c in self.columns.items():
            if c.collisions is not None:
                distinct = con.execute(f"SELECT count(DISTINCT {c.collisions}), count(DISTINCT {c.value}) "
                                       f"FROM ({self.levels})").fetchall()[0]
                if distinct[0] != distinct[1]:
                    return DataContractError.of("error.mapping.id_collision",
                                                col=_Col(self.table, name, self.specs[name], self.where).said())
        return None


_CHECK_FAILED = "creditmodel: a mapped value failed its check"


def _evaluate(con: Any, table: str, rows: str, specs: dict[str, ColumnMapping], alias: dict[str, str],
              kinds: dict[str, str | None], where: str | Phrase) -> _Converted:
    """The conversion of the columns of ``rows`` as one query: every value that fails its check
    raises (so the clean data go from the source to the output in one pass, and only a failure is
    looked at twice, by ``_Converted.diagnose``)."""
    canonical = {c.name: c.kind for c in schema.TABLES[table].columns}
    types = {r[0]: str(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {rows}").fetchall()}
    _check_columns(table, where, list(types), {s.column for s in specs.values() if s.column is not None})
    columns: dict[str, ColumnSQL] = {}
    for i, (name, col_spec) in enumerate(specs.items()):
        if col_spec.column is not None:
            source, typ = ident(col_spec.column), types[col_spec.column]
        elif col_spec.expr is not None:
            source, typ = ident(alias[name]), types[alias[name]]
        elif col_spec.row_number:
            source, typ = f"(row_number() OVER (ORDER BY __row) + {col_spec.start - 1})", "BIGINT"
        else:
            value = col_spec.value
            source = literal(value)
            typ = ("BOOLEAN" if isinstance(value, bool) else "BIGINT" if isinstance(value, int)
                   else "DOUBLE" if isinstance(value, float)
                   else "TIMESTAMP" if isinstance(value, (dt.date, dt.datetime)) else "VARCHAR")
        columns[name] = column_sql(f"__c{i}", col_spec, source, typ, col_spec.cast or kinds.get(name))
    levels = _levels(rows, columns)
    order = [c.name for c in schema.TABLES[table].columns] + [n for n in specs if n not in canonical]
    select = []
    for name in order:
        if name in columns:
            c = columns[name]
            failed = " OR ".join(ident(step.name) for step in c.checks())
            value = f"CASE WHEN {failed} THEN error({literal(_CHECK_FAILED)}) ELSE {c.value} END" if failed else c.value
            select.append(f"{value} AS {ident(name)}")
        elif schema.TABLES[table].column(name).nullable:  # optional columns the bank does not have
            select.append(f"CAST(NULL AS {KIND_TYPES[canonical[name]]}) AS {ident(name)}")
    checks = [(name, step) for name, c in columns.items() for step in c.checks()]
    return _Converted(table, f"SELECT {', '.join(select)} FROM ({levels})", levels, checks, columns, specs, where)


def _run(con: Any, conv: _Converted, sql: str, source: Source | None = None, base: Path | None = None) -> Any:
    """Run ``sql`` (which reads ``conv.query``); a failed check or a bad source line becomes one line."""
    import duckdb

    try:
        return con.execute(sql).fetchall()
    except duckdb.Error as exc:
        if _CONTRACT_BROKEN in str(exc):
            raise _Violation from None
        if _CHECK_FAILED in str(exc):
            raise (conv.diagnose(con) or DataContractError.of("error.mapping.check_failed", table=conv.table)) from None
        if source is not None and source.kind == "csv" and "CSV Error" in str(exc):  # a bad line further down
            path = _resolve(source, base or Path("."))
            delimiter = source.delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
            raise _csv_error(exc, conv.table, path, source, delimiter) from None
        raise DataContractError.of("error.mapping.convert_failed", table=conv.table, detail=first_line(exc)) from None


def convert_values(spec: ColumnMapping, values: list[Any], kind: str | None = None, *,
                   table: str = "loans", name: str = "value") -> list[Any]:
    """One column's conversion applied to ``values`` (given as source column ``spec.column``): what
    ``data map`` makes of them, or its DataContractError. For trying a mapping rule on a few values."""

    if spec.column is None:
        raise ConfigError.of("error.mapping.convert_values_column")
    import pyarrow as pa

    with _connect() as con:
        con.register("preview_rows", pa.table({spec.column: pa.array(values)}))
        conv = _evaluate(con, table, "preview_rows", {name: spec}, {}, {name: kind},
                         Phrase("error.mapping.where.values_given"))
        return [r[0] for r in _run(con, conv, f"SELECT {ident(name)} FROM ({conv.query})")]

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
        raise ConfigError.of("error.mapping.dictionary_not_found", path=path)
    return load_dictionary(path)


def _connect() -> Any:
    """An in-memory DuckDB for one mapping (all cores, no progress bar on the terminal)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false").fetchall()
    return con


def _convert_all(con: Any, mapping: Mapping, base: Path, dictionary: DataDictionary) -> dict[str, _Converted]:
    """Every table of the mapping, converted in ``con`` (as queries, not yet run)."""
    return {name: _convert_table(con, name, spec, base, dictionary) for name, spec in mapping.tables.items()}


def _frames(con: Any, mapped: dict[str, _Converted], mapping: Mapping, dictionary: DataDictionary
            ) -> dict[str, pd.DataFrame]:
    """The mapped tables through the contracts (``validate_tables``), every further mapped column kept."""
    import pandas as pd

    from creditmodel.data.contracts import validate_tables

    tables = {}
    for name, conv in mapped.items():
        spec = mapping.tables[name]
        _run(con, conv, f"CREATE OR REPLACE TEMP TABLE frame AS {conv.query}", spec.source, None)
        tables[name] = con.execute("SELECT * FROM frame").df()
    valid = validate_tables(tables, dictionary=dictionary, extraction_date=pd.Timestamp(mapping.extraction_date))
    for name, frame in valid.items():
        extra = [c for c in tables[name].columns if c not in frame.columns]
        if extra and len(frame) == len(tables[name]):
            valid[name] = pd.concat([frame, tables[name][extra].set_axis(frame.index)], axis=1)
    return valid


def map_tables(mapping: Mapping, base: Path) -> dict[str, pd.DataFrame]:
    """Build and validate every canonical table of ``mapping`` (paths relative to ``base``).

    The validated canonical columns come back with every further mapped column kept beside them
    (e.g. the bank's default flag or default date, which a run's label may name): a run decides
    what it uses and lists what it ignores; mapping never drops a column the mapping asked for."""

    dictionary = _load_dictionary(mapping, base)
    with _connect() as con:
        return _frames(con, _convert_all(con, mapping, base, dictionary), mapping, dictionary)


def write_mapped(mapping_path: str | Path, out_dir: str | Path, *, force: bool = False
                 ) -> tuple[Path, dict[str, int]]:
    """``creditmodel data map``: map, validate and write the tables and ``_dataset.json``, all or nothing.

    The output is checked first (creditmodel.outputs): never the mapping file, a source file or a
    folder holding them, and never a directory the kit did not write. Tables go from their
    source through DuckDB straight to parquet, the contracts' rules checked in SQL on the way
    (``contracts_sql``); a violation discards the output and ``validate_tables`` names every
    failure. Returns the output and the rows of each table."""

    from creditmodel.data.io import write_tables
    from creditmodel.outputs import check_output

    mapping, base = load_mapping(mapping_path)
    inputs: dict[str, Path | None] = {"--mapping": Path(mapping_path)}
    for name, table in mapping.tables.items():
        if table.source.path is not None:
            inputs[f"tables.{name}.source"] = _resolve(table.source, base)
    check_output(out_dir, kind="dir", inputs=inputs, force=force)
    dictionary = _load_dictionary(mapping, base)
    out = Path(out_dir).expanduser()
    with _connect() as con:
        mapped = _convert_all(con, mapping, base, dictionary)
        rows = _write_checked(con, mapped, mapping, base, dictionary, out, force)
        if rows is not None:
            return out, rows
        tables = _frames(con, mapped, mapping, dictionary)  # raises, naming every failure
    write_tables(tables, out, extraction_date=mapping.extraction_date, force=force)
    return out, {name: len(df) for name, df in tables.items()}


class _Violation(Exception):
    """A contract rule is broken: the contracts (pandas) will say which."""


def _write_checked(con: Any, mapped: dict[str, _Converted], mapping: Mapping, base: Path,
                   dictionary: DataDictionary, out: Path, force: bool) -> dict[str, int] | None:
    """Each table from its source to parquet in one pass, the contracts' row rules checked on the
    way and its keys on the written files; None (nothing written) at the first violation."""
    from creditmodel.data import contracts_sql
    from creditmodel.data.io import write_dataset_info
    from creditmodel.outputs import Output

    specs = contracts_sql.tables(dictionary)
    guarded = {}
    for name, conv in mapped.items():
        for c in conv.columns.values():
            if c.collisions is not None:
                error = conv.diagnose(con)
                if error is not None:
                    raise error
        types = {r[0]: str(r[1]) for r in con.execute(f"DESCRIBE {conv.query}").fetchall()}
        known = {n: c.values for n, c in conv.columns.items() if c.values is not None}
        guard = contracts_sql.row_guard(specs[name], types, mapping.extraction_date, known)
        if guard is None:
            return None
        first = ident(next(iter(types)))
        guarded[name] = (f"SELECT * REPLACE (CASE WHEN {guard} THEN error({literal(_CONTRACT_BROKEN)}) "
                         f"ELSE {first} END AS {first}) FROM ({conv.query})")
    try:
        with Output(out, kind="dir", command="data map", force=force, label="--out") as output:
            write_dataset_info(output.tmp, mapping.extraction_date)
            files = {name: output.tmp / f"{name}.parquet" for name in mapped}
            for name, conv in mapped.items():
                _run(con, conv, f"COPY ({guarded[name]}) TO {literal(str(files[name]))} (FORMAT parquet)",
                     mapping.tables[name].source, base)
            written = {name: f"SELECT * FROM read_parquet({literal(str(f))})" for name, f in files.items()}
            if contracts_sql.key_violations(con, written, dictionary):
                raise _Violation
            return {name: con.execute(f"SELECT count(*) FROM ({q})").fetchall()[0][0] for name, q in written.items()}
    except _Violation:
        return None


_CONTRACT_BROKEN = "creditmodel: a mapped row breaks a contract rule"

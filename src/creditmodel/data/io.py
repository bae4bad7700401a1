"""Reading and writing the canonical tables.

A source is either a directory holding, per canonical table, ``<table>.parquet``, ``<table>.csv``
or a directory ``<table>/`` of parquet parts (``part-00000.parquet``, ... read in name order, as
``synthetic.write_world_partitioned`` writes large tables; other files and subdirectories such as
``_truth/`` are ignored), or a DuckDB database file (``.duckdb`` / ``.db``) holding tables of
those names. Every problem with the source leaves as a one-line ``DataContractError`` naming the
file (and table.column where it applies).

A source declares its as-of date, the extraction date, in ``<dir>/_dataset.json``
(``{"extraction_date": "YYYY-MM-DD"}``; names starting with ``_`` are not tables) or, in a DuckDB
file, in a table ``_dataset`` with a column ``extraction_date``. Labels and the no-future-rows
contract need it; ``resolve_extraction_date`` takes the configured date first, then the declared
one, and asks for it when neither is given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from creditmodel.data import schema
from creditmodel.data.dictionary import DataDictionary
from creditmodel.exceptions import ConfigError, DataContractError, first_line
from creditmodel.outputs import Output
from creditmodel.texts import Phrase

if TYPE_CHECKING:  # imported where used: ``data map`` writes its output without loading pandas
    import pandas as pd

__all__ = ["extraction_timestamp", "read_tables", "write_tables", "load_tables", "DATASET_FILE", "declared_extraction_date",
           "write_dataset_info", "resolve_extraction_date"]

DATASET_FILE = "_dataset.json"
DATASET_TABLE = "_dataset"

_DUCKDB_SUFFIXES = (".duckdb", ".db")
_DELIMITERS = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}


def _delimiter_name(delimiter: str) -> str | Phrase:
    """How a message names a delimiter: quoted, or tab (a text, said in the message's language)."""
    if delimiter == "\t":
        return Phrase("error.io.tab")
    return _DELIMITERS.get(delimiter, repr(delimiter))


def _and(items: Sequence[Any]) -> Any:
    """Two or more items joined as the message's language joins them ("a and b", "a、b")."""
    joined = items[0]
    for item in items[1:]:
        joined = Phrase("error.io.and", {"a": joined, "b": item})
    return joined


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def _clean_name(name: Any) -> str:
    """Column names as written by spreadsheets: drop a UTF-8 byte-order mark and outer spaces."""
    return str(name).lstrip("\ufeff").strip()


def _csv_header(path: Path, encoding: str, delimiter: str) -> list[str]:
    import pandas as pd

    try:
        header = pd.read_csv(path, nrows=0, encoding=encoding, sep=delimiter)
    except pd.errors.EmptyDataError:
        raise DataContractError.of("error.io.csv_empty", path=path) from None
    return [str(c) for c in header.columns]


def _check_delimiter(path: Path, columns: list[str], delimiter: str) -> None:
    if len(columns) != 1:
        return
    found = [d for d in _DELIMITERS if d != delimiter and d in columns[0]]
    if found:
        raise DataContractError.of("error.io.delimiter", path=path, column=columns[0][:60],
                                   used=_delimiter_name(delimiter), found=_delimiter_name(found[0]), flag=found[0])


def _read_csv(path: Path, table: str, encoding: str, delimiter: str) -> pd.DataFrame:
    import pandas as pd

    t = schema.TABLES[table]
    kinds = {c.name: c.kind for c in t.columns}
    try:
        raw_columns = _csv_header(path, encoding, delimiter)
        _check_delimiter(path, raw_columns, delimiter)
        # Text and date columns are read as text: ids like '0571' keep their zeros and dates
        # are parsed below with a message naming the column.
        as_text = {
            raw: "str"
            for raw in raw_columns
            if kinds.get(_clean_name(raw)) in ("str", "date", "timestamp")
        }
        df = pd.read_csv(path, encoding=encoding, sep=delimiter, dtype=as_text)
    except UnicodeDecodeError as exc:
        raise DataContractError.of("error.io.csv_decode", path=path, encoding=encoding, reason=exc.reason) from None
    except LookupError:
        raise DataContractError.of("error.io.unknown_encoding", path=path, encoding=encoding) from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataContractError.of("error.io.csv_parse", path=path, delimiter=_delimiter_name(delimiter),
                                   detail=first_line(exc)) from None
    df.columns = [_clean_name(c) for c in df.columns]
    for column in df.columns:
        if kinds.get(column) in ("date", "timestamp"):
            from creditmodel.data.contracts import _parse_dates  # pandera: imported when needed
            parsed, bad = _parse_dates(df[column])
            if bad.any():
                examples = df[column][bad]
                rows = ", ".join(str(i) for i in examples.index[:3])
                n = int(bad.sum())
                raise DataContractError.of("error.io.bad_date.one" if n == 1 else "error.io.bad_date.many",
                                           table=table, column=column, value=examples.iloc[0], file=path.name,
                                           n=n, rows=rows)
            df[column] = parsed
    return df


def _read_parquet(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise DataContractError.of("error.io.parquet_unreadable", path=path, kind=type(exc).__name__,
                                   detail=first_line(exc)) from None


def _natural_key(path: Path) -> list[object]:
    """part-2 before part-10: digit runs compare as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _parts(directory: Path, table: str) -> list[Path]:
    parts = sorted(
        (p for p in directory.iterdir()
         if p.suffix.lower() == ".parquet" and p.is_file() and not p.name.startswith((".", "_"))),
        key=_natural_key,
    )
    if not parts:
        raise DataContractError.of("error.io.no_parts", directory=directory, table=table)
    return parts


def _read_parts(directory: Path, table: str) -> pd.DataFrame:
    return _read_parts_list(_parts(directory, table), table)


def _left_in_files(name: str, files: list[Path]) -> Any:
    """Table ``name`` as a ParquetTable over ``files``, checked to be readable parquet."""
    import duckdb

    from creditmodel.data.parquet_table import ParquetTable

    table = ParquetTable.of(name, files)
    try:
        with duckdb.connect() as con:
            con.execute(f"DESCRIBE {table.source()}").fetchall()
    except duckdb.Error as exc:
        raise DataContractError.of("error.io.left_unreadable", path=files[0] if len(files) == 1 else files[0].parent,
                                   name=name, detail=first_line(exc)) from None
    return table


def _read_directory(root: Path, encoding: str, delimiter: str, leave: Collection[str] = ()) -> dict[str, Any]:
    tables: dict[str, Any] = {}
    for name in schema.TABLES:
        parquet, csv, parts = root / f"{name}.parquet", root / f"{name}.csv", root / name
        found = [p for p in (parquet, csv) if p.exists()] + ([parts] if parts.is_dir() else [])
        if len(found) > 1:
            shown = [p.name + ("/" if p.is_dir() else "") for p in found]
            raise DataContractError.of("error.io.table_twice", root=root, name=name, forms=_and(shown))
        if csv.is_dir():
            raise DataContractError.of("error.io.csv_is_dir", path=csv, name=name)
        if name in leave and parquet.is_file():
            tables[name] = _left_in_files(name, [parquet])
        elif name in leave and parts.is_dir():
            tables[name] = _left_in_files(name, _parts(parts, name))
        elif parquet.exists():  # a file, or a directory of parquet parts
            tables[name] = _read_parquet(parquet)
        elif parts.is_dir():
            tables[name] = _read_parts(parts, name)
        elif csv.is_file():
            tables[name] = _read_csv(csv, name, encoding, delimiter)
    return tables


def _read_duckdb(path: Path) -> dict[str, pd.DataFrame]:
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise DataContractError.of("error.io.duckdb_open", path=path, detail=first_line(exc)) from None
    try:
        found = {
            str(n).lower(): str(n)
            for (n,) in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            ).fetchall()
        }
        tables = {}
        for name in schema.TABLES:
            if name in found:
                quoted = '"' + found[name].replace('"', '""') + '"'
                tables[name] = con.execute(f"SELECT * FROM {quoted}").df()
        return tables
    except duckdb.Error as exc:
        raise DataContractError.of("error.io.duckdb_read", path=path, detail=first_line(exc)) from None
    finally:
        con.close()


def read_tables(
    source: str | Path, *, encoding: str = "utf-8", delimiter: str = ",", leave_in_files: Collection[str] = ()
) -> dict[str, pd.DataFrame]:
    """Read the canonical tables found in ``source`` (not yet validated; see ``load_tables``).

    ``source`` is a directory of ``<table>.parquet`` / ``<table>.csv`` files or ``<table>/``
    directories of parquet parts (one form per table), or a DuckDB file (``.duckdb`` / ``.db``,
    opened read-only). CSV files are read with ``encoding`` and ``delimiter``; their date and
    timestamp columns are parsed as dates. Tables named in ``leave_in_files`` that are stored as
    parquet are not read: they come as a ``ParquetTable`` (see ``load_tables_leaving``).
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise DataContractError.of("error.io.source_not_found", path=path)
    if path.is_dir():
        tables = _read_directory(path, encoding, delimiter, leave_in_files)
        nothing = "error.io.no_table.directory"
    elif path.suffix.lower() in _DUCKDB_SUFFIXES:
        tables = _read_duckdb(path)
        nothing = "error.io.no_table.duckdb"
    else:
        raise DataContractError.of("error.io.not_a_source", path=path, suffixes=", ".join(_DUCKDB_SUFFIXES))
    if not tables:
        raise DataContractError.of(nothing, path=path)
    return tables


def load_tables(
    source: str | Path,
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    extraction_date: Any = None,
    dictionary: DataDictionary | None = None,
) -> dict[str, pd.DataFrame]:
    """Read the tables in ``source`` and validate them against the contracts of ``dictionary``."""
    tables = read_tables(source, encoding=encoding, delimiter=delimiter)
    from creditmodel.data.contracts import validate_tables
    return validate_tables(tables, dictionary=dictionary, extraction_date=extraction_date)


def load_tables_leaving(
    source: str | Path,
    large: Collection[str] = ("transactions",),
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    extraction_date: Any = None,
    dictionary: DataDictionary | None = None,
) -> dict[str, Any]:
    """``load_tables``, but the ``large`` tables stored as parquet stay in their files (``ParquetTable``):
    DuckDB checks them against their contracts and reads them where they are used. A million
    borrowers' transactions (about 240 million rows) are then never held in memory.

    A table that breaks a contract is read whole once, so that the contracts name the failure in
    their own words, as ``load_tables`` would."""
    from creditmodel.data.contracts import validate_tables
    from creditmodel.data.contracts_sql import parquet_table_violations
    from creditmodel.data.parquet_table import is_parquet_table

    read = read_tables(source, encoding=encoding, delimiter=delimiter, leave_in_files=large)
    left = {n: read.pop(n) for n in list(read) if is_parquet_table(read[n])}
    # each frame as read is let go once validated: the set is not held twice
    validated = validate_tables(read, dictionary=dictionary, extraction_date=extraction_date, consume=True)
    for name, table in left.items():
        if parquet_table_violations(table, validated, dictionary, extraction_date):
            whole = _read_parquet_files(table.files, name)
            validate_tables({**validated, name: whole}, dictionary=dictionary, extraction_date=extraction_date)
            raise DataContractError.of("error.io.unnamed_violation", name=name)
    return {name: validated.get(name, left.get(name)) for name in schema.TABLES if name in validated or name in left}


def _read_parquet_files(files: Sequence[Path], name: str) -> pd.DataFrame:
    """The parquet files of table ``name`` as one frame."""
    return _read_parquet(files[0]) if len(files) == 1 else _read_parts_list(list(files), name)


def _read_parts_list(parts: list[Path], table: str) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_parquet([str(p) for p in parts])
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for bad or mixed parts
        raise DataContractError.of("error.io.parts_unreadable.one" if len(parts) == 1
                                   else "error.io.parts_unreadable.many", directory=parts[0].parent, n=len(parts),
                                   table=table, kind=type(exc).__name__, detail=first_line(exc)) from None


# --------------------------------------------------------------------------------------------
# the declared extraction date
# --------------------------------------------------------------------------------------------


def extraction_timestamp(extraction_date: Any) -> pd.Timestamp:
    """An extraction date as a naive timestamp; DataContractError when it is not a date."""
    import pandas as pd

    try:
        cutoff = pd.Timestamp(extraction_date)
    except (TypeError, ValueError) as exc:
        raise DataContractError.of("error.io.not_a_date_because", value=extraction_date, detail=str(exc)) from None
    if pd.isna(cutoff):
        raise DataContractError.of("error.io.not_a_date", value=extraction_date)
    if cutoff.tz is not None:
        cutoff = cutoff.tz_convert("UTC").tz_localize(None)
    return cutoff


def _parse_declared(value: Any, where: str | Phrase) -> pd.Timestamp:
    import pandas as pd

    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise DataContractError.of("error.io.declared_not_a_date", where=where, value=value)
    try:
        return pd.Timestamp(date.fromisoformat(value.strip()))
    except ValueError:
        raise DataContractError.of("error.io.declared_invalid_date", where=where, value=value) from None


def declared_extraction_date(source: str | Path) -> pd.Timestamp | None:
    """The as-of date the data declares: ``<dir>/_dataset.json`` or a DuckDB table ``_dataset``; None if none."""
    path = Path(source).expanduser()
    if path.is_dir():
        info = path / DATASET_FILE
        if not info.exists():
            return None
        try:
            raw = json.loads(info.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataContractError.of("error.io.dataset_json_unreadable", path=info, detail=first_line(exc)) from None
        if not isinstance(raw, dict) or "extraction_date" not in raw:
            raise DataContractError.of("error.io.dataset_json_shape", path=info)
        return _parse_declared(raw["extraction_date"], str(info))
    if path.is_file() and path.suffix.lower() in _DUCKDB_SUFFIXES:
        import duckdb

        try:
            with duckdb.connect(str(path), read_only=True) as con:
                names = {str(n).lower() for (n,) in con.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                ).fetchall()}
                if DATASET_TABLE not in names:
                    return None
                rows = con.execute(f"SELECT CAST(extraction_date AS VARCHAR) FROM {DATASET_TABLE}").fetchall()
        except duckdb.Error as exc:
            raise DataContractError.of("error.io.dataset_table_unreadable", path=path, table=DATASET_TABLE,
                                       detail=first_line(exc)) from None
        if len(rows) != 1:
            raise DataContractError.of("error.io.dataset_table_rows", path=path, table=DATASET_TABLE, n=len(rows))
        return _parse_declared(str(rows[0][0])[:10],
                               Phrase("error.io.dataset_table", {"path": path, "table": DATASET_TABLE}))
    return None


def write_dataset_info(out_dir: str | Path, extraction_date: Any) -> Path:
    """Declare a directory's as-of date: write ``<out_dir>/_dataset.json``."""
    day = (extraction_date if type(extraction_date) is date
           else extraction_timestamp(extraction_date).date())
    path = Path(out_dir) / DATASET_FILE
    path.write_text(json.dumps({"extraction_date": day.isoformat()}, indent=2) + "\n", encoding="utf-8")
    return path


def resolve_extraction_date(configured: Any, source: str | Path) -> pd.Timestamp:
    """The extraction date of a run: the configured one, else the one the data declares.

    Never guessed from the data (a few future-dated rows would move it): with neither, a
    ConfigError asks for it in one line.
    """
    if configured is not None:
            return extraction_timestamp(configured).normalize()
    declared = declared_extraction_date(source)
    if declared is None:
        where = (Phrase("error.io.declare_in_duckdb", {"table": DATASET_TABLE, "source": source})
                 if Path(source).suffix.lower() in _DUCKDB_SUFFIXES else f"{Path(source) / DATASET_FILE}")
        raise ConfigError.of("error.io.no_extraction_date", source=source, where=where)
    return declared


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def write_tables(tables: dict[str, pd.DataFrame], out_dir: str | Path, *, extraction_date: Any = None,
                 force: bool = False) -> Path:
    """Write each table to ``out_dir/<name>.parquet``, all or nothing; with ``extraction_date``, also
    the declared as-of date ``_dataset.json``.

    The files are written to a staging directory next to ``out_dir`` which is then renamed; an
    existing ``out_dir`` is replaced only when it is empty or an earlier output of creditmodel
    (``creditmodel.outputs``; anything else raises ConfigError), and on failure nothing is left behind.
    """
    import pandas as pd

    out = Path(out_dir).expanduser()
    for name, df in tables.items():
        if not isinstance(name, str) or not name or name.startswith(".") or any(
            ch in name for ch in "/\\\0"
        ):
            raise DataContractError.of("error.io.bad_table_name", name=name)
        if not isinstance(df, pd.DataFrame):
            raise DataContractError.of("error.io.not_a_frame", name=name, kind=type(df).__name__)
    with Output(out, kind="dir", command="write_tables", force=force, label="out_dir") as output:
        tmp = output.tmp
        if extraction_date is not None:
            write_dataset_info(tmp, extraction_date)
        for name, df in tables.items():
            try:
                df.to_parquet(tmp / f"{name}.parquet", index=False)
            except Exception as exc:  # noqa: BLE001 - pyarrow raises many types
                raise DataContractError.of("error.io.write_parquet", name=name, kind=type(exc).__name__,
                                           detail=first_line(exc)) from None
    return out

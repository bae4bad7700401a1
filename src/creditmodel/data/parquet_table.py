"""A canonical table left in its parquet files, for the one table that does not fit in memory at scale.

A million borrowers' transactions are about 240 million rows (some 10 GiB as a pandas frame). Where
that table is only ever aggregated by DuckDB (the feature catalogue, the inflow triggers of
monitoring), a :class:`ParquetTable` stands in for the frame: DuckDB reads the files where the query
needs them, and an as-of cut is a condition on the read, not a copy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from creditmodel.data import schema
from creditmodel.exceptions import DataContractError

__all__ = ["ParquetTable", "is_parquet_table"]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class ParquetTable:
    """Table ``name`` as the parquet files ``files`` (one file or the parts of one table), with rows
    dated after ``until`` (its event date, whole days) left out when set."""

    name: str
    files: tuple[Path, ...]
    until: dt.date | None = None

    def __post_init__(self) -> None:
        if self.name not in schema.TABLES:
            raise DataContractError.of("error.parquet.not_canonical", table=self.name,
                                       expected=", ".join(schema.TABLES))
        if not self.files:
            raise DataContractError.of("error.parquet.no_file", table=self.name)
        missing = [p for p in self.files if not Path(p).is_file()]
        if missing:
            raise DataContractError.of("error.parquet.not_found", table=self.name, path=str(missing[0]))
        if self.until is not None and schema.TABLES[self.name].event_date is None:
            raise DataContractError.of("error.parquet.no_event_date", table=self.name)

    @classmethod
    def of(cls, name: str, files: Sequence[str | Path]) -> ParquetTable:
        return cls(name, tuple(Path(p) for p in files))

    def source(self) -> str:
        """The SQL that reads the table (its cut applied): a table expression for FROM."""
        files = "[" + ", ".join(_quote(str(p)) for p in self.files) + "]"
        sql = f"(SELECT * FROM read_parquet({files}))"
        if self.until is None:
            return sql
        day = schema.TABLES[self.name].event_date
        bound = self.until + dt.timedelta(days=1)
        return f"(SELECT * FROM read_parquet({files}) WHERE {day} < TIMESTAMP '{bound.isoformat()}')"

    def cut(self, as_of: Any) -> ParquetTable:
        """The rows dated on or before ``as_of`` (a date or timestamp; its day counts whole)."""
        day = as_of.date() if isinstance(as_of, dt.datetime) else as_of
        if not isinstance(day, dt.date):
            import pandas as pd

            day = pd.Timestamp(as_of).date()
        if self.until is not None and self.until <= day:
            return self
        return ParquetTable(self.name, self.files, day)

    @property
    def columns(self) -> list[str]:
        import duckdb

        with duckdb.connect() as con:
            return [r[0] for r in con.execute(f"DESCRIBE {self.source()}").fetchall()]

    def __len__(self) -> int:
        import duckdb

        with duckdb.connect() as con:
            return int(con.execute(f"SELECT count(*) FROM {self.source()}").fetchall()[0][0])


def is_parquet_table(df: Any) -> bool:
    return isinstance(df, ParquetTable)

"""Features at decision time from a PostgreSQL store: for a team that shares one database.

The same definitions as the DuckDB store (``features.online``): the bundle's catalogue query, restricted
before it runs to the borrower (and its joint-guarantee group) and to rows dated strictly before the
decision date, written out for PostgreSQL with DuckDB's meaning (``features.postgres``). The query is a
server-side prepared statement on each thread's own connection, so PostgreSQL plans it once per
connection, not per request.

Store: ``build_store_pg`` (``creditmodel store build --out postgresql://…``) loads the canonical tables
into one schema (``?schema=NAME`` on the URL, default ``creditmodel``) typed as the DuckDB store types
them, sorted by borrower and date, with B-tree indexes on (enterprise_id, date) / (loan_id, date) for
the point lookups and a ``store_meta`` table (first and last data dates, row counts, a format marker).
It is written in one transaction: a failure leaves the database as it was. A schema that already holds
tables the kit did not write is refused; a store the kit wrote is replaced only with ``force``.

    online = PostgresOnlineFeatures(bundle.catalogue, "postgresql://scoring@db.bank:5432/credit")
"""

from __future__ import annotations

import re
import tempfile
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.data.schema import TABLES
from creditmodel.exceptions import StoreError, first_line
from creditmodel.features.build import attribute_columns, compile_query
from creditmodel.features.catalogue import Feature
from creditmodel.features.online import (
    _ORDER,
    META,
    Application,
    OnlineFeatures,
    build_store,
    lacking_attribute,
    missing_table,
    tables_needed,
)
from creditmodel.features.postgres import PostgresTranslationError, to_postgres_sql
from creditmodel.texts import said

DEFAULT_SCHEMA = "creditmodel"
STORE_FORMAT = "creditmodel-store"
CONNECT_TIMEOUT = 10  # seconds: an unreachable server is one line, not a hang

# DuckDB store type -> PostgreSQL column type (and back, for the checks against a catalogue)
_PG_TYPE = {"BIGINT": "bigint", "INTEGER": "integer", "SMALLINT": "smallint", "TINYINT": "smallint",
            "DOUBLE": "double precision", "FLOAT": "real", "VARCHAR": "text", "DATE": "date",
            "TIMESTAMP": "timestamp", "BOOLEAN": "boolean", "HUGEINT": "numeric", "UBIGINT": "numeric",
            "UINTEGER": "bigint", "USMALLINT": "integer", "UTINYINT": "smallint"}
_DUCK_TYPE = {"bigint": "BIGINT", "integer": "INTEGER", "smallint": "SMALLINT", "double precision": "DOUBLE",
              "real": "FLOAT", "text": "VARCHAR", "character varying": "VARCHAR", "date": "DATE",
              "timestamp without time zone": "TIMESTAMP", "boolean": "BOOLEAN", "numeric": "DOUBLE"}
_NUMERIC_OIDS = (20, 21, 23, 700, 701, 1700)  # int8, int2, int4, float4, float8, numeric
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def is_postgres(spec: str | Path) -> bool:
    """Whether a store location names a PostgreSQL database."""
    return str(spec).startswith(("postgresql://", "postgres://"))


def parse_pg_store(spec: str) -> tuple[str, str, str]:
    """(conninfo for psycopg, schema, the location as printed: no password) of ``postgresql://…[?schema=NAME]``."""
    parts = urllib.parse.urlsplit(str(spec))
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in query if k == "schema"]
    schema = schemas[-1] if schemas else DEFAULT_SCHEMA
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k != "schema"])
    host = parts.hostname or ""
    netloc = (f"{parts.username}@" if parts.username else "") + (f"[{host}]" if ":" in host else host) + \
        (f":{parts.port}" if _port(parts) else "")
    shown = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, f"schema={schema}", ""))
    if not _NAME.match(schema):
        raise StoreError.of("error.online_pg.bad_schema", store=shown, schema=schema[:70])
    conninfo = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))
    return conninfo, schema, shown


def _port(parts: urllib.parse.SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def _connect(conninfo: str, shown: str, **kwargs: Any) -> Any:
    import psycopg

    try:
        return psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT, **kwargs)
    except psycopg.Error as exc:
        raise StoreError.of("error.online_pg.cannot_connect", store=shown, detail=first_line(exc)[:300]) from None
    except Exception as exc:  # noqa: BLE001 - a malformed URL (port, options) is one line too
        raise StoreError.of("error.online_pg.bad_url", store=shown, detail=first_line(exc)[:300]) from None


def _tables_in(con: Any, schema: str) -> set[str]:
    rows = con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                       [schema]).fetchall()
    return {r[0] for r in rows}


def _meta(con: Any, schema: str) -> dict[str, str] | None:
    """The store_meta of a store the kit wrote in `schema`, else None."""
    if META not in _tables_in(con, schema):
        return None
    try:
        meta = dict(con.execute(f'SELECT key, value FROM "{schema}".{META}').fetchall())
    except Exception:  # noqa: BLE001 - a foreign table of that name is not ours
        return None
    return meta if meta.get("format") == STORE_FORMAT else None


# --- the store ---------------------------------------------------------------------------------------


def build_store_pg(tables: Mapping[str, pd.DataFrame], spec: str, *, force: bool = False) -> dict[str, int]:
    """Load the canonical tables into the PostgreSQL schema of `spec`, typed and sorted as the DuckDB store
    (``features.online.build_store``) has them, with the point-lookup indexes and store_meta; one
    transaction. Returns the rows per table. StoreError (one line, no password) when the server cannot
    be reached or the schema holds other tables, or a kit store without `force`."""
    import duckdb
    import psycopg

    conninfo, schema, shown = parse_pg_store(spec)
    with tempfile.TemporaryDirectory(prefix="creditmodel-pg-store-") as tmp:
        staged = Path(tmp) / "store.duckdb"
        counts = build_store(tables, staged)  # the DuckDB store's types, order and metadata, then copied over
        con = _connect(conninfo, shown)
        try:
            with con.transaction():
                present = _tables_in(con, schema)
                ours = _meta(con, schema) is not None
                if present and not ours:
                    raise StoreError.of("error.online_pg.foreign_tables", store=shown, schema=schema,
                                        tables=", ".join(sorted(present)[:5]))
                if ours and not force:
                    raise StoreError.of("error.online_pg.exists", store=shown, schema=schema)
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                for name in sorted(present):
                    con.execute(f'DROP TABLE "{schema}"."{name}" CASCADE')
                with duckdb.connect(str(staged), read_only=True) as duck:
                    for name in [*counts, META]:
                        _copy_table(duck, con, schema, name, Path(tmp))
                con.execute(f'INSERT INTO "{schema}".{META} VALUES (%s, %s)', ["format", STORE_FORMAT])
                for name in counts:
                    for i, cols in enumerate(_indexes(name)):
                        con.execute(f'CREATE INDEX "{name}_{i}" ON "{schema}"."{name}" ({", ".join(cols)})')
                    con.execute(f'ANALYZE "{schema}"."{name}"')
        except psycopg.Error as exc:
            raise StoreError.of("error.online_pg.load_failed", store=shown, detail=first_line(exc)[:300]) from None
        finally:
            con.close()
    return counts


def _indexes(name: str) -> list[tuple[str, ...]]:
    """The B-tree indexes of a table: its sort key (borrower or loan, then date), and the lookups of
    the joint-guarantee group and of a loan's security."""
    out = [_ORDER[name]]
    cols = TABLES[name].column_names
    if name == "loans":
        out += [("group_id", "application_date"), ("loan_id",)]
    elif "loan_id" in cols and out[0][0] != "loan_id":
        out.append(("loan_id",))
    return out


def _copy_table(duck: Any, con: Any, schema: str, name: str, tmp: Path) -> None:
    """One table of the staged DuckDB store into PostgreSQL: same columns and types, same row order, values
    through CSV (DuckDB writes doubles in their shortest round-trip form, so they arrive bit for bit)."""
    cols = duck.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
                        "ORDER BY column_index", [name]).fetchall()
    defs = []
    for col, kind in cols:
        pg = _PG_TYPE.get(kind) or ("numeric" if kind.startswith("DECIMAL") else None)
        if pg is None:
            raise StoreError.of("error.online_pg.no_pg_type", table=name, column=col, kind=kind)
        defs.append(f'"{col}" {pg}')
    con.execute(f'CREATE TABLE "{schema}"."{name}" ({", ".join(defs)})')
    path = tmp / f"{name}.csv"
    duck.execute(f"COPY (SELECT * FROM {name}) TO '{path}' (FORMAT csv, HEADER false)").fetchall()
    names = ", ".join(f'"{c}"' for c, _ in cols)
    with con.cursor().copy(f'COPY "{schema}"."{name}" ({names}) FROM STDIN WITH (FORMAT csv)') as copy, \
            path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            copy.write(chunk)
    path.unlink()


# --- features at decision time ----------------------------------------------------------------------


class PostgresOnlineFeatures(OnlineFeatures):
    """One borrower's features as of a decision date from a PostgreSQL store, with the catalogue's own SQL.

    The interface of ``OnlineFeatures``; the store is checked against the catalogue on construction (one
    StoreError naming the store, the table or the column that does not fit). Thread-safe: each thread has
    its own connection, holding the catalogue query as a prepared statement."""

    def __init__(self, features: Sequence[Feature], store: str | Path) -> None:  # noqa: D107
        import psycopg

        self.catalogue = tuple(features)
        self._conninfo, self.schema, self.store_name = parse_pg_store(str(store))
        self.errors = (psycopg.Error,)  # a broken connection is dropped: the thread's next call connects again
        self.store = self.store_name  # type: ignore[assignment]  # a URL (no password), not a path
        self._sql = compile_query(self.catalogue)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[Any] = []
        con = self._connection()
        shown = self.store_name
        present = _tables_in(con, self.schema)
        if not present:
            self.close()
            raise StoreError.of("error.online_pg.no_tables", store=shown, schema=self.schema)
        needed = tables_needed(self.catalogue)
        missing = missing_table(self.catalogue, present)
        if missing:
            self.close()
            raise StoreError.of("error.online_pg.store_lacks", store=shown, problem=missing)
        rows = con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                           "WHERE table_schema = %s ORDER BY table_name, ordinal_position", [self.schema]).fetchall()
        self._types: dict[str, dict[str, str]] = {}
        for t, c, kind in rows:
            self._types.setdefault(t, {})[c] = _DUCK_TYPE.get(kind, kind.upper())
        for t in needed:
            lacking = [c.name for c in TABLES[t].columns if c.name not in self._types[t]]
            if lacking:
                self.close()
                raise StoreError.of("error.online_pg.lacks_column", store=shown, table=t, column=lacking[0],
                                    n=len(lacking))
        self._tables = sorted(set(needed) | {"enterprises", "loans"} & present)
        absent = lacking_attribute(self.catalogue, self._types)
        if absent:
            self.close()
            raise StoreError.of("error.online_pg.store_lacks", store=shown, problem=absent)
        self._attrs = attribute_columns(self.catalogue).get("loans", [])
        meta = _meta(con, self.schema)
        if meta is None:
            self.close()
            raise StoreError.of("error.online_pg.not_ours", store=shown, meta=META)
        self.first_date = pd.Timestamp(meta["first_date"]).date()
        self.last_date = pd.Timestamp(meta["last_date"]).date()
        try:
            self._query = self._pg(self._restricted_query())
        except PostgresTranslationError as exc:
            self.close()
            raise StoreError.of("error.online_pg.no_pg_form", store=shown, reason=said(exc)) from None
        self._names = [c.name for c in TABLES["loans"].columns]
        try:  # the catalogue's SQL bound against the store's schema, once, before any request
            con.execute(f"EXPLAIN {self._query}", self._params(Application(
                0, self.first_date, 1.0, 1, "", "", None)))
        except Exception as exc:  # noqa: BLE001 - psycopg's errors: one line naming the store
            self.close()
            raise StoreError.of("error.online_pg.not_fit", store=shown, detail=first_line(exc)[:300]) from None

    def _pg(self, duckdb_sql: str) -> str:
        """A DuckDB query over ``store.<table>`` as PostgreSQL SQL over this store's schema."""
        return to_postgres_sql(re.sub(r"\bstore\.(?=[A-Za-z_])", f"{self.schema}.", duckdb_sql))

    def close(self) -> None:
        with self._lock:
            for con in self._connections:
                con.close()
            self._connections.clear()

    def _connection(self) -> Any:
        """This thread's connection (autocommit, read-only transactions)."""
        con = getattr(self._local, "con", None)
        if con is None or con.closed:
            con = _connect(self._conninfo, self.store_name, autocommit=True)
            con.execute("SET default_transaction_read_only = on")
            con.execute("SET TIME ZONE 'UTC'")
            con.execute("SET jit = off")  # compiling a one-borrower query costs more than running it
            # one generic plan for every borrower: PostgreSQL would otherwise re-plan the catalogue query for
            # each request's values (custom plans look cheaper to it), which costs more than running it
            con.execute("SET plan_cache_mode = force_generic_plan")
            self._local.con = con
            with self._lock:
                self._connections.append(con)
        return con

    def _frame(self, sql: str, params: Any = None) -> pd.DataFrame:
        cur = self._connection().execute(sql, params, prepare=True)
        names = [d.name for d in cur.description]
        frame = pd.DataFrame.from_records(cur.fetchall(), columns=names, coerce_float=True)
        for d in cur.description:  # dates, timestamps and numbers with NULLs (NaN) as DuckDB's .df() gives them
            if d.type_code in (1082, 1114):
                frame[d.name] = pd.to_datetime(frame[d.name])
            elif d.type_code in _NUMERIC_OIDS and frame[d.name].dtype == object:
                frame[d.name] = pd.to_numeric(frame[d.name]).astype(np.float64)
        return frame

    def enterprise(self, enterprise_id: int) -> pd.DataFrame:
        return self._frame(f"SELECT * FROM {self.schema}.enterprises WHERE enterprise_id = %s", [int(enterprise_id)])

    def rows(self, table: str, column: str, values: Sequence[Any]) -> pd.DataFrame | None:
        if table not in TABLES or table not in self._types or column not in self._types[table]:
            return None
        order = ", ".join(f'"{c}"' for c in self._types[table])
        wanted = [_plain(v) for v in values]
        if not wanted:  # an empty array has no type to compare with
            return self._frame(f'SELECT * FROM {self.schema}."{table}" WHERE false')
        return self._frame(f'SELECT * FROM {self.schema}."{table}" WHERE "{column}" = ANY(%s) ORDER BY {order}',
                           [wanted])

    def known(self, enterprise_id: int) -> bool:
        cur = self._connection().execute(f"SELECT 1 FROM {self.schema}.enterprises WHERE enterprise_id = %s LIMIT 1",
                                         [int(enterprise_id)], prepare=True)
        return cur.fetchone() is not None

    def latest_group(self, enterprise_id: int, decision_date: date) -> int | None:
        cur = self._connection().execute(
            f"SELECT group_id FROM {self.schema}.loans WHERE enterprise_id = %s AND application_date < %s "
            f"AND group_id IS NOT NULL ORDER BY application_date DESC, loan_id DESC LIMIT 1",
            [int(enterprise_id), decision_date], prepare=True)
        row = cur.fetchone()
        return int(row[0]) if row else None

    def _fetch(self, app: Application) -> tuple[list[str], list[tuple[Any, ...]]]:
        """The query's column names and its one row (see ``OnlineFeatures._fetch``)."""
        cur = self._connection().execute(self._query, self._pg_params(app), prepare=True)
        return [d.name for d in cur.description], cur.fetchall()

    def _pg_params(self, app: Application) -> dict[str, Any]:
        """The query's parameters with fixed PostgreSQL types: psycopg sends a Python int as int2, int4 or int8
        by its size, and every new combination of types would be another prepared statement."""
        from psycopg.types.numeric import Int8

        return {k: Int8(v) if isinstance(v, int) and not isinstance(v, bool) else v
                for k, v in self._params(app).items()}

    def _typed(self, description: Any, rows: list[tuple[Any, ...]]) -> pd.DataFrame:
        """Rows as the DuckDB path frames them (``OnlineFeatures._rows_frame``)."""
        return self._rows_frame([d.name for d in description], rows)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v



def open_online(features: Sequence[Feature], store: str | Path) -> OnlineFeatures:
    """The online feature source of a store location: PostgreSQL for ``postgresql://…``, else DuckDB."""
    if is_postgres(store):
        return PostgresOnlineFeatures(features, str(store))
    return OnlineFeatures(features, store)


# --- many borrowers as of one date (score --store postgresql://… --as-of) ----------------------------------


def _as_of_class() -> type:
    """PostgresAsOfFeatures, built on first use (features.asof imports features.online, as this module does)."""
    from creditmodel.features.asof import KEY, TERMS, AsOfFeatures

    class PostgresAsOfFeatures(PostgresOnlineFeatures, AsOfFeatures):
        """``AsOfFeatures`` on a PostgreSQL store: the same borrowers, terms and catalogue SQL, one query for
        all borrowers (their terms sent as arrays, unnested into the ``batch_apps`` relation)."""

        def __init__(self, features: Sequence[Feature], store: str | Path) -> None:
            PostgresOnlineFeatures.__init__(self, features, store)
            self._present = set(self._types)
            self._fields = [KEY, "enterprise_id", *TERMS, "group_id", *self._attrs]
            duck = self._bulk_query()  # the DuckDB query over `batch_apps`, from AsOfFeatures
            try:
                self._bulk = self._pg(duck)
            except PostgresTranslationError as exc:
                self.close()
                raise StoreError.of("error.online_pg.no_pg_form", store=self.store_name, reason=said(exc)) from None
            ltypes = self._types["loans"]
            kinds = {KEY: "BIGINT", "group_id": ltypes.get("group_id", "BIGINT"),
                     **{c: ltypes[c] for c in ("enterprise_id", *TERMS, *self._attrs)}}
            arrays = ", ".join(f"CAST(%(arr_{c})s AS {_PG_TYPE.get(kinds[c], 'text')}[])" for c in self._fields)
            self._batch = f"unnest({arrays}) AS batch_apps({', '.join(self._fields)})"

        def _latest(self, where: str, as_of: date, listed: pd.DataFrame | None = None) -> pd.DataFrame:
            cols = self._loan_columns()
            if listed is not None:
                where = where.replace("(SELECT enterprise_id FROM listed)", "(SELECT unnest(%(listed)s::bigint[]))")
            sql = (f"SELECT DISTINCT ON (l.enterprise_id) {cols} FROM {self.schema}.loans l {where} "
                   f"ORDER BY l.enterprise_id, l.application_date DESC, l.loan_id DESC")
            params: dict[str, Any] = {"d": as_of}
            if listed is not None:
                params["listed"] = [int(x) for x in listed["enterprise_id"]]
            return self._frame(sql.replace("$d", "%(d)s"), params)

        def active_loans(self, as_of: date) -> pd.DataFrame:
            joins, conds = [], ["l.application_date < $d"]
            if "loan_accounts" in self._present:
                conds.append(f"NOT EXISTS (SELECT 1 FROM {self.schema}.loan_accounts w WHERE w.loan_id = l.loan_id "
                             f"AND w.written_off_date < $d)")
            if "balances" in self._present:  # the latest balance before the date (as DuckDB's arg_max)
                joins.append(f"LEFT JOIN LATERAL (SELECT b.balance FROM {self.schema}.balances b WHERE b.loan_id = "
                             f"l.loan_id AND b.date < $d AND b.balance IS NOT NULL ORDER BY b.date DESC LIMIT 1) b "
                             f"ON true")
                conds.append("coalesce(b.balance, l.amount) > 0")
            else:
                conds.append("l.application_date + make_interval(months => CAST(l.term_months AS integer)) > $d")
            return self._latest(f"{' '.join(joins)} WHERE {' AND '.join(conds)}", as_of)

        def compute_many(self, borrowers: pd.DataFrame, as_of: date) -> pd.DataFrame:
            params: dict[str, Any] = {"d": as_of, f"arr_{KEY}": list(range(len(borrowers))),
                                      "arr_enterprise_id": [int(x) for x in borrowers["enterprise_id"]]}
            for c in self._fields[2:]:
                values = borrowers[c].tolist() if c in borrowers.columns else [None] * len(borrowers)
                params[f"arr_{c}"] = [None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA
                                      else _plain(v) for v in values]
            cur = self._connection().execute(self._bulk.replace("FROM batch_apps", f"FROM {self._batch}", 1), params)
            frame = self._typed(cur.description, cur.fetchall())
            return frame.sort_values(KEY, kind="stable").reset_index(drop=True)

        def known_many(self, enterprise_ids: Any) -> np.ndarray:
            ids = np.asarray(enterprise_ids, dtype=np.int64)
            cur = self._connection().execute(
                f"SELECT DISTINCT enterprise_id FROM {self.schema}.enterprises WHERE enterprise_id = ANY(%s)",
                [[int(x) for x in ids]])
            found = {r[0] for r in cur.fetchall()}
            return np.isin(ids, list(found))

    return PostgresAsOfFeatures


def open_as_of(features: Sequence[Feature], store: str | Path, *, memory_limit: str | None = None) -> Any:
    """The as-of feature source of a store location (``AsOfFeatures`` or its PostgreSQL form). memory_limit:
    what the embedded DuckDB may hold (a PostgreSQL server manages its own memory)."""
    if is_postgres(store):
        return _as_of_class()(features, str(store))
    from creditmodel.features.asof import AsOfFeatures

    return AsOfFeatures(features, store, memory_limit=memory_limit)

"""Features at decision time: one borrower's catalogue features as of a date, from a store.

The same definitions as training: the bundle carries its feature catalogue (declarations and the
compiled DuckDB query, see ``catalogue_document``); ``OnlineFeatures`` runs that very query over a
store whose canonical tables are restricted, before the query sees them, to the borrower (and the
members of its joint-guarantee group when the catalogue needs them) and to rows dated strictly
before the decision date. A row dated on or after the decision date never reaches a feature.

Engine: the borrower's rows are copied out of the store (only those the catalogue can read) into an
in-memory SQLite database, one per thread, and the catalogue's query runs there, translated by
``features.sqlite`` with DuckDB's meaning: DuckDB's own executor sets up each of the plan's ~260
operators for 2,048-row vectors, which over one borrower's rows cost more than the rows themselves. A
catalogue that does not translate runs on DuckDB (``engine="duckdb"`` asks for that).

Store: an embedded DuckDB file written by ``build_store`` (``creditmodel store build``): the
canonical tables typed as the feature builder types them, sorted by enterprise id and date so a
borrower's rows sit in few row groups (DuckDB's min/max zone maps skip the rest), and a small
``store_meta`` table (first and last data dates, row counts).

    online = OnlineFeatures(bundle.catalogue, "store.duckdb")
    row = online.features(enterprise_id=17, decision_date="2024-03-01", amount=200_000,
                          term_months=12, product="working_capital", guarantee_type="third_party")
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from creditmodel.data.schema import TABLES
from creditmodel.exceptions import DataContractError, StoreError, TextedValueError
from creditmodel.features.build import (
    _needs,
    _referenced,
    attribute_columns,
    compile_query,
    row_lookback,
    with_ctes,
)
from creditmodel.features.catalogue import Feature
from creditmodel.texts import Phrase

CATALOGUE_FILE = "feature_catalogue.json"
CATALOGUE_FORMAT = "creditmodel-feature-catalogue"
CATALOGUE_VERSION = 2  # 2: FILTER written as CASE, one shared join of the transaction blocks

# the date that dates a row of each event table (rows on or after the decision date are cut here)
_ROW_DATE = {"registration_events": "event_date", "court_cases": "filed_date", "environment_checks": "check_date",
             "transactions": "ts", "financial_statements": "period_end", "loans": "application_date",
             "repayments": "date"}


def _order(name: str) -> tuple[str, ...]:
    """How a table is sorted in the store: by borrower (or loan) and then date, for point lookups."""
    columns = TABLES[name].column_names
    who = next((c for c in ("enterprise_id", "loan_id", "officer_id") if c in columns), columns[0])
    when = _ROW_DATE.get(name) or TABLES[name].event_date
    return (who, when) if when and when in columns else (who,)


_ORDER = {name: _order(name) for name in TABLES}
META = "store_meta"
ROWS = "creditmodel_rows"  # the connection variables that hold one application's rows (see _extract_sql)


# --- the catalogue as a bundle file ----------------------------------------------------------------


def needed_features(features: Sequence[Feature], names: Sequence[str]) -> list[Feature]:
    """The features among `features` that compute `names`: those named, and the inputs of derived ones."""
    wanted = set(names)
    for f in features:
        if f.name in wanted and f.source == "derived":
            wanted.update(_referenced(f, features))
    missing = wanted - {f.name for f in features}
    if missing:
        raise ValueError(f"feature {sorted(missing)[0]!r} is not in the catalogue given ({len(missing)} missing)")
    return [f for f in features if f.name in wanted]


def catalogue_document(features: Sequence[Feature]) -> dict[str, Any]:
    """The declarations, the compiled DuckDB query and their SHA-256: what a bundle carries."""
    decls = [dataclasses.asdict(f) for f in features]
    sql = compile_query(features)
    body = {"format": CATALOGUE_FORMAT, "version": CATALOGUE_VERSION, "features": decls, "duckdb_sql": sql}
    return {**body, "sha256": _digest(body)}


def _digest(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=False).encode("utf-8")).hexdigest()


def catalogue_from_document(doc: Mapping[str, Any], where: str = "feature catalogue") -> tuple[Feature, ...]:
    """The declarations of a catalogue document, checked: format, hash, fields, and that the stored SQL is
    what these declarations compile to (so the SQL run online is the SQL the model was trained on)."""
    if doc.get("format") != CATALOGUE_FORMAT or doc.get("version") != CATALOGUE_VERSION:
        raise TextedValueError.of("error.online.catalogue_format", where=where, format=str(doc.get("format"))[:40],
                                  version=str(doc.get("version"))[:10], expected=CATALOGUE_FORMAT,
                                  expected_version=CATALOGUE_VERSION)
    body = {k: doc.get(k) for k in ("format", "version", "features", "duckdb_sql")}
    if doc.get("sha256") != _digest(body):
        raise TextedValueError.of("error.online.catalogue_digest", where=where)
    if not isinstance(doc.get("features"), list) or not doc["features"]:
        raise TextedValueError.of("error.online.catalogue_no_features", where=where)
    names = {f.name for f in dataclasses.fields(Feature)}
    out = []
    for i, d in enumerate(doc["features"]):
        if not isinstance(d, dict) or set(d) != names:
            raise TextedValueError.of("error.online.catalogue_fields", where=where, i=i, fields=sorted(names))
        if d["categories"] is not None:
            d = {**d, "categories": tuple(d["categories"])}
        out.append(Feature(**d))
    if compile_query(out) != doc["duckdb_sql"]:
        raise TextedValueError.of("error.online.catalogue_sql", where=where)
    return tuple(out)


def tables_needed(features: Sequence[Feature]) -> list[str]:
    """The canonical tables a catalogue reads."""
    return sorted({t for f in features if f.source != "derived" for t in _needs(f.source)})


# --- the store ---------------------------------------------------------------------------------------


def _typed(name: str, columns: Sequence[str]) -> str:
    kinds = {c.name: c.kind for c in TABLES[name].columns}
    out = []
    for c in columns:
        kind = kinds.get(c)
        out.append(f"CAST({c} AS DATE) AS {c}" if kind == "date" else
                   f"CAST({c} AS TIMESTAMP) AS {c}" if kind == "timestamp" else c)
    return ", ".join(out)


def parquet_tables(root: str | Path) -> dict[str, list[Path]]:
    """The parquet files of each canonical table in a directory (``<table>.parquet`` or the parts of
    ``<table>/``, as ``write_world_partitioned`` and ``data map`` write them): a store built from them
    never holds a table in memory."""
    root = Path(root)
    found: dict[str, list[Path]] = {}
    for name in TABLES:
        one, parts = root / f"{name}.parquet", root / name
        if one.is_file():
            found[name] = [one]
        elif parts.is_dir():
            files = sorted(p for p in parts.glob("*.parquet") if not p.name.startswith((".", "_")))
            if files:
                found[name] = files
    return found


def build_store(tables: Mapping[str, pd.DataFrame | Sequence[Path]], path: Path, *,
                memory_limit: str | None = None) -> dict[str, int]:
    """Write the canonical tables into a new DuckDB file at `path` (which must not exist yet), typed and
    sorted for per-borrower lookups; returns the rows per table. The caller owns the output rules.

    tables: frames, or the parquet files of each table (``parquet_tables``), which DuckDB reads and sorts
    out of core (``memory_limit``, e.g. "4GB", bounds what it holds; the rest spills beside `path`)."""
    import duckdb

    path = Path(path)
    counts: dict[str, int] = {}
    with duckdb.connect(str(path)) as con:
        con.execute("SET threads TO 1").fetchall()
        con.execute("SET enable_progress_bar = false").fetchall()
        if memory_limit:
            con.execute(f"SET memory_limit = '{check_memory_limit(memory_limit)}'").fetchall()
            spill = str(path.parent / f".{path.name}.spill").replace("'", "''")
            con.execute(f"SET temp_directory = '{spill}'").fetchall()
        firsts, lasts = [], []
        for name in TABLES:
            src = tables.get(name)
            if src is None:
                continue
            order = ", ".join(_ORDER[name])
            if isinstance(src, pd.DataFrame):
                con.register("incoming", src)
                columns = list(src.columns)
            else:
                files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in src)
                con.execute(f"CREATE TEMP VIEW incoming AS SELECT * FROM read_parquet([{files}])").fetchall()
                columns = [r[0] for r in con.execute("DESCRIBE incoming").fetchall()]
            typed = _typed(name, columns)
            con.execute(f"CREATE TABLE {name} AS SELECT {typed} FROM incoming ORDER BY {order}").fetchall()
            if isinstance(src, pd.DataFrame):
                con.unregister("incoming")
            else:
                con.execute("DROP VIEW incoming").fetchall()
            if name in ("loans", "enterprises"):
                con.execute(f"CREATE INDEX {name}_enterprise ON {name} (enterprise_id)").fetchall()
            counts[name] = int(con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0])
            if name in _ROW_DATE and counts[name]:
                lo, hi = con.execute(f"SELECT min(CAST({_ROW_DATE[name]} AS DATE)), "
                                     f"max(CAST({_ROW_DATE[name]} AS DATE)) FROM {name}").fetchall()[0]
                firsts.append(lo)
                lasts.append(hi)
        if "loans" not in counts or "enterprises" not in counts:
            if not counts:
                raise DataContractError.of("error.online.core_tables_none")
            raise DataContractError.of("error.online.core_tables", found=", ".join(sorted(counts)))
        con.execute(f"CREATE TABLE {META} (key VARCHAR, value VARCHAR)").fetchall()
        meta = {"first_date": str(min(firsts)), "last_date": str(max(lasts)),
                "rows": json.dumps(counts, sort_keys=True)}
        con.executemany(f"INSERT INTO {META} VALUES (?, ?)", list(meta.items()))
    return counts


# the DuckDB types a store's column may have for each kind of the canonical schema: those `store build`
# writes (integers of any width give the same values); anything else changes what the catalogue's SQL
# computes, or fails only when a request runs it
_STORE_TYPES = {"int": ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                        "UBIGINT"),
                "float": ("DOUBLE",), "str": ("VARCHAR",), "bool": ("BOOLEAN",), "date": ("DATE",),
                "timestamp": ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S")}


def mistyped_column(table: str, types: Mapping[str, str]) -> tuple[str, str, str] | None:
    """The first column of a canonical table whose store type (`types`: column -> DuckDB type) does not
    hold its kind, as (column, type found, kind expected); None when all do (absent columns aside)."""
    for c in TABLES[table].columns:
        found = types.get(c.name)
        if found is not None and c.kind in _STORE_TYPES and found.upper() not in _STORE_TYPES[c.kind]:
            return c.name, found, c.kind
    return None


def lacking_attribute(features: Sequence[Feature], columns: Mapping[str, Any]) -> Phrase | None:
    """What a store lacks of the bank's own columns the catalogue's attribute features read (``columns``: each
    table's column names), said in one line (a text of the catalogue); None when it has them all."""
    for table, names in attribute_columns(features).items():
        absent = [c for c in names if c not in columns.get(table, ())]
        if absent:
            return Phrase("error.online.lacks_attribute", {"table": table, "column": absent[0], "n": len(absent)})
    return None


def _literal(value: Any) -> str:
    """A SQL literal of an application's value (validated upstream; quotes escaped all the same)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else "NULL"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def missing_table(features: Sequence[Feature], present: set[str]) -> Phrase | None:
    """What a store lacks of the tables `features` read (plus enterprises and the store's own meta table), as the
    end of a one-line error (a text of the catalogue); None when nothing is missing. Every kind of store checks
    the same list."""
    needed = tables_needed(features)
    absent = [t for t in [*needed, "enterprises", META] if t not in present]
    return (Phrase("error.online.missing_table", {"table": absent[0], "tables": ", ".join(needed)})
            if absent else None)


def check_memory_limit(text: str) -> str:
    """A DuckDB memory limit as a person writes it ("4GB", "512 MiB"), checked (ValueError naming it)."""
    value = str(text).strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value, flags=re.IGNORECASE):
        raise TextedValueError.of("error.online.memory_limit", value=str(text)[:40])
    return value


def parse_store(spec: str | Path) -> Path:
    """A store location: ``duckdb:///path``, ``duckdb://relative/path`` or a plain path to a DuckDB file."""
    text = str(spec)
    if text.startswith(("postgresql://", "postgres://")):
        raise StoreError.of("error.online.postgres_here", store=text.split("@")[-1])
    if text.startswith("duckdb://"):
        text = text[len("duckdb://"):]
    path = Path(text)
    if not path.is_file():
        raise StoreError.of("error.online.no_file", store=str(spec))
    return path


@dataclasses.dataclass(frozen=True)
class Application:
    """What a scoring request knows: the borrower, the loan asked for, and the decision date."""

    enterprise_id: int
    decision_date: date
    amount: float
    term_months: int
    product: str
    guarantee_type: str
    group_id: int | None = None  # the joint-guarantee group of the application (None: none)
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the bank's own loan columns


ENGINES = ("auto", "sqlite", "duckdb")  # what runs one application's catalogue query (see OnlineFeatures)


@dataclasses.dataclass(frozen=True)
class _SqlitePlan:
    """One application's catalogue on SQLite: the translated query, and per table the DuckDB statement that
    copies the application's rows out of the store (with the parameters it takes) and the SQLite table's
    CREATE and INSERT."""

    query: str
    extract: Mapping[bool, Mapping[str, tuple[str, list[str]]]]  # by whether the application has a group
    create: Mapping[str, tuple[str, str]]
    dated: frozenset[str]  # the application's attributes that are dates (sent as microseconds)
    loan_id_at: int  # where loan_id is among the store's loans columns
    # per table, the sorted ids of the enterprises with rows in it: the statement of a borrower without any is
    # skipped. The store cannot change while it is open (read-only; DuckDB lets no process write a file
    # another holds open), so the sets stay exact.
    present: Mapping[str, np.ndarray]


def _holds(ids: np.ndarray, value: int) -> bool:
    """Whether the sorted array `ids` holds `value`."""
    i = int(np.searchsorted(ids, value))
    return i < len(ids) and int(ids[i]) == value


class OnlineFeatures:
    """One borrower's features as of a decision date from a DuckDB store, with the catalogue's own SQL.

    features: the bundle's catalogue (``PDBundle.catalogue``) or any list of declarations. The store is
    opened read-only; the query is checked against it on construction (a store whose schema lacks
    what the catalogue reads is one StoreError). Thread-safe: each thread has its own cursor (and SQLite
    database). engine: "auto" (SQLite when the catalogue translates, else DuckDB), "sqlite" (a catalogue
    that does not translate is a StoreError) or "duckdb"; the one used is ``self.engine``.
    """

    def __init__(self, features: Sequence[Feature], store: str | Path, *, memory_limit: str | None = None,
                 engine: str = "auto") -> None:
        import duckdb  # here, not at import: reading a bundle's catalogue needs no DuckDB

        if engine not in ENGINES:
            raise ValueError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")

        self.catalogue = tuple(features)
        self.store = parse_store(store)
        self._sql = compile_query(self.catalogue)
        limit = check_memory_limit(memory_limit) if memory_limit else None
        self.memory_limit = limit
        self._con = duckdb.connect()
        self._spill: str | None = None
        # what the store's engine raises once it is open (a file gone, a disk error): the service answers 503
        self.errors: tuple[type[BaseException], ...] = (duckdb.Error,)
        try:
            self._con.execute("SET threads TO 1").fetchall()
            if limit:  # what DuckDB may hold (default: 80% of the machine); the rest spills to disk
                self._con.execute(f"SET memory_limit = '{limit}'").fetchall()
                self._spill = tempfile.mkdtemp(prefix="creditmodel-duckdb-")
                self._con.execute(f"SET temp_directory = '{self._spill}'").fetchall()
            quoted = str(self.store).replace("'", "''")
            self._con.execute(f"ATTACH '{quoted}' AS store (READ_ONLY)").fetchall()
        except duckdb.Error as exc:
            self._con.close()
            raise StoreError.of("error.online.not_duckdb", store=str(self.store),
                                detail=str(exc).splitlines()[0]) from None
        self._lock = threading.Lock()
        self._prepared = threading.local()  # per thread: a cursor holding the query, planned once
        present = {r[0] for r in self._con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'store'").fetchall()}
        needed = tables_needed(self.catalogue)
        missing = missing_table(self.catalogue, present)
        if missing:
            self.close()
            raise StoreError.of("error.online.store_lacks", store=str(self.store), problem=missing)
        self._types = {t: dict(self._con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'store' AND table_name = ? "
            "ORDER BY column_index", [t]).fetchall()) for t in present}
        for t in needed:
            lacking = [c.name for c in TABLES[t].columns if c.name not in self._types[t]]
            if lacking:
                self.close()
                raise StoreError.of("error.online.lacks_column", store=str(self.store), table=t, column=lacking[0],
                                    n=len(lacking))
            wrong = mistyped_column(t, self._types[t])
            if wrong is not None:
                self.close()
                raise StoreError.of("error.online.mistyped", store=str(self.store), table=t, column=wrong[0],
                                    found=wrong[1], kind=wrong[2], type=", ".join(_STORE_TYPES[wrong[2]][:1]))
        self._tables = sorted(set(needed) | {"enterprises", "loans"} & present)
        absent = lacking_attribute(self.catalogue, self._types)
        if absent:
            self.close()
            raise StoreError.of("error.online.store_lacks", store=str(self.store), problem=absent)
        self._attrs = attribute_columns(self.catalogue).get("loans", [])
        meta = dict(self._con.execute(f"SELECT key, value FROM store.{META}").fetchall())
        self.first_date = pd.Timestamp(meta["first_date"]).date()
        self.last_date = pd.Timestamp(meta["last_date"]).date()
        self._query = self._restricted_query()
        self._cached = self._cached_query()
        try:  # the catalogue's SQL bound against the store's schema, once, before any request
            nobody = Application(0, self.first_date, 1.0, 1, "", "", None)
            self._con.execute(f"EXPLAIN {self._query}", self._params(nobody)).fetchall()
            self._con.execute("; ".join(self._extract_sql(nobody))).fetchall()
            self._con.execute(f"EXPLAIN {self._cached}", {**self._params(nobody), **{
                f"rows_{t}": None for t in self._tables}}).fetchall()
        except duckdb.Error as exc:
            self.close()
            raise StoreError.of("error.online.not_fit", store=str(self.store),
                                detail=str(exc).splitlines()[0][:300]) from None
        self.engine, self._lite = "duckdb", None  # type: str, _SqlitePlan | None
        if engine != "duckdb":
            self._lite = self._sqlite_plan(strict=engine == "sqlite")
            if self._lite is not None:
                import sqlite3

                self.engine = "sqlite"
                self.errors = (duckdb.Error, sqlite3.Error)

    @functools.cached_property
    def _categorical(self) -> frozenset[str]:
        """The names of the catalogue's categorical features (their values stay strings)."""
        return frozenset(f.name for f in self.catalogue if f.is_categorical)

    def close(self) -> None:
        self._con.close()
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)

    def _restricted_query(self) -> str:
        """The catalogue's query over CTEs that hold only the borrower's (and its group's) rows before d."""
        group = any(f.source == "guarantee_group" for f in self.catalogue)
        members = ("(SELECT $eid UNION SELECT enterprise_id FROM store.loans WHERE group_id = $gid "
                   "AND application_date < $d)") if group else "($eid)"
        return self._restricted(self._app_values(), members, "enterprise_id = $eid")

    def _app_values(self) -> dict[str, str]:
        """Each field of one application as the query parameter that carries it (loan_id 0: not a loan yet)."""
        return {"loan_id": "0", "enterprise_id": "$eid", "amount": "$amount", "term_months": "$term",
                "product": "$product", "guarantee_type": "$guarantee", "group_id": "$gid",
                **{c: f"$attr_{c}" for c in self._attrs}}

    def _apps_cte(self, values: Mapping[str, str], apps_from: str = "") -> str:
        """The ``apps`` CTE: each application field's SQL in ``values`` cast to the store's type of that loans
        column, the decision date $d as DATE; FROM ``apps_from``."""
        ltype = self._types["loans"]
        types = {"loan_id": "BIGINT", "group_id": ltype.get("group_id", "BIGINT"),
                 **{c: ltype[c] for c in ("enterprise_id", "amount", "term_months", "product", "guarantee_type",
                                          *self._attrs)}}
        fields = ["loan_id", "enterprise_id", "decision_date", "amount", "term_months", "product", "guarantee_type",
                  "group_id", *self._attrs]
        apps = [("CAST($d AS DATE) AS decision_date" if c == "decision_date"
                 else f"CAST({values[c]} AS {types[c]}) AS {c}") for c in fields]
        return f"apps AS (SELECT {', '.join(apps)}{apps_from})"

    def _restricted(self, values: Mapping[str, str], members: str, borrower: str, apps_from: str = "", *,
                    inline: bool = False) -> str:
        """The catalogue's query over CTEs: ``apps`` (the application(s): each field's SQL in ``values``,
        cast to the store's types; FROM ``apps_from``), the loans of ``members`` and the other tables'
        rows of the ``borrower`` condition, all dated before $d. inline: the tables' CTEs are ``NOT
        MATERIALIZED`` (each reference reads the store itself), else the engine may copy a CTE read
        more than once (as DuckDB does ``transactions``, read by four blocks) before the query runs."""
        ctes = [self._apps_cte(values, apps_from)]
        for t in self._tables:
            if t == "repayments":
                cond = "loan_id IN (SELECT loan_id FROM loans) AND date < $d"
            elif t == "loans":
                cond = f"enterprise_id IN {members} AND application_date < $d"
            else:
                cond = borrower + (f" AND {_ROW_DATE[t]} < $d" if t in _ROW_DATE else "")
            ctes.append(f"{t} AS {'NOT MATERIALIZED ' if inline else ''}(SELECT * FROM store.{t} WHERE {cond})")
        return with_ctes(ctes, self._sql)

    def _params(self, app: Application) -> dict[str, Any]:
        params = {"eid": int(app.enterprise_id), "d": app.decision_date, "amount": float(app.amount),
                  "term": int(app.term_months), "product": app.product, "guarantee": app.guarantee_type,
                  "gid": None if app.group_id is None else int(app.group_id)}
        params.update({f"attr_{c}": app.attributes.get(c) for c in self._attrs})
        return params

    def _cursor(self) -> Any:
        """This thread's cursor on the store, made once per thread: a DuckDB cursor serves one thread, and making
        one costs as much as the lookup it would serve."""
        cur = getattr(self._prepared, "plain", None)
        if cur is None:
            with self._lock:
                cur = self._prepared.plain = self._con.cursor()
        return cur

    def enterprise(self, enterprise_id: int) -> pd.DataFrame:
        """The enterprise's row of the store (no rows: unknown to the bank)."""
        return self._cursor().execute("SELECT * FROM store.enterprises WHERE enterprise_id = ?",
                                      [int(enterprise_id)]).df()

    def rows(self, table: str, column: str, values: Sequence[Any]) -> pd.DataFrame | None:
        """The store's rows of a canonical table whose `column` is one of `values` (e.g. the guarantees of
        some loans); None when the store has no such table."""
        if table not in TABLES or table not in self._types or column not in self._types[table]:
            return None
        with self._lock:
            cur = self._con.cursor()
        try:
            cur.register("wanted", pd.DataFrame({"v": list(values)}))
            return cur.execute(f"SELECT t.* FROM store.{table} t WHERE t.{column} IN (SELECT v FROM wanted) "
                               f"ORDER BY ALL").df()
        finally:
            cur.close()

    def known(self, enterprise_id: int) -> bool:
        """Whether the store holds the enterprise (an unknown one is scored as new to the bank)."""
        ids = self._lite.present.get("enterprises") if self._lite is not None else None
        if ids is not None:  # the enterprises' ids, read at open
            return _holds(ids, int(enterprise_id))
        return len(self.enterprise(enterprise_id)) > 0

    def latest_group(self, enterprise_id: int, decision_date: date) -> int | None:
        """The joint-guarantee group of the borrower's latest loan applied for before the decision date."""
        row = self._cursor().execute(
            "SELECT group_id FROM store.loans WHERE enterprise_id = ? AND application_date < ? AND group_id IS NOT NULL "
            "ORDER BY application_date DESC, loan_id DESC LIMIT 1", [int(enterprise_id), decision_date]).fetchall()
        return int(row[0][0]) if row else None

    def _extract_sql(self, app: Application) -> list[str]:
        """The statements, one per table, that copy the rows the catalogue may read for one application (the
        borrower's, its group's loans and their repayments, all dated before the decision date: the
        conditions of ``_restricted_query``) out of the store into the connection's variables
        ``ROWS_<table>``, each a list of rows. One statement per table: DuckDB plans each again at every call
        (they read tables), and planning one statement of eight subqueries costs more than eight of one."""
        eid, d = _literal(int(app.enterprise_id)), _literal(app.decision_date)
        gid = _literal(None if app.group_id is None else int(app.group_id))
        group = any(f.source == "guarantee_group" for f in self.catalogue)
        members = (f"IN (SELECT {eid} UNION SELECT enterprise_id FROM store.loans WHERE group_id = {gid} "
                   f"AND application_date < {d})") if group else f"= {eid}"
        out = []
        for t in sorted(self._tables, key=lambda t: t == "repayments"):  # the loans before their repayments
            if t == "loans":
                where = f"enterprise_id {members} AND application_date < {d}"
            elif t == "repayments":
                where = f"loan_id IN (SELECT unnest(getvariable('{ROWS}_loans')).loan_id) AND date < {d}"
            else:
                where = f"enterprise_id = {eid}" + (f" AND {_ROW_DATE[t]} < {d}" if t in _ROW_DATE else "")
            out.append(f"SET VARIABLE {ROWS}_{t} = (SELECT list(t) FROM store.{t} t WHERE {where})")
        return out

    def _row_type(self, table: str) -> str:
        """The DuckDB type of a list of the store's rows of `table` (a struct per row, its columns in order)."""
        fields = ", ".join(f'"{c}" {kind}' for c, kind in self._types[table].items())
        return f"STRUCT({fields})[]"

    def _cached_query(self) -> str:
        """The catalogue's query over CTEs that unnest the application's rows, given as typed list parameters
        (``$rows_<table>``, see ``_extract_sql``) rather than read from tables: DuckDB re-binds and re-optimises
        at every execution a prepared statement that reads a table, which costs ten times what running the
        catalogue for one borrower does; a statement that reads only its parameters keeps its plan."""
        ctes = [self._apps_cte(self._app_values())]
        ctes += [f"{t} AS MATERIALIZED (SELECT unnest(CAST($rows_{t} AS {self._row_type(t)}), recursive := true))"
                 for t in self._tables]
        return with_ctes(ctes, self._sql)

    def _statement(self) -> Any:
        """This thread's cursor with the catalogue's query prepared over the application's rows: planned once
        per thread, then executed with each application's rows without being planned again."""
        cur = getattr(self._prepared, "cursor", None)
        if cur is None:
            with self._lock:
                cur = self._con.cursor()
            # one application's operators pass chunks of one row or a few: DuckDB's caching operators would
            # copy each into a buffer of 2,048 rows to flush it at the end, a tenth of the query's time
            cur.execute("SET enable_caching_operators = false").fetchall()
            cur.execute(f"PREPARE application AS {self._cached}").fetchall()
            self._prepared.cursor = cur
        return cur

    def _arguments(self, app: Application) -> str:
        """The EXECUTE arguments of an application: each value cast to the very type its parameter has in the
        prepared query (DuckDB plans the statement again when an argument's type differs), the rows from the
        variable ``_extract_sql`` set. Numbers go through their shortest decimal text, which DuckDB parses
        exactly."""
        ltype = self._types["loans"]
        types = {"eid": ltype["enterprise_id"], "d": "DATE", "amount": ltype["amount"], "term": ltype["term_months"],
                 "product": ltype["product"], "guarantee": ltype["guarantee_type"],
                 "gid": ltype.get("group_id", "BIGINT"), **{f"attr_{c}": ltype[c] for c in self._attrs}}
        args = []
        for name, value in self._params(app).items():
            text = _literal(value)
            if isinstance(value, (int, float, date)) and not isinstance(value, bool) and text != "NULL":
                text = "'" + (value.isoformat() if isinstance(value, date) else text) + "'"
            args.append(f"{name} := CAST({text} AS {types[name]})")
        args += [f"rows_{t} := getvariable('{ROWS}_{t}')" for t in self._tables]
        return ", ".join(args)

    def _sqlite_plan(self, *, strict: bool) -> _SqlitePlan | None:
        """The catalogue's query translated for SQLite and the statements that copy one application's rows
        into it; None when the catalogue or the store's types have no faithful translation (strict: a
        StoreError saying why)."""
        from creditmodel.features import sqlite

        types = {t: self._types[t] for t in self._tables}
        odd = [(t, c, k) for t, cols in types.items() for c, k in cols.items() if not sqlite.supported_type(k)]
        try:
            if odd:
                raise sqlite.SqliteTranslationError(f"{odd[0][0]}.{odd[0][1]} is of type {odd[0][2]}")
            kinds_of: dict[str, set[str]] = {}
            for cols in self._types.values():
                for c, k in cols.items():
                    kinds_of.setdefault(c, set()).add(k.upper())
            plain = {"VARCHAR", *sqlite.INTEGER_TYPES}  # the same text on both engines
            text_columns = frozenset(c for c, k in kinds_of.items() if k <= plain)
            query = sqlite.to_sqlite_sql(with_ctes([self._apps_cte(self._app_values())], self._sql), text_columns)
        except sqlite.SqliteTranslationError as exc:
            if strict:
                raise StoreError.of("error.online.no_sqlite", store=str(self.store), detail=str(exc)[:300]) from None
            return None
        group = any(f.source == "guarantee_group" for f in self.catalogue)
        lookback = row_lookback(self.catalogue)  # rows dated earlier never reach a feature: not copied
        extract: dict[bool, dict[str, tuple[str, list[str]]]] = {False: {}, True: {}}
        for grouped in (False, True):  # an application without a group reads no other member's loans
            members = ("IN (SELECT $eid UNION SELECT enterprise_id FROM store.loans WHERE group_id = $gid "
                       "AND application_date < $d)") if group and grouped else "= $eid"
            loans = f"enterprise_id {members} AND application_date < $d"
            for t in sorted(self._tables, key=lambda t: t == "repayments"):  # the loans before their repayments
                cols = types[t]
                if t == "loans":
                    where = loans
                elif t == "repayments":  # of the loans just copied, their ids written in ({loans})
                    where = "loan_id IN ({loans}) AND date < $d"
                else:
                    where = "enterprise_id = $eid" + (f" AND {_ROW_DATE[t]} < $d" if t in _ROW_DATE else "")
                    if t in lookback and t in _ROW_DATE:
                        where += f" AND {_ROW_DATE[t]} >= $d - INTERVAL {int(lookback[t])} DAY"
                shown = ", ".join(f"epoch_us(CAST({c} AS TIMESTAMP))" if k.upper().startswith(("DATE", "TIMESTAMP"))
                                  else c for c, k in cols.items())
                sql = f"SELECT {shown} FROM store.{t} WHERE {where}"
                extract[grouped][t] = (sql, [p for p in ("eid", "d", "gid") if f"${p}" in sql])
        create = {t: (f"CREATE TABLE {t} ({', '.join(f'{c} {sqlite.column_type(k)}' for c, k in cols.items())})",
                      f"INSERT INTO {t} VALUES ({', '.join('?' * len(cols))})") for t, cols in types.items()}
        dated = {f"attr_{c}" for c in self._attrs if types["loans"][c].upper().startswith(("DATE", "TIMESTAMP"))}
        # the tables a borrower may well have no rows in; not the account statement (every borrower with an
        # account has rows, and it is the largest table) nor the loans (the group's) and their repayments
        present = {t: np.array([r[0] for r in self._con.execute(
                       f"SELECT DISTINCT enterprise_id FROM store.{t} ORDER BY 1").fetchall()], dtype=np.int64)
                   for t in self._tables if t not in ("transactions", "loans", "repayments")
                   and "enterprise_id" in types[t]}
        return _SqlitePlan(query, extract, create, frozenset(dated), list(types["loans"]).index("loan_id"), present)

    def _sqlite_fetch(self, plan: _SqlitePlan, app: Application) -> tuple[list[str], list[tuple[Any, ...]]]:
        """``_fetch`` on SQLite: the borrower's rows copied out of the store, the translated query run over them."""
        from creditmodel.features import sqlite

        local = self._prepared
        lite = getattr(local, "sqlite", None)
        if lite is None:
            lite = sqlite.connect()
            for create, _ in plan.create.values():
                lite.execute(create)
            local.sqlite = lite
        cur = self._cursor()
        given = {"eid": int(app.enterprise_id), "d": app.decision_date,
                 "gid": None if app.group_id is None else int(app.group_id)}
        loan_ids: list[int] = []
        eid = int(app.enterprise_id)
        rows: list[Any]
        for t, (sql, names) in plan.extract[app.group_id is not None].items():
            ids = plan.present.get(t)
            if ids is not None and not _holds(ids, eid):
                rows = []  # the borrower has no rows in this table
            elif t == "repayments":  # the ids are the store's own integers; no loans, no repayments
                rows = (cur.execute(sql.format(loans=", ".join(str(int(i)) for i in loan_ids)),
                                    {"d": given["d"]}).fetchall() if loan_ids else [])
            else:
                rows = cur.execute(sql, {n: given[n] for n in names}).fetchall()
            if t == "loans":
                loan_ids = [r[plan.loan_id_at] for r in rows]
            lite.execute(f"DELETE FROM {t}")
            lite.executemany(plan.create[t][1], rows)
        params = self._params(app)
        params["d"] = sqlite.micros(app.decision_date)
        for k in plan.dated:
            if params[k] is not None:
                params[k] = sqlite.micros(pd.Timestamp(params[k]).to_pydatetime())
        result = lite.execute(plan.query, params)
        names = [d[0] for d in result.description]
        rows = [(r[0], r[1], app.decision_date, *r[3:]) for r in result.fetchall()]
        return names, rows

    def _fetch(self, app: Application) -> tuple[list[str], list[tuple[Any, ...]]]:
        """The query's column names and its one row: keys (loan_id 0, enterprise_id, decision_date) then
        the catalogue's features, as the store's driver returns them."""
        if self._lite is not None:
            return self._sqlite_fetch(self._lite, app)
        cur = self._statement()
        cur.execute("; ".join(self._extract_sql(app))).fetchall()
        result = cur.execute(f"EXECUTE application({self._arguments(app)})")
        return [d[0] for d in result.description], result.fetchall()

    def compute(self, app: Application) -> pd.DataFrame:
        """One row: keys (loan_id 0, enterprise_id, decision_date) then the catalogue's features."""
        return self._rows_frame(*self._fetch(app))

    def compute_values(self, app: Application) -> dict[str, Any]:
        """The catalogue's features of one application as plain Python values, by name: a float for a number,
        a str for a category, None where the frame of ``compute`` holds NaN or None. What a JSON answer
        carries, without building the frame (which costs more than the scoring that follows)."""
        names, rows = self._fetch(app)
        cats = self._categorical
        out: dict[str, Any] = {}
        for name, v in zip(names[3:], rows[0][3:]):  # after the keys
            if v is None or name in cats:
                out[name] = v
            else:  # DOUBLE, integer counts and PostgreSQL's NUMERIC alike, as _rows_frame makes them
                x = float(v)
                out[name] = None if math.isnan(x) else x
        return out

    def _rows_frame(self, names: list[str], rows: list[tuple[Any, ...]]) -> pd.DataFrame:
        """Feature rows as a frame: int64 keys, datetime64[ns] dates, float64 numbers (NULL as NaN), objects (None
        for NULL) for categories. Built column by column from the rows: pandas' own conversion of a query
        result (and the fixes of its types after) cost more than computing one borrower's features."""
        n = len(rows)
        columns = list(zip(*rows)) if rows else [() for _ in names]
        cats = self._categorical
        data: dict[str, Any] = {}
        for name, values in zip(names, columns):
            if name in ("loan_id", "enterprise_id"):
                data[name] = np.fromiter(values, dtype=np.int64, count=n)
            elif name == "decision_date":
                data[name] = np.array(values, dtype="datetime64[D]").astype("datetime64[ns]")
            elif name in cats:
                column = np.empty(n, dtype=object)
                column[:] = values
                data[name] = pd.Series(column, dtype=object, copy=False)  # not pandas' inferred str dtype
            else:  # DOUBLE, and PostgreSQL's NUMERIC (sums of integers) alike
                data[name] = np.fromiter((np.nan if v is None else float(v) for v in values), dtype=np.float64,
                                         count=n)
        return pd.DataFrame(data, columns=names, copy=False)

    def features(self, enterprise_id: int, decision_date: date | str, *, amount: float, term_months: int,
                 product: str, guarantee_type: str, group_id: int | None = None,
                 attributes: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """The borrower's features as of `decision_date` for the loan described (one-row DataFrame).

        group_id: the application's joint-guarantee group (None: none; ``latest_group`` finds the borrower's
        latest one); attributes: the bank's own loan columns the catalogue reads, by name."""
        d = pd.Timestamp(decision_date).date()
        return self.compute(Application(int(enterprise_id), d, amount, term_months, product, guarantee_type,
                                        group_id, dict(attributes or {})))

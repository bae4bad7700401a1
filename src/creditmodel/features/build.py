"""Compile the feature catalogue into one point-in-time DuckDB query and run it.

Point in time is enforced here, once: every event source is joined to an application only on
rows dated strictly before the application's decision date (and inside the block's look-back),
so no feature expression can see the future.

A bounded batch may run as two lanes, the same SQL split by source into two queries side by side
(``build_features(lanes=2)``); their values are the one query's, bit for bit.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from creditmodel.data.parquet_table import is_parquet_table
from creditmodel.data.schema import TABLES
from creditmodel.exceptions import DataContractError
from creditmodel.features.catalogue import CATALOGUE, REPORTING_LAG_DAYS, STATEMENT_WINDOW_DAYS, Feature
from creditmodel.features.filter_clauses import lower_filters
from creditmodel.texts import text

if TYPE_CHECKING:  # DuckDB is imported where a query runs, so reading a bundle's catalogue does not load it
    import duckdb

log = logging.getLogger(__name__)

KEYS = ["loan_id", "enterprise_id", "decision_date"]

_YEAR = 365  # the fixed window of the monthly, gap and counterparty blocks


@dataclass(frozen=True)
class _Block:
    """One source shape: the canonical tables it needs and the FROM clause that feeds its expressions.

    Every FROM clause joins the application ``a`` to rows dated strictly before ``a.decision_date``.
    ``{lookback}`` marks where the engine adds ``AND <date> >= a.decision_date - INTERVAL n DAY``, n
    being the widest window among the block's features (none if one of them reads all history); it
    only prunes rows, as each windowed expression carries its own window. A block with a fixed
    ``window_days`` has its window built into the FROM clause instead.
    """

    tables: tuple[str, ...]
    sql: str
    date: str | None = None  # the column the look-back applies to
    window_days: int | None = None  # fixed window: the block's features declare it (or less, filtering within)


_EVENT = ("FROM apps a JOIN {table} s ON s.enterprise_id = a.enterprise_id AND s.{date} < a.decision_date"
          "{{lookback}}")
_TXN_WINDOW = (f"s.enterprise_id = a.enterprise_id AND s.ts < a.decision_date "
               f"AND s.ts >= a.decision_date - INTERVAL {_YEAR} DAY")
_BLOCKS: dict[str, _Block] = {
    "registration_events": _Block(("registration_events",),
                                  _EVENT.format(table="registration_events", date="event_date"), "s.event_date"),
    "court_cases": _Block(("court_cases",), _EVENT.format(table="court_cases", date="filed_date"), "s.filed_date"),
    "environment_checks": _Block(("environment_checks",),
                                 _EVENT.format(table="environment_checks", date="check_date"), "s.check_date"),
    "transactions": _Block(("transactions",), _EVENT.format(table="transactions", date="ts"), "s.ts"),
    # one row per loan and monthly period (12 periods of 365/12 days, bucket 0 the most recent)
    "transactions_monthly": _Block(("transactions",), f"""FROM (
        SELECT t.loan_id, t.bucket,
               sum(CASE WHEN t.direction = 'in' THEN t.amount ELSE 0 END) AS inflow,
               sum(CASE WHEN t.direction = 'out' THEN t.amount ELSE 0 END) AS outflow
        FROM (SELECT a.loan_id, s.direction, s.amount,
                     CAST(floor((date_diff('day', CAST(s.ts AS DATE), a.decision_date) - 1) * 12 / {_YEAR}.0)
                          AS INTEGER) AS bucket
              FROM apps a JOIN transactions s ON {_TXN_WINDOW}) t
        GROUP BY t.loan_id, t.bucket) m JOIN apps a ON a.loan_id = m.loan_id""", window_days=_YEAR),
    # one row per run between consecutive receipt days; the window start and the decision date close the ends
    "transaction_gaps": _Block(("transactions",), f"""FROM (
        SELECT d.loan_id, date_diff('day', lag(d.day) OVER (PARTITION BY d.loan_id ORDER BY d.day), d.day) AS gap_days
        FROM (SELECT a.loan_id, CAST(s.ts AS DATE) AS day
              FROM apps a JOIN transactions s ON {_TXN_WINDOW} AND s.direction = 'in'
              UNION ALL SELECT loan_id, decision_date FROM apps
              UNION ALL SELECT loan_id, CAST(decision_date - INTERVAL {_YEAR} DAY AS DATE) FROM apps) d
        ) g JOIN apps a ON a.loan_id = g.loan_id""", window_days=_YEAR),
    # one row per paying counterparty: its receipts and its latest receipt
    "transaction_counterparties": _Block(("transactions",), f"""FROM (
        SELECT a.loan_id, s.counterparty, sum(s.amount) AS inflow, max(s.ts) AS last_ts
        FROM apps a JOIN transactions s ON {_TXN_WINDOW} AND s.direction = 'in'
        GROUP BY a.loan_id, s.counterparty) c JOIN apps a ON a.loan_id = c.loan_id""", window_days=_YEAR),
    # statements available at the decision date (period end + reporting lag before it), ranked latest first
    "financial_statements": _Block(("financial_statements",), f"""FROM (
        SELECT a.loan_id, s.period_end, s.revenue, s.assets, s.liabilities, s.inventory, s.receivables, s.net_profit,
               row_number() OVER (PARTITION BY a.loan_id ORDER BY s.period_end DESC) AS rn
        FROM apps a JOIN financial_statements s ON s.enterprise_id = a.enterprise_id
             AND s.period_end + INTERVAL {REPORTING_LAG_DAYS} DAY < a.decision_date
             AND s.period_end >= a.decision_date - INTERVAL {STATEMENT_WINDOW_DAYS} DAY) s
        JOIN apps a ON a.loan_id = s.loan_id""", window_days=STATEMENT_WINDOW_DAYS),
    "loan_history": _Block(("loans",), """FROM apps a JOIN loans p ON p.enterprise_id = a.enterprise_id
        AND p.application_date < a.decision_date{lookback}""", "p.application_date"),
    "repayment_history": _Block(("loans", "repayments"), """FROM apps a JOIN loans p ON p.enterprise_id = a.enterprise_id
        AND p.application_date < a.decision_date
        JOIN repayments r ON r.loan_id = p.loan_id AND r.date < a.decision_date{lookback}""", "r.date"),
    # other members of the loan's joint-guarantee group who applied strictly before the decision date,
    # and the repayment records (dated before it) of all their loans
    "guarantee_group": _Block(("loans", "repayments"), """FROM apps a JOIN loans q ON q.group_id = a.group_id
        AND q.enterprise_id <> a.enterprise_id AND q.application_date < a.decision_date
        LEFT JOIN loans pm ON pm.enterprise_id = q.enterprise_id AND pm.application_date < a.decision_date
        LEFT JOIN repayments r ON r.loan_id = pm.loan_id AND r.date < a.decision_date{lookback}""", "r.date"),
}
_INLINE = {"application": ("loans",), "enterprises": ("enterprises",),
           "loan_attributes": ("loans",), "enterprise_attributes": ("enterprises",)}
_ATTRIBUTES = {"loan_attributes": "loans", "enterprise_attributes": "enterprises"}  # the bank's own columns
SOURCES = (*_INLINE, *_BLOCKS, "derived")  # the attribute sources: the bank's own columns


def _needs(source: str) -> tuple[str, ...]:
    if source in _INLINE:
        return _INLINE[source]
    if source in _BLOCKS:
        return _BLOCKS[source].tables
    raise ValueError(f"feature source {source!r} is not one of {sorted(SOURCES)}")


def available_features(
    tables: dict[str, pd.DataFrame], features: Sequence[Feature] = CATALOGUE
) -> tuple[list[Feature], list[str]]:
    """Features whose sources are present, and the names of the sources that are missing."""
    present = {name for name, df in tables.items() if df is not None}
    kept: list[Feature] = []
    missing: set[str] = set()
    for f in features:
        if f.source == "derived":
            continue
        absent = [t for t in _needs(f.source) if t not in present]
        if absent:
            missing.update(absent)
        else:
            kept.append(f)
    kept_names = {f.name for f in kept}
    known = [*features, *CATALOGUE]  # a derived feature passed without its inputs is dropped too
    for f in features:
        if f.source == "derived" and all(n in kept_names for n in _referenced(f, known)):
            kept.append(f)
    return kept, sorted(missing)


def _referenced(derived: Feature, features: Sequence[Feature]) -> list[str]:
    """The non-derived features a derived feature's expression names."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", derived.sql))
    return [f.name for f in features if f.source != "derived" and f.name in words]


def attribute_columns(features: Sequence[Feature]) -> dict[str, list[str]]:
    """Per table, the bank's own columns that attribute features read."""
    out: dict[str, list[str]] = {}
    for f in features:
        if f.source in _ATTRIBUTES:
            out.setdefault(_ATTRIBUTES[f.source], []).append(f.name)
    return out


def _check_attributes(tables: dict[str, pd.DataFrame], extra: dict[str, list[str]]) -> None:
    for table, columns in extra.items():
        absent = [c for c in columns if tables.get(table) is not None and c not in tables[table].columns]
        if absent:
            raise DataContractError.of("error.build.attribute_missing", table=table, column=absent[0], n=len(absent))


def _register(con: duckdb.DuckDBPyConnection, tables: dict[str, pd.DataFrame],
              extra: dict[str, list[str]] | None = None, views: bool = True) -> None:
    for name, df in tables.items():
        if name not in TABLES or df is None:
            continue
        spec = TABLES[name]
        if is_parquet_table(df):  # left in its files: DuckDB reads them where the query needs them
            if views:
                con.execute(f"CREATE VIEW raw_{name} AS SELECT * FROM {df.source()}")
        else:
            con.register(f"raw_{name}", df)
        if not views:
            continue
        cols = list((extra or {}).get(name, []))
        for c in spec.columns:
            if c.kind == "date":
                cols.append(f"CAST({c.name} AS DATE) AS {c.name}")
            elif c.kind == "timestamp":
                cols.append(f"CAST({c.name} AS TIMESTAMP) AS {c.name}")
            else:
                cols.append(c.name)
        con.execute(f"CREATE VIEW {name} AS SELECT {', '.join(cols)} FROM raw_{name}")


def _value(f: Feature, expr: str) -> str:
    return expr if f.is_categorical else f"CAST({expr} AS DOUBLE)"


def source_clause(source: str, features: Sequence[Feature]) -> str:
    """The point-in-time FROM clause of an event source, pruned to the widest window of `features`."""
    block = _BLOCKS[source]
    if block.window_days is not None:
        wrong = [f.name for f in features if f.window_days is None or f.window_days > block.window_days]
        if wrong:
            raise ValueError(f"features {wrong} of source {source!r} must declare window_days of at most "
                             f"{block.window_days}, the window of its rows")
        return block.sql
    windows = [f.window_days for f in features if f.window_days is not None]
    lookback = ""
    if windows and len(windows) == len(features):  # every feature looks back a bounded window
        lookback = f" AND {block.date} >= a.decision_date - INTERVAL {max(windows)} DAY"
    return block.sql.replace("{lookback}", lookback)


def row_lookback(features: Sequence[Feature]) -> dict[str, int]:
    """Per table, how many days before the decision date the query ``compile_query(features)`` reads its rows:
    the widest window of the blocks that read it, on the table's own date column (rows dated earlier never
    reach a feature). A table read with all its history, or by a block that joins several tables, is absent."""
    by_source: dict[str, list[Feature]] = {}
    for f in features:
        by_source.setdefault(f.source, []).append(f)
    days: dict[str, int | None] = {}
    for source, feats in by_source.items():
        if source == "derived":
            continue
        block = _BLOCKS.get(source)
        if block is None or len(block.tables) != 1:
            days.update(dict.fromkeys(_needs(source)))
            continue
        windows = [f.window_days for f in feats]
        widest = block.window_days if block.window_days is not None else \
            None if None in windows else max(w for w in windows if w is not None)
        table = block.tables[0]
        whole = widest is None or (table in days and days[table] is None)  # some block reads all its history
        days[table] = None if whole else max(days.get(table) or 0, widest or 0)
    return {t: d for t, d in days.items() if d is not None}


# The blocks that read the transactions of the year before the decision date. When two or more of them are
# compiled (and every feature of the plain block fits that year), they share one join of the applications to
# those rows, ``txn_year``: DuckDB materialises a CTE read more than once, and the three further joins of
# millions of rows to the applications cost more than reading it back (on a 50k-borrower world the catalogue
# took 1.34x less CPU); the values are the same, as each block sees the same rows.
_TXN_JOIN = f"apps a JOIN transactions s ON {_TXN_WINDOW}"
_TXN_SHARED = "txn_year s JOIN apps a ON a.loan_id = s.loan_id"
_TXN_SOURCES = ("transactions", "transactions_monthly", "transaction_gaps", "transaction_counterparties")


def _shares_transactions(by_source: dict[str, list[Feature]]) -> bool:
    present = [s for s in _TXN_SOURCES if s in by_source]
    plain = by_source.get("transactions", [])
    return len(present) >= 2 and all(f.window_days is not None and f.window_days <= _YEAR for f in plain)


def _block_from(source: str, feats: Sequence[Feature], shared: bool) -> str:
    if shared and source == "transactions":
        source_clause(source, feats)  # the same checks
        return f"FROM {_TXN_SHARED}"
    if shared and source in _TXN_SOURCES:
        return source_clause(source, feats).replace(_TXN_JOIN, _TXN_SHARED)
    return source_clause(source, feats)


def compile_query(features: Sequence[Feature], *, ordered: bool = True) -> str:
    """The SQL that computes `features` for every row of the `apps` view (exposed for review).

    It may open with a WITH clause of its own (``txn_year``); a caller that puts CTEs before it merges
    them with ``with_ctes``. ``ordered=False`` leaves out the final ORDER BY (a lane of ``build_features``:
    its rows are ordered when the lanes are joined)."""
    selects = ["a.loan_id", "a.enterprise_id", "a.decision_date"]
    joins = []
    by_source: dict[str, list[Feature]] = {}
    for f in features:
        by_source.setdefault(f.source, []).append(f)
    for source in ("application", "enterprises", "loan_attributes", "enterprise_attributes"):
        for f in by_source.get(source, []):
            selects.append(f"{_value(f, f.sql)} AS {f.name}")
    if "enterprises" in by_source or "enterprise_attributes" in by_source:
        joins.append("LEFT JOIN enterprises e ON e.enterprise_id = a.enterprise_id")
    shared = _shares_transactions(by_source)
    for i, (source, feats) in enumerate(sorted((s, fs) for s, fs in by_source.items() if s in _BLOCKS)):
        alias = f"b{i}"
        exprs = ", ".join(f"{_value(f, lower_filters(f.sql))} AS {f.name}" for f in feats)
        joins.append(f"LEFT JOIN (SELECT a.loan_id, {exprs} {_block_from(source, feats, shared)} "
                     f"GROUP BY a.loan_id, a.decision_date) {alias} ON {alias}.loan_id = a.loan_id")
        for f in feats:
            col = f"{alias}.{f.name}"
            selects.append(f"coalesce({col}, {float(f.fill)}) AS {f.name}" if f.fill is not None
                           else f"{col} AS {f.name}")
    base = f"SELECT {', '.join(selects)} FROM apps a {' '.join(joins)}"
    query = f"SELECT {_outer(features)} FROM ({base}) base" + (" ORDER BY decision_date, loan_id" if ordered else "")
    if not shared:
        return query
    columns = ", ".join(f"s.{c.name}" for c in TABLES["transactions"].columns)
    return f"WITH txn_year AS (SELECT a.loan_id, {columns} FROM {_TXN_JOIN}) {query}"


def _outer(features: Sequence[Feature]) -> str:
    """The final select list: the keys, then each feature (a derived one computed from the others)."""
    return ", ".join(["loan_id", "enterprise_id", "decision_date"] + [
        f"{_value(f, f.sql)} AS {f.name}" if f.source == "derived" else f.name for f in features])


def _lanes(features: Sequence[Feature]) -> tuple[list[Feature], list[Feature]] | None:
    """The non-derived ``features`` in two lanes: the transaction sources (which share one read of the
    transactions; about two thirds of the catalogue's work) and the others; None when one would be empty."""
    txn = [f for f in features if f.source in _TXN_SOURCES]
    rest = [f for f in features if f.source not in _TXN_SOURCES and f.source != "derived"]
    return (txn, rest) if txn and rest else None


def with_ctes(ctes: Sequence[str], query: str) -> str:
    """`query` (a compiled catalogue query) preceded by `ctes` ("name AS (...)"), which its own CTEs may read."""
    if query.startswith("WITH "):
        return f"WITH {', '.join(ctes)}, {query[len('WITH '):]}"
    return f"WITH {', '.join(ctes)} {query}"


def source_summary(tables: dict[str, pd.DataFrame], features: Sequence[Feature] = CATALOGUE) -> pd.DataFrame:
    """Which sources a feature build uses: per feature source, its tables, their rows, and how many
    features it gives (0 and 'absent' when a table is missing)."""
    kept, _ = available_features(tables, features)
    rows = []
    for source in dict.fromkeys(f.source for f in features):
        needs = () if source == "derived" else _needs(source)
        present = all(tables.get(t) is not None for t in needs)
        rows.append({"source": source, "tables": ", ".join(needs) or "(other features)",
                     "rows": sum(len(tables[t]) for t in needs) if present else 0,
                     "features": sum(f.source == source for f in kept), "status": "used" if present else "absent"})
    return pd.DataFrame(rows)


def _watch(con: duckdb.DuckDBPyConnection, progress: Callable[[str], None], every: float,
           done: threading.Event, lang: str = "en") -> None:
    """Report DuckDB's own estimate of the query's progress until `done` is set."""
    import duckdb

    started, last = time.perf_counter(), -1.0
    while not done.wait(every):
        try:
            pct = float(con.query_progress())
        except (duckdb.Error, RuntimeError):
            continue
        if pct >= 0 and int(pct) != int(last):
            progress(text("progress.features.progress", lang, pct=pct, seconds=time.perf_counter() - started))
            last = pct


def build_features(
    tables: dict[str, pd.DataFrame],
    applications: pd.DataFrame | None = None,
    *,
    features: Sequence[Feature] = CATALOGUE,
    threads: int = 1,
    lanes: int = 1,
    progress: Callable[[str], None] | None = None,
    progress_every: float = 5.0,
    lang: str = "en",
) -> pd.DataFrame:
    """Feature matrix as of each application's decision date: keys, then one column per feature.

    applications: rows of the loans table to score (default: every loan). Sources that are
    absent from `tables` are skipped with a warning; their features are simply not in the result.
    threads: DuckDB threads; 1 keeps floating-point sums in a fixed order, so results are bit-stable.
    lanes: 2 computes the transaction sources and the other sources in two queries side by side (one
    more core, each query on ``threads``), joined by loan; every feature's value is the one query's, as
    each source is computed by the same SQL over the same rows. Both lanes' intermediate results are held
    at once, so it is for bounded batches (monitoring builds its rows in chunks); 1 when the applications
    repeat a loan_id or one lane would be empty.
    progress: called with one-line messages: the sources used (rows, features) and, every
    `progress_every` seconds, DuckDB's estimate of how far the query is; in `lang`.
    """
    check_lanes(lanes)
    kept, missing = available_features(tables, features)
    if missing:
        log.info("sources absent, their features are skipped: %s", ", ".join(missing))
    if progress is not None:
        summary = source_summary(tables, features)
        for r in summary.itertuples():
            if r.source == "derived":
                progress(text("progress.features.derived", lang, n=r.features))
            else:
                progress(text(f"progress.features.{r.status}", lang, source=r.source, rows=r.rows, tables=r.tables,
                              n=r.features))
    import duckdb

    apps = tables["loans"] if applications is None else applications
    extra = attribute_columns(kept)
    _check_attributes({**tables, "loans": apps}, extra)
    split = _lanes(kept) if lanes == 2 and apps["loan_id"].is_unique else None
    with duckdb.connect() as con:
        con.execute(f"SET threads TO {int(threads)}")
        _attach(con, tables, apps, extra, views=True)
        done = threading.Event()
        watcher = None
        if progress is not None:
            watcher = threading.Thread(target=_watch, args=(con, progress, progress_every, done, lang), daemon=True)
            watcher.start()
        try:
            if split is None:
                frame = con.execute(compile_query(kept)).df()
            else:
                frame = _run_lanes(con, tables, apps, extra, kept, split)
        finally:
            done.set()
            if watcher is not None:
                watcher.join()
    if progress is not None:
        progress(text("progress.features.built", lang, rows=len(frame), n=len(kept)))
    frame["decision_date"] = pd.to_datetime(frame["decision_date"]).astype("datetime64[ns]")
    for f in kept:
        if f.is_categorical:
            frame[f.name] = frame[f.name].astype(object).where(frame[f.name].notna(), None)
    return frame.reset_index(drop=True)


def check_lanes(lanes: object) -> None:
    """Refuse a number of lanes ``build_features`` does not run (1 or 2), before any work."""
    if lanes not in (1, 2):
        raise ValueError(f"lanes {lanes!r}: expected 1 or 2")


def _attach(con: duckdb.DuckDBPyConnection, tables: dict[str, pd.DataFrame], apps: pd.DataFrame,
            extra: dict[str, list[str]], views: bool) -> None:
    """Register the tables and the applications on ``con`` (frames are seen by the connection that
    registers them); ``views``: also create the canonical views over them (once per database)."""
    import duckdb

    try:  # no progress bar on the console; Jupyter refuses the setting without ipywidgets
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:
        pass
    _register(con, tables, extra, views=views)
    con.register("raw_apps", apps)
    if views:
        group = "group_id" if "group_id" in apps.columns else "CAST(NULL AS BIGINT) AS group_id"
        own = "".join(f", {c}" for c in extra.get("loans", []))
        con.execute(f"""CREATE VIEW apps AS SELECT loan_id, enterprise_id,
            CAST(application_date AS DATE) AS decision_date, amount, term_months, product, guarantee_type, {group}
            {own} FROM raw_apps""")


def _run_lanes(con: duckdb.DuckDBPyConnection, tables: dict[str, pd.DataFrame], apps: pd.DataFrame,
               extra: dict[str, list[str]], kept: Sequence[Feature],
               split: tuple[list[Feature], list[Feature]]) -> pd.DataFrame:
    """The two lanes' queries at once, each into a table of the build's own database (the transaction lane
    on ``con``, in a second thread; the other on a second connection, here), then read back side by side in
    the one query's row order, the derived features computed from the lanes' values in SQL as the one
    query computes them."""
    from concurrent.futures import ThreadPoolExecutor

    txn, rest = split
    order = " ORDER BY decision_date, loan_id"  # both lanes hold every application once: the same order
    derived = [f for f in kept if f.source == "derived"]
    needed = sorted({n for f in derived for n in _referenced(f, kept)} & {f.name for f in txn})
    other = con.cursor()  # the same database, a connection of its own: its own registered frames
    try:
        _attach(other, tables, apps, extra, views=False)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lane") as pool:
            first = pool.submit(con.execute, f"CREATE TABLE lane_txn AS {compile_query(txn, ordered=False)}")
            try:
                other.execute(f"CREATE TABLE lane_rest AS {compile_query(rest, ordered=False)}")
            finally:
                first.result()
            names = ", ".join(f.name for f in txn)
            left = pool.submit(lambda: con.execute(f"SELECT loan_id, {names} FROM lane_txn{order}").df())
            try:
                wanted = "".join(f", {n}" for n in needed)
                values = ", ".join(["loan_id", "enterprise_id", "decision_date", *(f.name for f in rest),
                                    *(f"{_value(f, f.sql)} AS {f.name}" for f in derived)])
                right = other.execute(f"SELECT {values} FROM lane_rest LEFT JOIN (SELECT loan_id{wanted} FROM "
                                      f"lane_txn) t USING (loan_id){order}").df()
            finally:
                got = left.result()
    finally:
        other.close()
    con.execute("DROP TABLE lane_txn; DROP TABLE lane_rest")  # their memory serves the frame below
    if not (got["loan_id"].to_numpy() == right["loan_id"].to_numpy()).all():  # the lanes' rows, one per loan
        raise AssertionError("feature lanes disagree on their rows")
    # one copy, in the one query's column order
    columns = {c: right[c] for c in ("loan_id", "enterprise_id", "decision_date")}
    columns.update({f.name: (got if f.name in got.columns else right)[f.name] for f in kept})
    return pd.DataFrame(columns)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The feature columns of a feature matrix (everything but the keys)."""
    return [c for c in frame.columns if c not in KEYS]

"""Compile the feature catalogue into one point-in-time DuckDB query and run it.

Point in time is enforced here, once: every event source is joined to an application only on
rows dated strictly before the application's decision date (and inside the block's look-back),
so no feature expression can see the future.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import duckdb
import pandas as pd

from creditmodel.data.schema import TABLES
from creditmodel.features.catalogue import CATALOGUE, Feature

log = logging.getLogger(__name__)

KEYS = ["loan_id", "enterprise_id", "decision_date"]

# Each block: the canonical tables it needs, and the FROM ... GROUP BY that feeds its expressions.
_EVENT = "FROM apps a JOIN {table} s ON s.enterprise_id = a.enterprise_id AND s.{date} < a.decision_date{lookback}"
_BLOCKS: dict[str, tuple[tuple[str, ...], str]] = {
    "registration_events": (("registration_events",),
                            _EVENT.format(table="registration_events", date="event_date", lookback="")),
    "court_cases": (("court_cases",), _EVENT.format(table="court_cases", date="filed_date", lookback="")),
    "environment_checks": (("environment_checks",), _EVENT.format(
        table="environment_checks", date="check_date",
        lookback=" AND s.check_date >= a.decision_date - INTERVAL 36 MONTH")),
    "transactions": (("transactions",), _EVENT.format(
        table="transactions", date="ts", lookback=" AND s.ts >= a.decision_date - INTERVAL 12 MONTH")),
    "transactions_monthly": (("transactions",), """FROM (
        SELECT a.loan_id,
               least(CAST(floor(date_diff('day', CAST(s.ts AS DATE), a.decision_date) / 30.4375) AS INTEGER), 11) AS bucket,
               sum(s.amount) AS inflow
        FROM apps a JOIN transactions s ON s.enterprise_id = a.enterprise_id AND s.direction = 'in'
             AND s.ts < a.decision_date AND s.ts >= a.decision_date - INTERVAL 12 MONTH
        GROUP BY ALL) m JOIN apps a USING (loan_id)"""),
    "transaction_gaps": (("transactions",), """FROM (
        SELECT loan_id, date_diff('day', lag(ts) OVER (PARTITION BY loan_id ORDER BY ts), ts) AS gap_days
        FROM (SELECT a.loan_id, s.ts FROM apps a JOIN transactions s ON s.enterprise_id = a.enterprise_id
                   AND s.direction = 'in' AND s.ts < a.decision_date
                   AND s.ts >= a.decision_date - INTERVAL 12 MONTH
              UNION ALL SELECT loan_id, CAST(decision_date AS TIMESTAMP) FROM apps)) g JOIN apps a USING (loan_id)"""),
    "financial_statements": (("financial_statements",), _EVENT.format(
        table="financial_statements", date="period_end",
        lookback=" AND s.period_end >= a.decision_date - INTERVAL 24 MONTH")),
    "loan_history": (("loans",), """FROM apps a JOIN loans p ON p.enterprise_id = a.enterprise_id
        AND p.application_date < a.decision_date"""),
    "repayment_history": (("loans", "repayments"), """FROM apps a JOIN loans p ON p.enterprise_id = a.enterprise_id
        AND p.application_date < a.decision_date
        JOIN repayments r ON r.loan_id = p.loan_id AND r.date < a.decision_date"""),
}
_INLINE = {"application": ("loans",), "enterprises": ("enterprises",)}


def _needs(source: str) -> tuple[str, ...]:
    if source in _INLINE:
        return _INLINE[source]
    if source in _BLOCKS:
        return _BLOCKS[source][0]
    raise ValueError(f"feature source {source!r} is not one of {sorted({*_INLINE, *_BLOCKS, 'derived'})}")


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
    for f in features:
        if f.source == "derived" and all(n in kept_names for n in _referenced(f, features)):
            kept.append(f)
    return kept, sorted(missing)


def _referenced(derived: Feature, features: Sequence[Feature]) -> list[str]:
    return [f.name for f in features if f.source != "derived" and f.name in derived.sql]


def _register(con: duckdb.DuckDBPyConnection, tables: dict[str, pd.DataFrame]) -> None:
    for name, df in tables.items():
        if name not in TABLES or df is None:
            continue
        spec = TABLES[name]
        con.register(f"raw_{name}", df)
        cols = []
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


def compile_query(features: Sequence[Feature]) -> str:
    """The SQL that computes `features` for every row of the `apps` view (exposed for review)."""
    selects = ["a.loan_id", "a.enterprise_id", "a.decision_date"]
    joins = []
    by_source: dict[str, list[Feature]] = {}
    for f in features:
        by_source.setdefault(f.source, []).append(f)
    for f in by_source.get("application", []) + by_source.get("enterprises", []):
        selects.append(f"{_value(f, f.sql)} AS {f.name}")
    if "enterprises" in by_source:
        joins.append("LEFT JOIN enterprises e ON e.enterprise_id = a.enterprise_id")
    for i, (source, feats) in enumerate(sorted((s, fs) for s, fs in by_source.items() if s in _BLOCKS)):
        alias = f"b{i}"
        exprs = ", ".join(f"{_value(f, f.sql)} AS {f.name}" for f in feats)
        joins.append(f"LEFT JOIN (SELECT a.loan_id, {exprs} {_BLOCKS[source][1]} GROUP BY a.loan_id, a.decision_date) {alias} "
                     f"ON {alias}.loan_id = a.loan_id")
        for f in feats:
            col = f"{alias}.{f.name}"
            selects.append(f"coalesce({col}, {float(f.fill)}) AS {f.name}" if f.fill is not None
                           else f"{col} AS {f.name}")
    base = f"SELECT {', '.join(selects)} FROM apps a {' '.join(joins)}"
    outer = ", ".join(["loan_id", "enterprise_id", "decision_date"] + [
        f"{_value(f, f.sql)} AS {f.name}" if f.source == "derived" else f.name for f in features])
    return f"SELECT {outer} FROM ({base}) base ORDER BY decision_date, loan_id"


def build_features(
    tables: dict[str, pd.DataFrame],
    applications: pd.DataFrame | None = None,
    *,
    features: Sequence[Feature] = CATALOGUE,
    threads: int = 1,
) -> pd.DataFrame:
    """Feature matrix as of each application's decision date: keys, then one column per feature.

    applications: rows of the loans table to score (default: every loan). Sources that are
    absent from `tables` are skipped with a warning; their features are simply not in the result.
    threads: DuckDB threads; 1 keeps floating-point sums in a fixed order, so results are bit-stable.
    """
    kept, missing = available_features(tables, features)
    if missing:
        log.warning("sources absent, their features are skipped: %s", ", ".join(missing))
    apps = tables["loans"] if applications is None else applications
    with duckdb.connect() as con:
        con.execute(f"SET threads TO {int(threads)}")
        _register(con, tables)
        con.register("raw_apps", apps)
        con.execute("""CREATE VIEW apps AS SELECT loan_id, enterprise_id,
            CAST(application_date AS DATE) AS decision_date, amount, term_months, product, guarantee_type
            FROM raw_apps""")
        frame = con.execute(compile_query(kept)).df()
    frame["decision_date"] = pd.to_datetime(frame["decision_date"]).astype("datetime64[ns]")
    for f in kept:
        if f.is_categorical:
            frame[f.name] = frame[f.name].astype(object).where(frame[f.name].notna(), None)
    return frame.reset_index(drop=True)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The feature columns of a feature matrix (everything but the keys)."""
    return [c for c in frame.columns if c not in KEYS]

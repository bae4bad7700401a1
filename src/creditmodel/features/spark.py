"""Run the feature catalogue on Apache Spark: the very query DuckDB runs, transpiled.

The catalogue is data (SQL expressions) and ``build.compile_query`` turns it into one
point-in-time query. This module takes that query as it is, parses it as DuckDB SQL with sqlglot
and writes it out as Spark SQL, so one definition runs on both engines. sqlglot alone translates
the syntax; where the two engines give the same SQL a different meaning, ``to_spark_sql``
rewrites the expression so that Spark computes what DuckDB computes:

* ``date_diff(unit, a, b)`` counts unit *boundaries* crossed in DuckDB (23:59:59 -> 00:00:00 the
  next day is 1 day; 31 Jan -> 1 Feb is 1 month); Spark's ``datediff(unit, ...)`` counts whole
  units elapsed (0 and 0). Days become ``datediff(date(b), date(a))``, months/quarters/years a
  difference of calendar fields, hours/minutes/seconds a difference of truncated timestamps.
* ``arg_max``/``max_by`` (and the ``min`` forms) skip rows whose value is NULL in DuckDB; Spark
  returns the NULL of the latest row. Rewritten as ``max_by(x, CASE WHEN x IS NOT NULL THEN k END)``.
* Decimal literals (``365.25``) make Spark divide in DECIMAL with 6 digits of scale; DuckDB
  divides in DOUBLE. They are cast to DOUBLE.
* ``CAST(double AS INTEGER)`` rounds half to even in DuckDB and truncates in Spark: ``bround`` first.
* ``log(x)`` is base 10 in DuckDB and natural in Spark; ``quantile_cont`` becomes ``percentile``.

Timestamps are ``TIMESTAMP_NTZ`` on the Spark side (DuckDB's TIMESTAMP has no zone either) and
the session time zone is UTC, so no wall-clock value moves between engines. ANSI mode stays on:
an expression that divides by zero fails loudly on Spark instead of silently differing (DuckDB
gives inf, non-ANSI Spark NULL). Anything sqlglot cannot express raises ``SparkTranslationError``.

Entry points: ``spark_query(features)`` (the SQL, for review), ``build_features_spark`` (a pandas
frame identical in columns, order and dtypes to ``build.build_features``) and
``write_features_spark`` (parquet in, parquet out, nothing collected to the driver: the scale
path). ``get_spark`` makes a session: ``local[2]`` by default, a cluster by ``master=`` or the
``SPARK_MASTER`` environment variable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel
from sqlglot.optimizer.annotate_types import annotate_types

from creditmodel.data.schema import TABLES
from creditmodel.exceptions import CreditModelError
from creditmodel.features.build import available_features, compile_query
from creditmodel.features.catalogue import CATALOGUE, Feature
from creditmodel.features.transpile import UNIT_ALIASES, date_unit, rewrite_bottom_up
from creditmodel.texts import Phrase, said

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

__all__ = [
    "SMALL_DATA_CONF",
    "SparkTranslationError",
    "to_spark_sql",
    "spark_query",
    "get_spark",
    "register_tables",
    "spark_feature_frame",
    "build_features_spark",
    "write_features_spark",
    "frame_mismatches",
]

DEFAULT_MASTER = "local[2]"

# Settings for small data (tests, demos): on a few thousand rows a Spark query costs JVM warm-up
# and code generation, not work, so compile with C1 only and interpret expressions. Results are
# the same; the benchmark checks parity with Spark's defaults (code generation on) at scale.
SMALL_DATA_CONF = {
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}

_DUCK_TYPES = {"int": "BIGINT", "float": "DOUBLE", "str": "VARCHAR", "date": "DATE",
               "timestamp": "TIMESTAMP", "bool": "BOOLEAN"}
_SPARK_TYPES = {"int": "BIGINT", "float": "DOUBLE", "str": "STRING", "date": "DATE",
                "timestamp": "TIMESTAMP_NTZ", "bool": "BOOLEAN"}
_ARROW_TYPES = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "date": pa.date32(),
                "timestamp": pa.timestamp("us"), "bool": pa.bool_()}


class SparkTranslationError(CreditModelError):
    """A DuckDB feature expression has no faithful Spark SQL translation."""


# --- DuckDB SQL -> Spark SQL ----------------------------------------------------------------------

_BOUNDARY_FIELD = {"MONTH": 12, "QUARTER": 4}  # calendar field diff: (years * n) + field diff
_TRUNC_UNITS = ("HOUR", "MINUTE", "SECOND", "MILLISECOND", "MICROSECOND")
_FLOAT_TYPES = {exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT}
_DECIMAL_TYPES = {exp.DataType.Type.DECIMAL, exp.DataType.Type.BIGDECIMAL}



def _fn(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=[a.copy() for a in args])


def _date(e: exp.Expression) -> exp.Expression:
    return exp.Cast(this=e.copy(), to=exp.DataType.build("DATE"))


def _boundary_diff(unit: str, start: exp.Expression, end: exp.Expression, node: exp.Expression) -> exp.Expression:
    """DuckDB date_diff(unit, start, end): the number of unit boundaries between start and end."""
    days = _fn("DATEDIFF", _date(end), _date(start))
    if unit == "DAY":
        return days
    if unit == "WEEK":  # DuckDB: whole weeks of calendar days, truncated toward zero
        return exp.IntDiv(this=days, expression=exp.Literal.number(7))
    years = exp.Sub(this=_fn("YEAR", end), expression=_fn("YEAR", start))
    if unit == "YEAR":
        return exp.Paren(this=years)
    if unit in _BOUNDARY_FIELD:
        field = exp.Sub(this=_fn(unit, end), expression=_fn(unit, start))
        return exp.Paren(this=exp.Add(this=exp.Mul(this=exp.Paren(this=years),
                                                   expression=exp.Literal.number(_BOUNDARY_FIELD[unit])),
                                      expression=exp.Paren(this=field)))
    if unit in _TRUNC_UNITS:
        trunc = [_fn("DATE_TRUNC", exp.Literal.string(unit), e) for e in (start, end)]
        return _fn("TIMESTAMPDIFF", exp.var(unit), *trunc)
    raise SparkTranslationError.of("error.spark.date_diff_unit", where=_where(node), unit_name=unit)


def _where(node: exp.Expression) -> str:
    return node.sql("duckdb")[:160]


def _rewrite(node: exp.Expr, cast_from: Mapping[int, exp.DataType | None]) -> exp.Expr:
    """Spark SQL with DuckDB's meaning for one node (its children are already rewritten)."""
    if isinstance(node, exp.DateDiff):
        return _boundary_diff(date_unit(node.args.get("unit")), node.expression, node.this, node)
    if isinstance(node, (exp.ArgMax, exp.ArgMin)):
        if node.args.get("count") is not None:
            raise SparkTranslationError.of("error.spark.top_n", where=_where(node))
        value, key = node.this, node.expression
        guarded = exp.Case(ifs=[exp.If(this=exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())),
                                       true=key.copy())])
        return _fn("MAX_BY" if isinstance(node, exp.ArgMax) else "MIN_BY", value, guarded)
    if isinstance(node, exp.Anonymous):
        name = node.name.upper()
        if name in ("ARG_MAX_NULL", "MAX_BY_NULL", "ARG_MIN_NULL", "MIN_BY_NULL") and len(node.expressions) == 2:
            return _fn("MAX_BY" if "MAX" in name else "MIN_BY", *node.expressions)
        if name in ("DATE_SUB", "DATESUB") and len(node.expressions) == 3:
            unit = UNIT_ALIASES.get(node.expressions[0].name.upper(), node.expressions[0].name.upper())
            if unit in ("DAY", "HOUR", "MINUTE", "SECOND"):  # whole units elapsed, as Spark counts them
                return _fn("TIMESTAMPDIFF", exp.var(unit), *node.expressions[1:])
            raise SparkTranslationError.of("error.spark.date_sub_unit", where=_where(node), unit_name=unit)
        return node
    if isinstance(node, exp.Literal) and node.is_number and not node.is_int:
        text = node.name.lower()
        if "e" not in text:  # '365.25' is DECIMAL in Spark (scale-6 division); DuckDB computes in DOUBLE
            return exp.Cast(this=node.copy(), to=exp.DataType.build("DOUBLE"))
        return node
    if isinstance(node, exp.Log) and node.args.get("expression") is None:  # DuckDB log(x) is log10
        return exp.Log(this=exp.Literal.number(10), expression=node.this.copy())
    if isinstance(node, exp.PercentileCont) and node.expression is not None:
        return _fn("PERCENTILE", node.this, node.expression)
    if isinstance(node, exp.Cast) and node.to.this in exp.DataType.INTEGER_TYPES:
        inner_type = cast_from.get(id(node))
        inner = inner_type.this if inner_type is not None else None
        if inner in _FLOAT_TYPES or inner in _DECIMAL_TYPES:  # DuckDB rounds (half even for doubles)
            rounded = _fn("BROUND" if inner in _FLOAT_TYPES else "ROUND", node.this)
            return exp.Cast(this=rounded, to=node.to.copy())
    return node


# The application view `apps`, as build.build_features defines it: the loans columns a feature may
# read, the application date renamed decision_date; `rate` is never a feature. A nullable column
# that the applications lack is NULL (group_id: scoring requests carry no joint-guarantee group).
_APPS_HIDDEN = ("application_date", "rate")


def _apps_columns() -> list[tuple[str, str, bool]]:
    """(name, kind, nullable) of the `apps` view, in order."""
    loans = TABLES["loans"]
    cols = [("loan_id", "int", False), ("enterprise_id", "int", False), ("decision_date", "date", False)]
    cols += [(c.name, c.kind, c.nullable) for c in loans.columns
             if c.name not in ("loan_id", "enterprise_id", *_APPS_HIDDEN)]
    return cols


def _apps_sql(typed: Mapping[str, str]) -> str:
    """The `apps` view over raw_apps, given the typed expressions of its loans columns."""
    parts = []
    for name, _, _ in _apps_columns():
        expr = typed["application_date"] if name == "decision_date" else typed[name]
        parts.append(expr if expr == name else f"{expr} AS {name}")
    return f"SELECT {', '.join(parts)} FROM raw_apps"


def _duck_schema() -> dict[str, object]:
    """Table -> column -> DuckDB type of the canonical views and `apps`, for sqlglot's type annotation."""
    schema: dict[str, object] = {name: {c.name: _DUCK_TYPES[c.kind] for c in t.columns} for name, t in TABLES.items()}
    schema["apps"] = {name: _DUCK_TYPES[kind] for name, kind, _ in _apps_columns()}
    return schema


def to_spark_sql(duckdb_sql: str, *, pretty: bool = False) -> str:
    """Translate one DuckDB query over the canonical views into Spark SQL with the same results."""
    try:
        tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
    except sqlglot.errors.ParseError as err:
        raise SparkTranslationError.of("error.spark.parse", detail=str(err)) from err
    tree = annotate_types(tree, schema=_duck_schema(), dialect="duckdb")
    cast_from = {id(c): c.this.type for c in tree.find_all(exp.Cast)}  # DuckDB types, before rewriting
    tree = rewrite_bottom_up(tree, lambda node: _rewrite(node, cast_from))
    try:
        return tree.sql(dialect="spark", pretty=pretty, unsupported_level=ErrorLevel.RAISE)
    except sqlglot.errors.UnsupportedError as err:
        raise SparkTranslationError.of("error.spark.unsupported", detail=str(err)) from err


def spark_query(features: Sequence[Feature] = CATALOGUE, *, pretty: bool = True) -> str:
    """The Spark SQL that computes `features` for every row of the `apps` view (for review).

    If the query does not translate, the error names the features that do not translate alone.
    """
    try:
        return to_spark_sql(compile_query(features), pretty=pretty)
    except SparkTranslationError as err:
        culprits: list[Phrase] = []
        for f in features:
            if f.source == "derived":
                continue
            try:
                to_spark_sql(compile_query([f]))
            except SparkTranslationError as one:
                culprits.append(Phrase("error.spark.culprit", {"name": f.name, "reason": said(one)}))
        if not culprits:
            raise
        listed = culprits[-1]  # "a; b; c" as a text of each language: a, then the rest
        for culprit in reversed(culprits[:-1]):
            listed = Phrase("error.spark.culprits", {"first": culprit, "rest": listed})
        raise SparkTranslationError.of("error.spark.untranslatable", culprits=listed) from err


# --- session --------------------------------------------------------------------------------------


def get_spark(
    master: str | None = None,
    *,
    app_name: str = "creditmodel-features",
    driver_memory: str = "2g",
    shuffle_partitions: int | None = None,
    show_progress: bool = True,
    log_level: str = "WARN",
    **conf: Any,
) -> SparkSession:
    """A SparkSession set up for feature parity: UTC session time zone, ANSI SQL, Arrow transfer.

    master: a Spark master URL; default the SPARK_MASTER environment variable, else the
    ``spark.master`` conf, else the running context's or spark-submit's master, else ``local[2]``.
    driver_memory only takes effect when this call starts the JVM. shuffle_partitions defaults to
    4 per local core (Spark's 200 suits a cluster, not a laptop; adaptive execution coalesces).
    Extra settings: ``get_spark(**{"spark.executor.memory": "8g"})`` (Spark conf keys as they are).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pyspark's note about pandas 3; we move data as Arrow
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = {str(k): str(v) for k, v in conf.items()}
    master = master or os.environ.get("SPARK_MASTER") or settings.pop("spark.master", None)
    running = SparkContext._active_spark_context
    if master is None and running is not None:
        master = running.master
    if master is None and not os.environ.get("PYSPARK_GATEWAY_PORT"):  # not under spark-submit
        master = DEFAULT_MASTER
    local = master is not None and master.startswith("local")
    cores = os.cpu_count() or 2
    if master and master.startswith("local[") and master[6:-1].isdigit():
        cores = int(master[6:-1])
    base = {
        "spark.app.name": app_name,
        "spark.driver.memory": driver_memory,
        "spark.sql.session.timeZone": "UTC",  # timestamps keep their wall-clock value, as in DuckDB
        "spark.sql.ansi.enabled": "true",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.shuffle.partitions": str(shuffle_partitions or (4 * cores if local else 200)),
        "spark.ui.showConsoleProgress": "true" if show_progress else "false",
        # pandas writes parquet timestamps in nanoseconds, which Spark reads only as epoch longs
        "spark.sql.legacy.parquet.nanosAsLong": "true",
        "spark.sql.warehouse.dir": str(Path(tempfile.gettempdir()) / "creditmodel-spark-warehouse"),
    }
    if local:
        base.update({"spark.ui.enabled": "false", "spark.driver.bindAddress": "127.0.0.1",
                     "spark.driver.host": "127.0.0.1"})
    base.update(settings)
    builder = SparkSession.builder if master is None else SparkSession.builder.master(master)
    for key, value in base.items():
        builder = builder.config(key, value)
    started = time.perf_counter()
    spark = builder.getOrCreate()
    for key in ("spark.sql.session.timeZone", "spark.sql.ansi.enabled", "spark.sql.shuffle.partitions"):
        spark.conf.set(key, base[key])  # also when getOrCreate returned a session that already ran
    spark.sparkContext.setLogLevel(log_level)
    log.info("Spark %s session on %s (%.1fs)", spark.version, master, time.perf_counter() - started)
    return spark


# --- tables ---------------------------------------------------------------------------------------

TableSource = Any  # a pandas DataFrame, a parquet file/directory path, or a Spark DataFrame


def _discover(root: str | Path) -> dict[str, Path]:
    """The canonical tables under a directory: `<table>.parquet` (file or directory) or `<table>/`."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"tables directory {str(root)!r} does not exist")
    found = {}
    for name in TABLES:
        for candidate in (root / f"{name}.parquet", root / name):
            if candidate.exists():
                found[name] = candidate
                break
    if "loans" not in found:
        raise FileNotFoundError(f"no loans table under {str(root)!r}: expected loans.parquet or loans/")
    return found


def _arrow_from_pandas(name: str, df: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(df, preserve_index=False)
    spec = TABLES.get(name)
    if spec is None:
        return table
    for c in spec.columns:  # all-null / empty columns arrive as arrow 'null'; give them their type
        if c.name in table.column_names and pa.types.is_null(table.schema.field(c.name).type):
            i = table.column_names.index(c.name)
            table = table.set_column(i, c.name, pa.nulls(len(table), _ARROW_TYPES[c.kind]))
    return table


def _spark_frame(spark: SparkSession, name: str, source: TableSource, stage: Path | None = None) -> SparkDataFrame:
    """A Spark DataFrame of one table. In-memory tables are staged as parquet in `stage` when given
    (local mode: a scan of a parquet file is several times faster than Spark's in-plan local relation)."""
    if hasattr(source, "createOrReplaceTempView"):
        return source
    if isinstance(source, (str, Path)):
        return spark.read.parquet(str(source))
    if isinstance(source, pd.DataFrame):
        source = _arrow_from_pandas(name, source)
    if isinstance(source, pa.Table):
        if stage is None:
            return spark.createDataFrame(source)
        path = Path(stage) / f"{name}.parquet"
        pq.write_table(source, path, row_group_size=1 << 18, coerce_timestamps="us",
                       allow_truncated_timestamps=True)
        return spark.read.parquet(str(path))
    raise TypeError(f"table {name!r}: expected a pandas DataFrame, a parquet path or a Spark DataFrame, "
                    f"got {type(source).__name__}")


def _typed_columns(spark: SparkSession, raw: str, name: str) -> dict[str, str]:
    """Column -> typed Spark SQL expression over the raw view, as build._register types them for DuckDB.

    A nullable column that the raw table lacks becomes a typed NULL (applications to score carry
    no joint-guarantee group, for instance).
    """
    dtypes = dict(spark.table(raw).dtypes)
    cols = {}
    for c in TABLES[name].columns:
        col = c.name
        if col not in dtypes:
            if not c.nullable:
                raise ValueError(f"table {name!r} lacks column {c.name!r}: expected the canonical schema")
            cols[c.name] = f"CAST(NULL AS {_SPARK_TYPES[c.kind]})"
            continue
        if c.kind in ("date", "timestamp") and dtypes[col] == "bigint":
            # parquet TIMESTAMP(NANOS) (pandas' default) reads as epoch nanoseconds (nanosAsLong)
            col = f"timestamp_micros({c.name} DIV 1000)"
        if c.kind == "date":
            col = f"CAST({col} AS DATE)"
        elif c.kind == "timestamp":
            col = f"CAST({col} AS TIMESTAMP_NTZ)"
        cols[c.name] = col
    return cols


def register_tables(
    spark: SparkSession,
    tables: Mapping[str, TableSource],
    applications: TableSource | None = None,
    *,
    stage: str | Path | None = None,
) -> list[str]:
    """Typed temp views `<table>` and `apps` (as build._register does for DuckDB); returns the tables used.

    stage: a directory where in-memory tables are written as parquet for Spark to scan (it must
    outlive the queries on these views, and be visible to the executors: local mode only).
    """
    used = []
    for name, source in tables.items():
        if name not in TABLES or source is None:
            continue
        _spark_frame(spark, name, source, None if stage is None else Path(stage)).createOrReplaceTempView(f"raw_{name}")
        cols = _typed_columns(spark, f"raw_{name}", name)
        select = ", ".join(expr if expr == col else f"{expr} AS {col}" for col, expr in cols.items())
        spark.sql(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {select} FROM raw_{name}")
        used.append(name)
    if applications is None:
        raw_apps = spark.table("raw_loans")
    else:
        if stage is not None:
            stage = Path(stage) / "applications"
            stage.mkdir(exist_ok=True)
        raw_apps = _spark_frame(spark, "loans", applications, stage)
    raw_apps.createOrReplaceTempView("raw_apps")
    spark.sql(f"CREATE OR REPLACE TEMP VIEW apps AS {_apps_sql(_typed_columns(spark, 'raw_apps', 'loans'))}")
    return used


def _resolve(tables: Mapping[str, TableSource] | str | Path) -> dict[str, TableSource]:
    if isinstance(tables, (str, Path)):
        return dict(_discover(tables))
    if "loans" not in tables or tables["loans"] is None:
        raise ValueError("tables lacks 'loans': expected the loans table (the applications to score)")
    return dict(tables)


def spark_feature_frame(
    spark: SparkSession,
    tables: Mapping[str, TableSource] | str | Path,
    applications: TableSource | None = None,
    *,
    features: Sequence[Feature] = CATALOGUE,
    stage: str | Path | None = None,
) -> tuple[SparkDataFrame, list[Feature]]:
    """The (lazy) Spark feature frame and the features it holds; sources absent are skipped.

    stage: see ``register_tables`` (in-memory tables staged as parquet; must outlive the frame).
    """
    own = [f.name for f in features if f.source in ("loan_attributes", "enterprise_attributes")]
    if own:
        raise SparkTranslationError.of("error.spark.own_attributes", names=", ".join(own))
    tables = _resolve(tables)
    kept, missing = available_features(tables, features)
    if missing:
        log.warning("sources absent, their features are skipped: %s", ", ".join(missing))
    sql = spark_query(kept, pretty=False)
    used = register_tables(spark, tables, applications, stage=stage)
    sources = sorted({f.source for f in kept})
    log.info("Spark feature build: %d features from %d blocks (%s), tables used: %s",
             len(kept), len(sources), ", ".join(sources), ", ".join(used))
    return spark.sql(sql), kept


@contextlib.contextmanager
def _staging(spark: SparkSession) -> Iterator[Path | None]:
    """A private parquet staging directory in local mode (removed afterwards), else None."""
    if not (spark.sparkContext.master or "").startswith("local"):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="creditmodel-spark-stage-") as stage:
        yield Path(stage)


def _to_pandas(table: pa.Table, kept: Sequence[Feature]) -> pd.DataFrame:
    frame = table.to_pandas()
    frame["decision_date"] = pd.to_datetime(frame["decision_date"]).astype("datetime64[ns]")
    for f in kept:
        if f.is_categorical:
            frame[f.name] = frame[f.name].astype(object).where(frame[f.name].notna(), None)
        elif frame[f.name].dtype != np.float64:
            frame[f.name] = frame[f.name].astype(np.float64)
    return frame.reset_index(drop=True)


def build_features_spark(
    tables: Mapping[str, TableSource] | str | Path,
    applications: TableSource | None = None,
    *,
    features: Sequence[Feature] = CATALOGUE,
    spark: SparkSession | None = None,
) -> pd.DataFrame:
    """``build.build_features`` on Spark: the same columns, order, dtypes and values.

    tables: canonical tables as pandas frames, parquet paths or Spark DataFrames, or a directory
    holding `<table>.parquet` files / partitioned `<table>/` directories. The result is
    collected to the driver as Arrow; for millions of applications use ``write_features_spark``.
    """
    spark = spark or get_spark()
    started = time.perf_counter()
    with _staging(spark) as stage:
        sdf, kept = spark_feature_frame(spark, tables, applications, features=features, stage=stage)
        frame = _to_pandas(sdf.toArrow(), kept)
    log.info("Spark feature build: %d rows x %d features in %.1fs", len(frame), len(kept),
             time.perf_counter() - started)
    return frame


def write_features_spark(
    tables: Mapping[str, TableSource] | str | Path,
    out_dir: str | Path,
    applications: TableSource | None = None,
    *,
    features: Sequence[Feature] = CATALOGUE,
    spark: SparkSession | None = None,
    mode: str = "errorifexists",
) -> Path:
    """Compute the features on Spark and write them as parquet to `out_dir` (nothing collected).

    The scale path: read partitioned parquet (or a cluster's tables as Spark DataFrames), write
    parquet that ``pandas.read_parquet`` or DuckDB read back with the dtypes of ``build_features``
    (decision_date is a DATE column there).
    """
    spark = spark or get_spark()
    started = time.perf_counter()
    out = Path(out_dir)
    with _staging(spark) as stage:
        sdf, kept = spark_feature_frame(spark, tables, applications, features=features, stage=stage)
        sdf.write.mode(mode).parquet(str(out))
    log.info("Spark feature build: %d features written to %s in %.1fs", len(kept), out,
             time.perf_counter() - started)
    return out


# --- parity ---------------------------------------------------------------------------------------


def frame_mismatches(expected: pd.DataFrame, actual: pd.DataFrame, *, rtol: float = 1e-9,
                     atol: float = 0.0) -> dict[str, str]:
    """Column -> what differs between two feature frames ({} when they agree).

    Keys, categorical and integer-valued columns must be equal exactly; float columns within
    `rtol` (relative) or `atol`; nulls must be in the same places. Also checks columns and dtypes.
    """
    problems: dict[str, str] = {}
    if list(expected.columns) != list(actual.columns):
        problems["<columns>"] = (f"expected {list(expected.columns)}, got {list(actual.columns)}")
        return problems
    if len(expected) != len(actual):
        problems["<rows>"] = f"expected {len(expected)} rows, got {len(actual)}"
        return problems
    for col in expected.columns:
        e, a = expected[col], actual[col]
        if e.dtype != a.dtype:
            problems[col] = f"dtype {a.dtype}, expected {e.dtype}"
            continue
        e_na, a_na = e.isna().to_numpy(), a.isna().to_numpy()
        if (e_na != a_na).any():
            i = int(np.flatnonzero(e_na != a_na)[0])
            problems[col] = (f"nulls differ in {int((e_na != a_na).sum())} rows, first row {i}: "
                             f"expected {e.iloc[i]!r}, got {a.iloc[i]!r}")
            continue
        ev, av = e[~e_na].to_numpy(), a[~a_na].to_numpy()
        if e.dtype == np.float64:
            ok = np.isclose(av, ev, rtol=rtol, atol=atol, equal_nan=True)
            integral = np.all(ev == np.round(ev)) if len(ev) else True
            if integral:  # counts, days, flags: exact
                ok = av == ev
        else:
            ok = av == ev
        if not np.all(ok):
            bad = np.flatnonzero(~np.asarray(ok))
            i = int(np.flatnonzero(~e_na)[bad[0]])
            problems[col] = (f"values differ in {len(bad)} rows, first row {i}: expected {e.iloc[i]!r}, "
                             f"got {a.iloc[i]!r}")
    return problems

"""Contract-check throughput on the largest table (transactions): pandera contracts against one DuckDB query.

Prints one JSON object to stdout (progress goes to stderr).

    .venv/bin/python benchmarks/bench_contracts.py                  # ~10M transactions (15k borrowers)
    .venv/bin/python benchmarks/bench_contracts.py --enterprises 30000   # ~20M
    .venv/bin/python benchmarks/bench_contracts.py --data path/to/world  # an existing world directory

A synthetic world is written with ``write_world_partitioned`` into a temporary directory (not
timed, deleted at the end), then the same rules are checked four ways, each timed (best of
``--repeat``):

* ``pandera_contract``: ``contract("transactions").validate(df, lazy=True)`` on the frame in memory
  (dtype coercion, non-null, categories, min/max);
* ``validate_tables``: the library's entry point on enterprises, loans, repayments and
  transactions (strict reading of each column, the pandera contract, foreign keys, no row after
  the extraction date), minus the same call without transactions, i.e. the transactions' share;
  ``read_tables`` (parquet parts -> pandas) is timed apart;
* ``duckdb_sql_parquet``: the same rules as one DuckDB SQL query straight over the parquet parts
  (counts of violations per rule, the foreign key as an anti-join to enterprises.parquet), types
  from the parquet schema;
* ``duckdb_sql_frame``: the same query over the pandas frame already in memory.

Rows/s are transactions rows per second.  ``agreement`` checks that both engines count the same
violations per rule on a slice of the data in which faults were planted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TABLE = "transactions"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _best(fn, repeat: int) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def _sql_literal(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(float(value))


def rules_sql(source: str, enterprises: str, extraction_date: pd.Timestamp) -> tuple[str, list[str]]:
    """One query counting the violations of every transactions rule; returns (sql, rule names)."""
    from creditmodel.data import schema

    t = schema.TABLES[TABLE]
    terms: list[tuple[str, str]] = [("rows", "count(*)")]
    for c in t.columns:
        col = f'tx."{c.name}"'
        if not c.nullable:
            terms.append((f"{c.name}.null", f"count(*) FILTER (WHERE {col} IS NULL)"))
        if c.categories is not None:
            allowed = ", ".join(_sql_literal(v) for v in c.categories)
            terms.append((f"{c.name}.category", f"count(*) FILTER (WHERE {col} NOT IN ({allowed}))"))
        if c.min_value is not None:
            terms.append((f"{c.name}.min", f"count(*) FILTER (WHERE {col} < {_sql_literal(c.min_value)})"))
        if c.max_value is not None:
            terms.append((f"{c.name}.max", f"count(*) FILTER (WHERE {col} > {_sql_literal(c.max_value)})"))
    for column in t.foreign_keys:
        terms.append((f"{column}.foreign_key",
                      f'count(*) FILTER (WHERE tx."{column}" IS NOT NULL AND parent.key IS NULL)'))
    cutoff = (extraction_date.normalize() + pd.Timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    terms.append((f"{t.event_date}.future",
                  f"count(*) FILTER (WHERE tx.\"{t.event_date}\" >= TIMESTAMP '{cutoff}')"))
    (column, target), = t.foreign_keys.items()
    select = ",\n  ".join(f'{expr} AS "{name}"' for name, expr in terms)
    sql = (f"SELECT\n  {select}\nFROM {source} AS tx\n"
           f'LEFT JOIN (SELECT DISTINCT "{target.split(".")[1]}" AS key FROM {enterprises}) AS parent\n'
           f'  ON tx."{column}" = parent.key')
    return sql, [name for name, _ in terms]


def duckdb_check(con, sql: str, names: list[str]) -> dict[str, int]:
    (row,) = con.execute(sql).fetchall()
    return dict(zip(names, (int(v) for v in row)))


def pandera_counts(df: pd.DataFrame) -> dict[str, int]:
    """Violations per rule as counted by the pandera contract (lazy), in the DuckDB rule names."""
    import pandera.pandas as pa

    from creditmodel.data import schema
    from creditmodel.data.contracts import _rules, contract

    t = schema.TABLES[TABLE]
    try:
        contract(TABLE).validate(df, lazy=True)
        return {}
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
    counts: dict[str, int] = {}
    for (column, check, number), group in fc.groupby(["column", "check", "check_number"], dropna=False):
        if check == "not_nullable":
            rule = "null"
        else:
            rule = _rules(t.column(column))[int(number)][0]
        counts[f"{column}.{rule}"] = counts.get(f"{column}.{rule}", 0) + len(group)
    return counts


def plant_faults(df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    bad = df.copy()
    n = len(bad)
    pick = lambda k: rng.choice(n, size=k, replace=False)  # noqa: E731
    bad.loc[pick(500), "channel"] = "wechat"
    bad.loc[pick(300), "direction"] = "sideways"
    bad.loc[pick(200), "amount"] = -5.0
    bad.loc[pick(100), "amount"] = 2e9
    bad.loc[pick(50), "counterparty"] = -1
    return bad


def machine() -> dict:
    import duckdb
    import pandera

    with open("/proc/meminfo") as fh:
        mem = round(int(fh.readline().split()[1]) / 2**20, 1)
    return {
        "cores": os.cpu_count(),
        "memory_gib": mem,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pandera": pandera.__version__,
        "duckdb": duckdb.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=15_000)
    parser.add_argument("--start", default="2023-07-01")
    parser.add_argument("--extraction-date", default="2025-06-30")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", help="an existing world directory (skips generation)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="DuckDB threads")
    parser.add_argument("--tmp", default=tempfile.gettempdir())
    args = parser.parse_args()

    import duckdb

    from creditmodel.data.contracts import contract, validate_tables
    from creditmodel.data.io import read_tables
    from creditmodel.data.synthetic import write_world_partitioned

    result: dict = {"benchmark": "contract_check_transactions", "machine": machine(),
                    "params": {"repeat": args.repeat, "duckdb_threads": args.threads}}
    extraction = pd.Timestamp(args.extraction_date)
    root = None
    try:
        if args.data:
            world = Path(args.data)
        else:
            root = Path(tempfile.mkdtemp(prefix="bench_contracts-", dir=args.tmp))
            world = root / "world"
            _log(f"writing a world of {args.enterprises} enterprises ...")
            t0 = time.perf_counter()
            write_world_partitioned(world, args.enterprises, args.seed, start=args.start,
                                    extraction_date=args.extraction_date)
            result["params"].update(enterprises=args.enterprises, start=args.start,
                                    generate_seconds=round(time.perf_counter() - t0, 2))
        result["params"]["extraction_date"] = args.extraction_date

        _log("read_tables ...")
        read_s, tables = _best(lambda: read_tables(world), 1)
        tx = tables[TABLE]
        rows = len(tx)
        result["rows"] = rows
        result["read_tables_seconds"] = round(read_s, 3)
        _log(f"{rows} transactions; pandera contract ...")

        schema_ = contract(TABLE)
        s, _ = _best(lambda: schema_.validate(tx, lazy=True), args.repeat)
        result["pandera_contract"] = {"seconds": round(s, 3), "rows_per_s": round(rows / s)}

        _log("validate_tables ...")
        required = {n: tables[n] for n in ("enterprises", "loans", "repayments")}
        with_tx, _ = _best(lambda: validate_tables({**required, TABLE: tx}, extraction_date=extraction),
                           args.repeat)
        without_tx, _ = _best(lambda: validate_tables(required, extraction_date=extraction), args.repeat)
        share = with_tx - without_tx
        result["validate_tables"] = {
            "seconds_with_transactions": round(with_tx, 3),
            "seconds_without_transactions": round(without_tx, 3),
            "transactions_seconds": round(share, 3),
            "rows_per_s": round(rows / share),
            "read_plus_validate_rows_per_s": round(rows / (share + read_s)),
        }

        _log("duckdb ...")
        con = duckdb.connect()
        con.execute(f"SET threads = {int(args.threads)}")
        parts = world / TABLE
        source = (f"read_parquet('{parts}/*.parquet')" if parts.is_dir()
                  else f"read_parquet('{world / (TABLE + '.parquet')}')")
        ent = f"read_parquet('{world / 'enterprises.parquet'}')"
        sql, names = rules_sql(source, ent, extraction)
        types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        s, violations = _best(lambda: duckdb_check(con, sql, names), args.repeat)
        assert violations["rows"] == rows, violations
        result["duckdb_sql_parquet"] = {
            "seconds": round(s, 3), "rows_per_s": round(rows / s),
            "violations": {k: v for k, v in violations.items() if k != "rows"},
            "column_types": types,
        }
        con.register("tx_frame", tx)
        con.register("ent_frame", tables["enterprises"])
        sql_f, _ = rules_sql("tx_frame", "ent_frame", extraction)
        s, violations_f = _best(lambda: duckdb_check(con, sql_f, names), args.repeat)
        result["duckdb_sql_frame"] = {"seconds": round(s, 3), "rows_per_s": round(rows / s)}
        assert violations_f == violations

        _log("agreement on planted faults ...")
        sample = plant_faults(tx.iloc[: min(rows, 1_000_000)].reset_index(drop=True))
        con.register("bad_frame", sample)
        sql_b, _ = rules_sql("bad_frame", "ent_frame", extraction)
        by_duckdb = {k: v for k, v in duckdb_check(con, sql_b, names).items() if v and k != "rows"}
        by_pandera = pandera_counts(sample)
        result["agreement"] = {"rows": len(sample), "duckdb": by_duckdb, "pandera": by_pandera,
                               "equal": by_duckdb == by_pandera}
        con.close()

        p = result["pandera_contract"]["rows_per_s"]
        v = result["validate_tables"]["rows_per_s"]
        d = result["duckdb_sql_parquet"]["rows_per_s"]
        f = result["duckdb_sql_frame"]["rows_per_s"]
        result["ratios"] = {
            "duckdb_parquet_vs_pandera_contract": round(d / p, 2),
            "duckdb_parquet_vs_validate_tables": round(d / v, 2),
            "duckdb_parquet_vs_read_plus_validate_tables":
                round(d / result["validate_tables"]["read_plus_validate_rows_per_s"], 2),
            "duckdb_frame_vs_pandera_contract": round(f / p, 2),
        }
        result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(result, indent=2))
    finally:
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

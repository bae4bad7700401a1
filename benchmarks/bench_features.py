"""Feature-build benchmark: the catalogue on DuckDB and on Spark (local) against hand-written baselines.

Prints one JSON object. For each world size (synthetic borrowers; default 10k, more by --sizes)
it generates the world as partitioned parquet (``write_world_partitioned``) and times, each in a
fresh subprocess so memory is measured per engine:

* ``duckdb_catalogue``: the full catalogue (``build.compile_query``) on DuckDB over the parquet files,
  written to parquet;
* ``spark_catalogue``: the same catalogue transpiled to Spark SQL (``features.spark``), local mode,
  parquet in, parquet out;
* ``duckdb_catalogue_txn``: the catalogue's subset of transaction aggregates (``TXN_SUBSET``);
* ``duckdb_handwritten_txn``: one hand-written DuckDB query computing the same subset, its conditional
  aggregates as ``sum(CASE WHEN c THEN x END)`` (the form the catalogue compiles to, and DuckDB's fast one);
* ``duckdb_handwritten_txn_filter``: the same query written with ``FILTER (WHERE c)`` clauses;
* ``pandas_txn``: a vectorised pandas implementation of the same subset (part file by part file);
* ``featuretools_txn``: featuretools DFS (sum/count/mean of receipts and payments over 365 days)
  when a Python with featuretools is given (--featuretools-python; it is not a project dependency).

Each result: wall seconds, input rows per second (all canonical tables' rows / wall), peak memory
(the worker's process tree, JVM included: sampled RSS every 0.2 s, and the sum of each process's
VmHWM; ru_maxrss is not used as it carries the parent's RSS across fork/exec), and whether the output equals the catalogue's
(1e-9 relative). Ratios: catalogue subset / hand-written, full catalogue / hand-written, Spark /
DuckDB. With ``--repeat N`` the engines run in N rounds, each engine once per round in turn; each result
is the engine's round of median wall time (every round's time beside it) and the ratios are of those
medians, with the catalogue subset / hand-written ratio of each round as well. Before each run the
previous run's writes are flushed (``os.sync``): at 1M borrowers the full catalogue writes 2.4 GB of
parquet, whose write-back otherwise lands in the next engine's time.
Run: ``.venv/bin/python benchmarks/bench_features.py [--sizes 10000 100000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

WINDOWS = {"1m": 30, "3m": 90, "6m": 180, "12m": 365}
CHANNELS = ("pos", "cash", "transfer", "direct_link")


def txn_subset() -> list[str]:
    """The transaction aggregates the baselines compute (names as in the catalogue)."""
    names = []
    for s in WINDOWS:
        names += [f"txn_inflow_{s}", f"txn_outflow_{s}", f"txn_inflow_count_{s}", f"txn_outflow_count_{s}",
                  f"txn_avg_inflow_amount_{s}"]
    names += [f"txn_{c}_share_{s}" for s in ("3m", "12m") for c in CHANNELS]
    return names + ["txn_days_since_last_inflow"]


# --- workers (each runs in its own process) ------------------------------------------------------


def _duck_connect(world: Path, threads: int, memory: str, spill: Path):
    import duckdb

    from creditmodel.data.schema import TABLES

    con = duckdb.connect()
    con.execute(f"SET threads TO {threads}")
    con.execute(f"SET memory_limit = '{memory}'")
    con.execute(f"SET temp_directory = '{spill}'")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET preserve_insertion_order = false")
    for name, spec in TABLES.items():
        path = world / f"{name}.parquet" if (world / f"{name}.parquet").exists() else world / name / "*.parquet"
        con.execute(f"CREATE VIEW raw_{name} AS SELECT * FROM read_parquet('{path}')")
        cols = [f"CAST({c.name} AS DATE) AS {c.name}" if c.kind == "date" else
                f"CAST({c.name} AS TIMESTAMP) AS {c.name}" if c.kind == "timestamp" else c.name for c in spec.columns]
        con.execute(f"CREATE VIEW {name} AS SELECT {', '.join(cols)} FROM raw_{name}")
    con.execute("""CREATE VIEW apps AS SELECT loan_id, enterprise_id, CAST(application_date AS DATE) AS decision_date,
                   amount, term_months, product, guarantee_type, group_id FROM raw_loans""")
    return con


def _subset_features():
    from creditmodel.features.catalogue import CATALOGUE

    wanted = set(txn_subset())
    return [f for f in CATALOGUE if f.name in wanted]


def _handwritten_sql(style: str = "case") -> str:
    """The transaction subset written by hand: conditional aggregates as ``sum(CASE WHEN c THEN x END)``
    (``style="case"``, the form that is fast on DuckDB) or as ``sum(x) FILTER (WHERE c)`` ("filter")."""

    def agg(func: str, cond: str, value: str = "s.amount") -> str:
        if style == "filter":
            return f"{func}({value}) FILTER (WHERE {cond})"
        return f"{func}(CASE WHEN {cond} THEN {'1' if value == '*' else value} END)"

    parts = []
    for s, w in WINDOWS.items():
        inn = f"s.direction = 'in' AND s.ts >= a.decision_date - INTERVAL {w} DAY"
        out = f"s.direction = 'out' AND s.ts >= a.decision_date - INTERVAL {w} DAY"
        parts += [f"coalesce({agg('sum', inn)}, 0) AS txn_inflow_{s}",
                  f"coalesce({agg('sum', out)}, 0) AS txn_outflow_{s}",
                  f"{agg('count', inn, '*')} AS txn_inflow_count_{s}",
                  f"{agg('count', out, '*')} AS txn_outflow_count_{s}",
                  f"{agg('avg', inn)} AS txn_avg_inflow_amount_{s}"]
    for s in ("3m", "12m"):
        inn = f"s.direction = 'in' AND s.ts >= a.decision_date - INTERVAL {WINDOWS[s]} DAY"
        total = f"nullif({agg('sum', inn)}, 0)"
        parts += [f"coalesce({agg('sum', inn.replace(' AND ', f' AND s.channel = {c!r} AND ', 1))}, 0) "
                  f"/ {total} AS txn_{c}_share_{s}" for c in CHANNELS]
    last = agg("max", "s.direction = 'in'", "s.ts")
    parts.append(f"date_diff('day', CAST({last} AS DATE), a.decision_date) AS txn_days_since_last_inflow")
    return (f"SELECT a.loan_id, {', '.join(parts)} FROM apps a JOIN transactions s ON s.enterprise_id = a.enterprise_id "
            "AND s.ts < a.decision_date AND s.ts >= a.decision_date - INTERVAL 365 DAY GROUP BY a.loan_id, a.decision_date")


def work_duckdb(world: Path, out: Path, kind: str, threads: int, memory: str) -> dict:
    from creditmodel.features.build import available_features, compile_query
    from creditmodel.features.catalogue import CATALOGUE

    con = _duck_connect(world, threads, memory, out.parent / "duckdb-spill")
    if kind.startswith("handwritten"):
        sql = _handwritten_sql("filter" if kind == "handwritten_filter" else "case")
    else:
        features = CATALOGUE if kind == "catalogue" else _subset_features()
        kept, _ = available_features({n: True for n in ("enterprises", "registration_events", "court_cases",
                                                        "environment_checks", "transactions", "financial_statements",
                                                        "loans", "repayments")}, features)
        sql = compile_query(kept)
    started = time.perf_counter()
    con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet)")
    return {"query_seconds": time.perf_counter() - started}


def work_spark(world: Path, out: Path, memory: str, partitions: int) -> dict:
    from creditmodel.features.spark import get_spark, write_features_spark

    started = time.perf_counter()
    spark = get_spark("local[2]", driver_memory=memory, shuffle_partitions=partitions, show_progress=False,
                      log_level="ERROR", **{"spark.local.dir": str(out.parent / "spark-tmp")})
    session = time.perf_counter() - started
    started = time.perf_counter()
    write_features_spark(world, out, spark=spark)
    query = time.perf_counter() - started
    spark.stop()
    return {"session_seconds": session, "query_seconds": query}


def work_pandas(world: Path, out: Path) -> dict:
    """Vectorised pandas: per transactions part (whole enterprises), merge with loans, mask, group."""
    import numpy as np
    import pandas as pd

    started = time.perf_counter()
    loans = pd.read_parquet(world / "loans.parquet", columns=["loan_id", "enterprise_id", "application_date"])
    loans["d"] = pd.to_datetime(loans["application_date"]).astype("datetime64[ns]")
    results = []
    for part in sorted((world / "transactions").glob("*.parquet")):
        t = pd.read_parquet(part)
        t["ts"] = t["ts"].astype("datetime64[ns]")
        j = loans[loans["enterprise_id"].isin(t["enterprise_id"].unique())].merge(t, on="enterprise_id")
        j = j[(j["ts"] < j["d"]) & (j["ts"] >= j["d"] - pd.Timedelta(days=365))]
        is_in = (j["direction"] == "in").to_numpy()
        age_ok = {s: (j["ts"] >= j["d"] - pd.Timedelta(days=w)).to_numpy() for s, w in WINDOWS.items()}
        amount = j["amount"].to_numpy()
        cols = {"loan_id": j["loan_id"].to_numpy()}
        for s in WINDOWS:
            m_in, m_out = is_in & age_ok[s], ~is_in & age_ok[s]
            cols[f"in_{s}"] = np.where(m_in, amount, 0.0)
            cols[f"out_{s}"] = np.where(m_out, amount, 0.0)
            cols[f"nin_{s}"] = m_in.astype(np.int64)
            cols[f"nout_{s}"] = m_out.astype(np.int64)
        for s in ("3m", "12m"):
            for c in CHANNELS:
                cols[f"{c}_{s}"] = np.where(is_in & age_ok[s] & (j["channel"] == c).to_numpy(), amount, 0.0)
        cols["last_in"] = np.where(is_in, j["ts"].to_numpy(), np.datetime64("NaT"))
        g = pd.DataFrame(cols).groupby("loan_id").agg(
            {**{k: "sum" for k in cols if k not in ("loan_id", "last_in")}, "last_in": "max"})
        results.append(g)
        del t, j
    g = pd.concat(results)
    f = pd.DataFrame(index=g.index)
    for s in WINDOWS:
        f[f"txn_inflow_{s}"] = g[f"in_{s}"]
        f[f"txn_outflow_{s}"] = g[f"out_{s}"]
        f[f"txn_inflow_count_{s}"] = g[f"nin_{s}"].astype(float)
        f[f"txn_outflow_count_{s}"] = g[f"nout_{s}"].astype(float)
        f[f"txn_avg_inflow_amount_{s}"] = g[f"in_{s}"] / g[f"nin_{s}"].where(g[f"nin_{s}"] > 0)
    for s in ("3m", "12m"):
        for c in CHANNELS:
            f[f"txn_{c}_share_{s}"] = g[f"{c}_{s}"] / g[f"in_{s}"].where(g[f"in_{s}"] != 0)
    d = loans.set_index("loan_id")["d"].reindex(g.index)
    f["txn_days_since_last_inflow"] = (d - g["last_in"].dt.normalize()).dt.days
    f.reset_index().to_parquet(out, index=False)
    return {"query_seconds": time.perf_counter() - started}


def work_featuretools(world: Path, out: Path) -> dict:
    """featuretools DFS: sum/count/mean of receipts and payments over 365 days before each decision."""
    import featuretools as ft
    import pandas as pd

    started = time.perf_counter()
    loans = pd.read_parquet(world / "loans.parquet", columns=["loan_id", "enterprise_id", "application_date"])
    ents = pd.read_parquet(world / "enterprises.parquet", columns=["enterprise_id"])
    txn = pd.concat([pd.read_parquet(p, columns=["enterprise_id", "ts", "amount", "direction"])
                     for p in sorted((world / "transactions").glob("*.parquet"))], ignore_index=True)
    txn["ts"] = txn["ts"].astype("datetime64[ns]")
    txn["txn_id"] = range(len(txn))
    es = ft.EntitySet("world")
    es.add_dataframe(dataframe_name="enterprises", dataframe=ents, index="enterprise_id")
    es.add_dataframe(dataframe_name="transactions", dataframe=txn, index="txn_id", time_index="ts",
                     logical_types={"direction": "Categorical"})
    es.add_relationship("enterprises", "enterprise_id", "transactions", "enterprise_id")
    es.add_interesting_values(dataframe_name="transactions", values={"direction": ["in", "out"]})
    # one row per (borrower, decision date): strictly before it, as the catalogue (featuretools
    # includes rows at the cutoff time itself); loans of one borrower on one day share features
    cutoff = pd.DataFrame({"enterprise_id": loans["enterprise_id"],
                           "time": pd.to_datetime(loans["application_date"]) - pd.Timedelta(microseconds=1)}
                          ).drop_duplicates(ignore_index=True)
    matrix = ft.dfs(entityset=es, target_dataframe_name="enterprises", cutoff_time=cutoff,
                    agg_primitives=["sum", "count", "mean"], where_primitives=["sum", "count", "mean"],
                    trans_primitives=[], training_window="365 days", max_depth=1,
                    cutoff_time_in_index=False, features_only=False, verbose=False)
    matrix = matrix[0] if isinstance(matrix, tuple) else matrix
    matrix.reset_index(drop=True).to_parquet(out, index=False)
    return {"query_seconds": time.perf_counter() - started, "columns": int(matrix.shape[1])}


def worker(args: argparse.Namespace) -> None:
    world, out = Path(args.world), Path(args.out)
    if args.worker in ("pandas_txn", "featuretools_txn"):
        # the machine is shared: a Python baseline that outgrows the cap fails with MemoryError
        # instead of waking the OOM killer (DuckDB has its memory_limit, Spark its heap)
        import resource

        cap = int(float(os.environ.get("BENCH_MEMORY_CAP_GIB", "16")) * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    if args.worker == "duckdb_catalogue":
        result = work_duckdb(world, out, "catalogue", args.threads, args.duckdb_memory)
    elif args.worker == "duckdb_catalogue_txn":
        result = work_duckdb(world, out, "subset", args.threads, args.duckdb_memory)
    elif args.worker == "duckdb_handwritten_txn":
        result = work_duckdb(world, out, "handwritten", args.threads, args.duckdb_memory)
    elif args.worker == "duckdb_handwritten_txn_filter":
        result = work_duckdb(world, out, "handwritten_filter", args.threads, args.duckdb_memory)
    elif args.worker == "spark_catalogue":
        result = work_spark(world, out, args.spark_memory, args.spark_partitions)
    elif args.worker == "pandas_txn":
        result = work_pandas(world, out)
    elif args.worker == "featuretools_txn":
        result = work_featuretools(world, out)
    else:
        raise SystemExit(f"unknown worker {args.worker!r}")
    print(json.dumps(result))


# --- the driver ----------------------------------------------------------------------------------


def _tree_rss(pid: int, hwm: dict[int, int]) -> int:
    """RSS of a process and its descendants now; records each one's high-water mark (VmHWM) in `hwm`."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    hwm[p.pid] = max(hwm.get(p.pid, 0), int(line.split()[1]) * 1024)
        except (psutil.Error, OSError):
            pass
    return total


def run_worker(engine: str, world: Path, out: Path, args: argparse.Namespace, python: str) -> dict:
    cmd = [python, __file__, "--worker", engine, "--world", str(world), "--out", str(out),
           "--threads", str(args.threads), "--duckdb-memory", args.duckdb_memory, "--spark-memory", args.spark_memory,
           "--spark-partitions", str(args.spark_partitions)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    peak = [0]
    hwm: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid, hwm))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the worker's own process group (its JVM included)
        proc.communicate()
        done.set()
        return {"status": "timeout", "wall_seconds": round(time.perf_counter() - started, 1),
                "peak_rss_mib": round(peak[0] / 2**20)}
    finally:
        done.set()
        sampler.join()
    wall = time.perf_counter() - started
    # peak_rss_mib: the largest sampled RSS of the worker's process tree (JVM included);
    # hwm_sum_mib: the sum of each process's own high-water mark (an upper bound)
    result: dict = {"wall_seconds": round(wall, 2), "peak_rss_mib": round(peak[0] / 2**20),
                    "hwm_sum_mib": round(sum(hwm.values()) / 2**20)}
    if proc.returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        killed = proc.returncode in (-9, 137)
        oom = killed or any("MemoryError" in line or "Unable to allocate" in line or "OutOfMemory" in line
                            for line in lines[-5:])
        result.update(status="out of memory" if oom else "failed", returncode=proc.returncode,
                      error=" | ".join(lines[-3:])[-600:])
        return result
    result.update(status="ok", **{k: round(v, 2) if isinstance(v, float) else v
                                  for k, v in json.loads(stdout.strip().splitlines()[-1]).items()})
    return result


def _median_run(runs: list[dict]) -> dict:
    """The run of median wall time among an engine's rounds (the lower middle of an even count), with every
    round's wall time beside it; a failed round makes the engine's result that failure."""
    failed = [r for r in runs if r.get("status") != "ok"]
    if failed:
        return failed[0]
    ordered = sorted(runs, key=lambda r: r["wall_seconds"])
    return {**ordered[(len(ordered) - 1) // 2], "rounds": len(runs),
            "wall_seconds_by_round": [r["wall_seconds"] for r in runs]}


def _read(path: Path):
    import pandas as pd

    frame = pd.read_parquet(path)
    return frame.sort_values("loan_id").reset_index(drop=True)


def _same(expected_path: Path, actual_path: Path, columns: list[str] | None = None) -> bool | str:
    from creditmodel.features.spark import frame_mismatches

    if not (expected_path.exists() and actual_path.exists()):
        return "n/a"
    e, a = _read(expected_path), _read(actual_path)
    cols = columns or list(e.columns)
    cols = ["loan_id"] + [c for c in cols if c != "loan_id" and c in e.columns and c in a.columns]
    e = e[cols]
    a = a[cols].astype(e.dtypes.to_dict())
    if "decision_date" in e:
        e["decision_date"] = e["decision_date"].astype("datetime64[ns]")
        a["decision_date"] = a["decision_date"].astype("datetime64[ns]")
    problems = frame_mismatches(e, a, rtol=1e-9)
    return True if not problems else "; ".join(f"{k}: {v}" for k, v in list(problems.items())[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--engines", nargs="+", default=["duckdb_catalogue", "duckdb_catalogue_txn",
                                                          "duckdb_handwritten_txn", "duckdb_handwritten_txn_filter", "pandas_txn",
                                                          "spark_catalogue",
                                                          "featuretools_txn"])
    parser.add_argument("--workdir", default=None, help="where worlds and outputs go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated worlds and outputs")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="DuckDB threads")
    parser.add_argument("--duckdb-memory", default="6GB", help="DuckDB memory_limit (it spills beyond)")
    parser.add_argument("--spark-memory", default="6g", help="Spark driver memory (local mode)")
    parser.add_argument("--spark-partitions", type=int, default=0, help="shuffle partitions (0: by world size)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per engine run")
    parser.add_argument("--featuretools-python", default=os.environ.get("FEATURETOOLS_PYTHON"),
                        help="a Python with featuretools + pyarrow installed (not a project dependency)")
    parser.add_argument("--memory-cap-gib", type=float, default=16,
                        help="address-space cap of the pandas and featuretools workers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of the engines in turn; each result is the round of median wall time and the "
                             "ratios are of those medians (a busy machine moves single runs by 15%% and more)")
    parser.add_argument("--transaction-density", type=float, default=1.0,
                        help="scale of account transactions (1.0 about 1,770 per borrower; 0.14 about 250)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--world", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    os.environ["BENCH_MEMORY_CAP_GIB"] = str(args.memory_cap_gib)

    import pyarrow.parquet as pq

    from creditmodel.data.synthetic import write_world_partitioned

    root = Path(args.workdir or tempfile.mkdtemp(prefix="creditmodel-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    report: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                    "txn_subset": txn_subset(), "sizes": {}}
    try:
        for n in args.sizes:
            world = root / (f"world_{n}" if args.transaction_density == 1.0 else f"world_{n}_d{args.transaction_density:g}")
            entry: dict = {}
            if not world.exists():
                started = time.perf_counter()
                write_world_partitioned(world, n, seed=args.seed, chunk_enterprises=10_000,
                                        transaction_density=args.transaction_density,
                                        progress=lambda i, k, n=n: print(f"world {n}: chunk {i}/{k}", file=sys.stderr))
                entry["generate_seconds"] = round(time.perf_counter() - started, 1)
            rows = {}
            for p in sorted(world.iterdir()):
                if p.name.startswith("_"):
                    continue
                files = [p] if p.is_file() else sorted(p.glob("*.parquet"))
                rows[p.name.removesuffix(".parquet")] = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            total_rows = sum(rows.values())
            entry["input_rows"] = rows
            if not args.spark_partitions:
                args.spark_partitions = max(8, rows["transactions"] // 2_000_000)
            results: dict = {}
            runs: dict[str, list[dict]] = {}
            for round_ in range(args.repeat):  # rounds of every engine in turn: the machine's drift hits each alike
                for engine in args.engines:
                    python = sys.executable
                    if engine == "featuretools_txn":
                        if not args.featuretools_python:
                            results[engine] = {"status": "skipped", "reason": "featuretools is not a project "
                                               "dependency; pass --featuretools-python (a venv with featuretools "
                                               "and pyarrow)"}
                            continue
                        python = args.featuretools_python
                    print(f"world {n}: running {engine} (round {round_ + 1}/{args.repeat})", file=sys.stderr)
                    out = root / f"out_{n}_{engine}.parquet"
                    if out.exists():
                        shutil.rmtree(out) if out.is_dir() else out.unlink()
                    os.sync()  # the previous run's output (GBs at 1M) is written back now, not during this run
                    r = run_worker(engine, world, out, args, python)
                    if r.get("status") == "ok":
                        r["input_rows_per_second"] = round(total_rows / r["wall_seconds"])
                    runs.setdefault(engine, []).append(r)
                    print(f"world {n}: {engine}: {json.dumps(r)}", file=sys.stderr)
            for engine, rs in runs.items():
                results[engine] = _median_run(rs)
            per_round = [round(a["wall_seconds"] / b["wall_seconds"], 2)
                         for a, b in zip(runs.get("duckdb_catalogue_txn", []), runs.get("duckdb_handwritten_txn", []))
                         if a.get("status") == "ok" and b.get("status") == "ok"]
            cat, sub = root / f"out_{n}_duckdb_catalogue.parquet", root / f"out_{n}_duckdb_catalogue_txn.parquet"
            checks = {
                "spark_equals_duckdb": _same(cat, root / f"out_{n}_spark_catalogue.parquet"),
                "handwritten_equals_catalogue": _same(sub, root / f"out_{n}_duckdb_handwritten_txn.parquet"),
                "handwritten_filter_equals_catalogue": _same(
                    sub, root / f"out_{n}_duckdb_handwritten_txn_filter.parquet"),
                "pandas_equals_catalogue": _same(sub, root / f"out_{n}_pandas_txn.parquet"),
            }

            def ratio(a: str, b: str, results: dict = results) -> float | None:
                ra, rb = results.get(a, {}), results.get(b, {})
                if ra.get("status") == "ok" and rb.get("status") == "ok":
                    return round(ra["wall_seconds"] / rb["wall_seconds"], 2)
                return None

            entry.update(results=results, checks=checks, ratios={
                "catalogue_txn_over_handwritten": ratio("duckdb_catalogue_txn", "duckdb_handwritten_txn"),
                "catalogue_txn_over_handwritten_by_round": per_round,
                "full_catalogue_over_handwritten": ratio("duckdb_catalogue", "duckdb_handwritten_txn"),
                "handwritten_filter_over_case": ratio("duckdb_handwritten_txn_filter", "duckdb_handwritten_txn"),
                "spark_over_duckdb_catalogue": ratio("spark_catalogue", "duckdb_catalogue"),
                "pandas_over_handwritten": ratio("pandas_txn", "duckdb_handwritten_txn"),
            })
            report["sizes"][str(n)] = entry
            if not args.keep:
                shutil.rmtree(world, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

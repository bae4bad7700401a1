"""Batch rating as of a date from the store against the offline catalogue build for the same rows.

Prints one JSON object to stdout (progress goes to stderr).

    .venv/bin/python benchmarks/bench_asof.py                               # 5,000 borrowers, density 0.14
    .venv/bin/python benchmarks/bench_asof.py --enterprises 1000000 --borrowers all

The world is written as partitioned parquet (``write_world_partitioned``, never whole in memory) and
loaded into a DuckDB store from those files (``build_store`` out of core); a small model is trained on
the offline features of a separate 2,000-borrower world of the same generator and written as a bundle
with its catalogue. None of this is timed. The as-of date defaults to the 80th percentile of the loans'
application dates. Then, each in a fresh subprocess so that peak memory is the task's own (VmHWM):

* ``asof``: what `creditmodel score --store --as-of` does short of writing the file: open and check the
  store (``AsOfFeatures``), find the borrowers, compute every borrower's features in one query and
  score them (PD and grade);
* ``offline``: the offline catalogue query (``build.compile_query``, the training path's SQL) over the
  world's parquet files for the same borrowers and terms decided on the same date, then the same scoring.

Who is rated (``--borrowers``): ``active`` (default), the active book as `score --as-of` rates it without a
list; ``all``, every enterprise with a loan applied for before the date, listed (``--enterprises FILE``),
each for the terms of its latest loan: the 1M-borrower case of the issue.
DuckDB may hold 4GB in each task (``BENCH_DUCKDB_MEMORY``), spilling the rest. With ``--world DIR`` the world
and its store (``DIR.duckdb``) are kept and reused by the next run.
Reported: seconds and peak memory of each, the ratio asof / offline (the issue's goal: within 1.5x), the
rows, the largest PD difference between the two (0 expected), and the load average (the machine's
other work moves these numbers). Both run DuckDB on one thread (bit-stable sums).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MEMORY = os.environ.get("BENCH_DUCKDB_MEMORY", "4GB")  # DuckDB's limit in both tasks (the rest spills)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _offline(world: Path, bundle, apps):
    """The catalogue query over the world's parquet files for `apps` (rows: loan_id, enterprise_id,
    decision_date and the terms), as ``build_features`` runs it over frames."""
    import duckdb

    from creditmodel.data.schema import TABLES
    from creditmodel.features.build import compile_query
    from creditmodel.features.online import parquet_tables, tables_needed

    files = parquet_tables(world)
    with duckdb.connect() as con:
        con.execute("SET threads TO 1").fetchall()
        con.execute("SET enable_progress_bar = false").fetchall()
        con.execute(f"SET memory_limit = '{MEMORY}'").fetchall()
        con.execute(f"SET temp_directory = '{world.parent / 'offline-spill'}'").fetchall()
        for name in set(tables_needed(bundle.catalogue)) | {"loans", "enterprises"}:
            paths = ", ".join(f"'{p}'" for p in files[name])
            cols = [f"CAST({c.name} AS DATE) AS {c.name}" if c.kind == "date" else
                    f"CAST({c.name} AS TIMESTAMP) AS {c.name}" if c.kind == "timestamp" else c.name
                    for c in TABLES[name].columns]
            con.execute(f"CREATE VIEW {name} AS SELECT {', '.join(cols)} FROM read_parquet([{paths}])").fetchall()
        con.register("raw_apps", apps)
        con.execute("CREATE VIEW apps AS SELECT loan_id, enterprise_id, CAST(decision_date AS DATE) AS decision_date, "
                    "amount, term_months, product, guarantee_type, group_id FROM raw_apps").fetchall()
        frame = con.execute(compile_query(bundle.catalogue)).df()
    return frame.set_index("loan_id").loc[apps["loan_id"].to_numpy()]


def work(task: str, world: str, store: str, bundle_dir: str, as_of: str, listed: str, out: str) -> dict:
    """One task in this process (run by the parent as a subprocess)."""
    import numpy as np
    import pandas as pd

    from creditmodel.export.bundle import load_bundle
    from creditmodel.features.asof import AsOfFeatures
    from creditmodel.service.asof import score_as_of
    from creditmodel.service.batch import score_frame

    bundle = load_bundle(Path(bundle_dir), allow_unsigned=True)
    d = pd.Timestamp(as_of).date()
    who = pd.read_parquet(listed) if listed else None
    started, cpu = time.perf_counter(), _cpu_s()
    if task == "asof":
        with AsOfFeatures(bundle.catalogue, store, memory_limit=MEMORY) as feats:
            rated = score_as_of(bundle, feats, d, who)
        seconds, cpu = time.perf_counter() - started, _cpu_s() - cpu
        rated[["enterprise_id", "loan_id", "pd"]].to_parquet(out)
        return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "rows": len(rated),
                "peak_mib": round(_peak_mib())}
    rated = pd.read_parquet(out.replace("offline", "asof"))  # the rows asof rated, with the loan of their terms
    loans = pd.read_parquet(Path(world) / "loans.parquet", columns=["loan_id", "amount", "term_months", "product",
                                                                     "guarantee_type", "group_id"])
    started, cpu = time.perf_counter(), _cpu_s()
    apps = rated[["enterprise_id", "loan_id"]].rename(columns={"loan_id": "source_loan"}).merge(
        loans, left_on="source_loan", right_on="loan_id", how="left").drop(columns="loan_id")
    apps.insert(0, "loan_id", np.arange(len(apps), dtype=np.int64))
    apps["decision_date"] = pd.Timestamp(d)
    frame = _offline(Path(world), bundle, apps)
    pds = score_frame(bundle, frame[list(bundle.schema.names)])["pd"].to_numpy()
    seconds, cpu = time.perf_counter() - started, _cpu_s() - cpu
    diff = float(np.max(np.abs(rated["pd"].to_numpy() - pds))) if len(pds) else 0.0
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "rows": len(frame),
            "peak_mib": round(_peak_mib()), "max_abs_pd_diff": diff}


def _run(*argv: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--work", *argv], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _setup(args: argparse.Namespace, root: Path) -> tuple[Path, Path, str, str, dict]:
    import duckdb
    import pandas as pd

    sys.path.insert(0, str(HERE))
    from _small_model import small_model
    from creditmodel.data.synthetic import generate_world, write_world_partitioned
    from creditmodel.export.bundle import write_bundle
    from creditmodel.features.build import available_features, build_features
    from creditmodel.features.catalogue import CATALOGUE
    from creditmodel.features.online import build_store, parquet_tables

    timings = {}
    t = time.perf_counter()
    world = Path(args.world) if args.world else root / "world"
    if (world / "_dataset.json").exists():
        _log(f"the world of {world} (kept from an earlier run)")
    else:
        _log(f"world of {args.enterprises:,} enterprises, density {args.density} (partitioned parquet)")
        write_world_partitioned(world, args.enterprises, args.seed, transaction_density=args.density)
    timings["world_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    store = world.parent / f"{world.name}.duckdb" if args.world else root / "store.duckdb"
    if store.exists():
        _log(f"the store {store} (kept from an earlier run)")
        with duckdb.connect(str(store), read_only=True) as con:
            counts = json.loads(con.execute("SELECT value FROM store_meta WHERE key = 'rows'").fetchall()[0][0])
    else:
        _log("store from the parquet files")
        building = store.with_name(store.name + ".building")
        building.unlink(missing_ok=True)
        counts = build_store(parquet_tables(world), building, memory_limit=MEMORY)
        building.rename(store)
    timings["store_s"] = round(time.perf_counter() - t, 1)
    _log("a small model on a separate 2,000-borrower world of the same generator")
    small = generate_world(2000, args.seed + 1, transaction_density=args.density)
    kept, _ = available_features(small.tables, CATALOGUE)
    frame = build_features(small.tables, features=kept)
    model, cal, scale = small_model(small.tables, small.extraction_date, frame, kept)
    write_bundle(root / "bundle", model, cal, scale, catalogue=kept)
    with duckdb.connect() as con:
        loans = f"read_parquet('{world / 'loans.parquet'}')"
        as_of = args.as_of or str(con.execute(
            f"SELECT CAST(quantile_disc(CAST(application_date AS DATE), 0.8) AS DATE) FROM {loans}").fetchall()[0][0])
        listed = ""
        if args.borrowers == "all":
            ids = con.execute(f"SELECT DISTINCT enterprise_id FROM {loans} WHERE CAST(application_date AS DATE) < "
                              f"DATE '{as_of}' ORDER BY 1").df()
            listed = str(root / "listed.parquet")
            ids.to_parquet(listed)
    pd.Timestamp(as_of)
    return world, store, as_of, listed, {**timings, "rows": counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=5000)
    ap.add_argument("--density", type=float, default=0.14, help="transaction density of the world")
    ap.add_argument("--as-of", help="the date to rate as of (default: 80th percentile of application dates)")
    ap.add_argument("--borrowers", choices=("active", "all"), default="active",
                    help="the active book (default) or every enterprise with a loan before the date")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--world", help="keep the generated world in this directory and reuse it when it is there "
                                    "(it must be the world of the same --enterprises, --density and --seed)")
    ap.add_argument("--work", nargs=7, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.work:
        print(json.dumps(work(*args.work)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-asof-") as tmp:
        root = Path(tmp)
        world, store, as_of, listed, setup = _setup(args, root)
        results = {}
        for task in ("asof", "offline"):
            _log(f"{task}: as of {as_of}")
            results[task] = _run(task, str(world), str(store), str(root / "bundle"), as_of, listed,
                                 str(root / f"{task}.parquet"))
    a, o = results["asof"]["seconds"], results["offline"]["seconds"]
    out = {"benchmark": "asof", "enterprises": args.enterprises, "density": args.density, "borrowers": args.borrowers,
           "as_of": as_of, "transactions": setup["rows"].get("transactions"), "loans": setup["rows"]["loans"],
           "rows_rated": results["asof"]["rows"], "setup_seconds": {k: setup[k] for k in ("world_s", "store_s")},
           "results": results, "asof_over_offline": round(a / o, 3) if o else None,
           "asof_over_offline_cpu": round(results["asof"]["cpu_seconds"] / results["offline"]["cpu_seconds"], 3),
           "max_abs_pd_diff": results["offline"]["max_abs_pd_diff"],
           "goal": "asof <= 1.5x the offline catalogue build for the same rows (1M borrowers, density 0.14)",
           "load_average": os.getloadavg(), "cpus": os.cpu_count(), "python": platform.python_version()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""Monitoring benchmark: `monitor` of every open loan as of one date against the offline catalogue
build on the same rows.

Prints one JSON object. It writes a synthetic world of ``--enterprises`` borrowers (transaction
density ``--density``, partitioned parquet in bounded memory), trains a small model on a separate
small world (the same catalogue, so its bundle fits any world of the generator) and then times,
each in a fresh subprocess so memory is measured per task:

* ``monitor``: ``creditmodel.monitoring.run.monitor`` as of ``--as-of`` (live book, re-rating at
  origination and now, watch list, NPL per year and team, EVA, backtest, stability);
* ``rerate``: the re-rating alone (the open book's features at origination and as of the date);
* ``monitor_carried``: ``monitor`` as of ``--as-of`` starting from the ratings at origination that a
  run as of ``--previous-as-of`` carried (``monitor --previous``; that earlier run, ``carry``, is not
  part of the figure): the quarterly run of a unit that monitors every quarter;
* ``catalogue``: the offline build, ``features.build.build_features`` once on the open loans (the
  rows monitoring re-rates), as the training pipeline builds them (one query);
* ``catalogue_lanes``: the same build in two lanes (``lanes=2``, as monitoring builds its chunks: the
  transaction sources and the others side by side, the same values), for the comparison with a build
  that also uses the second core;
* ``catalogue_monitored_rows``: the offline builds of every row monitoring must build: every loan
  applied for by the date at its decision date (the open book at origination, the matured cohorts of
  the backtest, the development and recent samples of the stability) and the open book as of the
  date, as two builds. Monitor over this is the cost per row built; monitor over ``catalogue`` is
  bounded below by the rows' ratio (``rows_monitored_to_open``).

Every task reads the world as ``creditmodel monitor --data`` does: the transactions stay in their
parquet files (DuckDB reads them where a query needs them), the other tables are read and checked in
memory. ``--world`` monitors an existing world directory instead of writing one.

Each result: wall seconds (reading the tables excluded, reported apart), peak memory of the process
(VmHWM, reading included), and the open loans. Ratios: monitor / catalogue and rerate / catalogue.
The issue's goal at 1M borrowers (density 0.14): monitor <= 1.5x the catalogue build and < 8 GiB.
Every task's process keeps the memory it frees, as the `creditmodel` commands do (``--allocator default``:
glibc's and NumPy's own behaviour, to measure what that saves).
Run: ``.venv/bin/python benchmarks/bench_monitoring.py [--enterprises 1000000 --density 0.14]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def work(task: str, world: str, bundle_dir: str, as_of: str, allocator: str = "kept") -> dict:
    """One task in this process (run by the parent as a subprocess). allocator "kept": the process keeps
    freed memory as the `creditmodel` commands do (``memory.keep_freed_memory``); "default": as glibc
    and NumPy would."""
    if allocator == "kept":  # first, as the command does at its start: reading the tables is measured apart
        from creditmodel.memory import keep_freed_memory

        keep_freed_memory()
    import pandas as pd

    from creditmodel.config import build_config
    from creditmodel.data.io import load_tables_leaving, resolve_extraction_date
    from creditmodel.export.bundle import load_bundle
    from creditmodel.features.build import build_features
    from creditmodel.monitoring.book import live_book
    from creditmodel.monitoring.carried import CARRIED_FILE
    from creditmodel.monitoring.rerate import as_of_tables, rerate
    from creditmodel.monitoring.run import monitor

    config = build_config({})
    started = time.perf_counter()
    # as `creditmodel monitor --data` reads them: transactions stay in their parquet files, for every task
    tables = load_tables_leaving(world, ("transactions",), extraction_date=resolve_extraction_date(None, world),
                                 dictionary=config.data_dictionary())
    read = time.perf_counter() - started
    bundle = load_bundle(bundle_dir, allow_unsigned=True)
    book = live_book(tables, as_of, config.data_dictionary())
    started, cpu, times = time.perf_counter(), time.process_time(), os.times()
    rows = len(book)
    carried = Path(bundle_dir).parent / "carried"
    if task == "monitor":  # every loan applied for by the date at origination, the open book now
        rows = monitor(bundle, tables, as_of, config).summary["rows_built"]
    elif task == "carry":  # the run of an earlier date, whose ratings at origination the next one starts from
        result = monitor(bundle, tables, as_of, config)
        carried.mkdir(exist_ok=True)
        files, meta = result.carried
        for name, frame in files.items():
            frame.to_parquet(carried / name, index=False)
        (carried / CARRIED_FILE).write_text(json.dumps(meta))
        rows = result.summary["rows_built"]
    elif task == "monitor_carried":  # the next date, from the earlier run's ratings (monitor --previous)
        rows = monitor(bundle, tables, as_of, config, previous=carried).summary["rows_built"]
    elif task == "rerate":  # the open book at origination and now
        rerate(bundle, tables, book, as_of, config.data_dictionary())
        rows = 2 * len(book)
    elif task in ("catalogue", "catalogue_lanes"):
        # the offline catalogue build on the same rows, the open loans at their decision dates: one query or two lanes
        loans = tables["loans"]
        apps = loans[loans["loan_id"].isin(book["loan_id"])]
        build_features(dict(as_of_tables(tables, pd.Timestamp(as_of))), apps, lanes=2 if task == "catalogue_lanes" else 1)
    else:  # every row monitoring builds: all loans applied for by the date, and the open book as of it
        known = as_of_tables(tables, pd.Timestamp(as_of))
        loans = known["loans"]
        build_features(dict(known), loans)
        build_features(dict(known), loans[loans["loan_id"].isin(book["loan_id"])].assign(
            application_date=pd.Timestamp(as_of)))
        rows = len(loans) + len(book)
    done = os.times()
    return {"seconds": round(time.perf_counter() - started, 3), "cpu_seconds": round(time.process_time() - cpu, 3),
            # user and kernel apart: the kernel's share is mostly first touches of fresh memory, which cost
            # much more on some days than on others and weigh on the task with the larger peak
            "user_seconds": round(done.user - times.user, 3), "system_seconds": round(done.system - times.system, 3),
            "read_seconds": round(read, 3), "peak_mib": round(_peak_mib(), 1), "open_loans": int(len(book)),
            "rows_built": int(rows), "allocator": allocator}


def _run(task: str, world: Path, bundle: Path, as_of: str, allocator: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))
    res = subprocess.run([sys.executable, __file__, "--work", task, str(world), str(bundle), as_of,
                          "--allocator", allocator], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"{task} failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=20_000, help="borrowers of the monitored world (default 20k)")
    ap.add_argument("--density", type=float, default=0.14, help="transaction density of the world (default 0.14)")
    ap.add_argument("--as-of", default="2023-09-30", help="monitoring date (default 2023-09-30)")
    ap.add_argument("--train-enterprises", type=int, default=2000, help="borrowers of the world the model learns on")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--world", help="monitor this world directory (partitioned parquet, as write_world_partitioned "
                                    "writes it) instead of writing one; --enterprises and --density then only label it")
    ap.add_argument("--previous-as-of", default="2023-06-30",
                    help="the earlier monitoring date whose carried ratings monitor_carried starts from")
    ap.add_argument("--tasks", nargs="+", default=["catalogue", "catalogue_monitored_rows", "monitor", "monitor_carried"],
                    choices=["catalogue", "catalogue_lanes", "catalogue_monitored_rows", "rerate", "monitor",
                             "monitor_carried"])
    ap.add_argument("--allocator", choices=["kept", "default"], default="kept",
                    help="kept (default): every task's process keeps the memory it frees, as the creditmodel commands "
                         "do; default: glibc's and NumPy's own behaviour, to measure what keeping it saves")
    ap.add_argument("--work", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.work:
        print(json.dumps(work(*args.work, allocator=args.allocator)))
        return

    from creditmodel.config import build_config
    from creditmodel.data.synthetic import write_world_partitioned
    from creditmodel.pipeline import run_pipeline

    with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        config = build_config({"output_dir": str(root / "train"), "synthetic": {"enterprises": args.train_enterprises,
                                                                                "seed": args.seed},
                               "lightgbm": {"n_estimators": 100}, "segments": {"enabled": False}})
        trained = run_pipeline(config, tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        world = Path(args.world) if args.world else root / "world"
        if not args.world:
            write_world_partitioned(world, args.enterprises, args.seed + 1, transaction_density=args.density)
        world_seconds = time.perf_counter() - started
        results = {}
        for task in args.tasks:
            if task == "monitor_carried":  # the earlier date's run first (not timed here), then the next date
                results["carry"] = _run("carry", world, trained.bundle_dir, args.previous_as_of, args.allocator)
            results[task] = _run(task, world, trained.bundle_dir, args.as_of, args.allocator)
    none = {"seconds": 0, "cpu_seconds": 0, "rows_built": 0}
    base, cpu = results.get("catalogue", none)["seconds"], results.get("catalogue", none)["cpu_seconds"]
    rows = results.get("catalogue_monitored_rows", none)
    monitored = results.get("monitor", {**none, "open_loans": None})
    rerated = results.get("rerate", none)
    print(json.dumps({
        "benchmark": "monitoring", "enterprises": args.enterprises, "transaction_density": args.density,
        "as_of": args.as_of, "open_loans": monitored["open_loans"], "cpus": os.cpu_count(), "allocator": args.allocator,
        "setup_seconds": {"train": round(train_seconds, 1), "world": round(world_seconds, 1)},
        "results": results,
        "ratio_monitor_to_catalogue": round(monitored["seconds"] / base, 2) if base else None,
        "ratio_monitor_carried_to_catalogue": round(results["monitor_carried"]["seconds"] / base, 2)
        if base and "monitor_carried" in results else None,
        "cpu_ratio_monitor_carried_to_catalogue": round(results["monitor_carried"]["cpu_seconds"] / cpu, 2)
        if cpu and "monitor_carried" in results else None,
        "ratio_monitor_carried_to_catalogue_lanes": round(results["monitor_carried"]["seconds"]
                                                          / results["catalogue_lanes"]["seconds"], 2)
        if "catalogue_lanes" in results and "monitor_carried" in results else None,
        "ratio_rerate_to_catalogue": round(rerated["seconds"] / base, 2) if base else None,
        "cpu_ratio_monitor_to_catalogue": round(monitored["cpu_seconds"] / cpu, 2) if cpu else None,
        "rows_monitored_to_open": round(rows["rows_built"] / results["catalogue"]["rows_built"], 2)
        if rows["rows_built"] and base else None,
        "ratio_monitor_to_catalogue_monitored_rows": round(monitored["seconds"] / rows["seconds"], 2)
        if rows["seconds"] else None,
        "cpu_ratio_monitor_to_catalogue_monitored_rows": round(monitored["cpu_seconds"] / rows["cpu_seconds"], 2)
        if rows["cpu_seconds"] else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "goal": "monitor <= 1.5x the catalogue build and < 8 GiB at 1M borrowers, density 0.14",
    }, indent=2))


if __name__ == "__main__":
    main()

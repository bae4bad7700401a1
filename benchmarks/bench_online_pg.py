"""Decision-time scoring from a PostgreSQL store beside a DuckDB store: latency of one application.

Prints one JSON object to stdout (progress goes to stderr).

    .venv/bin/python benchmarks/bench_online_pg.py                      # 2,000 borrowers, 300 applications
    .venv/bin/python benchmarks/bench_online_pg.py --enterprises 10000 --requests 1000
    .venv/bin/python benchmarks/bench_online_pg.py --pg-url postgresql://user@host:5432/db   # a running server

A synthetic world is generated; a small model is trained on its offline features and written as a bundle
with its catalogue (not timed). The world is loaded into a DuckDB store and into a PostgreSQL store (the
load times are reported). Without ``--pg-url`` a throwaway PostgreSQL server is started on loopback (the
server programs of the machine, ``initdb`` into a temporary directory, as user postgres when run as root)
and stopped afterwards. Then, for ``--requests`` sampled loans, one application at a time (the loan's own
fields and decision date), ``ApplicationService.answer`` on ``/v1/applications/price`` in-process: the
catalogue SQL restricted to the borrower on the store, PD, grade, top-3 reason codes and the price. Each
store answers the same applications, after ``--warmup`` untimed ones (the prepared statement planned,
the pages cached), the heap frozen first as the served process freezes it.

Reported per store: p50/p99/mean in ms, the CPU seconds of this process (and of the PostgreSQL server
process serving the connection, when it runs on this machine) per request, the largest PD difference
between the two stores (0: the same features), and the load average (other work on the machine moves
these numbers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from _small_model import small_model  # beside this script


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def throwaway_server(shared_buffers: str) -> Iterator[str]:
    """A PostgreSQL server on loopback for the run (trust authentication); yields a database URL."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True) if Path("/usr/lib/postgresql").is_dir() \
        else []
    found = shutil.which("initdb")
    pg_bin = bins[0] if bins else (Path(found).parent if found else None)
    if pg_bin is None or not (pg_bin / "initdb").exists():
        raise SystemExit("no PostgreSQL server programs (initdb, pg_ctl) on this machine; give --pg-url")
    root_user = os.geteuid() == 0

    def as_postgres(cmd: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if root_user else cmd

    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    data = root / "data"
    data.mkdir()
    if root_user:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    port = _free_port()
    subprocess.run(as_postgres([str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "bench"]),
                   check=True, capture_output=True)
    subprocess.run(as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"), "-o",
                                f"-h 127.0.0.1 -p {port} -k {data} -c shared_buffers={shared_buffers}", "start"]),
                   check=True, capture_output=True)
    try:
        subprocess.run([str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "bench", "bench"],
                       check=True, capture_output=True)
        yield f"postgresql://bench@127.0.0.1:{port}/bench"
    finally:
        subprocess.run(as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _server_cpu(online) -> float | None:
    """CPU seconds so far of the PostgreSQL backend serving this thread's connection (local servers only)."""
    pid = online._connection().info.backend_pid
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stats(xs: list[float]) -> dict[str, float]:
    a = np.array(xs)
    return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2), "mean_ms": round(float(a.mean()), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=2000)
    ap.add_argument("--density", type=float, default=1.0, help="transaction density of the world")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pg-url", help="a PostgreSQL database to load the store into (default: a throwaway server)")
    ap.add_argument("--shared-buffers", default="512MB", help="shared_buffers of the throwaway server")
    args = ap.parse_args()

    from creditmodel.data.synthetic import generate_world
    from creditmodel.export.bundle import load_bundle, write_bundle
    from creditmodel.features.build import available_features, build_features
    from creditmodel.features.catalogue import CATALOGUE
    from creditmodel.features.online import build_store
    from creditmodel.features.online_pg import build_store_pg
    from creditmodel.service.app import ScoringService
    from creditmodel.service.applications import ApplicationService
    from creditmodel.service.workers import freeze_heap

    load_before = os.getloadavg()
    _log(f"world of {args.enterprises} enterprises")
    world = generate_world(args.enterprises, args.seed, transaction_density=args.density)
    tables = world.tables
    kept, _ = available_features(tables, CATALOGUE)
    frame = build_features(tables, features=kept)
    model, cal, scale = small_model(tables, world.extraction_date, frame, kept)
    del frame
    server = contextlib.nullcontext(args.pg_url) if args.pg_url else throwaway_server(args.shared_buffers)
    with tempfile.TemporaryDirectory(prefix="bench-online-pg-") as tmp, server as db:
        store = Path(tmp) / "store.duckdb"
        t = time.perf_counter()
        build_store(tables, store)
        duck_build = time.perf_counter() - t
        url = f"{db}?schema=bench_store"
        _log("loading the PostgreSQL store")
        t = time.perf_counter()
        build_store_pg(tables, url, force=True)
        pg_build = time.perf_counter() - t
        write_bundle(Path(tmp) / "bundle", model, cal, scale, catalogue=kept)
        bundle = load_bundle(Path(tmp) / "bundle", allow_unsigned=True)
        loans = tables["loans"].sample(min(args.requests + args.warmup, len(tables["loans"])), random_state=args.seed)
        results: dict[str, dict] = {}
        pds: dict[str, list[float]] = {}
        for name, location in (("duckdb", str(store)), ("postgresql", url)):
            apps = ApplicationService(ScoringService(bundle), location)
            freeze_heap()  # as `creditmodel serve` does before its first request
            times, cpu, pds[name] = [], 0.0, []
            server_cpu = None
            for i, loan in enumerate(loans.itertuples()):
                req = apps.model.model_validate({
                    "enterprise_id": int(loan.enterprise_id), "amount": float(loan.amount),
                    "term_months": int(loan.term_months), "product": loan.product,
                    "guarantee_type": loan.guarantee_type,
                    "decision_date": pd.Timestamp(loan.application_date).date(),
                    "group_id": None if pd.isna(loan.group_id) else int(loan.group_id)})
                if i == args.warmup:
                    cpu = time.process_time()
                    server_cpu = _server_cpu(apps.online) if name == "postgresql" else None
                t = time.perf_counter()
                status, body = apps.answer("/v1/applications/price", req)
                if i >= args.warmup:
                    times.append((time.perf_counter() - t) * 1000)
                    pds[name].append(json.loads(body)["result"]["pd"])
                if status != 200:
                    raise SystemExit(f"{name}: loan {loan.loan_id}: status {status}")
            n = len(times)
            results[name] = {**_stats(times), "client_cpu_ms_per_request": round((time.process_time() - cpu) * 1000 / n, 2)}
            if server_cpu is not None:
                after = _server_cpu(apps.online)
                results[name]["server_cpu_ms_per_request"] = round((after - server_cpu) * 1000 / n, 2)
            apps.online.close()
            _log(f"{name}: {results[name]}")

    out = {"benchmark": "online_pg", "enterprises": args.enterprises, "transactions": len(tables["transactions"]),
           "features": len(kept), "requests": args.requests, "store_build_s": {"duckdb": round(duck_build, 1),
                                                                           "postgresql": round(pg_build, 1)},
           "price_incl_features_reasons": results,
           "pg_over_duckdb_p50": round(results["postgresql"]["p50_ms"] / results["duckdb"]["p50_ms"], 2),
           "max_pd_difference": float(np.max(np.abs(np.array(pds["duckdb"]) - np.array(pds["postgresql"])))),
           "load_average_before": load_before, "load_average_after": os.getloadavg(), "cpus": os.cpu_count(),
           "python": platform.python_version()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

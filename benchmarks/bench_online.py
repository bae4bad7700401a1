"""Decision-time scoring from the application fields: latency of one application, features included.

Prints one JSON object to stdout (progress goes to stderr).

    .venv/bin/python benchmarks/bench_online.py                       # 2,000 borrowers, 200 applications
    .venv/bin/python benchmarks/bench_online.py --enterprises 10000 --requests 1000

A synthetic world is generated and loaded into a DuckDB store (``build_store``, not timed); a small
model is trained on its offline features and written as a bundle with its catalogue (not timed).
Then, for ``--requests`` sampled loans, one application at a time (the loan's own fields and
decision date):

* ``online``: ``ApplicationService.answer`` in-process: the catalogue SQL restricted to the borrower
  on the store, PD, grade, top-3 reason codes and the price (``/v1/applications/price``), as served:
  the borrower's rows copied out of the DuckDB store and the catalogue translated for SQLite run over
  them (``OnlineFeatures`` engine "auto");
* ``online_duckdb_engine``: the same answer with the catalogue's query run by DuckDB itself (engine
  "duckdb"), each application answered by both in turn, alternating which goes first;
* ``naive``: the whole offline catalogue query over every loan of the store's tables (``build_features``
  on the in-memory tables), then the application's row filtered out (timed on ``--naive-requests``).

* ``http``: the same applications (the first ``--http`` of them) over HTTP to ``creditmodel serve --bundle …
  --store duckdb://…`` on a loopback port, one keep-alive client, one request at a time: what a scoring
  service's caller waits for, parsing and uvicorn included (the answers are checked equal to in-process ones).

Reported: p50/p99/mean in ms of each, the ratios naive / online and duckdb engine / online of the medians
(the answers of both engines are checked equal), with the load
average (the machine's other work moves these numbers; the process's CPU time per application beside
the wall time shows how much of it was waiting for a core). The heap is frozen before the first
application, as the served process freezes it (``service.workers.freeze_heap``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _small_model import small_model  # beside this script


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _duckdb_profile(online, loans: pd.DataFrame, out: Path) -> dict[str, dict[str, float]]:
    """Where one application's features spend their time, by DuckDB's own profiler (medians, ms), in its two
    steps: ``extract`` (the borrower's rows out of the store, one statement per table, summed: bound and
    optimised at every call, as any DuckDB statement that reads a table is) and ``catalogue`` (the prepared
    catalogue query over those rows: its plan is kept, so binding is that of the EXECUTE alone and
    optimising is 0)."""
    from creditmodel.features.online import Application

    cur = online._statement()
    cur.execute("PRAGMA enable_profiling = 'json'").fetchall()
    cur.execute(f"PRAGMA profiling_output = '{out}'").fetchall()
    parts: dict[str, dict[str, list[float]]] = {"extract": {}, "catalogue": {}}

    def record(part: str, statements: list[str]) -> None:
        got: dict[str, float] = {}
        for sql in statements:
            cur.execute(sql).fetchall()
            p = json.loads(out.read_text())
            for k, v in {"planner": p["planner"]["binding_time"] + p["planner"]["total_time"],
                         "optimizer": p["optimizer"].get("total_time", 0.0), "execution_cpu": p["query"]["cpu_time"],
                         "total": p["query"]["total_time"]}.items():
                got[k] = got.get(k, 0.0) + v
        for k, v in got.items():
            parts[part].setdefault(k, []).append(v)

    try:
        for loan in loans.itertuples():
            app = Application(int(loan.enterprise_id), pd.Timestamp(loan.application_date).date(),
                              float(loan.amount), int(loan.term_months), loan.product, loan.guarantee_type,
                              None if pd.isna(loan.group_id) else int(loan.group_id))
            record("extract", online._extract_sql(app))
            record("catalogue", [f"EXECUTE application({online._arguments(app)})"])
    finally:
        cur.execute("PRAGMA disable_profiling").fetchall()
    return {part: {k: round(float(np.median(v)) * 1000, 2) for k, v in got.items()} for part, got in parts.items()}


def _same_answer(a: bytes, b: bytes, rtol: float = 1e-12) -> str | None:
    """Where two JSON answers differ (numbers beyond rtol), or None."""
    def walk(x, y, at):
        if isinstance(x, dict) and isinstance(y, dict):
            if x.keys() != y.keys():
                return at + "{keys}"
            return next((w for k in x if (w := walk(x[k], y[k], f"{at}.{k}")) is not None), None)
        if isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return at + "[len]"
            return next((w for i, (u, v) in enumerate(zip(x, y)) if (w := walk(u, v, f"{at}[{i}]")) is not None),
                        None)
        if isinstance(x, float) and isinstance(y, (int, float)):
            return None if abs(x - y) <= rtol * max(abs(x), abs(y)) else at
        return None if x == y else at
    return walk(json.loads(a), json.loads(b), "")


def _over_http(bundle: Path, store: Path, loans: pd.DataFrame, apps) -> list[float]:
    """Latency (ms) of /v1/applications/price over HTTP, one application at a time, from `creditmodel serve`."""
    import socket
    import subprocess

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "creditmodel.cli", "serve", "--bundle", str(bundle), "--store",
                             f"duckdb://{store}", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                             "--log-level", "warning", "--allow-unsigned"], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    out = []
    try:
        line = proc.stdout.readline()
        if not line.startswith("serving"):
            raise SystemExit(f"the server did not start: {line!r}")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for i, loan in enumerate(loans.itertuples()):
                body = {"enterprise_id": int(loan.enterprise_id), "amount": float(loan.amount),
                        "term_months": int(loan.term_months), "product": loan.product,
                        "guarantee_type": loan.guarantee_type,
                        "decision_date": str(pd.Timestamp(loan.application_date).date()),
                        "group_id": None if pd.isna(loan.group_id) else int(loan.group_id)}
                t = time.perf_counter()
                r = client.post("/v1/applications/price", json=body)
                out.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    raise SystemExit(f"loan {loan.loan_id}: HTTP {r.status_code} {r.text[:300]}")
                if i < 20:  # the served answer is the in-process one
                    _, local = apps.answer("/v1/applications/price", apps.model.model_validate_json(json.dumps(body)))
                    same = _same_answer(r.content, local)
                    if same is not None:
                        raise SystemExit(f"loan {loan.loan_id}: HTTP and in-process answers differ in {same}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=2000)
    ap.add_argument("--density", type=float, default=1.0, help="transaction density of the world")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--naive-requests", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--http", type=int, default=300, help="applications sent over HTTP to `serve` (0: none)")
    args = ap.parse_args()

    from creditmodel.data.synthetic import generate_world
    from creditmodel.export.bundle import load_bundle, write_bundle
    from creditmodel.features.build import available_features, build_features
    from creditmodel.features.catalogue import CATALOGUE
    from creditmodel.features.online import OnlineFeatures, build_store
    from creditmodel.service.app import ScoringService
    from creditmodel.service.applications import ApplicationService
    from creditmodel.service.workers import freeze_heap

    _log(f"world of {args.enterprises} enterprises")
    world = generate_world(args.enterprises, args.seed, transaction_density=args.density)
    tables = world.tables
    kept, _ = available_features(tables, CATALOGUE)
    frame = build_features(tables, features=kept)
    model, cal, scale = small_model(tables, world.extraction_date, frame, kept)
    with tempfile.TemporaryDirectory(prefix="bench-online-") as tmp:
        store = Path(tmp) / "store.duckdb"
        build_store(tables, store)
        write_bundle(Path(tmp) / "bundle", model, cal, scale, catalogue=kept)
        bundle = load_bundle(Path(tmp) / "bundle", allow_unsigned=True)
        apps = ApplicationService(ScoringService(bundle), str(store))
        duck = ApplicationService(ScoringService(bundle), str(store))
        duck.online.close()
        duck.online = OnlineFeatures(bundle.catalogue, store, engine="duckdb")
        assert (apps.online.engine, duck.online.engine) == ("sqlite", "duckdb")
        loans = tables["loans"].sample(min(args.requests, len(tables["loans"])), random_state=args.seed)
        freeze_heap()  # as `creditmodel serve` does before its first request (else a full collection of
        # the start-up heap, 100+ ms, lands in one request in a hundred or so and sets the p99)
        model_ = apps.model
        online, online_cpu, online_duck = [], [], []
        for i, loan in enumerate(loans.itertuples()):
            req = model_.model_validate({
                "enterprise_id": int(loan.enterprise_id), "amount": float(loan.amount),
                "term_months": int(loan.term_months), "product": loan.product,
                "guarantee_type": loan.guarantee_type,
                "decision_date": pd.Timestamp(loan.application_date).date(),
                "group_id": None if pd.isna(loan.group_id) else int(loan.group_id)})
            answers = {}
            for which in (("sqlite", "duckdb") if i % 2 == 0 else ("duckdb", "sqlite")):
                service = apps if which == "sqlite" else duck
                t, c = time.perf_counter(), time.process_time()
                status, answers[which] = service.answer("/v1/applications/price", req)
                (online if which == "sqlite" else online_duck).append((time.perf_counter() - t) * 1000)
                if which == "sqlite":
                    online_cpu.append((time.process_time() - c) * 1000)
                if status != 200:
                    raise SystemExit(f"loan {loan.loan_id}: status {status}")
            same = _same_answer(answers["sqlite"], answers["duckdb"])
            if same is not None:
                raise SystemExit(f"loan {loan.loan_id}: the engines differ in {same}")
        profile = _duckdb_profile(duck.online, loans.head(20), Path(tmp) / "profile.json")
        http = _over_http(Path(tmp) / "bundle", store, loans.head(args.http), apps) if args.http else []
        naive = []
        for loan in loans.head(args.naive_requests).itertuples():
            t = time.perf_counter()
            full = build_features(tables, features=kept)
            full[full["loan_id"] == loan.loan_id]
            naive.append((time.perf_counter() - t) * 1000)

    def stats(xs: list[float]) -> dict[str, float]:
        a = np.array(xs)
        return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50)), 2),
                "p99_ms": round(float(np.percentile(a, 99)), 2), "mean_ms": round(float(a.mean()), 2)}

    out = {"benchmark": "online", "enterprises": args.enterprises, "transactions": len(tables["transactions"]),
           "features": len(kept), "online_price_incl_features_reasons": stats(online),
           "online_cpu_of_the_process": stats(online_cpu),
           "online_duckdb_engine": stats(online_duck),
           "http_price_one_client": stats(http) if http else None,
           "duckdb_engine_over_online_p50": round(float(np.median(online_duck) / np.median(online)), 2),
           "naive_full_catalogue_then_filter": stats(naive),
           "naive_over_online_p50": round(float(np.median(naive) / np.median(online)), 1),
           "duckdb_profile_of_one_feature_query_ms": profile,
           "load_average": os.getloadavg(), "cpus": os.cpu_count(), "python": platform.python_version()}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

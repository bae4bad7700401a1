"""Load test of the scoring service on loopback: throughput and latency of single-application scoring at
concurrency 1, 16 and 64, and /health latency while large batches are in flight. Prints one JSON object.

    .venv/bin/python benchmarks/bench_load.py                                  # trains a small model first
    .venv/bin/python benchmarks/bench_load.py --bundle DIR --features FILE.parquet --workers 2

Without --bundle it runs the pipeline on a small synthetic world (--enterprises) in a temporary
directory. It starts ``creditmodel serve`` on a free loopback port (only 127.0.0.1), then:

* scoring: ``POST /v1/score`` with one real application (with its 3 reason codes) per request,
  from C concurrent keep-alive connections (C = --concurrency, default 1,16,64); each level stops
  after --requests requests or --seconds seconds, whichever comes first; req/s, p50/p99/max in ms
  and the status counts (503s count as refused, not as answered);
* large batches: --large-clients clients each send --large-rows-row batches back to back (bodies
  of several MB, parsed and scored in the service's helper process; beyond the service's bound
  they get 503 + Retry-After), while one client asks GET /health every 10 ms; /health p50/p99/max
  in ms and the share of /health answers under 50 ms, for --large-seconds seconds.

Everything is bounded in count and time and stops by itself; the server is stopped at the end.
Client and server share the machine's cores, so the figures are what the whole box does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def json_rows(frame: pd.DataFrame, names: list[str]) -> list[dict]:
    out = []
    for rec in frame[names].to_dict("records"):
        out.append({k: (None if v is None or (isinstance(v, float) and math.isnan(v))
                        else v.item() if isinstance(v, np.generic) else v) for k, v in rec.items()})
    return out


def ms(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    a = np.asarray(values) * 1000
    return {"p50": round(float(np.percentile(a, 50)), 2), "p99": round(float(np.percentile(a, 99)), 2),
            "max": round(float(a.max()), 2)}


async def scoring_level(url: str, bodies: list[bytes], concurrency: int, max_requests: int, seconds: float) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    issued = 0
    deadline = time.monotonic() + seconds

    async def client(k: int) -> None:
        nonlocal issued
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=1)) as c:
            while issued < max_requests and time.monotonic() < deadline:
                body = bodies[issued % len(bodies)]
                issued += 1
                t0 = time.perf_counter()
                r = await c.post("/v1/score", content=body, headers={"content-type": "application/json"})
                dt = time.perf_counter() - t0
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    latencies.append(dt)

    start = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(concurrency)))
    wall = time.perf_counter() - start
    return {"concurrency": concurrency, "requests": sum(statuses.values()), "seconds": round(wall, 2),
            "req_per_s": round(len(latencies) / wall, 1), "latency_ms": ms(latencies),
            "status": {str(k): v for k, v in sorted(statuses.items())}}


async def health_under_large(url: str, big: bytes, clients: int, seconds: float) -> dict:
    stop = time.monotonic() + seconds
    health: list[float] = []
    large: dict[int, int] = {}
    large_latency: list[float] = []

    async def big_client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=300) as c:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = await c.post("/v1/score", content=big, headers={"content-type": "application/json"})
                large[r.status_code] = large.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    large_latency.append(time.perf_counter() - t0)
                else:
                    await asyncio.sleep(float(r.headers.get("retry-after", "1")) / 4)

    async def health_client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            await asyncio.sleep(0.5)  # let the large bodies get going
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = await c.get("/health")
                if r.status_code == 200:
                    health.append(time.perf_counter() - t0)
                await asyncio.sleep(0.01)

    # the clients run in their own threads' loops: the health client must not wait on the uploads' event loop
    def run(coro_fn, *args):
        asyncio.run(coro_fn(*args))

    loop = asyncio.get_running_loop()
    await asyncio.gather(*[loop.run_in_executor(None, run, big_client) for _ in range(clients)],
                         loop.run_in_executor(None, run, health_client))
    return {"large_clients": clients, "large_body_mb": round(len(big) / 2**20, 1), "seconds": seconds,
            "large_status": {str(k): v for k, v in sorted(large.items())}, "large_latency_ms": ms(large_latency),
            "health_requests": len(health), "health_ms": ms(health),
            "health_under_50ms": round(float(np.mean(np.asarray(health) < 0.05)), 4) if health else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle")
    ap.add_argument("--features", help="parquet of feature rows (the run's features.parquet)")
    ap.add_argument("--enterprises", type=int, default=1500)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--requests", type=int, default=3000, help="per concurrency level at most")
    ap.add_argument("--seconds", type=float, default=20.0, help="per concurrency level at most")
    ap.add_argument("--large-rows", type=int, default=2000)
    ap.add_argument("--large-clients", type=int, default=3)
    ap.add_argument("--large-seconds", type=float, default=20.0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        if args.bundle is None:
            from creditmodel.config import build_config
            from creditmodel.pipeline import run_pipeline

            log(f"training a model on {args.enterprises} synthetic enterprises ...")
            config = build_config({"output_dir": f"{tmp}/out", "synthetic": {"enterprises": args.enterprises, "seed": 5},
                                   "lightgbm": {"n_estimators": 150}})
            result = run_pipeline(config, tracking_uri=f"sqlite:///{tmp}/mlflow.db")
            bundle_dir, features = Path(result.bundle_dir), Path(result.features_path)
        else:
            bundle_dir, features = Path(args.bundle), Path(args.features)
        names = [f["name"] for f in json.loads((bundle_dir / "feature_schema.json").read_text())["features"]]
        frame = pd.read_parquet(features)
        rows = json_rows(frame.sample(min(len(frame), 500), random_state=0), names)
        bodies = [json.dumps({"applications": [{"id": f"A-{i}", "features": r}]}).encode() for i, r in enumerate(rows)]
        many = (rows * (args.large_rows // len(rows) + 1))[: args.large_rows]
        big = json.dumps({"applications": [{"id": f"B-{i}", "features": r} for i, r in enumerate(many)],
                          "reasons": False}).encode()

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([sys.executable, "-m", "creditmodel.cli", "serve", "--bundle", str(bundle_dir),
                                 "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
                                 "--log-level", "warning"], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            line = proc.stdout.readline()
            if not line.startswith("serving"):
                raise SystemExit(f"the server did not start: {line!r}")
            log(line.strip())
            time.sleep(3)  # the helper processes for large bodies warm up
            levels = []
            for c in [int(x) for x in args.concurrency.split(",")]:
                log(f"scoring at concurrency {c} ...")
                levels.append(asyncio.run(scoring_level(url, bodies, c, args.requests, args.seconds)))
            log("/health alone ...")
            alone = asyncio.run(health_under_large(url, big, 0, min(args.large_seconds, 5.0)))
            log(f"/health while {args.large_clients} clients send {args.large_rows}-row batches ...")
            under = asyncio.run(health_under_large(url, big, args.large_clients, args.large_seconds))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "workers": args.workers, "single_application_scoring_with_reasons": levels,
        "health_alone": {k: alone[k] for k in ("seconds", "health_requests", "health_ms", "health_under_50ms")},
        "health_while_large_batches_in_flight": under,
    }, indent=2))


if __name__ == "__main__":
    main()

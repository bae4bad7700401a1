"""Scoring-service benchmark: `creditmodel serve` against `mlflow models serve` on the same model, and
batch rows/s of `creditmodel score`. Prints one JSON object to stdout (progress goes to stderr).

    .venv/bin/python benchmarks/bench_service.py                        # trains a small model first
    .venv/bin/python benchmarks/bench_service.py --bundle DIR --features FILE.parquet \\
        --model-uri models:/sme_pd@challenger --tracking-uri sqlite:///mlruns/mlflow.db

Without --bundle it runs the pipeline on a small synthetic world (--enterprises) into a temporary
directory and MLflow store, which gives the bundle, the demo feature rows and the LightGBM model
logged to MLflow (the same trees). Then, for each server and uvicorn worker count (--workers):

* our service: ``creditmodel serve`` (uvicorn, loopback), ``POST /v1/score`` with one application
  per request **with its 3 reason codes** (TreeSHAP), PD calibrated and graded;
* MLflow: ``mlflow models serve -m URI --env-manager local``, ``POST /invocations`` with one
  encoded row (``dataframe_split``), which returns the raw LightGBM probability only (no
  calibration, grade or reasons);

it measures single-request latency (sequential, keep-alive ``httpx.Client``: p50/p90/p99/mean in
ms), throughput in requests/s at concurrency 1 and --concurrency (``httpx.AsyncClient``, one
connection per concurrent client) and the p99 under that load, and rows/s with 100-row requests;
each measurement stops after --requests requests or --seconds seconds, whichever comes first.
Client and servers share the machine's cores, so throughput is what the whole box does.
Responses are checked: our PDs equal ``bundle.predict_pd`` and MLflow's scores equal the booster's.

With ``--trees lightgbm compiled`` the same bundle is also served with its trees compiled (``creditmodel
bundle compile``); with ``--breakdown`` each of our servers also answers ``GET /health`` (no model) and
``/v1/score`` without reasons, interleaved with the scored requests, to show where a request's time goes:
p50/p99 of the three side by side, once per client (``--clients``: ``raw_socket``, a minimal keep-alive
HTTP/1.1 client on one socket with requests prepared as bytes, which measures the server; ``httpx``, which
adds ~1 ms of its own CPU per request), the server process's CPU ms per request of each kind (1,000 of
each, from /proc) and the load average before and after; and the same bodies handled in process by
``ScoringService.handle`` (no HTTP). ``--stacks auto h11+asyncio`` serves each uvicorn stack apart;
``--latency-only`` runs just this (no throughput, MLflow or batch). Percentiles depend on the machine's
load: report ``uptime`` beside them, and compare CPU per request where the load is high.

    .venv/bin/python benchmarks/bench_service.py --latency-only --trees compiled --stacks auto h11+asyncio

Batch: the demo rows replicated to --batch-rows (default 1M) in a parquet file, scored by the
``creditmodel score`` command (wall time including start-up, and the scoring loop's own rows/s),
and with ``--reasons`` on --reason-rows rows.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

HEADERS = {"content-type": "application/json"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], url: str, health: str, logfile: Path, env: dict[str, str] | None = None,
          timeout: float = 180):
    with open(logfile, "w") as logf:  # a file, not a pipe: a full pipe would block the server
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, **(env or {})}, start_new_session=True)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[:3]} exited with {proc.returncode}: {logfile.read_text()[-2000:]}")
        try:
            if httpx.get(url + health, timeout=2).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    stop(proc)
    raise RuntimeError(f"{cmd[:3]} not healthy after {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)  # the server's own process group: uvicorn's workers with it
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def pct(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p90_ms": round(float(np.percentile(a, 90)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3), "mean_ms": round(float(a.mean()), 3)}


def sequential(url: str, path: str, bodies: list[bytes], n: int, seconds: float) -> tuple[list[float], list[bytes]]:
    lat, out = [], []
    with httpx.Client(base_url=url, timeout=60) as c:
        for i in range(min(100, n)):  # warm-up
            c.post(path, content=bodies[i % len(bodies)], headers=HEADERS)
        start = time.perf_counter()
        for i in range(n):
            if time.perf_counter() - start > seconds and i >= 100:
                break
            t = time.perf_counter()
            r = c.post(path, content=bodies[i % len(bodies)], headers=HEADERS)
            lat.append((time.perf_counter() - t) * 1e3)
            if r.status_code != 200:
                raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")
            if i < len(bodies):
                out.append(r.content)
    return lat, out


async def _load(url: str, path: str, bodies: list[bytes], concurrency: int, total: int,
                seconds: float) -> tuple[float, list[float]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    counter = itertools.count()
    lat: list[float] = []
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as c:
        async def warm() -> None:
            for i in range(3):
                await c.post(path, content=bodies[i % len(bodies)], headers=HEADERS)

        async def worker() -> None:
            while (i := next(counter)) < total and time.perf_counter() - t0 < seconds:
                t = time.perf_counter()
                r = await c.post(path, content=bodies[i % len(bodies)], headers=HEADERS)
                lat.append((time.perf_counter() - t) * 1e3)
                if r.status_code != 200:
                    raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")

        await asyncio.gather(*[warm() for _ in range(concurrency)])  # open every connection first
        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        return len(lat) / (time.perf_counter() - t0), lat


def load(url, path, bodies, concurrency, total, seconds):
    return asyncio.run(_load(url, path, bodies, concurrency, total, seconds))


def measure(name: str, url: str, path: str, one_row: list[bytes], hundred_rows: list[bytes], args) -> dict:
    log(f"  {name}: latency (up to {args.requests} sequential requests or {args.seconds} s)")
    lat, responses = sequential(url, path, one_row, args.requests, args.seconds)
    out = {"single_row_latency": {"requests": len(lat), **pct(lat)}}
    log(f"  {name}: throughput at concurrency 1 and {args.concurrency}")
    rps1, _ = load(url, path, one_row, 1, args.requests, args.seconds)
    rpsn, lat_n = load(url, path, one_row, args.concurrency, args.load_requests, args.seconds)
    out["throughput_rps"] = {"concurrency_1": round(rps1, 1), f"concurrency_{args.concurrency}": round(rpsn, 1)}
    out[f"latency_under_concurrency_{args.concurrency}"] = pct(lat_n)
    rps100, _ = load(url, path, hundred_rows, 4, max(40, args.load_requests // 50), args.seconds)
    out["rows_per_s_100_row_requests_concurrency_4"] = round(rps100 * 100, 1)
    return out, responses


class RawClient:
    """A minimal keep-alive HTTP/1.1 client on one TCP socket, as load generators (wrk) work: each request
    prepared as bytes once, sent whole, the answer read by its Content-Length. It costs the measurement
    a few microseconds where httpx costs a few hundred, so what it reports is the server's time."""

    def __init__(self, url: str):
        host, port = url.split("//", 1)[1].rsplit(":", 1)
        self.host = f"{host}:{port}".encode()
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def prepare(self, method: str, path: str, body: bytes = b"") -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: ".encode() + self.host + b"\r\n"
        if method == "POST":
            head += b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        return head + b"\r\n" + body

    def send(self, request: bytes) -> tuple[int, bytes]:
        """Status and body of one prepared request."""
        self.sock.sendall(request)
        buf, recv = self.buf, self.sock.recv
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += self._more(recv)
        head = buf[:end].lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            raise RuntimeError(f"answer without Content-Length: {head[:200]!r}")
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17:stop if stop > 0 else len(head)])
        total = end + 4 + length
        while len(buf) < total:
            buf += self._more(recv)
        self.buf = buf[total:]
        return int(head[9:12]), buf[end + 4:total]

    @staticmethod
    def _more(recv: Any) -> bytes:
        chunk = recv(262144)
        if not chunk:
            raise RuntimeError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


class HttpxClient:
    """The same three calls through a keep-alive ``httpx.Client`` (what an application would use)."""

    def __init__(self, url: str):
        self.client = httpx.Client(base_url=url, timeout=60)

    def prepare(self, method: str, path: str, body: bytes = b"") -> tuple[str, str, bytes]:
        return method, path, body

    def send(self, request: tuple[str, str, bytes]) -> tuple[int, bytes]:
        method, path, body = request
        r = (self.client.post(path, content=body, headers=HEADERS) if method == "POST"
             else self.client.get(path))
        return r.status_code, r.content

    def close(self) -> None:
        self.client.close()


CLIENTS = {"raw_socket": RawClient, "httpx": HttpxClient}
CLIENT_NAMES = {"raw_socket": "a minimal keep-alive HTTP/1.1 client on one raw TCP socket (requests prepared as "
                              "bytes, answers read by Content-Length; wrk's way), sequential",
                "httpx": f"httpx {httpx.__version__} Client, keep-alive, sequential"}


def load_avg() -> dict[str, float]:
    one, five, fifteen = os.getloadavg()
    return {"1m": round(one, 2), "5m": round(five, 2), "15m": round(fifteen, 2)}


CPU_BLOCK = 1000  # requests of one kind per server CPU reading (the clock ticks at 10 ms)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def breakdown(url: str, with_reasons: list[bytes], without: list[bytes], args, client: str = "httpx",
              expected_pd: np.ndarray | None = None, server_pid: int | None = None) -> dict:
    """Where a single request's time goes, on the same server: GET /health (HTTP, uvicorn and the app's
    routing, no model), POST /v1/score without reasons (+ JSON parsing, validation, PD and grade) and with
    them (+ TreeSHAP and the reason texts); sequential, keep-alive, interleaved so load hits all alike.
    Every answer must be 200; the PDs of the first len(bodies) answers are checked against `expected_pd`."""
    lat: dict[str, list[float]] = {"health_get": [], "score_no_reasons": [], "score_with_reasons": []}
    c = CLIENTS[client](url)
    health = c.prepare("GET", "/health")
    plain = [c.prepare("POST", "/v1/score", b) for b in without]
    full = [c.prepare("POST", "/v1/score", b) for b in with_reasons]
    calls = (("health_get", lambda i: health), ("score_no_reasons", lambda i: plain[i % len(plain)]),
             ("score_with_reasons", lambda i: full[i % len(full)]))
    got: list[float] = []
    load_before = load_avg()
    try:
        for i in range(min(100, args.requests)):  # warm-up
            for _, req in calls:
                c.send(req(i))
        cpu0, server0 = time.process_time(), cpu_seconds(server_pid) if server_pid else None
        start = time.perf_counter()
        for i in range(args.requests):
            if time.perf_counter() - start > args.seconds and i >= 100:
                break
            for key, req in calls:
                r = req(i)
                t = time.perf_counter()
                status, body = c.send(r)
                lat[key].append((time.perf_counter() - t) * 1e3)
                if status != 200:
                    raise RuntimeError(f"{key}: {status} {body[:300]!r}")
                if key == "score_with_reasons" and i < len(full):
                    got.append(json.loads(body)["results"][0]["pd"])
        client_cpu = time.process_time() - cpu0
        n = sum(len(v) for v in lat.values())
        server_cpu: dict[str, float] = {}
        if server0 is not None:  # then each kind alone, for the server's CPU time per request of that kind
            for key, req in calls:
                before = cpu_seconds(server_pid)  # type: ignore[arg-type]
                for i in range(CPU_BLOCK):
                    c.send(req(i))
                server_cpu[key] = round((cpu_seconds(server_pid) - before) / CPU_BLOCK * 1e3, 3)  # type: ignore
    finally:
        c.close()
    out: dict[str, Any] = {"client": CLIENT_NAMES[client]}
    out |= {k: {"requests": len(v), **pct(v)} for k, v in lat.items()}
    out["client_cpu_ms_per_request"] = round(client_cpu / n * 1e3, 3)
    if server_cpu:
        out[f"server_cpu_ms_per_request_{CPU_BLOCK}_of_each_kind"] = server_cpu
    out["load_avg_before"], out["load_avg_after"] = load_before, load_avg()
    if expected_pd is not None:
        out["max_abs_pd_diff_vs_bundle"] = float(np.max(np.abs(np.asarray(got) - expected_pd[:len(got)])))
    return out


def in_process(bundle_dir: Path, with_reasons: list[bytes], without: list[bytes], n: int) -> dict:
    """The service's own handling of the same bodies, called in this process without HTTP
    (``ScoringService.handle``: parse and validate, checks, PD, grade, reasons, JSON answer): the floor
    under what any server and client can reach, so that the rest of a request's time is HTTP's."""
    from creditmodel.export.bundle import load_bundle
    from creditmodel.service.app import ScoringService

    svc = ScoringService(load_bundle(bundle_dir))
    lat: dict[str, list[float]] = {"score_no_reasons": [], "score_with_reasons": []}
    for i in range(min(100, n)):
        svc.handle("/v1/score", with_reasons[i % len(with_reasons)])
    load_before = load_avg()
    for i in range(n):
        for key, bodies in (("score_no_reasons", without), ("score_with_reasons", with_reasons)):
            t = time.perf_counter()
            status, _, _ = svc.handle("/v1/score", bodies[i % len(bodies)])
            lat[key].append((time.perf_counter() - t) * 1e3)
            if status != 200:
                raise RuntimeError(f"in process: {status}")
    out: dict[str, Any] = {k: {"requests": len(v), **pct(v)} for k, v in lat.items()}
    out["load_avg_before"], out["load_avg_after"] = load_before, load_avg()
    return out


def compiled_copy(bundle_dir: Path, signing_key: str | None, tmp: Path) -> Path:
    """The bundle with its trees compiled (`creditmodel bundle compile`), signed again by `signing_key`."""
    if not signing_key:
        raise SystemExit("--trees compiled needs --signing-key (a key the servers trust) with --bundle")
    out = tmp / "bundle_compiled"
    subprocess.run([sys.executable, "-m", "creditmodel.cli", "bundle", "compile", "--bundle", str(bundle_dir),
                    "--out", str(out), "--signing-key", signing_key], check=True, capture_output=True, text=True)
    return out


def prepare(args, tmp: Path):
    """Bundle dir, feature frame, model URI and tracking URI: given, or from a small pipeline run."""
    if args.bundle:
        if not (args.features and args.model_uri):
            raise SystemExit("--bundle needs --features and --model-uri (and --tracking-uri for a models:/ URI)")
        return (Path(args.bundle), pd.read_parquet(args.features), args.model_uri, args.tracking_uri, None,
                args.signing_key)
    from creditmodel.config import build_config
    from creditmodel.export.signing import ENV_TRUSTED_KEYS, generate_keys
    from creditmodel.pipeline import run_pipeline

    log(f"training: pipeline on {args.enterprises} synthetic enterprises into {tmp}")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    private, public, _ = generate_keys(tmp / "keys")  # a signed bundle, trusted by every command started below
    os.environ[ENV_TRUSTED_KEYS] = str(public)
    config = build_config({"output_dir": str(tmp / "out"), "synthetic": {"enterprises": args.enterprises, "seed": 0},
                           "experiment": "bench-service", "bundle": {"signing_key": str(private)}})
    t0 = time.perf_counter()
    result = run_pipeline(config, tracking_uri=uri)
    return (result.bundle_dir, pd.read_parquet(result.features_path), result.tracked.model_uri, uri,
            round(time.perf_counter() - t0, 1), str(private))


def json_row(rec: dict) -> dict:
    out = {}
    for k, v in rec.items():
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            out[k] = None
        else:
            out[k] = v.item() if isinstance(v, np.generic) else v
    return out


def bench_batch(bundle_dir: Path, frame: pd.DataFrame, names: list[str], tmp: Path, rows: int, reasons: bool) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp / f"batch_{rows}.parquet"
    base = frame[["loan_id", *names]].reset_index(drop=True)
    table = pa.Table.from_pandas(base, preserve_index=False)
    with pq.ParquetWriter(path, table.schema) as w:
        done = 0
        while done < rows:
            part = table.slice(0, min(len(base), rows - done))
            w.write_table(part)
            done += part.num_rows
    out = tmp / f"scored_{rows}.parquet"
    cmd = [sys.executable, "-m", "creditmodel.cli", "score", "--bundle", str(bundle_dir), "--input", str(path),
           "--out", str(out), "--keep", "loan_id", *(["--reasons"] if reasons else [])]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    inner = float(proc.stdout.split("(")[1].split(" rows/s")[0].replace(",", ""))
    scored = pd.read_parquet(out, columns=["pd"])
    res = {"rows": rows, "input_mb": round(path.stat().st_size / 2**20, 1), "wall_s_including_startup": round(wall, 2),
           "rows_per_s_wall": round(rows / wall), "rows_per_s_scoring_loop": round(inner),
           "all_rows_scored": bool(len(scored) == rows and scored["pd"].notna().all())}
    path.unlink()
    out.unlink()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", help="export bundle directory, its signer trusted via $CREDITMODEL_TRUSTED_KEYS "
                                     "(default: train a small model first)")
    ap.add_argument("--features", help="parquet of feature rows (with --bundle)")
    ap.add_argument("--model-uri", help="MLflow URI of the same LightGBM model (with --bundle)")
    ap.add_argument("--tracking-uri", help="MLflow tracking URI for --model-uri")
    ap.add_argument("--enterprises", type=int, default=3000, help="synthetic world when training (default 3000)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="uvicorn worker counts (default 1 2)")
    ap.add_argument("--requests", type=int, default=2000, help="sequential requests (default 2000)")
    ap.add_argument("--load-requests", type=int, default=4000, help="requests at concurrency (default 4000)")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=20.0, help="time limit of each measurement (default 20)")
    ap.add_argument("--batch-rows", type=int, default=1_000_000)
    ap.add_argument("--reason-rows", type=int, default=100_000)
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--trees", nargs="+", default=["lightgbm"], choices=["lightgbm", "compiled"],
                    help="serve the bundle as it is and/or with its trees compiled (creditmodel bundle compile)")
    ap.add_argument("--signing-key", help="private key that signs the compiled bundle (with --bundle)")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time GET /health and /v1/score without reasons on the same server")
    ap.add_argument("--latency-only", action="store_true",
                    help="only the single-request breakdown (implies --breakdown --skip-mlflow, no batch, no "
                         "throughput) and the same requests handled in process")
    ap.add_argument("--stacks", nargs="+", default=["auto"],
                    help="uvicorn HTTP parser + event loop of our server, each served and reported apart: auto "
                         "(uvicorn's choice), httptools+uvloop, h11+asyncio, ... (default auto)")
    ap.add_argument("--clients", nargs="+", default=["raw_socket", "httpx"], choices=sorted(CLIENTS),
                    help="clients of the breakdown, each reported apart (default: raw_socket httpx)")
    args = ap.parse_args()
    if args.latency_only:
        args.breakdown, args.skip_mlflow, args.batch_rows, args.reason_rows = True, True, 0, 0

    from creditmodel.export.bundle import load_bundle

    tmp = Path(tempfile.mkdtemp(prefix="bench-service-"))
    procs: list[subprocess.Popen] = []
    try:
        bundle_dir, frame, model_uri, tracking_uri, train_s, signing_key = prepare(args, tmp)
        bundle = load_bundle(bundle_dir)
        names = list(bundle.schema.names)
        sample = frame.sample(min(1000, len(frame)), random_state=0).reset_index(drop=True)
        feats = [json_row(r) for r in sample[names].to_dict("records")]
        ours_1 = [json.dumps({"applications": [{"id": str(i), "features": f}]}).encode() for i, f in enumerate(feats)]
        ours_1_plain = [json.dumps({"applications": [{"id": str(i), "features": f}], "reasons": False}).encode()
                        for i, f in enumerate(feats)]
        ours_100 = [json.dumps({"applications": [{"id": str(i), "features": f} for i, f in enumerate(feats[k:k + 100])]}).encode()
                    for k in range(0, len(feats) - 99, 100)]
        X = bundle.schema.encode(sample[names])
        enc = [[None if math.isnan(v) else float(v) for v in row] for row in X]
        ml_1 = [json.dumps({"dataframe_split": {"columns": names, "data": [row]}}).encode() for row in enc]
        ml_100 = [json.dumps({"dataframe_split": {"columns": names, "data": enc[k:k + 100]}}).encode()
                  for k in range(0, len(enc) - 99, 100)]
        expected_pd = bundle.predict_pd(sample)
        expected_raw = bundle.booster.predict(X)

        out: dict = {"benchmark": "service", "features": len(names), "trees": bundle.booster.num_trees(),
                     "model_uri": model_uri, "train_s": train_s,
                     "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                                 "load_avg_1m_at_start": round(os.getloadavg()[0], 2)},
                     "client": f"httpx {httpx.__version__}, keep-alive, on the same machine (latency and load; "
                                   "each breakdown names its own client)", "servers": {}}
        served = {"lightgbm": bundle_dir}
        if "compiled" in args.trees:
            log("compiling the trees")
            served["compiled"] = compiled_copy(bundle_dir, signing_key, tmp)
        for mode, workers, stack in itertools.product(args.trees, args.workers, args.stacks):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            log(f"creditmodel serve, {workers} worker(s), trees: {mode}, HTTP stack: {stack}")
            suffix = ("" if mode == "lightgbm" else "_compiled_trees") + ("" if stack == "auto" else f"_{stack}")
            http, loop = stack.split("+") if "+" in stack else (stack, "auto")
            proc, up = start([sys.executable, "-m", "creditmodel.cli", "serve", "--bundle", str(served[mode]),
                              "--port", str(port), "--workers", str(workers), "--log-level", "warning",
                              *([] if stack == "auto" else ["--http", http, "--loop", loop]),
                              "--max-large-requests", "8"],  # the 100-row bodies (~300 KiB) come 4 at a time
                             url, "/health",
                             tmp / f"creditmodel_{workers}.log")
            procs.append(proc)
            res = {"startup_s": round(up, 2), "http_stack": stack}
            if not args.latency_only:
                res, responses = measure("creditmodel", url, "/v1/score", ours_1, ours_100, args)
                got = np.array([json.loads(b)["results"][0]["pd"] for b in responses])
                reasons = [len(json.loads(b)["results"][0]["reasons"]) for b in responses]
                res |= {"startup_s": round(up, 2), "http_stack": stack}
                res["check"] = {"max_abs_pd_diff_vs_bundle": float(np.max(np.abs(got - expected_pd[:len(got)]))),
                                "reasons_per_row_min": int(min(reasons))}
            if args.breakdown:
                res["breakdown_single_request"] = {}
                for client in args.clients:
                    log(f"  creditmodel: breakdown (health, score without and with reasons), client {client}")
                    res["breakdown_single_request"][client] = breakdown(url, ours_1, ours_1_plain, args, client,
                                                                        expected_pd, proc.pid)
            out["servers"][f"creditmodel_serve_workers_{workers}{suffix}"] = res
            stop(proc)
            procs.remove(proc)
            if args.skip_mlflow or mode != "lightgbm":
                continue
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            log(f"mlflow models serve, {workers} worker(s)")
            mlflow = str(Path(sys.executable).parent / "mlflow")
            proc, up = start([mlflow, "models", "serve", "-m", model_uri, "--env-manager", "local", "-p", str(port),
                              "-w", str(workers)], url, "/ping", tmp / f"mlflow_{workers}.log",
                             env={"MLFLOW_TRACKING_URI": tracking_uri or "",
                                  "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                                  "UVICORN_ACCESS_LOG": "false"})  # as ours: no access log
            procs.append(proc)
            res, responses = measure("mlflow", url, "/invocations", ml_1, ml_100, args)
            got = np.array([json.loads(b)["predictions"][0] for b in responses], dtype=float)
            res["startup_s"] = round(up, 2)
            res["check"] = {"max_abs_score_diff_vs_booster": float(np.max(np.abs(got - expected_raw[:len(got)])))}
            res["returns"] = "raw LightGBM probability only (no calibration, grade or reason codes)"
            out["servers"][f"mlflow_models_serve_workers_{workers}"] = res
            stop(proc)
            procs.remove(proc)

        if args.breakdown:
            for mode in args.trees:
                log(f"in process: ScoringService.handle, trees: {mode}")
                out[f"in_process_handle_{mode}"] = in_process(served[mode], ours_1, ours_1_plain, args.requests)
        if not args.skip_mlflow:
            ratios = {}
            for workers in args.workers:
                ours = out["servers"][f"creditmodel_serve_workers_{workers}" + ("" if args.stacks[0] == "auto"
                                                                                 else f"_{args.stacks[0]}")]
                theirs = out["servers"][f"mlflow_models_serve_workers_{workers}"]
                for key, v in ours["throughput_rps"].items():
                    ratios[f"workers_{workers}_{key}"] = round(v / theirs["throughput_rps"][key], 2)
                ratios[f"workers_{workers}_p99_latency"] = round(
                    theirs["single_row_latency"]["p99_ms"] / ours["single_row_latency"]["p99_ms"], 2)
            out["creditmodel_over_mlflow"] = ratios
            out["note_mlflow_multi_worker"] = (
                "uvicorn's multi-worker socket lacks TCP_NODELAY (protocol 0), so every response of a "
                "multi-worker server waits ~40 ms (Nagle + delayed ACK); creditmodel serve sets it on its "
                "listening socket, mlflow models serve -w N does not: compare at 1 worker for a like-for-like figure")
        if args.batch_rows:
            log(f"batch: creditmodel score on {args.batch_rows:,} rows")
            out["batch_score"] = bench_batch(bundle_dir, frame, names, tmp, args.batch_rows, reasons=False)
        if args.reason_rows:
            log(f"batch: creditmodel score --reasons on {args.reason_rows:,} rows")
            out["batch_score_with_reasons"] = bench_batch(bundle_dir, frame, names, tmp, args.reason_rows, reasons=True)
        out["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
        print(json.dumps(out, indent=2))
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

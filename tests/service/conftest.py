"""A real scoring server on loopback: `creditmodel serve` in a subprocess on a free port, once per session."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from creditmodel.export.bundle import load_bundle


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(url: str, proc: subprocess.Popen, timeout: float = 120.0, *, https: bool = False) -> None:
    if https:  # the server wants client certificates: its "serving ..." line says when it answers
        line = proc.stdout.readline()
        if not line.startswith("serving"):
            raise RuntimeError(f"the server did not start: {line}{proc.stdout.read()}")
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no healthy server at {url} after {timeout} s")


def start_server(bundle_dir, *extra: str, env: dict | None = None, https: bool = False) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "creditmodel.cli", "serve", "--bundle", str(bundle_dir), "--port", str(port),
           "--log-level", "warning", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, proc, https=https)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, url


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def bundle_dir(demo_run):
    return demo_run["result"].bundle_dir


@pytest.fixture(scope="session")
def bundle(bundle_dir):
    return load_bundle(bundle_dir)


@pytest.fixture(scope="session")
def demo_frame(demo_run):
    """Real application rows with every feature (the demo run's modelling frame)."""
    return pd.read_parquet(demo_run["result"].features_path)


@pytest.fixture(scope="session")
def demo_rows(demo_frame):
    """A sample of demo rows from every split, with some nulls and every category present."""
    parts = [part.sample(min(len(part), 60), random_state=0) for _, part in demo_frame.groupby("split")]
    return pd.concat(parts).reset_index(drop=True)


def json_features(frame: pd.DataFrame, names) -> list[dict]:
    """Feature rows as a JSON request carries them: numbers, category strings, null for missing."""
    out = []
    for rec in frame[list(names)].to_dict("records"):
        row = {}
        for k, v in rec.items():
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                row[k] = None
            elif isinstance(v, np.generic):
                row[k] = v.item()
            else:
                row[k] = v
        out.append(row)
    return out


@pytest.fixture(scope="session")
def server(bundle_dir):
    proc, url = start_server(bundle_dir)
    yield url
    stop_server(proc)


@pytest.fixture(scope="session")
def client(server):
    with httpx.Client(base_url=server, timeout=60) as c:
        yield c


def asgi_calls(app, calls: list[tuple[str, str, object]], headers: dict | None = None) -> list[httpx.Response]:
    """Requests (method, path, json body or None) against an ASGI app in this process, in order."""
    import asyncio

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc",
                                     headers=headers or {}) as c:
            return [await c.request(method, path, json=body) for method, path, body in calls]

    return asyncio.run(run())


@pytest.fixture(scope="session")
def app(bundle):
    """The service app in this process (no server): for checks that need no network."""
    from creditmodel.service.app import create_app

    return create_app(bundle)


@pytest.fixture(scope="session")
def feature_rows(bundle, demo_rows):
    return json_features(demo_rows, bundle.schema.names)

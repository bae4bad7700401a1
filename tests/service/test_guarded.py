"""A server with API keys, a request log and a short body timeout, over loopback HTTP: /health open and /v1/*
behind the key, one log line per request with ids and never a feature value, and a slow upload cut off with
408 while /health keeps answering."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time

import httpx
import pytest

from creditmodel.exceptions import ConfigError
from creditmodel.service.app import load_api_keys

from .conftest import free_port, start_server, stop_server

KEY = "k3y-for-the-tests-0123456789"


@pytest.fixture(scope="module")
def guarded(bundle_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("guarded")
    (root / "keys").write_text(f"# keys of the scoring clients\n\n{KEY}\nanother-key-abcdefghijkl\n")
    log = root / "requests.jsonl"
    proc, url = start_server(bundle_dir, "--api-key-file", str(root / "keys"), "--request-log", str(log),
                             "--body-timeout", "2")
    yield url, log
    stop_server(proc)


def test_health_is_open_and_the_api_needs_a_key(guarded, feature_rows):
    url, _ = guarded
    body = {"applications": [{"features": feature_rows[0]}]}
    assert httpx.get(f"{url}/health").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"}, {"X-API-Key": KEY[:-1]},
                    {"Authorization": KEY}):
        r = httpx.post(f"{url}/v1/score", json=body, headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"
        assert len(r.text.splitlines()) == 1 and r.json()["detail"][0]["type"] == "unauthorized"
        assert httpx.get(f"{url}/v1/model", headers=headers).status_code == 401
    assert httpx.post(f"{url}/v1/score", json=body, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert httpx.post(f"{url}/v1/score", json=body, headers={"X-API-Key": "another-key-abcdefghijkl"}).status_code == 200
    assert httpx.get(f"{url}/v1/model", headers={"X-API-Key": KEY}).status_code == 200


def test_request_log_has_ids_and_no_feature_values(guarded, feature_rows):
    url, log = guarded
    marker = 123457.891  # a loan amount that appears nowhere else
    features = dict(feature_rows[0], loan_amount=marker, monthly_principal=marker / feature_rows[0]["term_months"])
    r = httpx.post(f"{url}/v1/score", json={"applications": [{"id": "LOAN-77", "features": features},
                                                              {"id": "ENT-9", "features": feature_rows[1]}]},
                   headers={"X-API-Key": KEY})
    assert r.status_code == 200
    bad = httpx.post(f"{url}/v1/score", json={"applications": [{"id": "LOAN-78", "features": dict(features, term_months=-1.0)}]},
                     headers={"X-API-Key": KEY})
    assert bad.status_code == 422
    time.sleep(0.2)
    text = log.read_text()
    records = [json.loads(line) for line in text.splitlines()]
    scored = [x for x in records if x.get("ids") == ["LOAN-77", "ENT-9"]]
    assert len(scored) == 1
    rec = scored[0]
    assert set(rec) == {"time", "method", "path", "status", "latency_ms", "model", "applications", "ids"}
    assert rec["status"] == 200 and rec["path"] == "/v1/score" and rec["model"] == r.json()["model"]
    assert rec["applications"] == 2 and rec["latency_ms"] > 0
    assert any(x["status"] == 422 and x["path"] == "/v1/score" for x in records)
    assert any(x["status"] == 401 and "ids" not in x for x in records)
    assert "123457" not in text and "loan_amount" not in text and "features" not in text
    for value in feature_rows[1].values():  # no value of the second application either
        if isinstance(value, float) and len(repr(value)) >= 8:
            assert repr(value) not in text


def test_slow_upload_gets_408_while_health_answers(guarded):
    url, _ = guarded
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)))
    try:
        s.sendall(f"POST /v1/score HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {KEY}\r\n"
                  "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"applications\": [".encode())
        start, answer = time.monotonic(), b""
        while time.monotonic() - start < 20:
            s.sendall(b" ")  # one byte every 0.2 s: never done within the 2 s body timeout
            assert httpx.get(f"{url}/health", timeout=5).status_code == 200  # the server keeps answering
            if select.select([s], [], [], 0.2)[0]:
                answer = s.recv(4096)
                while b"not received" not in answer and select.select([s], [], [], 2)[0]:  # the body may follow
                    more = s.recv(4096)
                    if not more:
                        break
                    answer += more
                break
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"not received within 2 s" in answer
        assert 1.5 < time.monotonic() - start < 10
    finally:
        s.close()


def test_api_key_configuration_errors(tmp_path, bundle_dir):
    (tmp_path / "empty").write_text("# nothing\n\n")
    (tmp_path / "short").write_text("tooshort\n")
    with pytest.raises(ConfigError, match="holds no key"):
        load_api_keys(tmp_path / "empty")
    with pytest.raises(ConfigError, match="line 1.*at least 16"):
        load_api_keys(tmp_path / "short")
    with pytest.raises(ConfigError, match="entry 2"):
        load_api_keys(None, "a-long-enough-key-123, has space in it xx")
    assert load_api_keys(tmp_path / "empty" if False else None, " key-number-one-abcdef ,key-number-two-abcdef") == [
        "key-number-one-abcdef", "key-number-two-abcdef"]
    for path in (tmp_path / "missing", tmp_path / "short"):
        proc = subprocess.run([sys.executable, "-m", "creditmodel.cli", "serve", "--bundle", str(bundle_dir),
                               "--port", str(free_port()), "--api-key-file", str(path)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "--api-key-file" in proc.stderr
        assert proc.stdout == ""


@pytest.mark.parametrize("args, named", [
    (["--body-timeout", "0"], "--body-timeout"),
    (["--max-body-mb", "nan"], "--max-body-mb"),
    (["--ssl-keyfile", "server.key"], "--ssl-certfile"),
    (["--ssl-certfile", "no-such-cert.pem"], "--ssl-certfile"),
    (["--request-log", "no-such-dir/requests.jsonl"], "--request-log"),
    (["--training-range", "sometimes"], "--training-range"),
    (["--http", "h2"], "--http"),
    (["--loop", "trio"], "--loop"),
])
def test_bad_serve_options_fail_in_one_line(bundle_dir, tmp_path, args, named):
    proc = subprocess.run([sys.executable, "-m", "creditmodel.cli", "serve", "--bundle", str(bundle_dir),
                           "--port", str(free_port()), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and named in proc.stderr, proc.stderr
    assert proc.stdout == ""
    assert not list(tmp_path.glob("creditmodel-serve-*"))  # nothing left behind


def test_a_server_stack_that_is_not_installed_is_one_line(monkeypatch):
    """--http httptools / --loop uvloop name the missing package instead of uvicorn's traceback; auto and the
    pure-Python stack pass through to uvicorn as they are."""
    import argparse
    import importlib.util

    from creditmodel import cli
    from creditmodel.exceptions import ConfigError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvloop" else real(name, *a))
    with pytest.raises(ConfigError, match=r"^--loop uvloop: the package uvloop is not installed"):
        cli._server_stack(argparse.Namespace(http="httptools", loop="uvloop"))
    assert cli._server_stack(argparse.Namespace(http="h11", loop="asyncio")) == {"http": "h11", "loop": "asyncio"}
    assert cli._server_stack(argparse.Namespace(http="auto", loop="auto")) == {"http": "auto", "loop": "auto"}

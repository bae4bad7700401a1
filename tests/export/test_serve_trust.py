"""`creditmodel serve` verifies the bundle's author before it listens, and hands the same trust settings to
every worker process (--trusted-key files, --allow-unsigned)."""

import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest

from creditmodel.export.signing import ENV_TRUSTED_KEYS, generate_keys

from .bundle_tools import resign


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(bundle, *extra, env):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "creditmodel.cli", "serve", "--bundle", str(bundle), "--port",
                             str(port), "--log-level", "warning", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**env, "PYTHONUNBUFFERED": "1"})
    return proc, f"http://127.0.0.1:{port}"


def _wait_healthy(proc, url, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("no healthy server")


def _stop(proc) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


@pytest.fixture
def bundle_copy(demo_run, tmp_path):
    dst = tmp_path / "bundle"
    shutil.copytree(demo_run["result"].bundle_dir, dst)
    return dst


def test_serve_refuses_an_unsigned_bundle_before_listening(bundle_copy):
    (bundle_copy / "manifest.sig").unlink()
    port = _free_port()
    proc = subprocess.run([sys.executable, "-m", "creditmodel.cli", "serve", "--bundle", str(bundle_copy), "--port",
                           str(port)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "manifest.sig is missing: the bundle is unsigned" in lines[0]


def test_workers_get_the_trusted_keys_of_the_command_line(bundle_copy, tmp_path):
    private, public, kid = generate_keys(tmp_path / "keys")
    resign(bundle_copy, private)
    env = {k: v for k, v in os.environ.items() if k != ENV_TRUSTED_KEYS}  # trust comes from the flag alone
    proc, url = _serve(bundle_copy, "--workers", "2", "--trusted-key", str(public), env=env)
    try:
        _wait_healthy(proc, url)
        for _ in range(10):  # requests spread over both workers, each verified the bundle with the flag's key
            assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    finally:
        out = _stop(proc)
    assert "serving model" in out and "Traceback" not in out


def test_allow_unsigned_serves_with_a_warning_on_every_worker(bundle_copy):
    (bundle_copy / "manifest.sig").unlink()
    proc, url = _serve(bundle_copy, "--workers", "2", "--allow-unsigned", env=dict(os.environ))
    try:
        _wait_healthy(proc, url)
    finally:
        out = _stop(proc)
    assert "warning: --allow-unsigned (development only)" in out and "is unsigned" in out
    assert "Traceback" not in out

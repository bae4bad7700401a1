"""Several workers serve one model: the bundle is verified once and pinned as a read-only, content-addressed
copy; a restarted worker loads that copy whatever happens to the source; a worker failing on it keeps
/health at 503; `serve` says "serving" only once it answers, and fails with one line if workers cannot."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import httpx
import pytest

from creditmodel.exceptions import BundleError
from creditmodel.service.workers import Supervisor, WorkerSpec, load_pinned, make_run_dir, pin_bundle, remove_run_dir

from .conftest import free_port, stop_server


def _rewrite(bundle_dir, name, text):
    """Change one file of a bundle and its manifest entry, as an editor with write access could."""
    data = text.encode()
    (bundle_dir / name).write_bytes(data)
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    manifest["files"][name].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (bundle_dir / "manifest.json").write_text(json.dumps(manifest))


def test_pinned_copy_is_content_addressed_and_read_only(bundle_dir, bundle, tmp_path):
    run = make_run_dir()
    try:
        pinned = pin_bundle(bundle_dir, run)
        assert pinned.name == "bundle-" + hashlib.sha256((bundle_dir / "manifest.json").read_bytes()).hexdigest()
        assert sorted(p.name for p in pinned.iterdir()) == sorted(p.name for p in bundle_dir.iterdir())
        assert all(not os.access(p, os.W_OK) or os.geteuid() == 0 for p in pinned.iterdir())
        assert all(p.stat().st_mode & 0o222 == 0 for p in [pinned, *pinned.iterdir()])
        assert load_pinned(pinned).manifest == bundle.manifest
        pinned.chmod(0o755)
        (pinned / "manifest.json").chmod(0o644)
        (pinned / "manifest.json").write_text((pinned / "manifest.json").read_text() + " ")
        with pytest.raises(BundleError, match="does not match its address"):
            load_pinned(pinned)
    finally:
        remove_run_dir(run)
    assert not run.exists()


def _health(url):
    r = httpx.get(f"{url}/health", timeout=5)
    return r.status_code, r.json()


def _wait(url, predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, h = _health(url)
            if predicate(status, h):
                return status, h
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"no such health within {timeout} s: {_health(url)}")


def test_two_workers_keep_serving_one_model(bundle_dir, bundle, tmp_path):
    source = tmp_path / "bundle"
    shutil.copytree(bundle_dir, source)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "creditmodel.cli", "serve", "--bundle", str(source), "--port",
                             str(port), "--workers", "2", "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_path)})
    url = f"http://127.0.0.1:{port}"
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving model "), line
        status, h = _health(url)  # "serving" is printed only once every worker answers: no retry needed
        assert status == 200 and h["status"] == "ok"
        model = h["model"]
        assert model == bundle.manifest["files"]["model.txt"]["sha256"][:12]
        assert [w["state"] for w in h["workers"]] == ["ok", "ok"] and len({w["pid"] for w in h["workers"]}) == 2

        # a different (and validly hashed) model appears at the source; a worker restarts
        _rewrite(source, "model.txt", (source / "model.txt").read_text().replace("shrinkage=", "shrinkage=0", 1))
        victim = h["workers"][0]["pid"]
        os.kill(victim, signal.SIGKILL)
        status, h = _wait(url, lambda s, h: s == 200 and victim not in {w["pid"] for w in h["workers"]})
        assert h["model"] == model and {w["model"] for w in h["workers"]} == {model}
        assert h["workers"][0]["restarts"] == 1
        for _ in range(8):  # whichever worker answers: the same model
            assert httpx.get(f"{url}/v1/model").json()["model"] == model

        # the pinned copy itself goes bad (someone with root): the restarted worker fails, again and again
        (pinned,) = list(tmp_path.glob("creditmodel-serve-*/bundle-*"))
        pinned.chmod(0o755)
        (pinned / "manifest.json").chmod(0o644)
        (pinned / "manifest.json").write_text((pinned / "manifest.json").read_text() + "\n")
        victim = h["workers"][1]["pid"]
        os.kill(victim, signal.SIGKILL)
        status, h = _wait(url, lambda s, h: h["workers"][1].get("restarts", 0) >= 3, timeout=150)
        assert status == 503 and h["status"] == "failing"
        assert h["workers"][1]["state"] != "ok" and "does not match its address" in h["workers"][1]["error"]
        assert h["workers"][0]["state"] == "ok"
    finally:
        stop_server(proc)
    assert proc.returncode == 0
    assert not list(tmp_path.glob("creditmodel-serve-*"))  # the run directory is removed on exit


def test_workers_that_cannot_start_fail_in_one_line(bundle_dir, bundle, tmp_path):
    from creditmodel.service.app import listening_socket, model_id

    run = make_run_dir()
    sock = listening_socket("127.0.0.1", free_port())
    try:
        pinned = pin_bundle(bundle_dir, run)
        pinned.chmod(0o755)
        (pinned / "calibration.json").chmod(0o644)
        (pinned / "calibration.json").write_text("{}")
        spec = WorkerSpec(run_dir=str(run), bundle_dir=str(pinned), workers=2, model=model_id(bundle),
                          pricing=None, uvicorn_options={"log_level": "warning"})
        ready = []
        with pytest.raises(BundleError) as exc:
            Supervisor(spec, sock, startup_timeout=120).run(lambda: ready.append(1))
        message = str(exc.value)
        assert "could not start" in message and "calibration.json" in message and "\n" not in message
        assert not ready
    finally:
        sock.close()
        remove_run_dir(run)


def test_the_start_up_heap_is_frozen_before_the_first_request():
    """A served process moves its start-up objects out of the garbage collector's reach (a full collection
    over them paused a request for hundreds of ms), and still collects what requests leave behind."""
    import gc
    import socket
    import threading

    import uvicorn

    from creditmodel.service.workers import started_server

    seen: list[int] = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    started = threading.Event()

    def on_started(server):
        seen.append(gc.get_freeze_count())
        started.set()

    server = started_server(uvicorn.Config(app, log_level="warning"), on_started)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    try:
        gc.unfreeze()
        thread.start()
        assert started.wait(60)
        assert seen[0] > 1000  # the interpreter's, pytest's and the libraries' objects at least
        cycle: list = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # request garbage is still collected
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        gc.unfreeze()


def test_a_helper_whose_service_stopped_while_it_started_exits_without_a_traceback(tmp_path):
    # the helper for large bodies is spawned by a worker; when the service stops meanwhile, its pinned bundle
    # is removed before the helper has loaded it. The helper then ends quietly instead of printing
    # "Exception in initializer" and a traceback under the service's last lines.
    reached = tmp_path / "raised"
    script = f"""
import os, time
import creditmodel.export.bundle as b
import creditmodel.service.app as app
from creditmodel.exceptions import BundleError
worker = os.getpid()
if os.fork():
    os._exit(0)  # the worker ends, as at a service's stop
def removed(*args, **kwargs):
    while os.getppid() == worker:
        time.sleep(0.01)
    raise BundleError("bundle directory does not exist")
b.load_bundle = removed
try:
    app._helper_init({{"parent_pid": worker, "bundle_dir": {str(tmp_path / 'gone')!r}, "load_options": {{}},
                      "manifest": {{}}}})
finally:
    open({str(reached)!r}, "w").write("the error went on")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    time.sleep(1.5)  # the helper (the forked child) sees its worker gone within 10 ms
    assert not reached.exists()

"""One verified model for every worker process of ``creditmodel serve``.

At start the service copies the bundle's bytes once into a private run directory, as
``bundle-<sha256 of manifest.json>`` with read-only files (:func:`pin_bundle`), and verifies that
copy with ``load_bundle``. Every worker process, every worker restarted later and every helper
process for large requests loads that copy and first checks that its manifest still hashes to
the directory's name (:func:`load_pinned`); the manifest lists the SHA-256 of every other file,
so one hash fixes the whole bundle. Editing or replacing the source bundle after start changes
nothing that is served.

Health across processes: each worker owns one status file ``workers/<slot>.json`` (state,
pid, model id, error) and touches it every second from its event loop. The supervisor (the
``serve`` process) records a worker's death there and restarts it with a growing back-off.
``/health`` in any worker reads all slots and is ok only when every slot holds a live worker
that started the same model and beat within :data:`STALE_S` seconds; so a worker crash-looping
on a broken copy keeps ``/health`` at 503 for as long as it fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from creditmodel.exceptions import BundleError, ConfigError
from creditmodel.outputs import write_atomically

HEARTBEAT_S = 1.0
STALE_S = 5.0  # a worker whose status is older than this is not answering
STARTUP_TIMEOUT_S = 180.0
MAX_BACKOFF_S = 10.0
EXIT_STARTUP_FAILED = 3
PIN_PREFIX = "bundle-"


# --- the pinned copy ------------------------------------------------------------------------------


def make_run_dir() -> Path:
    """A private directory for one `serve` (pinned bundle, worker status), removed by remove_run_dir."""
    return Path(tempfile.mkdtemp(prefix="creditmodel-serve-"))


def remove_run_dir(run_dir: Path) -> None:
    def writable(func: Callable[..., Any], path: str, _exc: Any) -> None:
        os.chmod(os.path.dirname(path), stat.S_IRWXU)
        func(path)

    shutil.rmtree(run_dir, onerror=writable)


def pin_bundle(source: str | os.PathLike, run_dir: Path) -> Path:
    """Copy the bundle's files into ``run_dir/bundle-<manifest sha256>``, read-only; return that path.

    Only the copy is verified (by the caller, with load_bundle) and served, so a change to the
    source between reading and verifying cannot slip in.
    """
    source = Path(source)
    if not source.is_dir():
        raise BundleError.of("error.bundle.dir_missing", path=source)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=run_dir))
    for entry in sorted(source.iterdir()):
        if not entry.is_file():
            raise BundleError.of("error.workers.not_a_file", path=source, name=entry.name)
        (staging / entry.name).write_bytes(entry.read_bytes())
    if not (staging / "manifest.json").is_file():
        raise BundleError.of("error.bundle.manifest_missing", path=source)
    pinned = run_dir / (PIN_PREFIX + manifest_sha256(staging))
    os.replace(staging, pinned)
    for f in pinned.iterdir():
        f.chmod(0o444)
    pinned.chmod(0o555)
    return pinned


def manifest_sha256(bundle_dir: str | os.PathLike) -> str:
    return hashlib.sha256((Path(bundle_dir) / "manifest.json").read_bytes()).hexdigest()


def load_pinned(pinned: str | os.PathLike, load_options: dict[str, Any] | None = None) -> Any:
    """Load a pinned copy after checking that its manifest still hashes to the directory's name."""
    from creditmodel.export.bundle import load_bundle

    pinned = Path(pinned)
    expected = pinned.name.removeprefix(PIN_PREFIX)
    try:
        found = manifest_sha256(pinned)
    except OSError as exc:
        raise BundleError.of("error.workers.manifest_unreadable", name=pinned.name, detail=exc.strerror) from None
    if found != expected:
        raise BundleError.of("error.workers.pin_changed", name=pinned.name, found=found[:12], expected=expected[:12])
    return load_bundle(pinned, **(load_options or {}))


# --- worker status --------------------------------------------------------------------------------


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, (BundleError, ConfigError)) else f"{type(exc).__name__}: {text}"


class WorkerStatus:
    """The status file of one worker slot, written atomically; its mtime is the heartbeat."""

    def __init__(self, run_dir: str | os.PathLike, slot: int):
        self.path = Path(run_dir) / "workers" / f"{slot}.json"
        self.slot = slot

    def write(self, state: str, **info: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"slot": self.slot, "state": state, "pid": info.pop("pid", os.getpid()), "since": time.time(), **info}
        write_atomically(self.path, json.dumps(record))

    def read(self) -> dict[str, Any] | None:
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
            record["age"] = time.time() - self.path.stat().st_mtime
        except (OSError, ValueError):
            return None
        return record

    def beat(self) -> None:
        try:
            os.utime(self.path)
        except OSError:
            pass


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


class WorkerBoard:
    """What /health reports when several workers serve: ok only if every slot is a live worker of `model`."""

    def __init__(self, run_dir: str | os.PathLike, workers: int, model: str):
        self.slots = [WorkerStatus(run_dir, i) for i in range(workers)]
        self.model = model

    def check(self) -> tuple[bool, list[dict[str, Any]]]:
        ok, out = True, []
        for status in self.slots:
            r = status.read() or {"slot": status.slot, "state": "starting"}
            state = r.get("state")
            if state == "ok" and not _alive(r.get("pid")):
                state = "dead"
            elif state == "ok" and r.get("age", 0) > STALE_S:
                state = "not responding"
            elif state == "ok" and r.get("model") != self.model:
                state = "other model"
            item = {"slot": status.slot, "pid": r.get("pid"), "state": state, "model": r.get("model"),
                    "restarts": r.get("restarts", 0)}
            if r.get("error"):
                item["error"] = r["error"]
            out.append(item)
            ok &= state == "ok"
        return ok, out


class SingleProcess:
    """/health of a service running in one process: this process is the only worker."""

    def __init__(self, model: str):
        self.model = model

    def check(self) -> tuple[bool, list[dict[str, Any]]]:
        return True, [{"slot": 0, "pid": os.getpid(), "state": "ok", "model": self.model, "restarts": 0}]


# --- worker processes -----------------------------------------------------------------------------


@dataclass
class WorkerSpec:
    """Everything a worker process needs; pickled to it by multiprocessing (spawn)."""

    run_dir: str
    bundle_dir: str  # the pinned copy
    workers: int
    model: str
    pricing: Any
    uvicorn_options: dict[str, Any]
    app_options: dict[str, Any] = field(default_factory=dict)
    load_options: dict[str, Any] = field(default_factory=dict)
    parent_pid: int = 0
    slot: int = 0


def freeze_heap() -> None:
    """Move everything the start-up allocated (the bundle, models, imported libraries: ~180k objects) out of
    the garbage collector's reach. Otherwise a full collection now and then walks all of it while a request
    waits (measured: one per few thousand requests, hundreds of ms under load); after this, collections
    see only what requests allocate. Collected first, so that start-up garbage is freed, not frozen."""
    import gc

    gc.collect()
    gc.freeze()


def started_server(config: Any, on_started: Callable[[Any], None]) -> Any:
    """A uvicorn Server that calls `on_started(server)` once it accepts connections, its start-up heap
    frozen (freeze_heap) before the first request."""
    import uvicorn

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            freeze_heap()
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit:
                on_started(self)

    return _Server(config)


def worker_main(spec: WorkerSpec, sock: socket.socket) -> None:
    """Entry point of one worker process: load the pinned bundle, serve on the shared socket."""
    import asyncio

    import uvicorn

    from creditmodel.service.app import create_app

    status = WorkerStatus(spec.run_dir, spec.slot)
    previous = status.read() or {}
    restarts = previous.get("restarts", 0)
    status.write("starting", restarts=restarts, **({"error": previous["error"]} if previous.get("error") else {}))
    try:
        bundle = load_pinned(spec.bundle_dir, spec.load_options)
        app = create_app(bundle, spec.pricing, health=WorkerBoard(spec.run_dir, spec.workers, spec.model),
                         load_options=spec.load_options, **spec.app_options)
        from creditmodel.service.app import model_id

        if model_id(bundle) != spec.model:
            raise BundleError.of("error.workers.other_model", slot=spec.slot, model=model_id(bundle),
                                 expected=spec.model)
        config = uvicorn.Config(app, **spec.uvicorn_options)
        config.load()
    except BaseException as exc:  # noqa: BLE001 - recorded for /health and the supervisor, then exit
        status.write("failed", error=one_line(exc), restarts=restarts)
        sys.exit(EXIT_STARTUP_FAILED)

    def on_started(server: Any) -> None:
        status.write("ok", model=spec.model, restarts=restarts)

        async def heartbeat() -> None:
            while not server.should_exit:
                status.beat()
                if spec.parent_pid and os.getppid() != spec.parent_pid:  # the supervisor is gone
                    server.should_exit = True
                await asyncio.sleep(HEARTBEAT_S)

        server._heartbeat = asyncio.get_running_loop().create_task(heartbeat())

    started_server(config, on_started).run(sockets=[sock])


class Supervisor:
    """Starts `spec.workers` worker processes on one socket, restarts those that die, stops them all."""

    def __init__(self, spec: WorkerSpec, sock: socket.socket, *, startup_timeout: float = STARTUP_TIMEOUT_S):
        import multiprocessing

        self.spec, self.sock = spec, sock
        self.ctx = multiprocessing.get_context("spawn")
        self.procs: list[Any] = [None] * spec.workers
        self.failures = [0] * spec.workers
        self.restart_at: list[float | None] = [None] * spec.workers
        self.startup_timeout = startup_timeout
        self.stop = False

    def _start(self, slot: int) -> None:
        spec = WorkerSpec(**{**self.spec.__dict__, "slot": slot, "parent_pid": os.getpid()})
        proc = self.ctx.Process(target=worker_main, args=(spec, self.sock), name=f"creditmodel-worker-{slot}")
        proc.start()
        self.procs[slot] = proc

    def _died(self, slot: int, proc: Any) -> None:
        status = WorkerStatus(self.spec.run_dir, slot)
        record = status.read() or {}
        self.failures[slot] += 1
        error = record.get("error") if record.get("state") == "failed" else None
        status.write("failed", pid=proc.pid, restarts=record.get("restarts", 0) + 1,
                     error=error or f"worker exited with code {proc.exitcode}")
        self.restart_at[slot] = time.monotonic() + min(0.5 * 2 ** (self.failures[slot] - 1), MAX_BACKOFF_S)
        self.procs[slot] = None

    def run(self, on_ready: Callable[[], None]) -> None:
        """Serve until SIGINT/SIGTERM. Raise BundleError/ConfigError (one line) if the workers cannot start."""
        previous = {s: signal.signal(s, self._signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for slot in range(self.spec.workers):
                self._start(slot)
            deadline, ready = time.monotonic() + self.startup_timeout, False
            board = WorkerBoard(self.spec.run_dir, self.spec.workers, self.spec.model)
            while not self.stop:
                for slot, proc in enumerate(self.procs):
                    if proc is not None and not proc.is_alive():
                        proc.join()
                        if not ready:
                            record = WorkerStatus(self.spec.run_dir, slot).read() or {}
                            if record.get("error"):
                                raise BundleError.of("error.workers.start_failed", slot=slot,
                                                     detail=record["error"])
                            raise BundleError.of("error.workers.start_exited", slot=slot, code=proc.exitcode)
                        self._died(slot, proc)
                    at = self.restart_at[slot]
                    if proc is None and at is not None and time.monotonic() >= at and not self.stop:
                        self.restart_at[slot] = None
                        self._start(slot)
                if not ready:
                    if board.check()[0]:
                        ready = True
                        on_ready()
                    elif time.monotonic() > deadline:
                        raise ConfigError.of("error.workers.start_timeout", n=self.spec.workers,
                                             seconds=self.startup_timeout)
                else:
                    for slot in range(self.spec.workers):  # a worker up for 30 s resets its back-off
                        r = WorkerStatus(self.spec.run_dir, slot).read() if self.failures[slot] else None
                        if r and r.get("state") == "ok" and r.get("since", 0) < time.time() - 30:
                            self.failures[slot] = 0
                time.sleep(0.1)
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            self.shutdown()

    def _signal(self, signum: int, _frame: Any) -> None:
        self.stop = True

    def shutdown(self, timeout: float = 15.0) -> None:
        for proc in self.procs:
            if proc is not None and proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            if proc is not None:
                proc.join(max(0.0, deadline - time.monotonic()))
                if proc.is_alive():
                    proc.kill()
                    proc.join()

"""The service's scoring log: every scored application (model id, time, path, id, features, PD, grade)
appended as one JSON line to rotated part files under a directory, for monitoring the live traffic
(``creditmodel monitor --scoring-log DIR``: PSI of the PDs the service answered).

It never blocks or fails a request: the request thread only puts one item on a bounded queue
(a full queue drops the item and counts it); a background thread turns items into lines and appends
them, opening the current part for each batch, so a directory that disappears, fills up or becomes
unwritable is noticed at the next batch. Failures are counted, logged (one warning per distinct
error) and shown by :meth:`ScoringLog.state`, which /health reports; writing resumes by itself once
the directory is usable again. Each process (worker, helper of large bodies) writes its own parts,
``scores-<UTC start>-<pid>-<n>.jsonl``, a new part once the current one reaches ``max_bytes``.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from creditmodel.exceptions import ConfigError

__all__ = ["CollectedScores", "ScoringLog", "read_scoring_log"]

log = logging.getLogger(__name__)

MAX_BYTES = 64 * 2**20
QUEUE_ITEMS = 10_000  # requests waiting to be written; beyond that, items are dropped and counted
_STOP = object()


class ScoringLog:
    """Asynchronous, rotated JSONL log of scored applications under ``directory`` (see the module)."""

    def __init__(self, directory: str | os.PathLike, *, max_bytes: int = MAX_BYTES, queue_items: int = QUEUE_ITEMS):
        if max_bytes < 1 or queue_items < 1:
            raise ConfigError.of("error.scoring_log.limits", max_bytes=max_bytes, queue_items=queue_items)
        self.directory = Path(directory)
        self.max_bytes, self.queue_items = int(max_bytes), int(queue_items)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=self.queue_items)
        self._lock = threading.Lock()
        self.written = self.dropped = self.failed = 0
        self.last_error: str | None = None
        self._failing = False
        self._part: Path | None = None
        self._parts = 0
        self._started = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def __reduce__(self) -> tuple[Any, ...]:  # a worker or helper process writes its own parts
        return _scoring_log, (str(self.directory), self.max_bytes, self.queue_items)

    def check(self) -> None:
        """At start-up: the directory exists or can be created, and a file can be written in it."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError.of("error.scoring_log.not_writable", path=self.directory,
                                 detail=exc.strerror or str(exc)) from None

    # --- the request side: O(1), never raises ----------------------------------------------------

    def submit(self, model: str, path: str, ids: list[Any], names: list[str], keys: list[str],
               rows: list[dict[str, Any]], pd_: np.ndarray, grades: Any) -> None:
        """Queue one request's scored applications; dropped (and counted) when the queue is full."""
        try:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._start()
            item = (datetime.now(timezone.utc).isoformat(timespec="milliseconds"), model, path, ids, names, keys,
                    rows, np.asarray(pd_, dtype=np.float64).tolist(), [str(g) for g in grades])
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.dropped += len(ids)
        except Exception as exc:  # noqa: BLE001 - the log must never fail a request
            self._fail(len(ids), f"{type(exc).__name__}: {exc}")

    def state(self) -> dict[str, Any]:
        """What /health shows: ok or failing (the last batch could not be written), counts, last error."""
        with self._lock:
            return {"state": "failing" if self._failing else "ok", "directory": str(self.directory),
                    "pid": os.getpid(), "written": self.written, "dropped": self.dropped, "failed": self.failed,
                    "queued": self._queue.qsize(), "last_error": self.last_error}

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued item has been written or has failed (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is not None and self._thread.is_alive():
            self.flush(timeout)
            try:
                self._queue.put_nowait(_STOP)
            except queue.Full:
                pass
            self._thread.join(timeout)

    # --- the writer thread ------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._pid != os.getpid():  # forked: a fresh queue and counters for this process
                self.__init__(self.directory, max_bytes=self.max_bytes, queue_items=self.queue_items)  # type: ignore[misc]
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True, name="scoring-log")
                self._thread.start()

    def _fail(self, n: int, message: str) -> None:
        with self._lock:
            self.failed += n
            self._failing = True
            new = message != self.last_error
            self.last_error = message
        if new:
            log.warning("scoring log %s: %s (scoring goes on; %d applications not logged so far)",
                        self.directory, message, self.failed)

    def _lines(self, item: tuple[Any, ...]) -> bytes:
        t, model, path, ids, names, keys, rows, pds, grades = item
        out = []
        for i, row in enumerate(rows):
            features = {n: _plain(row.get(k)) for n, k in zip(names, keys)}
            out.append(json.dumps({"time": t, "model": model, "path": path, "id": ids[i], "pd": pds[i],
                                   "grade": grades[i], "features": features}, separators=(",", ":"),
                                  ensure_ascii=False, allow_nan=False, default=str))
        return ("\n".join(out) + "\n").encode("utf-8")

    def _target(self) -> Path:
        if self._part is None or not self._part.exists() or self._part.stat().st_size >= self.max_bytes:
            self._parts += 1
            self._part = self.directory / f"scores-{self._started}-{os.getpid()}-{self._parts:04d}.jsonl"
        return self._part

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                batch = [item]
                while len(batch) < 256:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        self._queue.put(_STOP)
                        self._queue.task_done()
                        break
                    batch.append(nxt)
                n = sum(len(b[3]) for b in batch)
                try:
                    data = b"".join(self._lines(b) for b in batch)
                    self.directory.mkdir(parents=True, exist_ok=True)
                    fd = os.open(self._target(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                    try:
                        view = memoryview(data)
                        while view:
                            done = os.write(fd, view)
                            view = view[done:]
                    finally:
                        os.close(fd)
                except Exception as exc:  # noqa: BLE001 - disk full, permissions, a file where the directory was
                    self._fail(n, f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}")
                else:
                    with self._lock:
                        self.written += n
                        self._failing = False
                finally:
                    for _ in batch[1:]:
                        self._queue.task_done()
            finally:
                self._queue.task_done()


class CollectedScores:
    """Stands in for the scoring log in the helper process of large bodies: it keeps what the helper
    scored, which goes back with the answer to the worker, whose own log appends it."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, ...]] = []

    def submit(self, *args: Any) -> None:
        self.items.append(args)

    def take(self) -> list[tuple[Any, ...]]:
        items, self.items = self.items, []
        return items


def _scoring_log(directory: str, max_bytes: int, queue_items: int) -> ScoringLog:
    return ScoringLog(directory, max_bytes=max_bytes, queue_items=queue_items)


def _plain(v: Any) -> Any:
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if hasattr(v, "value") and not isinstance(v, (str, int, float)):  # enums of the request models
        return v.value
    return v


def read_scoring_log(directory: str | os.PathLike, model: str | None = None) -> list[dict[str, Any]]:
    """The records of a scoring log directory (every ``*.jsonl`` part, in name order), of ``model`` only
    when given. A torn last line of a part (a write cut short by a full disk) is skipped; any other
    line that is not a record is a one-line ConfigError naming the part and the line."""
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError.of("error.scoring_log.not_directory", path=d)
    out = []
    for part in sorted(d.glob("*.jsonl")):
        data = part.read_bytes()  # one snapshot: a live log grows while it is read
        lines = data.split(b"\n")
        last = len(lines) - 1 if lines and lines[-1] == b"" else len(lines)
        for no, raw in enumerate(lines[:last], start=1):
            try:
                rec = json.loads(raw)
                ok = isinstance(rec, dict) and isinstance(rec.get("pd"), (int, float)) and "model" in rec
            except (json.JSONDecodeError, UnicodeDecodeError):
                ok = False
            if not ok:
                if no == last and not data.endswith(b"\n"):
                    continue  # torn final line
                raise ConfigError.of("error.scoring_log.bad_record", part=part.name, line=no)
            if model is None or rec["model"] == model:
                out.append(rec)
    return out

"""SIGTERM as an exception, so a terminated run unwinds like a failed one: its MLflow run ends KILLED,
its registry changes are rolled back and its staging files are removed.

Python's default SIGTERM action ends the process at once, running no `finally` and no `except`.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


class Terminated(BaseException):
    """The process received SIGTERM. A BaseException, like KeyboardInterrupt, so that no library's
    `except Exception` swallows it."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(f"terminated by signal {signal.Signals(signum).name}")
        self.signum = signum
        self.signal_name = signal.Signals(signum).name


_deferred = {"depth": 0, "pending": False}


def end_with_parent(parent: int, every: float = 1.0) -> None:
    """In a worker process: end it (``os._exit(0)``) once `parent` is no longer its parent, however the parent
    ended, a SIGKILL included. A worker must never outlive the run or service that started it: an orphan
    waits forever on locks its parent held and keeps its parent's pipes open. Watched from a daemon thread,
    every `every` seconds; a parent already gone ends the worker at once."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(0)

    if os.getppid() != parent:
        os._exit(0)
    threading.Thread(target=watch, daemon=True, name="end-with-parent").start()


@contextmanager
def sigterm_deferred() -> Iterator[None]:
    """A step that must not be cut in two (put the outputs in place, register, end the run): a SIGTERM
    that arrives meanwhile is held, and the step completes; the process then exits normally.

    A step does not begin once a SIGTERM has been received (see `raise_if_terminated`)."""
    raise_if_terminated()
    _deferred["depth"] += 1
    try:
        yield
    finally:
        _deferred["depth"] -= 1
        if not _deferred["depth"] and _deferred["pending"]:
            _deferred["pending"] = False
            log.warning("SIGTERM arrived during a step that cannot be cut in two; the step was completed first")


def terminating() -> bool:
    """Whether a SIGTERM has been turned into `Terminated` in the current `sigterm_raises` block."""
    return _fired["value"]


_fired = {"value": False}


def raise_if_terminated() -> None:
    """Raise `Terminated` if a SIGTERM was received in the current `sigterm_raises` block.

    The handler's exception is lost when the signal lands in code whose exceptions Python only prints:
    an at-fork callback (logging's, when a process pool forks), a `__del__`, a weakref callback. The
    signal is still recorded, and the run stops at its next checkpoint instead of completing."""
    if _fired["value"] and threading.current_thread() is threading.main_thread():
        raise Terminated()


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Inside the block, the first SIGTERM raises `Terminated`; later ones are ignored while the code
    unwinds, so that its clean-up is not cut short. Outside the main thread this does nothing (Python
    delivers signals to the main thread only).

    Some C extensions turn the exception into their own (DuckDB raises "Query interrupted"): any
    exception leaving the block after a SIGTERM leaves it as `Terminated`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if _deferred["depth"]:
            _deferred["pending"] = True
            return
        if _fired["value"]:
            return
        _fired["value"] = True
        raise Terminated(signum)

    outer = _fired["value"]
    _fired["value"] = False
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
        raise_if_terminated()  # the block completed although a SIGTERM came: its exception was lost
    except Terminated:
        raise
    except BaseException as exc:
        if _fired["value"]:
            raise Terminated() from exc
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        _fired["value"] = outer


def terminate_as_exception(func: F) -> F:
    """Decorator: run `func` inside `sigterm_raises()`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with sigterm_raises():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

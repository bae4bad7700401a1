"""Scheduling priority of a run's helper threads: the step a run waits on keeps its core.

A monitoring run keeps its catalogue query, the step every other waits for, on the thread that started
the run, and does what can wait (scoring and explaining a finished chunk, the year-end books, the
triggers' events) in helper threads. On two cores the helpers would otherwise take turns with the
query; a lower priority lets them use the core the query leaves, and only that. Linux gives each
thread its own priority; elsewhere, and where the system refuses, the threads run as they are.
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["BACKGROUND_NICENESS", "lower_thread_priority"]

BACKGROUND_NICENESS = 10  # added to a helper thread's niceness (0-19 on Linux; higher yields more)


def lower_thread_priority(step: int = BACKGROUND_NICENESS) -> None:
    """Lower the calling thread's scheduling priority by ``step`` (Linux only; a no-op elsewhere or when
    refused). Meant as a ``ThreadPoolExecutor`` initializer: the pool's threads are the ones lowered."""
    if not sys.platform.startswith("linux") or step <= 0:
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(os.getpriority(os.PRIO_PROCESS, tid) + int(step), 19))
    except OSError:  # a sandbox may refuse; priorities change speed, never results
        pass

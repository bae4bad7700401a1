"""A run's helper threads yield their core to the thread the run waits on (Linux), and only they do."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from creditmodel.priority import BACKGROUND_NICENESS, lower_thread_priority


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_a_pool_started_with_it_runs_lower_and_the_caller_keeps_its_own():
    before = _niceness()
    with ThreadPoolExecutor(max_workers=1, initializer=lower_thread_priority) as pool:
        helper = pool.submit(_niceness).result()
    assert helper == min(before + BACKGROUND_NICENESS, 19)
    assert _niceness() == before  # the calling thread, and so the process's next threads, are untouched
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(_niceness).result() == before


def test_no_step_and_elsewhere_change_nothing(monkeypatch):
    before = _niceness() if sys.platform.startswith("linux") else None
    lower_thread_priority(0)
    monkeypatch.setattr(sys, "platform", "darwin")
    lower_thread_priority()
    if before is not None:
        assert _niceness() == before

"""A batch command's process keeps the memory it frees (creditmodel.memory); the service does not."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import creditmodel.cli as cli
from creditmodel.memory import keep_freed_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator: Linux")

# in a process of its own (the test process keeps its allocator as it is): 20 NumPy arrays of 16 MiB, each
# written, then all freed; the resident memory before and after the free, and NumPy's huge-page switch
_PROBE = """
import json, sys
from creditmodel.memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "kept" else None
import numpy as np
from numpy._core import multiarray

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

arrays = [np.ones(2 << 20) for _ in range(20)]
held = rss()
del arrays
print(json.dumps({"kept": kept, "held": held, "after": rss(), "huge": multiarray._get_madvise_hugepage()}))
"""


def _probe(mode: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_batch_process_keeps_what_it_frees_where_glibc_would_give_it_back():
    default, kept = _probe("default"), _probe("kept")
    assert kept["kept"] is True
    # glibc maps each 16 MiB block apart and unmaps it when freed: the 320 MiB go back to the system
    assert default["held"] - default["after"] > 250
    # kept: the blocks came from the heap, which is not trimmed, so the next buffers reuse them unfaulted
    assert kept["held"] - kept["after"] < 10
    assert kept["held"] > 320  # the arrays were written, so they were resident before the free
    assert default["huge"] is True and kept["huge"] is False


def test_the_executable_keeps_memory_for_a_batch_command_and_not_for_the_service(monkeypatch, tmp_path):
    calls: list[str] = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append("kept") or True)
    assert cli.main(["data", "dictionary", "--out", str(tmp_path / "d.toml")], own_process=True) == 0
    assert calls == ["kept"]
    assert cli.main(["data", "dictionary", "--out", str(tmp_path / "e.toml")]) == 0  # in a caller's process: not
    assert calls == ["kept"]
    monkeypatch.setattr(cli, "_cmd_serve", lambda args: None)  # parsed as serve, not started
    assert cli.main(["serve", "--bundle", str(tmp_path)], own_process=True) == 0
    assert calls == ["kept"]


def test_keeping_memory_elsewhere_than_linux_is_left_alone(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False

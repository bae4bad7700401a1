"""SIGTERM as an exception (creditmodel.signals), when the handler's exception is lost.

Python only prints an exception raised in a `__del__`, a weakref callback or an at-fork callback. A
SIGTERM that lands there (logging's at-fork callback, when the report's figure pool forks) used to be
lost: the run went on, registered its model and exited 0."""

import os
import signal
import sys
import threading

import pytest

from creditmodel.signals import Terminated, raise_if_terminated, sigterm_deferred, sigterm_raises

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signals reach the main thread only")


class _SignalInDel:
    """Sends SIGTERM to this process from its finaliser and lets the handler run there."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10_000):  # the handler runs at the next bytecode check, inside __del__
            pass


def _lose_a_sigterm() -> None:
    obj = _SignalInDel()
    del obj  # the handler raises inside __del__; Python prints "Exception ignored" and goes on


def test_a_lost_sigterm_still_ends_the_block_as_terminated(monkeypatch):
    lost = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: lost.append(u.exc_type))
    reached = []
    with pytest.raises(Terminated):
        with sigterm_raises():
            _lose_a_sigterm()
            reached.append("after")  # the lost exception does not stop the code here...
    assert reached == ["after"]  # ...but the block ends as terminated instead of completing
    assert lost == [Terminated]  # the handler did raise, where Python could only print it


def test_no_uncuttable_step_begins_after_a_lost_sigterm():
    done = []
    with pytest.raises(Terminated):
        with sigterm_raises():
            _lose_a_sigterm()
            with sigterm_deferred():
                done.append("commit")
    assert done == []


def test_checkpoint_raises_only_after_a_sigterm():
    with sigterm_raises():
        raise_if_terminated()  # nothing received: nothing raised
    with pytest.raises(Terminated):
        with sigterm_raises():
            _lose_a_sigterm()
            raise_if_terminated()
            pytest.fail("the checkpoint let the code go on")


def test_a_sigterm_during_an_uncuttable_step_is_held_and_the_step_completes():
    done = []
    with sigterm_raises():
        with sigterm_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10_000):
                pass
            done.append("commit")
    assert done == ["commit"]


_ORPHAN_PROBE = """
import os, sys, time
from pathlib import Path
from creditmodel.validation.suite import Figures

out = Path(sys.argv[1])

class Slow:
    def __init__(self, i):
        self.i = i
    def save(self, path):
        time.sleep(60)

def slow(i):
    (out / f"{os.getpid()}.pid").write_text(str(i))
    return Slow(i)

figures = Figures(workers=2)
for i in range(4):
    figures.draw(slow, i, path=out / f"{i}.png")
figures.render()
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the figure workers fork")
def test_figure_workers_end_with_a_run_that_is_killed(tmp_path):
    """A run killed while its figures are drawn (SIGKILL: nothing of it unwinds) leaves no drawing worker
    behind: each ends within a second, where it had waited forever on the pool's queue, holding the run's
    output pipe open."""
    import subprocess
    import time

    run = subprocess.Popen([sys.executable, "-c", _ORPHAN_PROBE, str(tmp_path)])
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("*.pid"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = [int(p.stem) for p in tmp_path.glob("*.pid")]
    assert len(workers) == 2 and all(_alive(w) for w in workers)
    run.kill()
    run.wait()
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [w for w in workers if _alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert not left, f"drawing workers {left} outlived the killed run"

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

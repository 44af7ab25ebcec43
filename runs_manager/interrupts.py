"""Holding back Ctrl-C, hang-ups and kill requests while a change is half made."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator, List

from runs_manager.errors import Interrupted

_HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Deferred:
    def __init__(self) -> None:
        self.received: List[int] = []

    def check(self) -> None:
        """Raise Interrupted now if a signal arrived (to undo rather than finish)."""
        if self.received:
            raise Interrupted(self.received[0])


@contextlib.contextmanager
def deferred() -> Iterator[Deferred]:
    """Signals that arrive inside the block are acted on when it ends.

    A change to the database and the run's files is short; stopping half-way would leave
    work for the next command's recovery, so finish (or roll back) first, then stop.
    """
    state = Deferred()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def hold(signum: int, frame: Any) -> None:
        state.received.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in _HELD}
    try:
        yield state
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    state.check()

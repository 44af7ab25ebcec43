"""Regular expressions given by the user, matched against whole run names."""
from __future__ import annotations

import contextlib
import re
import signal
import threading
import warnings
from typing import Iterable, Iterator, List, Optional

from runs_manager.errors import RunsError

# Python's re cannot be bounded, but it checks for signals while it backtracks, so a
# timer turns a catastrophic pattern such as (a+)+$ into an error instead of a hang.
TIME_LIMIT = 2.0


class _TooSlow(Exception):
    pass


def compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarnings about possible nested sets
            return re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as e:
        message = e.msg if isinstance(e, re.error) else str(e)  # str(re.error) may span lines
        raise RunsError(f"invalid regular expression {pattern!r}: {message}") from None


def matching(pattern: Optional[str], names: Iterable[str]) -> List[str]:
    """The names that ``pattern`` matches in full (all of them when there is no pattern)."""
    if pattern is None:
        return list(names)
    regex = compile_pattern(pattern)
    with _time_limit(TIME_LIMIT):
        try:
            return [name for name in names if regex.fullmatch(name)]
        except _TooSlow:
            raise RunsError(
                f"regular expression {pattern!r} takes too long to match (nested repetition such as (a+)+?)"
            ) from None


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread; callers elsewhere get no limit
        return

    def expire(signum: int, frame: object) -> None:
        raise _TooSlow

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

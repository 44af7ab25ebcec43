"""Named points on the write path where a test can make `runs` die (RUNS_CRASH_AT=point).

A process killed at each of these must leave the database parseable, every earlier run
intact, and either a whole new run or nothing. Unset, a point costs one dict lookup.
"""
from __future__ import annotations

import os
import signal

POINTS = (
    "new:journal-written",
    "new:patch-written",
    "new:dirs-created",
    "new:session-started",
    "queue:session-started",
    "sweep:recorded",
    "snapshot:made",
    "append:journal-written",
    "append:torn",
    "append:written",
    "index:written",
    "delete:files-moved",
    "mv:files-moved",
    "atomic-write:temp-written",
    "index:rebuilding",
)


def armed(point: str) -> bool:
    return os.environ.get("RUNS_CRASH_AT") == point


def point(name: str) -> None:
    if armed(name):
        os.kill(os.getpid(), signal.SIGKILL)

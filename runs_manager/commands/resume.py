"""`runs resume [PATTERN]`: start the queued runs that fit now.

The supervisor of a run that ends starts the next queued runs itself; this is for queued
runs that nothing will start: their running predecessors were lost (a reboot, a killed
tmux server), or the work tree had moved away from their commit when a slot came free.
"""
from __future__ import annotations

import sys

from runs_manager import flags
from runs_manager.errors import RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, Optional

    from runs_manager.settings import Settings

NAME = "resume"
HELP = "start queued runs whose predecessors are gone"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME, help=HELP,
        description="Start the queued runs (of 'runs new --max-parallel/--gpus') that fit now: those whose "
        "running predecessors were lost, or that waited for the work tree to come back to their commit.",
    )
    parser.add_argument("pattern", metavar="PATTERN", nargs="?", help="only queued runs whose whole name this regular expression matches")
    flags.add(parser, "runs-dir", "db-filename")
    parser.set_defaults(run=lambda args, settings: resume(settings, args.pattern))


def resume(settings: Settings, pattern: Optional[str]) -> int:
    from runs_manager import patterns, tmux
    from runs_manager.runtime import queue, runs

    only = None
    if pattern is not None:
        patterns.compile_pattern(pattern)
    db = runs.database(settings)
    # Without the lock first: nothing queued (no database, even) is an answer, not a write.
    if not db.read(lambda index: any(queue.is_queued(entry) for _, entry in index.entries(has_outcome=False))):
        raise RunsError("no runs are queued")
    tmux.require()
    with db.writing() as txn:
        if pattern is not None:
            only = set(patterns.matching(pattern, txn.names()))
        started, notes, waiting = queue.advance(settings, txn, only)
    for name in started:
        print(f"Started queued run '{name}'.")
    if notes and not started:
        raise RunsError("; ".join(notes))
    for note in notes:
        print(f"runs: note: {note}", file=sys.stderr)
    if not started:
        if not waiting:
            raise RunsError("no runs are queued" + (f" among the runs matching {pattern!r}" if pattern is not None else ""))
        print(f"{waiting} queued run{'s' if waiting != 1 else ''} wait{'s' if waiting == 1 else ''} for running runs to end "
              "(their slots or GPUs are taken); nothing to start now.")
    return 0

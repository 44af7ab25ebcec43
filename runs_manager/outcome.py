"""What a run's recorded outcome says, and the names of statuses: pure rules, below the
database (its index keeps whether each run has an outcome) and everything that derives a
status (status.py adds liveness)."""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Set

from runs_manager.errors import RunsError

STATUSES = ("queued", "pending", "starting", "running", "finished", "failed", "killed", "lost", "orphaned", "unknown")
WITHOUT_OUTCOME = frozenset(("queued", "pending", "starting", "running", "lost", "orphaned", "unknown"))
LIVE = frozenset(("queued", "pending", "starting", "running", "orphaned"))  # may still start or write: kill, delete and mv take care
MAX_SIGNAL = 64  # Linux's signals are 1 to 64: a shell reports death by one as 128+N

Entry = Mapping[str, Any]


def is_queued(entry: Entry) -> bool:
    """Whether the run waits in runs' own queue (queue.py), never started yet."""
    return entry.get("queued") is True and isinstance(entry.get("queue"), dict)


def outcome(entry: Entry) -> Optional[str]:
    """The status a recorded outcome gives, or None if the run has none."""
    code = entry.get("exit_code")
    if isinstance(code, bool) or not isinstance(code, int):
        # Taken out of runs' queue before it started: no program, so no exit status.
        return "killed" if entry.get("killed") and entry.get("ended") and "queue" in entry else None
    if entry.get("killed") or 128 < code <= 128 + MAX_SIGNAL:
        return "killed"
    return "finished" if code == 0 else "failed"


def parse(values: Optional[Iterable[str]]) -> Optional[Set[str]]:
    """The statuses named by --status (repeated or comma-separated); None if not given."""
    if not values:
        return None
    wanted = {part.strip().lower() for value in values for part in value.split(",") if part.strip()}
    for status in sorted(wanted):
        if status not in STATUSES:
            from runs_manager.output import did_you_mean

            raise RunsError(f"unknown status '{status}'; {did_you_mean(status, STATUSES)}(statuses: {', '.join(STATUSES)})")
    if not wanted:
        raise RunsError(f"--status needs a status ({', '.join(STATUSES)})")
    return wanted


def has_outcome_for(wanted: Optional[Set[str]]) -> Optional[bool]:
    """Whether the runs with a status in ``wanted`` must have an outcome (True), must not
    (False), or either (None): the index rules out the others before any entry is decoded."""
    if wanted is not None and wanted <= WITHOUT_OUTCOME:
        return False
    if wanted is not None and not wanted & WITHOUT_OUTCOME:
        return True
    return None

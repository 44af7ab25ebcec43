"""A run's status, derived when it is read from its recorded outcome and its liveness.

- queued: waiting in runs' own queue for a slot or a GPU (queue.py), not started yet;
- pending: queued by a scheduler (Slurm), not started yet;
- starting: started, but its supervisor has not taken its lock yet (a slow start), for
  up to ten minutes; then lost;
- running: no outcome yet, and its supervisor is verifiably alive on this host (or its
  batch job is running);
- finished: exit status 0; failed: any other exit status;
- killed: ended by a signal (exit status 128+N), by `runs kill`, or by a hang-up; or
  removed from runs' queue before it started (``killed`` and ``ended``, no exit status);
- lost: no outcome, and its supervisor is gone (a reboot, a SIGKILL of the session, a
  batch job the scheduler no longer knows);
- orphaned: its supervisor is gone but its program still runs on this host (it ignored
  the hang-up); `runs kill` and `runs delete` stop it;
- unknown: no outcome, and liveness cannot be checked from here (another host, or an
  entry recorded before runs supervised its runs).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from runs_manager.outcome import LIVE, MAX_SIGNAL, STATUSES, WITHOUT_OUTCOME, has_outcome_for, is_queued, outcome, parse  # noqa: F401 (this module's names too)

_LIVENESS: Dict[Any, str] = {True: "running", False: "lost", None: "unknown", "pending": "pending", "orphaned": "orphaned",
                             "starting": "starting", "never-started": "lost"}
# Why a run is lost, where its launcher can tell.
_WHY = {"never-started": "its supervisor did not start its program within 10 minutes of its start"}
Entry = Mapping[str, Any]


def derive(settings: Any, runs: Sequence[Tuple[str, Entry]], why: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The status of each run; liveness is asked of each launcher once, for all its runs.
    ``why``, if given, gets the reason each lost run is lost, where it is known.

    An outcome a supervisor kept in the run's state file but could not write into the
    database (a full disk; see runstate.py) counts once the supervisor says so, or is gone.
    """
    from runs_manager import launchers

    from runs_manager.runtime import runstate

    statuses: Dict[str, str] = {}
    pending: Dict[str, List[Tuple[str, Entry]]] = {}
    # A supervisor that could not write its outcome says so (one stat): only then are the
    # state files of runs that look alive read.
    flagged = settings is not None and runstate.pending(settings)
    for name, entry in runs:
        status = outcome(entry) or ("queued" if is_queued(entry) else None)
        if status is None and flagged:
            found, unrecorded = _kept_outcome(settings, name)
            status = found if unrecorded else None
        launcher = None if status else launchers.of(entry)
        if status is None and launcher is not None:
            pending.setdefault(launcher.name, []).append((name, entry))
        statuses[name] = status or "unknown"
    for launcher_name, waiting in pending.items():
        alive = launchers.get(launcher_name).alive(settings, waiting)
        for name, _ in waiting:
            answer = alive.get(name)
            found = _kept_outcome(settings, name)[0] if answer in (False, None) else None  # its supervisor is gone
            statuses[name] = found or _LIVENESS.get(answer, "unknown")
            if why is not None and not found and answer in _WHY:
                why[name] = _WHY[answer]
    return statuses


def _kept_outcome(settings: Any, name: str) -> Tuple[Optional[str], bool]:
    """The status an outcome in the run's state file gives (None if it has none), and
    whether its supervisor could not write it into the database."""
    from runs_manager import names
    from runs_manager.runtime import runstate

    if settings is None or not names.is_valid(name):
        return None, False
    fields = runstate.read(settings, name)
    found = runstate.outcome(fields)
    return (None if found is None else outcome(found)), fields.get("unrecorded") is True


def select(settings: Any, index: Any, names: Optional[List[str]], wanted: Optional[Set[str]]) -> List[Tuple[str, Dict[str, Any], str]]:
    """(name, entry, status) of the runs ``names`` (all when None) in file order, only
    those with a status in ``wanted`` (all when None).

    Runs that cannot have a wanted status are ruled out by the index, before any entry
    is decoded: `--status running` of 100,000 finished runs decodes none of them.
    """
    entries = index.entries(names, has_outcome=has_outcome_for(wanted))
    statuses = derive(settings, entries)
    return [(name, entry, statuses[name]) for name, entry in entries if wanted is None or statuses[name] in wanted]

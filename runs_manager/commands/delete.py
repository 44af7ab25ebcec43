"""`runs delete PATTERN`: delete runs, their files and their tmux sessions."""
from __future__ import annotations

import sys

from runs_manager import flags
from runs_manager.errors import RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, Dict, List, Tuple

    from runs_manager.store.index import Index
    from runs_manager.settings import Settings

NAME = "delete"
HELP = "delete runs matching a pattern"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME, help=HELP,
        description="Delete the runs whose whole name matches PATTERN (a regular expression), with their "
        "TensorBoard directories, checkpoints and tmux sessions.",
    )
    parser.add_argument("pattern", metavar="PATTERN", help="regular expression for whole names: 'exp1|exp2', 'sweep/.*'")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--force", action="store_true",
                        help="delete runs still running on another host too (their programs go on there)")
    flags.add(parser, "runs-dir", "db-filename")
    parser.set_defaults(run=lambda args, settings: delete(settings, args.pattern, args.yes, args.force))


def delete(settings: Settings, pattern: str, yes: bool, force: bool = False) -> int:
    from runs_manager import interrupts, patterns
    from runs_manager.runtime import runs, trash
    from runs_manager.runtime.stopping import stop
    from runs_manager.output import printable
    from runs_manager.prompt import confirm_runs

    runs.require_one_database(settings)
    db = runs.database(settings)

    def matching(index: Index) -> Dict[str, Any]:
        names = patterns.matching(pattern, index.names())
        return dict(index.entries(names))

    matches = db.read(matching)
    if not matches:
        raise RunsError(f"no runs match {pattern!r}")
    if not force:
        _refuse_remote_running(settings, matches)
    # Each match with its start time: a run deleted and made anew under the same name
    # while the user was asked is not the one they said yes to.
    marks, warning = _live_marks(settings, matches)
    confirm_runs("delete", {name: entry.get("datetime") for name, entry in matches.items()}, yes, marks, warning)
    # Stopped before the lock is taken: a program may take seconds to end, and every other
    # command (and the supervisors recording outcomes) would wait that long.
    notes = stop(settings, list(matches.items()))
    # The new file is written now, so that the lock is held for renames only.
    prepared = db.prepare({name: None for name in matches})
    kept: List[str] = []
    with db.writing(prepared) as txn:
        doomed, late = [], []
        for name, entry in txn.entries(list(matches)):
            if entry.get("datetime") != matches[name].get("datetime"):
                _note(f"'{printable(name)}' was made anew meanwhile; not deleted")
                kept.append(name)
                continue
            doomed.append((name, entry))
            if _started_since(matches[name], entry):
                late.append((name, entry))  # a queued run another command started meanwhile
        notes.update({name: note for name, note in stop(settings, late).items() if note})
        garbage = trash.leftovers(settings)
        with interrupts.deferred():
            deleted, more, emptied = trash.discard(settings, txn, doomed)
            started = _advance_queue(settings, txn, [entry for name, entry in doomed if name in deleted])
    for note in [notes.get(name) for name, _ in doomed] + more:
        if note:
            _note(note)
    kept += [name for name, _ in doomed if name not in deleted]
    print(f"Deleted {len(deleted)} run{'s' if len(deleted) != 1 else ''}.")
    for name in started:
        print(f"Started queued run '{printable(name)}' in its place.")
    trash.empty(settings, [emptied, *garbage])
    return 1 if kept else 0


def _live_marks(settings: Settings, matches: Dict[str, Any]) -> Tuple[Dict[str, str], str]:
    """Which runs delete stops before deleting them (running, starting, pending, queued,
    orphaned), marked in its prompt, and a sentence saying so."""
    from runs_manager.outcome import LIVE
    from runs_manager.runtime import status

    states = status.derive(settings, list(matches.items()))
    live = {name: state for name, state in states.items() if state in LIVE}
    marks = {name: f"{state}: taken out of the queue" if state == "queued" else f"{state}: stopped first"
             for name, state in live.items()}
    if not live:
        return marks, ""
    count = len(live)
    return marks, f"{count} of them {'is' if count == 1 else 'are'} live and will be stopped."


def _refuse_remote_running(settings: Settings, matches: Dict[str, Any]) -> None:
    """A run running on another host cannot be stopped from here: deleting its files would
    leave its program writing into the void."""
    from runs_manager.runtime import launch, status

    remote = [(name, entry) for name, entry in matches.items() if entry.get("host") not in (None, launch.host())
              and "exit_code" not in entry]
    statuses = status.derive(settings, remote) if remote else {}
    running = [(name, entry) for name, entry in remote if statuses[name] == "running"]
    if running:
        name, entry = running[0]
        more = f" (and {len(running) - 1} more)" if len(running) > 1 else ""
        raise RunsError(f"run '{name}' is running on {entry.get('host')}{more}; stop it first with 'runs kill {name}', "
                        "which asks its host, or pass --force to delete it while it runs")


def _started_since(before: Dict[str, Any], now: Dict[str, Any]) -> bool:
    from runs_manager.runtime import status

    return status.is_queued(before) and not status.is_queued(now)


def _advance_queue(settings: Settings, txn: Any, deleted: List[Any]) -> List[str]:
    """A deleted run of a queue that had started freed its slot (or GPU) without recording an
    end, so no supervisor will start the next queued runs: start them here."""
    from runs_manager.runtime import queue

    if not any("queue" in entry and not queue.is_queued(entry) and "exit_code" not in entry for entry in deleted):
        return []
    try:
        started, notes, _ = queue.advance(settings, txn)
    except RunsError as e:
        notes, started = [f"{e}; 'runs resume' starts them"], []
    for note in notes:
        _note(f"note: {note}")
    return started


def _note(text: str) -> None:
    print(f"runs: {text}", file=sys.stderr)

"""`runs kill PATTERN`: stop running runs, their programs' whole process groups."""
from __future__ import annotations

import sys

from runs_manager import flags
from runs_manager.errors import RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, Dict, Iterable, List, Tuple

    from runs_manager.store.database import Database
    from runs_manager.settings import Settings

NAME = "kill"
HELP = "stop running runs"
POLL = 0.1  # seconds between checks for the runs' recorded outcomes
AFTER_SIGKILL = 10.0
SHOW_IDLE = 5  # more matching runs that are not running are counted, not named  # seconds to wait for the supervisors to record a SIGKILL


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME, help=HELP,
        description="Stop the running runs whose whole name matches PATTERN (a regular expression): send "
        "SIGNAL to each program's process group, then SIGKILL to those still running after the grace "
        "period. Their entries, TensorBoard logs, checkpoints and logs stay.",
    )
    parser.add_argument("pattern", metavar="PATTERN", help="regular expression for whole names: 'exp1|exp2', 'sweep/.*'")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--signal", default="TERM", metavar="SIG", help="signal to send first: TERM (default), INT, HUP, 9 ...")
    parser.add_argument("--grace", type=_seconds, default=10.0, metavar="SECONDS",
                        help="wait this long for the programs to end before SIGKILL (default 10)")
    flags.add(parser, "runs-dir", "db-filename")
    parser.set_defaults(run=lambda args, settings: kill(settings, args.pattern, args.yes, args.signal, args.grace))


def _seconds(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"--grace takes a number of seconds, not '{text}'")
    return value


def parse_signal(text: str) -> int:
    """A signal by name (TERM, SIGTERM, term) or number."""
    import signal

    if text.isascii() and text.isdigit():
        number = int(text)
        if number in {s.value for s in signal.Signals}:
            return number
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if name in signal.Signals.__members__:
            return int(signal.Signals[name])
    raise RunsError(f"unknown signal '{text}'; use a name such as TERM, INT, HUP, KILL or a number")


def kill(settings: Settings, pattern: str, yes: bool, signal_name: str, grace: float) -> int:
    import signal

    from runs_manager.runtime import runs, status
    from runs_manager.output import printable
    from runs_manager.prompt import confirm_runs

    signum = parse_signal(signal_name)
    matches = runs.matching(settings, pattern, None)
    if not matches:
        raise RunsError(f"no runs match {pattern!r}")
    targets = {name: entry.get("datetime") for name, entry, state in matches if state in status.LIVE}
    queued = {name for name, _, state in matches if state == "pending"}
    idle = [(name, state) for name, _, state in matches if state not in status.LIVE]
    if not targets:
        raise RunsError(f"none of the runs matching {pattern!r} is running ({_counts(idle)})")
    if len(idle) <= SHOW_IDLE:
        for name, state in idle:
            _note(f"'{printable(name)}' is not running ({state}); left alone")
    else:
        _note(f"{len(idle)} matching runs are not running ({_counts(idle)}); left alone")
    confirm_runs("kill", targets, yes)

    from runs_manager.runtime import runs

    db = runs.database(settings)
    orphans = {name for name, _, state in matches if state == "orphaned"}
    signalled, dequeued = _signal(settings, db, targets, signum, queued=queued)
    name_of = signal.Signals(signum).name
    remote, later = _remote(matches, signalled)
    left = _wait(settings, db, signalled, (grace if signum != signal.SIGKILL else AFTER_SIGKILL) + later, orphans)
    last = signum
    if left and signum != signal.SIGKILL:
        for name in left:
            _note(f"'{printable(name)}' still runs {grace:g} s after {name_of}; sending SIGKILL")
        _signal(settings, db, {name: targets[name] for name in left}, signal.SIGKILL, mark=False, queued=queued)
        left = _wait(settings, db, left, AFTER_SIGKILL + later, orphans)
        last = signal.SIGKILL
    _record_orphans(settings, db, {name: targets[name] for name in signalled if name in orphans and name not in left}, last)
    for name in left:
        _note(f"asked {remote[name]} to stop '{printable(name)}'; no answer yet (see 'runs lookup {name} status')"
              if name in remote else f"'{printable(name)}' was sent SIGKILL but its end was not recorded; see 'runs lookup {name} status'")
    for name in signalled:
        if name in remote and name not in left:
            print(f"'{printable(name)}' was killed on {remote[name]}.")
    done = [name for name in signalled if name not in left]
    if done or not dequeued:
        print(f"Killed {len(done)} run{'s' if len(done) != 1 else ''}.")
    if dequeued:
        print(f"Removed {len(dequeued)} queued run{'s' if len(dequeued) != 1 else ''} from the queue; {'they' if len(dequeued) != 1 else 'it'} never started.")
    return 1 if left or len(signalled) + len(dequeued) < len(targets) else 0


def _remote(matches: Iterable[Tuple[str, Dict[str, Any], str]], signalled: Iterable[str]) -> Tuple[Dict[str, str], float]:
    """The signalled runs of other hosts, by host, and how much longer to wait for them:
    their supervisors act on the request at their next beat (heartbeat.py)."""
    from runs_manager import launchers
    from runs_manager.runtime import heartbeat, launch

    here, chosen = launch.host(), set(signalled)
    remote = {name: str(entry.get("host")) for name, entry, _ in matches
              if name in chosen and entry.get("host") not in (None, here) and getattr(launchers.of(entry), "name", "") == "tmux"}
    return remote, (2 * heartbeat.beat_seconds() if remote else 0.0)


def _signal(
    settings: Settings, db: Database, targets: Dict[str, Any], signum: int, mark: bool = True, queued: Iterable[str] = ()
) -> Tuple[List[str], List[str]]:
    """Signal the programs of runs still running (under the lock, so none ends unseen),
    and record that `runs kill` stopped them. Returns the runs signalled, and those taken
    out of runs' own queue. A run queued by Slurm is cancelled and its outcome recorded
    here: no supervisor of it will ever record one; one in runs' queue never starts."""
    import signal

    from runs_manager import interrupts, launchers
    from runs_manager.runtime import queue, runstate
    from runs_manager.output import printable

    signalled, dequeued, marked = [], [], {}
    with db.writing() as txn, interrupts.deferred():
        for name, started in targets.items():
            entry = txn.entry(name)
            if entry is not None and entry.get("datetime") == started and queue.is_queued(entry):
                marked[name] = (name, queue.remove_from_queue(entry, "runs kill (removed from the queue before it started)"))
                dequeued.append(name)
                continue
            launcher = None if entry is None else launchers.of(entry)
            if entry is None or entry.get("datetime") != started or "exit_code" in entry or launcher is None:
                _note(f"'{printable(name)}' ended or changed meanwhile; left alone")
                continue
            reason = f"runs kill ({signal.Signals(signum).name})"
            if mark and "killed" not in entry:  # where the supervisor finds it even on a full disk
                runstate.request_kill(settings, name, reason)
            if not launcher.signal(settings, name, entry, signum):
                if mark and "killed" not in entry:
                    runstate.request_kill(settings, name, "")  # nothing was signalled: no reason to give
                _note(f"'{printable(name)}' is no longer running; left alone")
                continue
            signalled.append(name)
            if mark and "killed" not in entry:
                entry["killed"] = reason
                marked[name] = (name, entry)
            if name in queued:
                from runs_manager import times

                entry.update(killed="runs kill (cancelled while queued)", exit_code=128 + signum,
                             ended=times.now())
                marked[name] = (name, entry)
        try:
            txn.change(marked)
        except RunsError as e:  # a full disk: the programs are signalled, and their supervisors know why
            _note(f"{e}; the supervisors record why the runs ended")
    return signalled, dequeued


def _record_orphans(settings: Settings, db: Database, orphans: Dict[str, Any], signum: int) -> None:
    """An orphaned program has no supervisor to record its end: record it here."""
    from runs_manager import times
    import signal

    if not orphans:
        return
    from runs_manager.runtime import runstate

    with db.writing() as txn:
        changes = {}
        for name, entry in txn.entries(list(orphans)):
            if entry.get("datetime") == orphans[name] and "exit_code" not in entry:
                changes[name] = (name, {**entry, "ended": times.now(),
                                        "exit_code": 128 + signum,
                                        "killed": f"runs kill ({signal.Signals(signum).name}) of its orphaned program"})
        try:
            txn.change(changes)
        except RunsError as e:  # a full disk: kept in the runs' state files, copied in by a later command
            kept = [name for name, (_, entry) in changes.items()
                    if runstate.keep_outcome(settings, name, {k: entry[k] for k in ("ended", "exit_code", "killed")})]
            _note(f"{e}; the end of {len(kept)} orphaned run(s) is kept until there is room")


def _wait(settings: Settings, db: Database, names: Iterable[str], seconds: float, orphans: Iterable[str] = ()) -> List[str]:
    """Wait up to ``seconds`` for the runs' outcomes to be recorded (for orphaned programs,
    which no supervisor records, for their end); the runs still without one."""
    import time

    from runs_manager.runtime import runstate

    waiting = list(names)
    deadline = time.monotonic() + seconds

    def entries_of(index: Any) -> List[Tuple[str, Dict[str, Any]]]:
        return index.entries(waiting)  # type: ignore[no-any-return]

    def ended(name: str, entry: Dict[str, Any]) -> bool:
        if name in orphans:
            return not runstate.orphan_group(settings, name)
        if "exit_code" in entry:
            return True
        fields = runstate.read(settings, name)  # ended, and its supervisor cannot record it (a full disk)
        return fields.get("unrecorded") is True and runstate.outcome(fields) is not None

    while waiting:
        entries = dict(db.read(entries_of))
        waiting = [name for name in waiting if name in entries and not ended(name, entries[name])]
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    return waiting


def _counts(runs: List[Tuple[str, str]]) -> str:
    """'finished: 3, killed: 1' for (name, status) pairs."""
    import collections

    return ", ".join(f"{state}: {count}" for state, count in collections.Counter(state for _, state in runs).items())


def _note(text: str) -> None:
    print(f"runs: {text}", file=sys.stderr)

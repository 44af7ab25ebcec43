"""`runs mv OLD NEW`: rename a run, or a whole group of runs, with all its files."""
from __future__ import annotations

from runs_manager import flags
from runs_manager.errors import RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, List, Tuple

    from runs_manager.settings import Settings
    from runs_manager.store.transaction import Transaction

NAME = "mv"
HELP = "rename a run or a group of runs"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME, help=HELP,
        description="Rename run OLD to NEW, with its entry, TensorBoard directory, checkpoints, log, patch and tmux "
        "session; or every run of group OLD (OLD/...) to NEW/.... All or nothing; running runs cannot move.",
    )
    parser.add_argument("old", metavar="OLD", help="a run, or a group of runs")
    parser.add_argument("new", metavar="NEW", help="a valid name that no run or group has")
    flags.add(parser, "runs-dir", "db-filename")
    parser.set_defaults(run=lambda args, settings: mv(settings, args.old, args.new))


def mv(settings: Settings, old: str, new: str) -> int:
    from runs_manager import interrupts, names
    from runs_manager.runtime import renaming, runs
    from runs_manager.output import printable

    problem = names.problem(new)
    if problem:
        raise RunsError(f"invalid new name: {problem}; {names.RULE}")
    if new == old:
        raise RunsError(f"'{printable(old)}' already has that name")
    if new.startswith(old + "/") or old.startswith(new + "/"):
        raise RunsError(f"'{printable(new)}' and '{printable(old)}' nest inside each other; move in two steps")
    runs.require_one_database(settings)
    with runs.database(settings).writing() as txn:
        moves = _moves(txn, old, new)
        _require_movable(settings, txn, moves)
        files = renaming.files_of(settings, txn, moves)
        with interrupts.deferred():
            renaming.move(settings, txn, moves, files)
    for before, after in moves:
        print(f"Renamed '{printable(before)}' to '{printable(after)}'.")
    return 0


def _moves(txn: Transaction, old: str, new: str) -> List[Tuple[str, str]]:
    from runs_manager import names
    from runs_manager.output import printable

    if txn.has(old):
        moves = [(old, new)]
    else:
        moves = [(name, new + name[len(old) :]) for name in txn.names() if name.startswith(old + "/")]
        if not moves:
            raise RunsError(f"no run or group named '{printable(old)}'; see 'runs list'")
    if txn.has(new):
        raise RunsError(f"run '{printable(new)}' exists; choose another name")
    member = txn.first_in_group(new)
    if member is not None:  # never merged into another group
        raise RunsError(f"group '{printable(new)}' exists (it holds '{printable(member)}'); choose another name")
    for before, after in moves:
        if not names.is_valid(before):  # a hand edit: its paths could be another run's, or outside
            raise RunsError(f"'{printable(before)}' is not a valid run name; fix it in the database file first")
        problem = names.problem(after)
        if problem:
            raise RunsError(f"'{printable(before)}' cannot become '{printable(after)}': {problem}")
        if txn.has(after):
            raise RunsError(f"run '{printable(after)}' exists; choose another name")
        conflict = names.group_conflict(after, txn.has, txn.first_in_group)
        if conflict:
            raise RunsError(f"run '{conflict}' exists, so '{printable(after)}' cannot be used: a run cannot also be a group")
    return moves


def _require_movable(settings: Settings, txn: Transaction, moves: List[Tuple[str, str]]) -> None:
    from runs_manager.output import printable
    from runs_manager.runtime import runfiles, status

    entries = txn.entries(before for before, _ in moves)
    states = status.derive(settings, entries)
    running = [name for name, state in states.items() if state in status.LIVE]
    if running and states[running[0]] == "queued":
        raise RunsError(
            f"run '{printable(running[0])}' is queued, and its command line holds the old paths; "
            "wait for it to end, or 'runs kill' it to take it out of the queue"
        )
    if running:
        raise RunsError(
            f"run '{printable(running[0])}' is {states[running[0]]}, and its program holds the old paths; "
            "wait for it to end or 'runs kill' it first"
        )
    for _, after in moves:
        taken = runfiles.existing(settings, after, txn)
        if taken:
            raise RunsError(f"{taken[0]} exists and belongs to no run; move or delete it first")
        outside = runfiles.outside_runs_dir(settings, after)
        if outside:
            raise RunsError(f"{outside} would be outside the runs directory: a symbolic link leads out of it")

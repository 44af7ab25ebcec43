"""`runs delete PATTERN`: delete runs, their files and their tmux sessions."""
from __future__ import annotations

from runs_manager import flags
from runs_manager.errors import RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any

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
    flags.add(parser, "runs-dir", "db-filename")
    parser.set_defaults(run=lambda args, settings: delete(settings, args.pattern, args.yes))


def delete(settings: Settings, pattern: str, yes: bool) -> int:
    from runs_manager import faults, names, patterns, runs
    from runs_manager.output import printable
    from runs_manager.prompt import confirm

    patterns.compile_pattern(pattern)
    db = runs.database(settings)
    matches = db.read(lambda index: patterns.matching(pattern, index.names()))
    if not matches:
        raise RunsError(f"no runs match {pattern!r}")
    print("Runs to delete:")
    for name in matches:
        print(f"  {printable(name)}")
    if not yes and not confirm("Delete the following runs?"):
        raise RunsError("not confirmed; nothing was deleted")
    from runs_manager import tmux  # here: only delete and new need tmux

    with db.writing() as txn:
        present = [name for name in matches if txn.has(name)]  # another command may have deleted some
        live = tmux.sessions()
        for name in present:
            note = runs.stop_session(name, txn.entry(name) or {}, live)
            if note:
                print(f"runs: {note}")
            if not names.is_valid(name):
                print(f"runs: '{printable(name)}' is not a valid run name; only its entry is deleted")
            for note in runs.remove_files(settings, name, txn):
                print(f"runs: {note}")
        faults.point("delete:files-removed")
        txn.remove(present)
    print(f"Deleted {len(present)} run{'s' if len(present) != 1 else ''}.")
    return 0

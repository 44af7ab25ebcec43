"""`runs table`: the runs as a table, oldest first."""
from __future__ import annotations

from runs_manager import flags

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, List, Optional

    from runs_manager.settings import Settings

COLUMNS = ("command", "commit", "datetime", "description", "host")
STATUS_HELP = ("only runs in this state: running, finished, failed, killed, lost, unknown "
               "(repeat it, or separate states with commas)")

NAME = "table"
HELP = "show runs as a table"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(NAME, help=HELP, description="Show runs as a table, oldest first.")
    parser.add_argument("--pattern", "-p", metavar="REGEX", help="only runs whose names this regular expression matches in full")
    parser.add_argument("--status", "-s", action="append", metavar="STATUS", help=STATUS_HELP)
    flags.add(parser, "runs-dir", "db-filename", "column-width")
    parser.set_defaults(run=lambda args, settings: table(settings, args.pattern, args.status))


def table(settings: Settings, pattern: Optional[str], statuses: Optional[List[str]] = None) -> int:
    from runs_manager import status
    from runs_manager.output import cell, printable

    rows = [
        [printable(name), state] + [cell(entry.get(column), settings.column_width) for column in COLUMNS]
        for name, entry, state in status.matching(settings, pattern, statuses)
    ]
    import tabulate  # here: slow to import, and only this command needs it

    print(tabulate.tabulate(rows, headers=("name", "status") + COLUMNS, disable_numparse=True))
    return 0

"""`runs table`: the runs as a table, oldest first."""
from __future__ import annotations

from runs_manager import flags

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, Dict, List, Optional, Tuple

    from runs_manager.index import Index
    from runs_manager.settings import Settings

COLUMNS = ("command", "commit", "datetime", "description", "host")

NAME = "table"
HELP = "show runs as a table"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(NAME, help=HELP, description="Show runs as a table, oldest first.")
    parser.add_argument("--pattern", "-p", metavar="REGEX", help="only runs whose names this regular expression matches in full")
    flags.add(parser, "runs-dir", "db-filename", "column-width")
    parser.set_defaults(run=lambda args, settings: table(settings, args.pattern))


def table(settings: Settings, pattern: Optional[str]) -> int:
    from runs_manager import patterns, runs
    from runs_manager.output import cell, printable

    def query(index: Index) -> List[Tuple[str, Dict[str, Any]]]:
        return index.entries(patterns.matching(pattern, index.names()) if pattern is not None else None)

    rows = [
        [printable(name)] + [cell(entry.get(column), settings.column_width) for column in COLUMNS]
        for name, entry in runs.database(settings).read(query)
    ]
    import tabulate  # here: slow to import, and only this command needs it

    print(tabulate.tabulate(rows, headers=("name",) + COLUMNS, disable_numparse=True))
    return 0

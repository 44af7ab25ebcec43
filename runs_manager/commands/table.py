"""`runs table`: the runs as a table, oldest first."""
from __future__ import annotations

from typing import Any, Optional

from runs_manager import patterns, runs, settings as settings_module
from runs_manager.output import cell, printable
from runs_manager.settings import Settings

COLUMNS = ("command", "commit", "datetime", "description", "host")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("table", help="show runs as a table", description="Show runs as a table, oldest first.")
    parser.add_argument("--pattern", "-p", metavar="REGEX", help="only runs whose names this regular expression matches in full")
    settings_module.add_flags(parser, "runs-dir", "db-filename", "column-width")
    parser.set_defaults(run=lambda args, settings: table(settings, args.pattern))


def table(settings: Settings, pattern: Optional[str]) -> int:
    with runs.database(settings).reading() as index:
        wanted = patterns.matching(pattern, index.names()) if pattern is not None else None
        rows = [
            [printable(name)] + [cell(entry.get(column), settings.column_width) for column in COLUMNS]
            for name, entry in index.entries(wanted)
        ]
    import tabulate  # here: slow to import, and only this command needs it

    print(tabulate.tabulate(rows, headers=("name",) + COLUMNS, disable_numparse=True))
    return 0

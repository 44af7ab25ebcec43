"""`runs list`: the names of runs, oldest first."""
from __future__ import annotations

from runs_manager import flags

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, List, Optional

    from runs_manager.settings import Settings

NAME = "list"
HELP = "list run names"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(NAME, help=HELP, description="Print run names, one per line, oldest first.")
    flags.add_selection(parser, what="names")
    parser.add_argument("--format", "-f", default="plain", metavar="FORMAT", choices=FORMATS,
                        help="plain: one name a line (the default); json: a JSON array of names")
    flags.add(parser, "runs-dir", "db-filename")
    parser.set_defaults(run=lambda args, settings: list_runs(settings, args.pattern, args.status, args.format))


FORMATS = ("plain", "json")


def list_runs(settings: Settings, pattern: Optional[str], statuses: Optional[List[str]] = None, fmt: str = "plain") -> int:
    from runs_manager import patterns
    from runs_manager.runtime import runs
    from runs_manager.output import printable

    if statuses:
        names = [name for name, _, _ in runs.matching(settings, pattern, statuses)]
    else:
        names = patterns.matching(pattern, runs.database(settings).read(lambda index: index.names()))
    if fmt == "json":
        from runs_manager.tabular import json_text

        print(json_text(names))
        return 0
    if names and not "".join(names).isprintable():  # checked at once: 100,000 names
        names = [printable(name) for name in names]
    if names:
        print("\n".join(names))
    runs.note_stalled(settings)
    return 0

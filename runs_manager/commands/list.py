"""`runs list`: the names of runs, oldest first."""
from __future__ import annotations

from typing import Any, Optional

from runs_manager import patterns, runs, settings as settings_module
from runs_manager.output import printable
from runs_manager.settings import Settings


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("list", help="list run names", description="Print run names, one per line, oldest first.")
    parser.add_argument("--pattern", "-p", metavar="REGEX", help="only names this regular expression matches in full")
    settings_module.add_flags(parser, "runs-dir", "db-filename")
    parser.set_defaults(run=lambda args, settings: list_runs(settings, args.pattern))


def list_runs(settings: Settings, pattern: Optional[str]) -> int:
    with runs.database(settings).reading() as index:
        names = index.names()
    lines = [printable(name) for name in patterns.matching(pattern, names)]
    if lines:
        print("\n".join(lines))
    return 0

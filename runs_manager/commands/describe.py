"""`runs describe NAME TEXT`: replace a run's description."""
from __future__ import annotations

from runs_manager import flags
from runs_manager.errors import RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any

    from runs_manager.settings import Settings

NAME = "describe"
HELP = "replace a run's description"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(NAME, help=HELP, description="Replace the description of run NAME (running or not).")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("text", metavar="TEXT", help="the new description")
    flags.add(parser, "runs-dir", "db-filename")
    parser.set_defaults(run=lambda args, settings: describe(settings, args.name, args.text))


def describe(settings: Settings, name: str, text: str) -> int:
    from runs_manager import interrupts
    from runs_manager.runtime import runs
    from runs_manager.store import yamlfile
    from runs_manager.commands.lookup import find
    from runs_manager.output import printable

    if yamlfile.exact_text(name, {"description": text}) is None:
        raise RunsError("the description cannot be stored in YAML exactly as given")
    find(settings, name)  # an unknown name is an error that suggests close ones
    with runs.database(settings).writing() as txn, interrupts.deferred():
        entry = txn.entry(name)
        if entry is None:
            raise RunsError(f"run '{printable(name)}' was deleted meanwhile")
        entry["description"] = text
        txn.update(name, entry)
    print(f"Run '{printable(name)}' is now described as: {printable(text)}")
    return 0

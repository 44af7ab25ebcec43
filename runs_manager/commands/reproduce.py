"""`runs reproduce NAME`: the commands that rerun a run exactly."""
from __future__ import annotations

import sys

from runs_manager import flags
from runs_manager.commands.lookup import find
from runs_manager.errors import RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any

    from runs_manager.settings import Settings

NAME = "reproduce"
HELP = "print commands that rerun a run"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME, help=HELP, description="Print commands that check out the run's commit and start it again."
    )
    parser.add_argument("name", metavar="NAME")
    flags.add(parser, "runs-dir", "db-filename")
    parser.set_defaults(run=lambda args, settings: reproduce(settings, args.name))


def reproduce(settings: Settings, name: str) -> int:
    import shlex

    from runs_manager.output import printable

    entry = find(settings, name)
    for key in ("commit", "command"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise RunsError(f"run '{printable(name)}' has no {key} recorded, so it cannot be reproduced")
    description = entry.get("description")
    description = "" if description is None else str(description)
    if any(printable(text) != text.replace("\n", "\\n").replace("\t", "\\t") for text in (name, entry["command"], description)):
        # Quoted exactly, but a terminal would act on them: what you see may not be what you paste.
        print("runs: note: the command or description holds control characters", file=sys.stderr)
    # Every word is quoted so the lines round-trip through a POSIX shell, whatever they hold.
    print("To reproduce:")
    print(f" git checkout {shlex.quote(entry['commit'])}")
    words = [shlex.quote(name), shlex.quote(entry["command"]), "--description=" + shlex.quote(description)]
    if name.startswith("-") or entry["command"].startswith("-"):
        words = words[2:] + ["--"] + words[:2]  # so `runs new` does not take them for options
    print(" runs new " + " ".join(words))
    return 0

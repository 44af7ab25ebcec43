from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs start-up time that `runs --help` cannot spare
    from typing import Iterable


def confirm(question: str) -> bool:
    """Ask a yes/no question on stderr (stdout may be a file); anything but y/yes, and a
    stdin that is not a terminal, mean no."""
    if not sys.stdin.isatty():
        print(f"{question} no (stdin is not a terminal; pass -y to confirm)", file=sys.stderr)
        return False
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def confirm_runs(verb: str, names: Iterable[str], yes: bool) -> None:
    """List the runs about to be changed and ask (unless ``yes``); refusal is an error.

    ``verb`` is how the question names the change: "delete", "kill".
    """
    from runs_manager.errors import RunsError
    from runs_manager.output import printable

    listing = "\n".join(f"  {printable(name)}" for name in names)
    print(f"Runs to {verb}:\n{listing}", file=sys.stdout if yes else sys.stderr)
    if not yes and not confirm(f"{verb.capitalize()} the following runs?"):
        raise RunsError(f"not confirmed; nothing was {verb}{'d' if verb.endswith('e') else 'ed'}")

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs start-up time that `runs --help` cannot spare
    from typing import Iterable, Mapping, Optional

YES = ("y", "yes")


def confirm(question: str) -> bool:
    """Ask a yes/no question on stderr (stdout may be a file) and read the answer from a
    line of stdin, a terminal or a pipe, as pip, apt and `rm -i` do (`yes | runs delete ...`).
    y and yes mean yes; anything else, and an empty or closed stdin, mean no."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    terminal = False
    try:
        terminal = sys.stdin is not None and sys.stdin.isatty()
        answer = sys.stdin.readline() if sys.stdin is not None else ""
    except (OSError, ValueError):  # closed, not text, or not readable at all
        answer = ""
    if not terminal:  # nothing was echoed: say what was read
        from runs_manager.output import printable

        shown = printable(answer.strip())[:40]
        print(shown if shown else "no (nothing on stdin; pass -y to confirm)", file=sys.stderr)
    return answer.strip().lower() in YES


def confirm_runs(verb: str, names: Iterable[str], yes: bool, marks: Optional[Mapping[str, str]] = None,
                 warning: str = "") -> None:
    """List the runs about to be changed and ask (unless ``yes``); refusal is an error.

    ``verb`` is how the question names the change: "delete", "kill". ``marks`` adds a note
    to a run's line ("running: stopped first"), ``warning`` a sentence to the question.
    """
    from runs_manager.errors import RunsError
    from runs_manager.output import printable

    marks = marks or {}
    names = list(names)
    width = max(len(printable(name)) for name in names) if marks else 0
    listing = "\n".join(f"  {printable(name):<{width}}   ({marks[name]})" if name in marks else f"  {printable(name)}"
                        for name in names)
    print(f"Runs to {verb}:\n{listing}", file=sys.stdout if yes else sys.stderr)
    if not yes and not confirm(f"{warning}{' ' if warning else ''}{verb.capitalize()} the following runs?"):
        raise RunsError(f"not confirmed; nothing was {verb}{'d' if verb.endswith('e') else 'ed'}")

from __future__ import annotations

import sys


def confirm(question: str) -> bool:
    """Ask a yes/no question on stderr (stdout may be a file); anything but y/yes, and a
    stdin that is not a terminal, mean no."""
    if not sys.stdin.isatty():
        print(f"{question} no (stdin is not a terminal; pass -y to confirm)", file=sys.stderr)
        return False
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")

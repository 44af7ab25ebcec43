"""Turning stored values into text that keeps one run on one line."""
from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs start-up time that `runs --help` cannot spare
    from typing import Any, Optional

MISSING = "_"


def printable(text: str) -> str:
    """``text`` with line breaks, tabs and other control characters shown as escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def did_you_mean(word: str, known: Any) -> str:
    """"did you mean 'X'? " for the known word closest to ``word``, or nothing."""
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if type(value) is float and value - value == 0 or type(value) is int:  # finite: as JSON writes them, faster
        return repr(value)
    return json.dumps(value, ensure_ascii=False)  # JSON spells null, true, lists and mappings as YAML would


def cell(value: Any, width: Optional[int]) -> str:
    """A table cell: missing values as _, cut to ``width`` characters plus '...'."""
    if value is None:
        return MISSING
    text = printable(as_text(value))
    if width is not None and len(text) > width:
        return text[:width] + "..."
    return text


def screen_width(text: str) -> int:
    """The cells ``text`` takes on a terminal: two for each Chinese, Japanese or Korean
    character and most emoji, none for a combining accent (wcwidth, as tabulate counts them)."""
    if text.isascii():
        return len(text)
    try:
        from wcwidth import wcswidth
    except ImportError:  # tabulate[widechars] brings it; without, tabulate counts characters too
        return len(text)
    width = wcswidth(text)
    return width if width >= 0 else len(text)  # a control character: printable() escapes those first


def cut_to(text: str, width: int, mark: str = "...") -> str:
    """``text``, cut to take at most ``width`` cells on screen, ``mark`` ending what was cut."""
    if screen_width(text) <= width:
        return text
    room = width - len(mark)
    if room <= 0:
        return mark[: max(width, 0)]
    if text.isascii():
        return text[:room] + mark
    # The longest prefix that fits, each measured whole, as the cell is: an emoji's
    # presentation selector (❤️) or a flag's second half changes the width of the character
    # before it. A longer prefix is never narrower, so a bisection finds it.
    fits, over = 0, len(text)
    while over - fits > 1:
        middle = (fits + over) // 2
        if screen_width(text[:middle]) <= room:
            fits = middle
        else:
            over = middle
    return text[:fits] + mark

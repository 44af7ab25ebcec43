"""The default table on a terminal: as wide as the terminal, read at a glance.

On a terminal, with no column width set, `runs table` shows a commit as its first 12
characters (as `runs new` prints it) and a time to the second in local time, and cuts the
long cells, least useful column first, until the rows fit the terminal's width: the
description, then the host, the command, any other column (last first). A run's name,
status, commit and times are never cut (cut, they would say nothing), nor is a column cut
narrower than its header. If the table is still too wide, whole columns are left out (the
host, the description, the commit, the time, the command), and runs says which.
Everything stays whole in the machine formats, with --column-width, and in `runs lookup`.
Widths are screen cells: a Chinese character or an emoji takes two (output.screen_width).
"""
from __future__ import annotations

import sys
from typing import Any, List, Optional, Sequence, Tuple

from runs_manager.output import MISSING, as_text, cut_to, printable, screen_width

FIRST_CUT = ("description", "host", "command")  # long text, cut first, in this order
WHOLE = ("name", "status", "commit", "datetime", "started", "ended")  # cut, they would say nothing
LEFT_OUT = ("host", "description", "commit", "datetime", "command")  # then left out, in this order
TIMES = ("datetime", "started", "ended")
MIN_CUT = 10  # a cut cell keeps at least this many characters, "..." included
SHORT_COMMIT = 12


def terminal_columns() -> Optional[int]:
    """The terminal's width when stdout is one (COLUMNS first, as shutil reads it); else None."""
    try:
        if not sys.stdout.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    import shutil

    return shutil.get_terminal_size().columns


def fitted(rows: Sequence[Sequence[Any]], columns: Sequence[str], total: int,
           chosen: bool = False) -> Tuple[List[int], List[List[str]]]:
    """The columns kept (their indexes) and their cells, shown for a terminal, so that a
    "simple" table of them is at most ``total`` characters wide: long cells cut, least
    useful column first, and if that is not enough, whole columns left out (as few as can be;
    none of the columns the user ``chosen`` with --columns)."""
    cells = [[_shown(column, value) for column, value in zip(columns, row)] for row in rows]
    floors = [screen_width(printable(column)) + 2 for column in columns]  # tabulate pads a header by 2
    widths = [max([floor] + [screen_width(row[i]) for row in cells]) for i, floor in enumerate(floors)]
    # A number cut loses its exponent (3.4567...e-05 reads as 3.45): never cut.
    numbers = {i for i in range(len(columns)) if any(row[i] is not None for row in rows)
               and all(row[i] is None or isinstance(row[i], (int, float)) for row in rows)}
    cuttable = set(_cut_order(columns)) - numbers
    narrowest = [min(w, max(f, MIN_CUT)) if i in cuttable else w for i, (w, f) in enumerate(zip(widths, floors))]
    kept = list(range(len(columns)))
    for name in () if chosen else LEFT_OUT:  # only while even cut to the bone the rows are too wide
        if sum(narrowest[i] for i in kept) + 2 * (len(kept) - 1) <= total or len(kept) <= 2:
            break
        kept = [i for i in kept if columns[i] != name]
    excess = sum(widths[i] for i in kept) + 2 * (len(kept) - 1) - total
    narrowed: set[int] = set()  # only their cells can be too wide: the others' are not measured again
    for i in _cut_order(columns):
        if i in kept and i in cuttable and excess > 0:
            cut = min(excess, widths[i] - narrowest[i])
            widths[i] -= cut
            excess -= cut
            if cut:
                narrowed.add(i)
    return kept, [[cut_to(text[i], widths[i]) if i in narrowed and not isinstance(row[i], (int, float)) else text[i]
                   for i in kept] for text, row in zip(cells, rows)]


def _cut_order(columns: Sequence[str]) -> List[int]:
    first = [i for name in FIRST_CUT for i, column in enumerate(columns) if column == name]
    others = [i for i in reversed(range(len(columns))) if columns[i] not in FIRST_CUT + WHOLE]
    return first + others


def _shown(column: str, value: Any) -> str:
    if value is None:
        return MISSING
    if column == "commit" and isinstance(value, str) and len(value) == 40:
        return value[:SHORT_COMMIT]
    if column in TIMES:
        import time

        from runs_manager.times import moment

        when = moment(value)
        if when is not None:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
    return printable(as_text(value))

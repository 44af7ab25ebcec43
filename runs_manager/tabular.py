"""Rows of runs for `runs table`: choosing columns, sorting, and writing them in a format.

Human formats (``plain`` and tabulate's) keep one run on one line and cut long cells;
machine formats (csv, tsv, json, jsonl) write every value whole, quoted by the standard
library, so that Python's csv and json modules read back exactly what the database holds.
"""
from __future__ import annotations

import json
import math
import re
import sys
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

from runs_manager.errors import RunsError
from runs_manager.output import as_text, cell, did_you_mean, printable
from runs_manager.times import moment

DEFAULT_COLUMNS = ("name", "status", "command", "commit", "datetime", "description", "host")
# Keys runs itself writes: always known, even before any run has one.
RUNS_KEYS = (
    "command", "commit", "datetime", "description", "host", "launched", "launcher", "tmux_session",
    "tmux_session_id", "tmux_session_created", "tmux_server_pid", "ended", "exit_code", "killed",
    "sweep", "grid", "queue", "queued", "started", "cuda_visible_devices", "settings",
)
DERIVED = ("name", "status")  # not stored in entries: the run's name and its derived status
MACHINE_FORMATS = ("csv", "tsv", "json", "jsonl")
_LINE_ENDS = ("\x85", "\u2028", "\u2029")  # json.dumps escapes the ASCII ones already
DEFAULT_FORMAT = "plain"  # the table runs always printed: tabulate's "simple"

Row = List[Any]  # the values of one run, in the order of the keys asked for
SortKey = Tuple[str, bool]  # (key, descending)


def check_format(name: str) -> str:
    """The tabulate format (or machine format) that ``--format name`` asks for."""
    if name == DEFAULT_FORMAT:
        return "simple"
    if name in MACHINE_FORMATS:
        return name
    import tabulate

    if name in tabulate.tabulate_formats:
        return name
    # tabulate's own "plain" and "tsv" are shadowed by runs' (its "simple" is runs' plain).
    known = [DEFAULT_FORMAT, *MACHINE_FORMATS, *sorted(f for f in tabulate.tabulate_formats if f not in ("plain", "tsv"))]
    raise RunsError(f"unknown format '{printable(name)}'; {did_you_mean(name, known)}(formats: {', '.join(known)})")


def parse_columns(values: Optional[Sequence[str]]) -> List[str]:
    """The columns of --columns (comma-separated, or repeated), or the default ones."""
    if values is None:
        return list(DEFAULT_COLUMNS)
    columns = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if not columns:
        raise RunsError(f"--columns needs at least one column, such as {','.join(DEFAULT_COLUMNS[:3])}")
    for i, column in enumerate(columns):
        if column in columns[:i]:
            raise RunsError(f"column '{printable(column)}' is given twice in --columns")
    return columns


def parse_sort(values: Optional[Sequence[str]], reverse: bool) -> List[SortKey]:
    """(key, descending) for each --sort KEY (-KEY: descending); --reverse turns each around."""
    keys = []
    for value in values or ():
        for part in value.split(","):
            part = part.strip()
            descending = part.startswith("-")
            key = part[1:].strip() if descending else part
            if not key:
                raise RunsError(f"--sort needs a key, such as datetime or -datetime, not '{printable(value)}'")
            keys.append((key, descending != reverse))
    return keys


def check_keys(asked: Iterable[Tuple[str, str]], seen: Iterable[str], all_keys: Callable[[], List[str]],
               parameters: Callable[[], Sequence[str]] = tuple) -> None:
    """Every (key, flag) asked for is a known key: one that runs writes, or that some run's
    entry has (``seen``: of the rows shown; ``all_keys()``: of every run, asked only if needed).
    ``parameters()``, the runs' parameters, are suggested too."""
    known = set(DERIVED) | set(RUNS_KEYS) | set(seen)
    unknown = [(key, flag) for key, flag in asked if key not in known]
    if not unknown:
        return
    everything = list(DERIVED) + list(RUNS_KEYS)
    everything += [key for key in all_keys() if key not in everything]
    everything += [key for key in parameters() if key not in everything]
    for key, flag in unknown:
        if key not in everything:
            hint = did_you_mean(key, everything)
            what = "column" if flag == "--columns" else "sort key"
            names = ", ".join(printable(k) for k in everything)
            raise RunsError(f"unknown {what} '{printable(key)}' in {flag}; {hint}(known: {names})")


def value_of(name: str, entry: Any, key: str) -> Any:
    """A run's value for ``key``; None when it has none. ``status`` is filled in later."""
    if key == "name":
        return name
    return entry.get(key) if isinstance(entry, dict) else None


# Sorting ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_TIME = re.compile(r"\d{4}-\d\d-\d\d([T ]\d\d:\d\d.*)?")


def sort_value(value: Any) -> Tuple[int, Any]:
    """What a value sorts by: numbers as numbers, times as times, then text; each kind
    before the next, so a column of mixed kinds still sorts."""
    if isinstance(value, (bool, int, float)):  # never NaN: sort_rows puts those after the rest
        return (0, value)
    if isinstance(value, str):
        if _TIME.fullmatch(value):
            when = moment(value)
            if when is not None:
                return (2, when)
        if _NUMBER.fullmatch(value):
            return (0, float(value))
        return (3, value)
    return (4, as_text(value))


def _is_nan(value: Any) -> bool:
    return type(value) is float and value != value


def sort_rows(rows: List[Row], keys: Sequence[Tuple[int, bool]]) -> List[Row]:
    """``rows`` sorted by the values at each (position, descending); NaN and then missing
    values last whatever the direction (a diverged run is never the best); ties keep their
    order (oldest first)."""
    for position, descending in reversed(keys):  # stable sorts, the last key first
        present = [row for row in rows if row[position] is not None and not _is_nan(row[position])]
        nans = [row for row in rows if _is_nan(row[position])]
        missing = [row for row in rows if row[position] is None]
        present.sort(key=lambda row: sort_value(row[position]), reverse=descending)
        rows = present + nans + missing
    return rows


# Writing ---------------------------------------------------------------------------------

def write(rows: Iterable[Row], columns: Sequence[str], fmt: str, width: Optional[int], fit: Optional[int] = None,
          whole: Sequence[str] = DERIVED, chosen: bool = False) -> None:
    """Print ``rows`` (values in the order of ``columns``) in format ``fmt``: a human
    table's cells cut at ``width`` characters (but the ``whole`` columns'), or with ``fit``,
    the default table fitted to a terminal that wide (fit.py; ``chosen``: the columns are
    the user's, none is left out)."""
    if fmt in ("csv", "tsv"):
        _write_csv(rows, columns, "excel" if fmt == "csv" else "excel-tab")
    elif fmt in ("json", "jsonl"):
        _write_json(rows, columns, lines=fmt == "jsonl")
    else:
        _write_table(rows, columns, fmt, width, fit, whole, chosen)


def _write_table(rows: Iterable[Row], columns: Sequence[str], fmt: str, width: Optional[int], fit: Optional[int],
                 whole: Sequence[str], chosen: bool) -> None:
    if fit is not None and fmt == "simple":
        from runs_manager.fit import fitted

        kept, cells = fitted(list(rows), columns, fit, chosen)
        if len(kept) < len(columns):
            left = ", ".join(printable(c) for i, c in enumerate(columns) if i not in kept)
            print(f"runs: note: left out to fit the terminal: {left} (--columns, or a wider terminal, shows them)",
                  file=sys.stderr)
        columns = [columns[i] for i in kept]
    else:
        cells = [[printable(as_text(v)) if column in whole and v is not None else cell(v, width)
                  for column, v in zip(columns, row)] for row in rows]
    headers = [printable(c) for c in columns]
    if fmt == "simple" and all("".join(row).isascii() for row in cells) and "".join(headers).isascii():
        print(simple_table(cells, headers))
        return
    import tabulate  # here: slow to import, and only human tables need it

    print(tabulate.tabulate(cells, headers=headers, tablefmt=fmt, disable_numparse=True))


def simple_table(cells: List[List[str]], headers: List[str]) -> str:
    """tabulate's "simple" table of ASCII text, character for character (tests/test_tabular.py
    compares them), in a tenth of its time: tabulate infers every cell's type first."""
    widths = [len(h) + 2 for h in headers]  # tabulate's minimum padding of headers
    cells = [[c.strip() for c in row] for row in cells]  # tabulate strips cells, not headers
    for row in cells:
        widths = [w if w >= len(c) else len(c) for w, c in zip(widths, row)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _write_csv(rows: Iterable[Row], columns: Sequence[str], dialect: str) -> None:
    import csv

    # Lines end in \n, so the writer no longer quotes a lone \r by itself: rows holding one are quoted whole.
    writer = csv.writer(sys.stdout, dialect=dialect, lineterminator="\n")
    careful = csv.writer(sys.stdout, dialect=dialect, lineterminator="\n", quoting=csv.QUOTE_ALL)
    import itertools

    body = (["" if v is None else _encodable(as_text(v)) for v in row] for row in rows)
    for cells in itertools.chain([[_encodable(c) for c in columns]], body):  # a row at a time
        (careful if any("\r" in c for c in cells) else writer).writerow(cells)


def _write_json(rows: Iterable[Row], columns: Sequence[str], lines: bool) -> None:
    out = sys.stdout
    first = True
    if not lines:
        out.write("[")
    for row in rows:
        text = json_text(dict(zip(columns, row)))
        if lines:
            out.write(text + "\n")
        else:
            out.write(("\n" if first else ",\n") + text)
        first = False
    if not lines:
        out.write("\n]\n" if not first else "]\n")


def json_text(value: Any) -> str:
    """``value`` as one line of JSON, whatever a hand edit put in it."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN or infinity, which JSON cannot hold: written as text
        return json_text(_finite(value))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a hand edit: JSON's own \\u escape
            return json.dumps(_finite(value), ensure_ascii=True, allow_nan=False)
        # Characters that str.splitlines() and JavaScript take for line ends (only ever inside strings here).
        for char in _LINE_ENDS:
            if char in text:
                text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def _finite(value: Any) -> Any:
    """NaN and infinities, which JSON cannot hold, as the text the table shows for them
    (Infinity, -Infinity, NaN): one spelling in every format."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _encodable(text: str) -> str:
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


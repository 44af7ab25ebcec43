"""`runs logs NAME [-f] [-n N]`: what a run's program wrote to its terminal."""
from __future__ import annotations

import os
import sys

from runs_manager import flags
from runs_manager.errors import RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, BinaryIO, Optional

    from runs_manager.settings import Settings

NAME = "logs"
HELP = "print a run's log"
FOLLOW_POLL = 0.1  # seconds between reads of a growing log
STATUS_POLL = 0.5  # seconds between checks whether the run is still running
BLOCK = 1 << 16


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME, help=HELP,
        description="Print everything run NAME's program wrote to its terminal (<runs-dir>/logs/NAME.log).",
    )
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing as the log grows, until the run ends")
    parser.add_argument("-n", "--lines", type=_count, metavar="N", help="print only the last N lines first")
    flags.add(parser, "runs-dir", "db-filename")
    parser.set_defaults(run=lambda args, settings: logs(settings, args.name, args.follow, args.lines))


def _count(text: str) -> int:
    import argparse

    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"-n takes a whole number of lines, not '{text}'")
    return int(text)


def logs(settings: Settings, name: str, follow: bool, lines: Optional[int]) -> int:
    from runs_manager.runtime import runfiles
    from runs_manager.commands.lookup import find
    from runs_manager.output import printable

    from runs_manager import fsutil, names

    entry = find(settings, name)
    path = runfiles.log_path(settings, name)
    if not names.is_valid(name) or not fsutil.is_inside(path, settings.runs_dir):
        # A hand-edited name ('../x') or a planted link: never read outside the runs directory.
        raise RunsError(f"run '{printable(name)}' has no log runs can read: its name or a link leads outside {settings.runs_dir}")
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        if "launcher" not in entry:
            raise RunsError(f"run '{printable(name)}' has no log: it was recorded before runs kept logs") from None
        from runs_manager.runtime.status import is_queued

        if is_queued(entry):
            raise RunsError(f"run '{printable(name)}' is queued and has not started: it has no log yet") from None
        raise RunsError(f"the log of run '{printable(name)}' is missing ({path})") from None
    except OSError as e:
        raise RunsError(f"cannot read {path}: {e.strerror}") from None
    out = sys.stdout.buffer
    with f:
        if lines is not None:
            f.seek(_start_of_last_lines(f, lines))
        _copy(f, out)
        if follow:
            _follow(settings, name, entry.get("datetime"), f, out)
    return 0


def _start_of_last_lines(f: BinaryIO, lines: int) -> int:
    """The offset where the last ``lines`` lines of ``f`` begin (a final newline ends a line)."""
    end = f.seek(0, os.SEEK_END)
    pos, newlines = end, 0
    if lines == 0:
        return end
    while pos > 0:
        step = min(BLOCK, pos)
        f.seek(pos - step)
        block = f.read(step)
        if pos == end and block.endswith(b"\n"):
            block = block[:-1]  # the newline that ends the last line
        for i in range(len(block) - 1, -1, -1):
            if block[i] == 0x0A:
                newlines += 1
                if newlines == lines:
                    return pos - step + i + 1
        pos -= step
    return 0


def _copy(f: BinaryIO, out: BinaryIO) -> None:
    while True:
        block = f.read(BLOCK)
        if not block:
            break
        out.write(block)
    out.flush()


def _follow(settings: Settings, name: str, started: Any, f: BinaryIO, out: BinaryIO) -> None:
    """Print what is appended until the run is no longer running."""
    import time

    from runs_manager.runtime import runs, status

    checked = 0.0
    while True:
        _copy(f, out)
        if time.monotonic() - checked >= STATUS_POLL:
            checked = time.monotonic()
            entry = runs.database(settings).read(lambda index: index.entry(name))
            if entry is None or entry.get("datetime") != started:
                return  # deleted (or made anew) meanwhile
            if status.derive(settings, [(name, entry)])[name] != "running":
                _copy(f, out)  # the last words
                return
        time.sleep(FOLLOW_POLL)

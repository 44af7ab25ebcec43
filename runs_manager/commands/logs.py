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
    f = _open(settings, name, entry, path, follow)
    out = sys.stdout.buffer
    try:
        if lines is not None:
            f.seek(_start_of_last_lines(f, lines))
        _copy(f, out)
        if follow:
            f = _follow(settings, name, entry.get("datetime"), f, out, path)
    finally:
        f.close()
    return 0


WAITING = ("queued", "pending", "starting")  # statuses of a run whose program has not started yet


def _open(settings: Settings, name: str, entry: Any, path: str, follow: bool) -> BinaryIO:
    """The run's log; with ``follow``, a run that has not started yet is waited for (said once)."""
    import time

    from runs_manager.output import printable

    said = False
    while True:
        try:
            return open(path, "rb")
        except FileNotFoundError:
            if "launcher" not in entry:
                raise RunsError(f"run '{printable(name)}' has no log: it was recorded before runs kept logs") from None
            state = _status(settings, name, entry.get("datetime"))
            if not follow or state not in WAITING:
                if state == "queued":
                    raise RunsError(f"run '{printable(name)}' is queued and has not started: it has no log yet") from None
                raise RunsError(f"the log of run '{printable(name)}' is missing ({path})") from None
        except OSError as e:
            raise RunsError(f"cannot read {path}: {e.strerror}") from None
        said = said or _say_waiting(name, state)
        time.sleep(STATUS_POLL)


def _say_waiting(name: str, state: Optional[str]) -> bool:
    """Say once that the run has not started yet; True, for the caller to remember it said so."""
    from runs_manager.output import printable

    print(f"runs: run '{printable(name)}' is {state}; waiting for it to start ...", file=sys.stderr, flush=True)
    return True


def _status(settings: Settings, name: str, started: Any) -> Optional[str]:
    """The run's status now; None if it was deleted (or made anew) meanwhile."""
    from runs_manager.runtime import runs, status

    entry = runs.database(settings).read(lambda index: index.entry(name))
    if entry is None or entry.get("datetime") != started:
        return None
    return status.derive(settings, [(name, entry)])[name]


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


def _follow(settings: Settings, name: str, started: Any, f: BinaryIO, out: BinaryIO, path: str) -> BinaryIO:
    """Print what is appended until the run is no longer running (or waiting to start). A
    log emptied (``: > LOG``) is read again from its start, and one replaced by another
    file is followed in the new one, each with a note, as ``tail -F`` does. Returns the file
    it reads at the end."""
    import time

    checked = 0.0
    said = False
    while True:
        _copy(f, out)
        f = _reopened(f, path, name)
        if time.monotonic() - checked >= STATUS_POLL:
            checked = time.monotonic()
            state = _status(settings, name, started)
            if state in WAITING:
                said = said or (state != "starting" and _say_waiting(name, state))
            elif state != "running":
                _copy(f, out)  # the last words (none if it was deleted or made anew meanwhile)
                return f
        time.sleep(FOLLOW_POLL)


def _reopened(f: BinaryIO, path: str, name: str) -> BinaryIO:
    """``f``, read again from its start if it was truncated; or the file now at ``path`` if
    the log was replaced (another inode there)."""
    from runs_manager.output import printable

    try:
        if os.stat(path).st_ino != os.fstat(f.fileno()).st_ino:
            replacement = open(path, "rb")
            f.close()
            print(f"runs: note: the log of '{printable(name)}' was replaced; following the new one", file=sys.stderr)
            return replacement
    except OSError:
        return f  # gone for now (a delete, a rename): the run's status says what next
    if os.fstat(f.fileno()).st_size < f.tell():
        f.seek(0)
        print(f"runs: note: the log of '{printable(name)}' was truncated; following it from its new start", file=sys.stderr)
    return f

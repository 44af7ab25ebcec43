"""The `runs` command: parses the command line and hands each subcommand to its module."""
from __future__ import annotations

import argparse
import os
import sys

from runs_manager import __version__, flags
from runs_manager.commands import delete, list as list_, lookup, new, reproduce, table
from runs_manager.errors import Interrupted, RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs start-up time that `runs --help` cannot spare
    from typing import NoReturn, Optional, Sequence

COMMANDS = (new, delete, list_, table, lookup, reproduce)


class UsageError(RunsError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        # One line, like every other error, instead of argparse's usage block.
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="runs",
        description="Record, start and look up machine-learning runs. "
        "Settings come from ./.runsrc, overridden by flags after the subcommand.",
    )
    parser.add_argument("--version", action="version", version=f"runs {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for command in COMMANDS:
        if command.NAME == chosen:
            command.add_parser(subparsers)
        else:  # only listed in `runs --help`: building every parser costs start-up time
            subparsers.add_parser(command.NAME, help=command.HELP)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        _require_utf8(argv)
        parser = _parser(argv)
        args = parser.parse_args(argv)
        if not hasattr(args, "run"):
            parser.print_help()
            return 2
        from runs_manager.settings import Settings

        return int(args.run(args, Settings.load(flags.given(args))))
    except RunsError as e:
        print(f"runs: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1
    except KeyboardInterrupt:
        return 130
    except Interrupted as e:
        return _stop_by(e.signum)
    except BrokenPipeError:
        # The reader went away (runs list | head): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:  # a failure no check foresaw (a full disk, a permission): one line, no traceback
        where = f": {e.filename}" if e.filename else ""
        print(f"runs: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1


def _require_utf8(argv: Sequence[str]) -> None:
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "backslashreplace").decode("utf-8")
            raise RunsError(f"argument '{shown}' is not UTF-8 text; names, commands and descriptions must be") from None


def _stop_by(signum: int) -> int:
    """End the process by ``signum`` (a hang-up or kill request held back during a change)."""
    import signal

    if signum == signal.SIGINT:
        return 130
    sys.stdout.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return 128 + signum


if __name__ == "__main__":
    from runs_manager.__main__ import console

    console()

"""The `runs` command: parses the command line and hands each subcommand to its module."""
from __future__ import annotations

import argparse
import os
import sys

from runs_manager import __version__, flags
from runs_manager.commands import delete, describe, diff, kill, list as list_, logs, lookup, mv, new, reproduce, table
from runs_manager.commands import completion, metrics, resume, tensorboard
from runs_manager.errors import Interrupted, RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs start-up time that `runs --help` cannot spare
    from typing import Any, List, NoReturn, Optional, Sequence, Tuple

COMMANDS = {
    command.NAME: command
    for command in (new, delete, list_, table, metrics, lookup, reproduce, diff, logs, kill, mv, describe, resume, tensorboard,
                    completion)
}


class UsageError(RunsError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other error, instead of argparse's usage block.
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def _get_values(self, action: argparse.Action, arg_strings: List[str]) -> Any:
        # Python 3.11's argparse drops a value that is '--' (`--pattern=--`, or COMMAND in
        # `runs new -- a --`), leaving [] where a string belongs. A one-word slice is the
        # value itself: the separator is only ever given along with one.
        if action.nargs is None and arg_strings == ["--"]:
            value = self._get_value(action, "--")
            self._check_value(action, value)
            return value
        return super()._get_values(action, arg_strings)


class _Formatter(argparse.RawTextHelpFormatter):
    """Help for `runs` itself, laid out by hand: argparse would import shutil and textwrap."""

    def __init__(self, prog: str) -> None:
        try:
            width = os.get_terminal_size(sys.stdout.fileno()).columns
        except (OSError, ValueError):
            width = 80
        super().__init__(prog, width=min(width, 100) - 2)


class _Subcommands:
    """Makes a command module's `add_parser(subparsers)` build a parser of its own.

    `runs` parses in two steps, the command name and then the command's own arguments, so
    that only the chosen command's parser is ever built (start-up time).
    """

    def __init__(self) -> None:
        self.parser: Optional[argparse.ArgumentParser] = None

    def add_parser(self, name: str, help: str = "", **kwargs: Any) -> argparse.ArgumentParser:
        self.parser = _Parser(prog=f"runs {name}", **kwargs)
        return self.parser


def _top_parser() -> argparse.ArgumentParser:
    width = max(len(name) for name in COMMANDS)
    listing = "\n".join(f"  {name:<{width}} {command.HELP}" for name, command in COMMANDS.items())
    parser = _Parser(
        prog="runs",
        usage="runs [-h] [--version] COMMAND ...",
        description="Record, start and look up machine-learning runs.\n"
        "Settings come from the project's .runsrc (here or in a directory above, up to the\n"
        "git work tree's top), overridden by flags after the command.",
        epilog=f"commands:\n{listing}\n\n'runs COMMAND --help' describes each.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"runs {__version__}")
    parser.add_argument("command", metavar="COMMAND", nargs="?", choices=COMMANDS, help=argparse.SUPPRESS)
    return parser


def _split(argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    """``runs``'s own arguments up to the command name, and the command's arguments.

    Split by hand: argparse would drop a '--' that follows the command name.
    """
    for i, arg in enumerate(argv):
        if not arg.startswith("-"):
            return list(argv[: i + 1]), list(argv[i + 1 :])
    return list(argv), []


def command_parser(name: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name`` (only it is built)."""
    subcommands = _Subcommands()
    COMMANDS[name].add_parser(subcommands)
    assert subcommands.parser is not None
    subcommands.parser.set_defaults(commands=COMMANDS)  # `runs completion` lists them: given, not imported
    return subcommands.parser


def parse(argv: Sequence[str]) -> Optional[argparse.Namespace]:
    """The command line, parsed (None when it names no command); a usage error raises
    UsageError, and --help and --version exit as argparse makes them."""
    own, rest = _split(argv)
    chosen = _top_parser().parse_args(own)
    if chosen.command is None:
        return None
    return command_parser(chosen.command).parse_args(flags.joined_pairs(rest))


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        _require_utf8(argv)
        args = parse(argv)
        if args is None:
            _top_parser().print_help()
            return 2
        from runs_manager.settings import RUNSRC, Settings

        runsrc = None if getattr(args, "no_runsrc", False) else RUNSRC
        return int(args.run(args, Settings.load(flags.given(args), runsrc=runsrc)))
    except RunsError as e:
        print(f"runs: error: {' '.join(str(e).splitlines())}", file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1
    except KeyboardInterrupt:
        return 130
    except Interrupted as e:
        return _stop_by(e.signum)
    except BrokenPipeError:
        # The reader went away (runs list | head): stop quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
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
            raise RunsError(f"argument '{shown}' is not UTF-8 text (names, commands and descriptions must be UTF-8)") from None


def _stop_by(signum: int) -> int:
    """End the process by ``signum`` (a hang-up or kill request held back during a change)."""
    import signal

    if signum == signal.SIGINT:
        return 130
    sys.stdout.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return 128 + signum


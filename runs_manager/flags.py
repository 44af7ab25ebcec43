"""The command-line forms of the ``.runsrc`` keys (light: imported for every command)."""
from __future__ import annotations

import argparse

# Every key a .runsrc may hold; all but extra-flags are also flags after the subcommand.
KEYS = (
    "runs-dir",
    "db-filename",
    "tb-dir-flag",
    "save-path-flag",
    "column-width",
    "virtualenv-path",
    "extra-flags",
    "allow-dirty",
    "launcher",
    "sbatch-args",
    "keep-sessions",
    "snapshot",
)
# Keys whose flag takes no value: given, it is true.
SWITCHES = ("allow-dirty",)

_HELP = {
    "runs-dir": "directory for the database, TensorBoard logs and checkpoints (default .runs/)",
    "db-filename": "file name of the database inside the runs directory (default .runs.yml)",
    "tb-dir-flag": "flag that passes the run's TensorBoard directory to the program; None for no flag",
    "save-path-flag": "flag that passes the run's checkpoint path to the program; None for no flag",
    "column-width": "cut table cells longer than this many characters (default: fit the terminal, 30 elsewhere; 0: never cut)",
    "virtualenv-path": "virtualenv to activate before the program starts",
    "allow-dirty": "start from uncommitted changes, stored as <runs-dir>/patches/NAME.patch for reproduce",
    "launcher": "where runs start: tmux (default) or slurm (submitted with sbatch)",
    "sbatch-args": "sbatch options for --launcher slurm, as one quoted string: '--partition=gpu --gres=gpu:1' "
    "(added after .runsrc's sbatch-args)",
    "snapshot": "run from a read-only snapshot of the recorded code (commit and patch): by default (auto) the runs "
    "that do not start at once do (queued runs, Slurm jobs)",
    "keep-sessions": "which finished runs keep their tmux session open: always, single (default: runs not made by "
    "--grid; a sweep's output is in its logs) or never",
}


def add(parser: argparse.ArgumentParser, *keys: str) -> None:
    """Add the command-line forms of ``.runsrc`` keys to a subcommand's parser."""
    for key in keys:
        if key == "snapshot":  # two switches for one key: --snapshot (always) and --no-snapshot (never)
            parser.add_argument("--snapshot", dest="snapshot", action="store_const", const="always",
                                default=argparse.SUPPRESS, help=_HELP[key])
            parser.add_argument("--no-snapshot", dest="snapshot", action="store_const", const="never",
                                default=argparse.SUPPRESS, help="start even a queued run or a Slurm job in the work tree "
                                "as it is when it starts")
            continue
        if key in SWITCHES:
            parser.add_argument(
                "--" + key, dest=key.replace("-", "_"), action="store_const", const=True, default=argparse.SUPPRESS, help=_HELP[key]
            )
            continue
        parser.add_argument(
            "--" + key, dest=key.replace("-", "_"), metavar="VALUE", default=argparse.SUPPRESS, help=_HELP[key]
        )


# The options that choose runs and how they are printed, shared by the commands that take them.
STATUSES_SHOWN = "queued, pending, starting, running, finished, failed, killed, lost, orphaned, unknown"  # outcome.STATUSES
TABLE_FORMATS = "plain (the default), a tabulate format (github, grid, rst, ...), or csv, tsv, json, jsonl: whole values, for programs"


def add_selection(parser: argparse.ArgumentParser, what: str = "runs") -> None:
    """--pattern and --status: the runs a listing shows."""
    parser.add_argument("--pattern", "-p", metavar="REGEX", help=f"only {what} whose names this regular expression matches in full")
    parser.add_argument("--status", "-s", action="append", metavar="STATUS",
                        help=f"only runs in this state: {STATUSES_SHOWN} (repeat it, or separate states with commas)")


def add_table_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", "-f", default="plain", metavar="FORMAT", help=TABLE_FORMATS)


def given(args: argparse.Namespace) -> dict[str, object]:
    """The ``.runsrc`` keys the user gave as flags (absent ones are not in ``args``)."""
    return {key: getattr(args, key.replace("-", "_")) for key in KEYS if hasattr(args, key.replace("-", "_"))}


# Options that take two words (--extra-flag FLAG VALUE). argparse would take a FLAG such as
# --log-dir for an option of its own, so each pair is joined into one word first.
PAIRS = ("--extra-flag",)
_JOIN = "\x1f"  # no one types it


def joined_pairs(argv: list[str]) -> list[str]:
    """``argv`` with each ``--extra-flag A B`` as the single word argparse can take."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return out + argv[i:]
        if word in PAIRS and i + 2 < len(argv):
            out.append(f"{word}={argv[i + 1]}{_JOIN}{argv[i + 2]}")
            i += 3
            continue
        out.append(word)
        i += 1
    return out


def pair(text: str) -> list[str]:
    """The type of a PAIRS option: [FLAG, VALUE]."""
    flag, joined, value = text.partition(_JOIN)
    if not joined:
        raise argparse.ArgumentTypeError(f"takes two words, a flag and its value, not '{text}'")
    return [flag, value]

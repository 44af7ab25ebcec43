"""`runs reproduce NAME`: the commands that rerun a run exactly."""
from __future__ import annotations

import sys

from runs_manager import flags
from runs_manager.commands.lookup import find
from runs_manager.errors import RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, List

    from runs_manager.settings import Settings

NAME = "reproduce"
HELP = "print commands that rerun a run"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME, help=HELP, description="Print commands that check out the run's commit, re-apply the uncommitted "
        "changes it started from (if any; the patch is checked against its SHA-256 and the commit first) and start it again."
    )
    parser.add_argument("name", metavar="NAME")
    flags.add(parser, "runs-dir", "db-filename")
    parser.set_defaults(run=lambda args, settings: reproduce(settings, args.name))


def reproduce(settings: Settings, name: str) -> int:
    import shlex

    from runs_manager.output import printable

    entry = find(settings, name)
    for key in ("commit", "command"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise RunsError(f"run '{printable(name)}' has no {key} recorded, so it cannot be reproduced")
    description = entry.get("description")
    description = "" if description is None else str(description)
    if any(printable(text) != text.replace("\n", "\\n").replace("\t", "\\t") for text in (name, entry["command"], description)):
        # Quoted exactly, but a terminal would act on them: what you see may not be what you paste.
        print("runs: note: the command or description holds control characters", file=sys.stderr)
    apply = _apply_line(settings, name, entry) if entry.get("patch") is not None else None
    # Every word is quoted so the lines round-trip through a POSIX shell, whatever they hold.
    print("To reproduce:")
    print(f" git checkout {shlex.quote(entry['commit'])}")
    if apply is not None:
        print(f" {apply}")
    words = [shlex.quote(name), shlex.quote(entry["command"])]
    if description:
        words.append("--description=" + shlex.quote(description))
    words += _setting_words(name, entry)
    if apply is not None:
        words.append("--allow-dirty")
    if entry.get("launcher") == "slurm":  # resubmitted as it was, with the same sbatch options
        words.append("--launcher=slurm")
        args = entry.get("sbatch_args")
        if isinstance(args, list) and args:
            words.append("--sbatch-args=" + shlex.quote(shlex.join(str(arg) for arg in args)))
    if name.startswith("-") or entry["command"].startswith("-"):
        words = words[2:] + ["--"] + words[:2]  # so `runs new` does not take them for options
    print(" runs new " + " ".join(words))
    return 0


def _setting_words(name: str, entry: Any) -> List[str]:
    """``--no-runsrc`` and the launch settings the run had that differ from the built-in
    defaults: the line launches the same program line whatever .runsrc holds later."""
    import shlex

    from runs_manager.output import printable

    recorded = entry.get("settings")
    if not isinstance(recorded, dict):
        print(f"runs: note: run '{printable(name)}' was recorded before runs kept its launch settings; the line "
              "below uses the .runsrc and flags in effect when you run it", file=sys.stderr)
        return []
    words = ["--no-runsrc"]
    for key in ("runs_dir", "db_filename", "tb_dir_flag", "save_path_flag", "virtualenv_path"):
        if key in recorded:
            value = recorded[key]
            words.append(f"--{key.replace('_', '-')}=" + shlex.quote("None" if value is None else str(value)))
    extra = recorded.get("extra_flags")
    for pair in extra if isinstance(extra, list) else ():
        if isinstance(pair, list) and len(pair) == 2:
            words += ["--extra-flag", shlex.quote(str(pair[0])), shlex.quote(str(pair[1]))]
    return words


def _apply_line(settings: Settings, name: str, entry: Any) -> str:
    """`git apply PATCH` for a run started from uncommitted changes, once the patch is
    known to be the one recorded and to apply to the run's commit."""
    import os
    import shlex

    from runs_manager import names
    from runs_manager.runtime import patches, runfiles
    from runs_manager.output import printable

    if not names.is_valid(name):  # a hand edit: derive no path from it
        raise RunsError(f"'{printable(name)}' is not a valid run name, so its patch cannot be found")
    path = runfiles.patch_path(settings, name)  # where it is now, wherever the runs directory was given from
    data = patches.read_verified(path, entry.get("patch_sha256"), printable(name))
    top = patches.check_applies(os.getcwd(), entry["commit"], path)
    options = "".join(o + " " for o in patches.apply_options(top))
    for submodule, commit in patches.submodule_commits(data):
        print(f"runs: note: the run's submodule {printable(submodule)} was at commit {commit}; its contents are not "
              f"in the patch, and git apply does not check it out: after the lines below, run "
              f"git -C {shlex.quote(os.path.relpath(os.path.join(top, submodule)))} checkout {commit}", file=sys.stderr)
    if os.path.realpath(top) == os.path.realpath(os.getcwd()):
        return f"git apply {options}{shlex.quote(path)}"
    # From a subdirectory `git apply` would skip (and misplace) the paths of the whole tree.
    return f"git -C {shlex.quote(os.path.relpath(top))} apply {options}{shlex.quote(os.path.relpath(os.path.abspath(path), top))}"

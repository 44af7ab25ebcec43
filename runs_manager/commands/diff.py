"""`runs diff A B`: what differs between two runs, their code included."""
from __future__ import annotations

import sys

from runs_manager import flags

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, Dict, List, Optional, Tuple

    from runs_manager.settings import Settings

NAME = "diff"
HELP = "show what differs between two runs"

# What makes a run what it is, shown first and in this order; then any other field.
FIRST = ("command", "launched", "description", "commit")
# Fields every run has its own of (its start, its session), and code_dir (which follows from
# the commit and patch, compared already): named in one line, not compared.
OWN = ("datetime", "ended", "tmux_session", "tmux_session_id", "tmux_session_created", "tmux_server_pid", "code_dir")
PATCH = ("patch", "patch_sha256")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME, help=HELP,
        description="Show the fields in which runs A and B differ: their parameters first, then command, description, commit (with git diff "
        "--stat between the two commits when both are in this repository), the uncommitted changes each started "
        "from (a diff of the two patches), and any other recorded field.",
    )
    parser.add_argument("a", metavar="A")
    parser.add_argument("b", metavar="B")
    flags.add(parser, "runs-dir", "db-filename")
    parser.set_defaults(run=lambda args, settings: diff(settings, args.a, args.b))


def diff(settings: Settings, a: str, b: str) -> int:
    from runs_manager.commands.lookup import find
    from runs_manager.output import printable

    entries = {a: find(settings, a), b: find(settings, b)}  # an unknown name: a one-line error
    if not all(isinstance(e, dict) for e in entries.values()):
        from runs_manager.errors import RunsError

        raise RunsError("a run's entry is not a mapping of fields; fix it in the database file")
    sections = _parameters(settings, a, b, entries)
    keys = list(FIRST) + sorted({k for e in entries.values() for k in e} - set(FIRST) - set(OWN) - set(PATCH))
    for key in keys:
        sections += _field(settings, key, a, b, entries)
    sections += _patch(settings, a, b, entries)
    pa, pb = printable(a), printable(b)
    own = [k for k in OWN if entries[a].get(k) != entries[b].get(k)]
    if not sections:
        print(f"Runs '{pa}' and '{pb}' are the same: same command, description, commit and changes"
              + (f" (each has its own {', '.join(own)})." if own else "."))
        return 0
    print(f"Runs '{pa}' and '{pb}' differ:")
    for section in sections:
        sys.stdout.write(section if section.endswith("\n") else section + "\n")
    if own:
        print(f"(each also has its own {', '.join(own)})")
    return 0


def _parameters(settings: Settings, a: str, b: str, entries: Dict[str, Any]) -> List[str]:
    """The parameters whose values differ, by name: ``lr: 0.1 -> 0.01``."""
    from runs_manager.text import params
    from runs_manager.output import as_text, printable

    own = params.own_flags(settings)
    pa, pb = (params.parameters(entries[n], own) for n in (a, b))
    absent = object()
    lines = []
    for key in sorted(set(pa) | set(pb)):
        va, vb = pa.get(key, absent), pb.get(key, absent)
        if not params.same(va, vb):
            shown = ["(none)" if v is absent else printable(as_text(v)) for v in (va, vb)]
            lines.append(f"  {printable(key)}: {shown[0]} -> {shown[1]}\n")
    return [f"parameters ({printable(a)} -> {printable(b)}):\n" + "".join(lines)] if lines else []


def _value(entry: Dict[str, Any], key: str) -> str:
    from runs_manager.output import as_text, printable

    return "(none)" if key not in entry else printable(as_text(entry[key]))


def _field(settings: Settings, key: str, a: str, b: str, entries: Dict[str, Any]) -> List[str]:
    from runs_manager.output import printable

    ea, eb = entries[a], entries[b]
    if key == "launched" and _launched(settings, a, ea) == _launched(settings, b, eb):
        return []  # the same command line but for each run's own paths
    if ea.get(key) == eb.get(key):
        return []
    text = f"{key}:\n  {printable(a)}: {_value(ea, key)}\n  {printable(b)}: {_value(eb, key)}\n"
    if key == "commit" and isinstance(ea.get(key), str) and isinstance(eb.get(key), str):
        text += _stat(ea[key], eb[key])
    return [text]


def _launched(settings: Settings, name: str, entry: Dict[str, Any]) -> Any:
    """The launched command line with the run's own paths (which contain its name) left out."""
    import shlex

    from runs_manager.runtime import runfiles

    line = entry.get("launched")
    if not isinstance(line, str):
        return line
    own = runfiles.paths(settings, name)  # as placeholders give them: absolute
    for path, mark in (
        (own["tb_dir"], "<tb-dir>"), (own["save_path"], "<save-path>"),  # first: they hold the relative ones
        (runfiles.tensorboard_dir(settings, name), "<tb-dir>"), (runfiles.checkpoint_path(settings, name), "<save-path>"),
    ):
        line = line.replace(" " + shlex.quote(path), " " + mark).replace(path, mark)
    return line


def _stat(commit_a: str, commit_b: str) -> str:
    """`git diff --stat` between the commits, indented; or why there is none."""
    import os

    from runs_manager import git
    from runs_manager.errors import RunsError

    try:
        for commit in (commit_a, commit_b):
            git.call(os.getcwd(), ["cat-file", "-e", commit + "^{commit}"])
        out = git.call(os.getcwd(), ["-c", "core.quotepath=off", "diff", "--stat", "--no-color", "--no-ext-diff", commit_a, commit_b, "--"])
    except RunsError:
        return "  (not both commits are in this repository: no diff of them)\n"
    return "".join("  " + line + "\n" for line in out.decode("utf-8", "replace").splitlines())


def _patch(settings: Settings, a: str, b: str, entries: Dict[str, Any]) -> List[str]:
    """The patches each run started from: named, and diffed when they differ."""
    import os

    from runs_manager import git, names
    from runs_manager.runtime import runfiles
    from runs_manager.output import printable

    shas = [entries[n].get("patch_sha256") if "patch" in entries[n] else None for n in (a, b)]
    if shas[0] == shas[1]:
        return []
    text = "patch:\n"
    paths: List[str] = []
    for name, sha in zip((a, b), shas):
        path = runfiles.patch_path(settings, name) if names.is_valid(name) else ""
        state, readable = _patch_state(path, sha)
        text += f"  {printable(name)}: {state}\n"
        paths.append(path if readable else os.devnull)
    out = git.call(os.getcwd(), ["diff", "--no-index", "--no-color", "--no-ext-diff", "--no-textconv", "--", *paths], ok=(0, 1))
    return [text + out.decode("utf-8", "replace")]


def _patch_state(path: str, sha: Optional[str]) -> Tuple[str, bool]:
    """What to say of a run's patch, and whether there is a file to diff."""
    import hashlib

    from runs_manager.runtime import patches

    if sha is None:
        return "none (started from a clean tree)", False
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return f"{path or 'its patch'} is missing", False
    size = patches.size_text(len(data))
    if hashlib.sha256(data).hexdigest() != sha:
        return f"{path} ({size}) has changed since the run stored it", True
    return f"{path} ({size})", True

"""`runs new NAME COMMAND`: record a run and start it in a tmux session of its own."""
from __future__ import annotations

import os

from runs_manager import flags
from runs_manager.errors import RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, Dict, List, Mapping

    from runs_manager.database import Database, Transaction
    from runs_manager.runs import RunSet
    from runs_manager.settings import Settings

SHOW_DIRTY = 10

NAME = "new"
HELP = "record a run and start it in tmux"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME, help=HELP,
        description="Record a run (command, commit, time, host, description) and start it in a tmux session. "
        "The program gets --tb-dir <runs-dir>/tensorboard/NAME/ and --save-path <runs-dir>/checkpoints/NAME.",
    )
    parser.add_argument("name", metavar="NAME", help="unique name; '/' groups runs, as in sweep/lr-0.1")
    parser.add_argument("command", metavar="COMMAND", help="the command to run, as one quoted argument")
    parser.add_argument("--description", "-d", default="", help="what this run is for")
    parser.add_argument("--overwrite", action="store_true", help="delete an existing run of this name first")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask before overwriting")
    flags.add(parser, "runs-dir", "db-filename", "tb-dir-flag", "save-path-flag", "virtualenv-path")
    parser.set_defaults(
        run=lambda args, settings: new(settings, args.name, args.command, args.description, args.overwrite, args.yes)
    )


def new(settings: Settings, name: str, command: str, description: str, overwrite: bool, yes: bool) -> int:
    import shlex

    from runs_manager import git, names, runs, tmux

    # Everything that can be checked is checked before anything is written.
    problem = names.problem(name)
    if problem:
        raise RunsError(f"invalid run name: {problem}; {names.RULE}")
    if not command.strip():
        raise RunsError("the command is empty")
    directory = os.getcwd()
    commit = git.head_commit(directory)
    _require_clean(git.dirty_paths(directory, except_under=settings.runs_dir))
    tmux.require()
    outside = runs.outside_runs_dir(settings, name)
    if outside:
        raise RunsError(f"{outside} would be outside the runs directory: a symbolic link leads out of it")
    if settings.virtualenv_path:
        activate = os.path.join(os.path.expanduser(settings.virtualenv_path), "bin", "activate")
        if not os.path.isfile(activate):
            raise RunsError(f"virtualenv-path: {activate} does not exist")
    db = runs.database(settings)
    confirmed = overwrite and (yes or not _exists(db, name) or _confirm_overwrite(name))

    os.makedirs(settings.runs_dir, exist_ok=True)
    with db.writing() as txn:
        runs.ensure_gitignore(settings)
        if overwrite and txn.has(name):
            if not confirmed:
                raise RunsError(f"run '{name}' appeared while you were asked; nothing changed, try again")
            _delete(settings, txn, name)
        final = _free_name(settings, name, txn, tmux.sessions())
        if final != name:
            print(f"Run '{name}' exists; this run is named '{final}'.")
        entry = _start(settings, txn, final, command, description, commit, directory)
    print(f"Started run '{final}' at commit {commit[:12]} in tmux session '{entry['tmux_session']}'.")
    attach = "switch-client" if os.environ.get("TMUX") else "attach"
    print(f"To watch it: tmux {attach} -t {shlex.quote('=' + entry['tmux_session'])}")
    return 0


def _require_clean(dirty: List[str]) -> None:
    if not dirty:
        return
    shown = ", ".join(dirty[:SHOW_DIRTY]) + (f" and {len(dirty) - SHOW_DIRTY} more" if len(dirty) > SHOW_DIRTY else "")
    raise RunsError(
        f"the git work tree has uncommitted changes ({shown}); a run must be reproducible from its commit: "
        "commit or stash them, or add untracked files to .gitignore"
    )


def _exists(db: Database, name: str) -> bool:
    return db.read(lambda index: index.has(name))


def _confirm_overwrite(name: str) -> bool:
    from runs_manager.prompt import confirm

    if confirm(f"Run '{name}' exists. Delete it (entry, TensorBoard logs, checkpoints, tmux session) and start anew?"):
        return True
    raise RunsError(f"not confirmed; run '{name}' is unchanged")


def _delete(settings: Settings, txn: Transaction, name: str) -> None:
    from runs_manager import runs, tmux

    note = runs.stop_session(name, txn.entry(name) or {}, tmux.sessions())
    if note:
        print(f"runs: {note}")
    for note in runs.remove_files(settings, name, txn):
        print(f"runs: {note}")
    txn.remove([name])


def _free_name(settings: Settings, name: str, index: RunSet, sessions: Mapping[str, object]) -> str:
    """``name``, or if it is taken the original tool's answer: the name plus the Unix time."""
    import time

    from runs_manager import names, runs

    conflict = names.group_conflict(name, index.has, index.first_in_group)
    if conflict:
        raise RunsError(
            f"run '{conflict}' exists, so '{name}' cannot be used: a run cannot also be a group of runs ('a' and 'a/b')"
        )

    def free(candidate: str) -> bool:
        # A session or files of that name without an entry are not ours to reuse or delete.
        return (
            not index.has(candidate)
            and names.session_name(candidate) not in sessions
            and not runs.run_files(settings, candidate, index)
            and names.group_conflict(candidate, index.has, index.first_in_group) is None
        )

    if free(name):
        return name
    for candidate in names.unique_candidates(name, int(time.time())):
        if free(candidate):
            problem = names.problem(candidate)
            if problem:
                raise RunsError(f"run '{name}' exists and a unique name cannot be made from it: {problem}")
            return candidate
    raise AssertionError("unreachable")


def _start(
    settings: Settings, txn: Transaction, name: str, command: str, description: str, commit: str, directory: str
) -> Dict[str, Any]:
    import datetime

    from runs_manager import faults, interrupts, names, runs, tmux

    tb = runs.tensorboard_dir(settings, name)
    line = runs.command_line(command, runs.program_flags(settings, name))
    session = names.session_name(name)
    intent: Dict[str, Any] = {"op": "new", "name": name, "session": session}
    entry: Dict[str, Any] = {
        "command": command,
        "commit": commit,
        "datetime": datetime.datetime.now().astimezone().isoformat(),
        "description": description,
        "host": runs.host(),
        "launched": line,
        "tmux_session": session,
    }
    env, unset = runs.environment_for_session(tmux.environment())
    txn.intend(intent)
    faults.point("new:journal-written")
    with interrupts.deferred() as interrupted:
        try:
            os.makedirs(os.path.dirname(tb.rstrip(os.sep)), exist_ok=True)
            os.mkdir(tb)  # not exist_ok: the name was chosen so that it does not exist
            starting = os.path.join(tb, runs.STARTING)
            open(starting, "x").close()
            os.makedirs(os.path.dirname(runs.checkpoint_path(settings, name)), exist_ok=True)
            faults.point("new:dirs-created")
            script = runs.launch_script(name, line, tb, settings.virtualenv_path, unset)
            identity = tmux.new_session(session, directory, ["/bin/sh", "-c", script], env)
            entry.update(runs.session_fields(identity))
            intent.update(runs.session_fields(identity))
            faults.point("new:session-started")
            interrupted.check()
            txn.add(name, entry)
            os.unlink(starting)  # the program starts now
        except BaseException:
            runs.stop_session(name, entry if "tmux_session_id" in entry else {}, tmux.sessions())
            runs.remove_files(settings, name, txn)
            txn.done()
            raise
        txn.done()
    return entry

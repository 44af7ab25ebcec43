"""`runs new NAME COMMAND`: record a run and start it in a tmux session of its own."""
from __future__ import annotations

import os
import sys

from runs_manager import flags
from runs_manager.errors import RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, Dict, List, Mapping, Optional

    from runs_manager.database import Database, Transaction
    from runs_manager.interrupts import Deferred
    from runs_manager.launchers import Launcher
    from runs_manager.patches import Patch
    from runs_manager.tmux import Identity
    from runs_manager.runfiles import RunSet
    from runs_manager.settings import Settings

SHOW_DIRTY = 10

NAME = "new"
HELP = "record a run and start it in tmux"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME, help=HELP,
        description="Record a run (command, commit, time, host, description) and start it in a tmux session. "
        "The program gets --tb-dir <runs-dir>/tensorboard/NAME/ and --save-path <runs-dir>/checkpoints/NAME "
        "(or where COMMAND puts {tb_dir} and {save_path}; {name} and {runs_dir} too, {{ and }} are literal braces) "
        "and the environment variables RUNS_NAME, RUNS_TB_DIR, RUNS_SAVE_PATH and RUNS_DIR; "
        "its terminal output goes to <runs-dir>/logs/NAME.log, and its end is recorded.",
    )
    parser.add_argument("name", metavar="NAME", help="unique name; '/' groups runs, as in sweep/lr-0.1")
    parser.add_argument("command", metavar="COMMAND", help="the command to run, as one quoted argument")
    parser.add_argument("--description", "-d", default="", help="what this run is for")
    parser.add_argument("--overwrite", action="store_true", help="delete an existing run of this name first")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask before overwriting")
    flags.add(parser, "runs-dir", "db-filename", "tb-dir-flag", "save-path-flag", "virtualenv-path", "allow-dirty", "launcher", "sbatch-args")
    parser.set_defaults(
        run=lambda args, settings: new(settings, args.name, args.command, args.description, args.overwrite, args.yes)
    )


def new(settings: Settings, name: str, command: str, description: str, overwrite: bool, yes: bool) -> int:
    from runs_manager import git, interrupts, launch, launchers, names, runfiles, runs, tmux

    # Everything that can be checked is checked before anything is written.
    problem = names.problem(name)
    if problem:
        raise RunsError(f"invalid run name: {problem}; {names.RULE}")
    if not command.strip():
        raise RunsError("the command is empty")
    launch.program_line(settings, name, command)  # a wrong placeholder fails here, before anything is written
    directory = os.getcwd()
    # GitPython objects interrupted half-built complain as they are collected: the git
    # questions take milliseconds, so a Ctrl-C is acted on after them.
    with interrupts.deferred():
        commit = git.head_commit(directory)
        top = git.toplevel(directory)
        dirty = git.dirty_paths(directory, except_under=settings.runs_dir)
    _require_own_runs_dir(settings.runs_dir, top, directory)
    patch = _dirty_patch(settings, directory, dirty)
    launcher = launchers.get(settings.launcher)
    prepared = launcher.check(settings)
    outside = runfiles.outside_runs_dir(settings, name)
    if outside:
        raise RunsError(f"{outside} would be outside the runs directory: a symbolic link leads out of it")
    activate = launch.activate_script(settings)
    if activate and not os.path.isfile(activate):
        raise RunsError(f"virtualenv-path: {activate} does not exist")
    _require_storable(name, command, description)
    db = runs.database(settings)
    existed = overwrite and _exists(db, name)
    if existed and not yes:
        _confirm_overwrite(name)

    os.makedirs(settings.runs_dir, exist_ok=True)
    with db.writing() as txn:
        runfiles.ensure_gitignore(settings)
        if overwrite and txn.has(name):
            if not (existed or yes):
                raise RunsError(f"run '{name}' appeared while you were asked; nothing changed, try again")
            _delete(settings, txn, name)
        final = _free_name(settings, name, txn, tmux.sessions() if tmux.installed() else {})  # a login node may have no tmux
        # Held back from here until the run is whole or undone, and the user told which.
        with interrupts.deferred() as interrupted:
            entry = _start(settings, txn, final, command, description, commit, directory, launcher, prepared, interrupted, patch)
            if final != name:
                print(f"The name '{name}' is taken; this run is named '{final}'.")
            _print_started(final, commit, entry)
            _print_patch(settings, final, patch)
    _note_flags(settings, final, command)
    return 0


def _note_flags(settings: Settings, name: str, command: str) -> None:
    """Say, once, where the appended flags went when the command is compound."""
    from runs_manager import launch, placeholders

    flags = [flag for flag, _ in launch.program_flags(settings, name, placeholders.used(command))]
    note = launch.flags_note(command, flags) if flags else None
    if note:
        print(f"runs: note: {note}", file=sys.stderr)


def _print_started(name: str, commit: str, entry: Dict[str, Any]) -> None:
    import shlex

    if "job_id" in entry:
        print(f"Submitted run '{name}' at commit {commit[:12]} as Slurm job {entry['job_id']}.")
        print(f"Its output: runs logs -f {shlex.quote(name)}   (its state: runs lookup {shlex.quote(name)} status)")
        return
    session = entry["tmux_session"]
    print(f"Started run '{name}' at commit {commit[:12]} in tmux session '{session}'.")
    attach = "switch-client" if os.environ.get("TMUX") else "attach"
    print(f"To watch it: tmux {attach} -t {shlex.quote('=' + session)}   (its output: runs logs -f {shlex.quote(name)})")


def _require_own_runs_dir(runs_dir: str, top: str, directory: str) -> None:
    """The runs directory gets a .gitignore of '*': it must not be (or hold) the project."""
    real = os.path.realpath(runs_dir)
    for project in (top, directory):
        project = os.path.realpath(project)
        if project == real or project.startswith(real.rstrip(os.sep) + os.sep):
            raise RunsError(
                f"runs-dir {runs_dir} holds the project itself; use a directory of its own, such as .runs/"
            )


def _dirty_patch(settings: Settings, directory: str, dirty: List[str]) -> Optional[Patch]:
    """None for a clean tree (no git call more); else the changes, if --allow-dirty allows them."""
    if not dirty:
        return None
    if not settings.allow_dirty:
        shown = ", ".join(dirty[:SHOW_DIRTY]) + (f" and {len(dirty) - SHOW_DIRTY} more" if len(dirty) > SHOW_DIRTY else "")
        raise RunsError(
            f"the git work tree has uncommitted changes ({shown}); a run must be reproducible from its commit: "
            "commit or stash them, add untracked files to .gitignore, or pass --allow-dirty to store them "
            "as a patch with the run"
        )
    from runs_manager import patches

    patch = patches.make(directory, settings.runs_dir)
    if not patch.data:  # only the contents of submodules differ
        print("runs: note: only the contents of submodules differ from the commit, and runs does not capture "
              "those; the run records no patch", file=sys.stderr)
        return None
    return patch


def _print_patch(settings: Settings, name: str, patch: Optional[Patch]) -> None:
    if patch is None:
        return
    from runs_manager import patches, runfiles

    count = len(patch.changes)
    print(f"Stored the uncommitted changes ({count} file{'s' if count != 1 else ''}, {patches.size_text(len(patch.data))}) "
          f"as {runfiles.patch_path(settings, name)}; 'runs reproduce' re-applies them.")
    if patch.submodules:
        print(f"runs: note: the patch records the commit of submodule {', '.join(patch.submodules)}, "
              "not its contents: those (and changes inside it) are not captured", file=sys.stderr)


def _require_storable(name: str, command: str, description: str) -> None:
    """Refuse text YAML cannot give back exactly, before anything (an --overwrite) is done."""
    from runs_manager import yamlfile

    if yamlfile.exact_text(name, {"command": command, "description": description}) is None:
        raise RunsError("the command or description cannot be stored in YAML exactly as given")


def _exists(db: Database, name: str) -> bool:
    return db.read(lambda index: index.has(name))


def _confirm_overwrite(name: str) -> None:
    from runs_manager.prompt import confirm

    if not confirm(f"Run '{name}' exists. Delete it (entry, TensorBoard logs, checkpoints, tmux session) and start anew?"):
        raise RunsError(f"not confirmed; run '{name}' is unchanged")


def _delete(settings: Settings, txn: Transaction, name: str) -> None:
    from runs_manager import runfiles
    from runs_manager.commands.delete import stop

    notes = [stop(settings, [(name, txn.entry(name) or {})]).get(name)]
    notes += runfiles.remove(settings, name, txn)
    for note in filter(None, notes):
        print(f"runs: {note}", file=sys.stderr)
    txn.remove([name])


def _free_name(settings: Settings, name: str, index: RunSet, sessions: Mapping[str, Identity]) -> str:
    """``name``, or if it is taken the original tool's answer: the name plus the Unix time."""
    import time

    from runs_manager import names, runfiles

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
            and not runfiles.existing(settings, candidate, index)
            and names.group_conflict(candidate, index.has, index.first_in_group) is None
        )

    if free(name):
        return name
    for candidate in names.unique_candidates(name, int(time.time())):
        if free(candidate):
            problem = names.problem(candidate)
            if problem:
                raise RunsError(f"the name '{name}' is taken and a unique name cannot be made from it: {problem}")
            return candidate
    raise AssertionError("unreachable")


def _start(
    settings: Settings,
    txn: Transaction,
    name: str,
    command: str,
    description: str,
    commit: str,
    directory: str,
    launcher: Launcher,
    prepared: Any,
    interrupted: Deferred,
    patch: Optional[Patch] = None,
) -> Dict[str, Any]:
    import contextlib
    import datetime

    from runs_manager import faults, launch, names, runfiles, tmux
    from runs_manager.launchers import Start

    tb = runfiles.tensorboard_dir(settings, name)
    line = launch.program_line(settings, name, command)
    session = names.session_name(name)
    intent: Dict[str, Any] = {"op": "new", "name": name, "session": session, "host": launch.host(), "launcher": launcher.name}
    entry: Dict[str, Any] = {
        "command": command,
        "commit": commit,
        "datetime": datetime.datetime.now().astimezone().isoformat(),
        "description": description,
        "host": intent["host"],
        "launched": line,
        "launcher": launcher.name,
    }
    txn.intend(intent)
    faults.point("new:journal-written")
    try:
        if patch is not None:  # first: if it cannot be stored, nothing is started
            from runs_manager import patches

            entry["patch"] = runfiles.patch_path(settings, name)
            entry["patch_sha256"] = patch.sha256
            patches.store(entry["patch"], patch.data)
            faults.point("new:patch-written")
        os.makedirs(os.path.dirname(tb.rstrip(os.sep)), exist_ok=True)
        os.mkdir(tb)  # not exist_ok: the name was chosen so that it does not exist
        starting = os.path.join(tb, runfiles.STARTING)
        open(starting, "x").close()
        os.makedirs(os.path.dirname(runfiles.checkpoint_path(settings, name)), exist_ok=True)
        log = runfiles.log_path(settings, name)
        os.makedirs(os.path.dirname(log), exist_ok=True)
        open(log, "x").close()  # the supervisor starts only if it finds it (not undone)
        faults.point("new:dirs-created")
        fields = launcher.start(Start(settings, name, entry["datetime"], line, directory), prepared)
        entry.update(fields)
        intent.update(fields)
        txn.intend(intent)  # so that recovery can stop exactly this session
        faults.point("new:session-started")
        interrupted.check()
        txn.add(name, entry)
    except BaseException:
        if "tmux_session_id" in entry:  # only the session this process started
            launch.stop_session(name, entry, tmux.sessions())
        if "job_id" in entry:  # only the job this process submitted
            from runs_manager.launchers import slurm

            slurm.cancel(entry["job_id"])
        runfiles.remove(settings, name, txn)
        txn.done()
        raise
    # Recorded: the run is whole, whatever happens now. Its program may start.
    with contextlib.suppress(OSError):
        os.unlink(starting)
    txn.done()
    return entry

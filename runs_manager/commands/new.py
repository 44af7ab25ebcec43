"""`runs new NAME COMMAND`: record a run and start it in a tmux session of its own."""
from __future__ import annotations

import os
import sys

from runs_manager import flags
from runs_manager.errors import RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, Dict, List, Optional

    from runs_manager.store.database import Database, Transaction
    from runs_manager.launchers import Launcher
    from runs_manager.runtime.patches import Patch
    from runs_manager.runtime.snapshots import Code
    from runs_manager.settings import Settings
    from runs_manager.text.sweeps import Member

NAME = "new"
HELP = "record a run and start it in tmux"


def add_parser(subparsers: Any) -> None:
    import argparse

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
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask before overwriting (or before a sweep of over 10,000 runs)")
    sweep = parser.add_argument_group("sweeps", "a run for each combination of values, each value written where "
                                      "COMMAND (and NAME, --description) has {KEY}")
    sweep.add_argument("--grid", action="append", metavar="KEY=V1,V2", help="values of {KEY}, separated by commas (repeat it for more keys)")
    sweep.add_argument("--grid-file", metavar="FILE", help="a YAML mapping of keys to lists of values (for values with commas)")
    sweep.add_argument("--max-parallel", type=_positive, metavar="N",
                       help="start at most N of these runs at once; the others are queued and start as earlier ones end")
    sweep.add_argument("--gpus", metavar="0,1,...",
                       help="give each run one of these GPUs (CUDA_VISIBLE_DEVICES), never one that a live run has; "
                       "runs wait in the queue for a free one")
    flags.add(parser, "runs-dir", "db-filename", "tb-dir-flag", "save-path-flag", "virtualenv-path", "allow-dirty", "launcher",
              "sbatch-args", "keep-sessions", "snapshot")
    parser.add_argument("--extra-flag", dest="extra_flags", action="append", type=flags.pair, metavar="FLAG VALUE",
                        default=argparse.SUPPRESS, help="pass FLAG VALUE to the program too (repeatable; added after "
                        ".runsrc's extra-flags; VALUE takes placeholders such as {name})")
    parser.add_argument("--no-runsrc", action="store_true", help="ignore .runsrc: only the built-in defaults and these flags "
                        "(what 'runs reproduce' prints, so that .runsrc changed later cannot change the launch)")
    parser.set_defaults(
        run=lambda args, settings: new(settings, args.name, args.command, args.description, args.overwrite, args.yes,
                                       Sweep(args.grid, args.grid_file, args.max_parallel, args.gpus))
    )


def _positive(text: str) -> int:
    import argparse

    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


class Sweep:
    """The sweep options of `runs new`: a grid, and how its runs are queued."""

    def __init__(self, grid: Optional[List[str]] = None, grid_file: Optional[str] = None,
                 max_parallel: Optional[int] = None, gpus: Optional[str] = None) -> None:
        self.grid, self.grid_file, self.max_parallel, self.gpus = grid, grid_file, max_parallel, gpus

    @property
    def is_grid(self) -> bool:
        return bool(self.grid) or self.grid_file is not None

    @property
    def queues(self) -> bool:
        return self.max_parallel is not None or self.gpus is not None


def new(settings: Settings, name: str, command: str, description: str, overwrite: bool, yes: bool,
        sweep: Optional[Sweep] = None) -> int:
    from runs_manager.runtime import runs, snapshots

    # Everything that can be checked is checked before anything is written.
    sweep = sweep or Sweep()
    members, gpus = _members(settings, name, command, description, sweep, yes)
    commit, directory, patch = _code(settings)
    launcher, prepared = _checked_launch(settings, members)
    runs.require_one_database(settings)
    code = snapshots.for_new(settings, launcher.name, sweep.queues, directory, commit, patch)
    if sweep.is_grid or sweep.queues:
        return _new_sweep(settings, name, members, sweep, gpus, overwrite, yes, commit, code, launcher, prepared, patch)
    return _new_run(settings, name, command, description, overwrite, yes, commit, code, launcher, prepared, patch)


def _members(settings: Settings, name: str, command: str, description: str, sweep: Sweep, yes: bool) -> Any:
    """The runs to make (one, or a grid's), and the GPUs of --gpus; a wrong name, grid or
    placeholder fails here."""
    from runs_manager import names
    from runs_manager.runtime import launch
    from runs_manager.text import sweeps

    gpus = sweeps.parse_gpus(sweep.gpus)
    if sweep.queues and settings.launcher != "tmux":
        raise RunsError(f"--max-parallel and --gpus queue runs on this machine; with --launcher {settings.launcher} the "
                        "scheduler queues them (ask it for GPUs in --sbatch-args, such as '--gres=gpu:1')")
    if sweep.is_grid:
        members = sweeps.members(name, command, description, sweeps.parse_grid(sweep.grid, sweep.grid_file))
        if len(members) > sweeps.MAX_MEMBERS and not yes:
            raise RunsError(f"the grid makes {len(members):,} runs, more than {sweeps.MAX_MEMBERS:,}; pass --yes if you mean it")
    else:
        problem = names.problem(name)
        if problem:
            raise RunsError(f"invalid run name: {problem}; {names.RULE}")
        members = [sweeps.Member(name, command, description, {})]
    if not command.strip():
        raise RunsError("the command is empty")
    for member in members:
        launch.program_line(settings, member.name, member.command)  # a wrong placeholder fails here, before anything is written
        _require_storable(member.name, member.command, member.description)
    return members, gpus


def _code(settings: Settings) -> Any:
    """The commit, the working directory, and the patch of uncommitted changes (--allow-dirty)."""
    from runs_manager import git, interrupts
    from runs_manager.runtime import patches, runfiles, snapshots

    directory = os.getcwd()
    # GitPython objects interrupted half-built complain as they are collected: the git
    # questions take milliseconds, so a Ctrl-C is acted on after them.
    with interrupts.deferred():
        commit = git.head_commit(directory)
        top = git.toplevel(directory)
        dirty = git.dirty_paths(directory, except_under=settings.runs_dir)
    runfiles.require_own_runs_dir(settings.runs_dir, top, directory)
    patch = patches.for_run(settings, directory, dirty)
    if not os.path.isdir(settings.runs_dir) and os.path.realpath(directory) != os.path.realpath(top):
        print(f"runs: note: this work tree has no runs directory yet: making {os.path.abspath(settings.runs_dir)} "
              "(runs finds it from here and the directories below)", file=sys.stderr)
    os.environ[snapshots.SOURCE_ENV] = top  # the program's, wherever it starts (before the launcher takes the environment)
    return commit, directory, patch


def _checked_launch(settings: Settings, members: List[Member]) -> Any:
    """The launcher, ready (what its start needs), once each run's paths and the virtualenv are checked."""
    from runs_manager import launchers
    from runs_manager.runtime import launch, runfiles

    launcher = launchers.get(settings.launcher)
    prepared = launcher.check(settings)
    for member in members:
        outside = runfiles.outside_runs_dir(settings, member.name)
        if outside:
            raise RunsError(f"{outside} would be outside the runs directory: a symbolic link leads out of it")
        blocked = runfiles.blocked(settings, member.name)
        if blocked:
            raise RunsError(f"{blocked} is a file, where run '{member.name}' needs a directory; choose another name")
    activate = launch.activate_script(settings)
    if activate and not os.path.isfile(activate):
        raise RunsError(f"virtualenv-path: {activate} does not exist")
    return launcher, prepared


def _new_run(settings: Settings, name: str, command: str, description: str, overwrite: bool, yes: bool, commit: str,
             code: Code, launcher: Launcher, prepared: Any, patch: Optional[Patch]) -> int:
    """Record and start one run (replacing one of its name with --overwrite)."""
    from runs_manager import interrupts
    from runs_manager.commands import _started as say
    from runs_manager.runtime import runfiles, runs, starting, trash

    db = runs.database(settings)
    existed = overwrite and _exists(db, name)
    if existed and not yes:
        _confirm_overwrite(name)
    if existed:
        starting.stop_first(settings, db, [name])
    os.makedirs(settings.runs_dir, exist_ok=True)
    with db.writing() as txn:
        runfiles.ensure_gitignore(settings)
        code.require()
        garbage = trash.leftovers(settings)  # of deletes that were done, or died once done
        if overwrite and txn.has(name):
            if not (existed or yes):
                raise RunsError(f"run '{name}' appeared while you were asked; nothing changed, try again")
            garbage = starting.discard_for_overwrite(settings, txn, name)
        final = starting.free_name(settings, name, txn)
        # Held back from here until the run is whole or undone, and the user told which.
        with interrupts.deferred() as interrupted:
            entry = starting.start(settings, txn, final, command, description, commit, code.directory, launcher, prepared,
                                   interrupted, patch, code.fields())
            if final != name:
                print(f"The name '{name}' is taken; this run is named '{final}'.")
            say.started(final, commit, entry)
            say.patch_stored(settings, final, patch)
    say.note_flags(settings, final, command)
    trash.empty(settings, garbage)
    return 0


def _require_storable(name: str, command: str, description: str) -> None:
    """Refuse text YAML cannot give back exactly, before anything (an --overwrite) is done."""
    from runs_manager.store import yamlfile

    if yamlfile.exact_text(name, {"command": command, "description": description}) is None:
        raise RunsError("the command or description cannot be stored in YAML exactly as given")


def _exists(db: Database, name: str) -> bool:
    return db.read(lambda index: index.has(name))


def _confirm_overwrite(name: str) -> None:
    from runs_manager.prompt import confirm

    if not confirm(f"Run '{name}' exists. Delete it (entry, TensorBoard logs, checkpoints, tmux session) and start anew?"):
        raise RunsError(f"not confirmed; run '{name}' is unchanged")


def _new_sweep(
    settings: Settings, name: str, members: List[Member], sweep: Sweep, gpus: Optional[List[str]], overwrite: bool,
    yes: bool, commit: str, code: Code, launcher: Launcher, prepared: Any, patch: Optional[Patch],
) -> int:
    """Record (and start, or queue) every run of a sweep, all in one hold of the lock: every
    name is checked free before the first run is recorded."""
    from runs_manager import times

    from runs_manager import interrupts
    from runs_manager.commands import _started as say
    from runs_manager.runtime import queue, runfiles, runs, starting, trash

    db = runs.database(settings)
    single = not sweep.is_grid
    taken = _to_replace(settings, db, members, single, overwrite, yes)
    os.makedirs(settings.runs_dir, exist_ok=True)
    with db.writing() as txn:
        runfiles.ensure_gitignore(settings)
        code.require()
        garbage = trash.leftovers(settings)  # of deletes that were done, or died once done
        for member in members:
            if overwrite and txn.has(member.name):
                if member.name not in taken:
                    raise RunsError(f"run '{member.name}' appeared while you were asked; nothing changed, try again")
                garbage = starting.discard_for_overwrite(settings, txn, member.name)
        if single:  # one run given --gpus or --max-parallel: named like any other run
            members = [members[0]._replace(name=starting.free_name(settings, name, txn))]
        else:
            starting.require_free(settings, members, txn)
        now = times.now()
        extra: Dict[str, Any] = {**({} if single else {"sweep": name}), **code.fields()}
        states: Dict[str, str] = {}
        if launcher.name != "tmux":  # a scheduler queues them: each run is submitted as it is recorded
            with interrupts.deferred() as interrupted:
                for member in members:
                    entry = starting.start(settings, txn, member.name, member.command, member.description, commit, code.directory,
                                   launcher, prepared, interrupted, patch, {**extra, "grid": member.values})
                    states[member.name] = say.where(entry)
                    interrupted.check()
        else:
            extra["queue"] = queue.fields(f"{name}@{now}", sweep.max_parallel, gpus, settings, code.directory)
            states = _queue_sweep(settings, txn, members, extra, commit, code.directory, launcher, patch)
    say.sweep(name, commit, states, single)
    say.note_flags(settings, members[0].name, members[0].command)
    trash.empty(settings, garbage)
    return 0


def _to_replace(settings: Settings, db: Database, members: List[Member], single: bool, overwrite: bool, yes: bool) -> List[str]:
    """The sweep's runs that exist already: an error without --overwrite; with it, asked
    about (unless --yes) and stopped before the lock is taken."""
    taken = db.read(lambda index: [member.name for member in members if index.has(member.name)])
    if single and not overwrite:
        taken = []  # a single run takes a free name, as any other run does
    if taken and not overwrite:
        more = f" (and {len(taken) - 1} more of the sweep's runs)" if len(taken) > 1 else ""
        raise RunsError(f"run '{taken[0]}' exists{more}; pass --overwrite to replace them, or name the sweep differently")
    if taken and not yes:
        from runs_manager.prompt import confirm_runs

        confirm_runs("delete and start anew", taken, yes)
    if taken:
        from runs_manager.runtime import starting

        starting.stop_first(settings, db, taken)
    return taken


def _queue_sweep(settings: Settings, txn: Transaction, members: List[Member], extra: Dict[str, Any], commit: str,
                 directory: str, launcher: Launcher, patch: Optional[Patch]) -> Dict[str, str]:
    """Record the runs as queued, all in one append; then start as many at once as fit (all
    of them, without --max-parallel and --gpus), by the code that starts queued runs. Each
    run's state, for the summary."""
    from runs_manager import faults, interrupts
    from runs_manager.commands import _started as say
    from runs_manager.runtime import queue, runfiles, starting

    extra["queued"] = True
    with interrupts.deferred():  # a Ctrl-C stops runs new once its runs are recorded and started
        starting.record_queued(settings, txn, members, extra, commit, launcher.name, patch)
        faults.point("sweep:recorded")
        states = {member.name: "queued" for member in members}
        fresh = (os.path.abspath(directory), commit, patch.sha256 if patch else None)
        try:
            started, notes, _ = queue.advance(settings, txn, fresh=fresh)
        except (RunsError, OSError):  # tmux failed them (each start was undone): none of the sweep stays
            txn.remove(member.name for member in members)
            for member in members:  # their patches, and the group directories they leave empty
                runfiles.remove(settings, member.name, txn)
            raise
    for note in notes:
        print(f"runs: note: {note}", file=sys.stderr)
    states.update({member: say.where(entry) for member, entry in txn.entries(started)})
    return states

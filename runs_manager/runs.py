"""What a run is besides its entry: its directories, its tmux session, its command line."""
from __future__ import annotations

import contextlib
import glob
import os
import shlex
import shutil
from typing import Any, Callable, Dict, Iterable, List, Optional, Protocol, Tuple

from runs_manager import fsutil, names
from runs_manager.database import Database
from runs_manager.index import Index
from runs_manager.settings import Settings

class RunSet(Protocol):
    """What deleting files needs to know of the other runs (an Index or a Transaction)."""

    def has(self, name: str) -> bool: ...

    def first_in_group(self, group: str, other_than: str = "") -> Optional[str]: ...


GITIGNORE = "# Created by runs: checkpoints and logs do not belong in git.\n*\n"
# In a new run's TensorBoard directory until its entry is recorded: the launch script
# waits for it to go, and starts the program only if the directory is still there.
STARTING = ".runs-starting"
# Set by tmux (or the shell) for each pane; passing ours on would mislead the program.
_OWN_ENV = {
    "TMUX", "TMUX_PANE", "TERM", "TERM_PROGRAM", "TERM_PROGRAM_VERSION",
    "PWD", "OLDPWD", "SHLVL", "_", "COLUMNS", "LINES",
}


def database(settings: Settings) -> Database:
    return Database(settings.db_path, recover=lambda intent, index: _undo_new(settings, intent, index))


def tensorboard_dir(settings: Settings, name: str) -> str:
    return os.path.join(settings.tensorboard_root, name) + os.sep


def checkpoint_path(settings: Settings, name: str) -> str:
    return os.path.join(settings.checkpoints_root, name)


def ensure_gitignore(settings: Settings) -> None:
    """Make git ignore the runs directory, so checkpoints never end up in a commit.

    Call with the database lock held (it cleans up after an interrupted write).
    """
    gitignore = os.path.join(settings.runs_dir, ".gitignore")
    fsutil.remove_temp_files(gitignore)
    if not os.path.lexists(gitignore):
        fsutil.atomic_write(gitignore, GITIGNORE.encode())


def outside_runs_dir(settings: Settings, name: str) -> Optional[str]:
    """The first path of run ``name`` that a symbolic link would put outside the runs directory."""
    for path in (tensorboard_dir(settings, name).rstrip(os.sep), checkpoint_path(settings, name)):
        if not fsutil.is_inside(path, settings.runs_dir):
            return path
    return None


# Launching ------------------------------------------------------------------------------


def program_flags(settings: Settings, name: str) -> List[Tuple[str, str]]:
    """The flags passed to the program after its command: paths of its own, and extra flags."""
    flags = []
    if settings.tb_dir_flag:
        flags.append((settings.tb_dir_flag, tensorboard_dir(settings, name)))
    if settings.save_path_flag:
        flags.append((settings.save_path_flag, checkpoint_path(settings, name)))
    runs_dir = settings.runs_dir.rstrip(os.sep) or os.sep
    for flag, value in settings.extra_flags:
        flags.append((flag, value.replace("<runs-dir>", runs_dir).replace("<run-name>", name)))
    return flags


def command_line(command: str, flags: Iterable[Tuple[str, str]]) -> str:
    """The command as typed, then each flag and value as a shell word of its own."""
    return command + "".join(f" {shlex.quote(flag)} {shlex.quote(value)}" for flag, value in flags)


def launch_script(name: str, line: str, tb: str, virtualenv: Optional[str], unset: Iterable[str] = ()) -> str:
    """The shell script a run's tmux session runs.

    It starts the program only once the run is recorded, and never if `runs new` died and
    the run was undone (its TensorBoard directory ``tb`` removed). ``unset`` names variables
    the tmux server has and this shell does not. When the program ends, the session stays
    open with a shell, showing the output (as the original tool did), until the user closes
    it or deletes the run.
    """
    tb = os.path.abspath(tb)
    wait = (
        f"while [ -e {shlex.quote(os.path.join(tb, STARTING))} ]; do sleep 0.1; done\n"
        f"[ -d {shlex.quote(tb)} ] || exit 0\n"
    )
    body = line
    if virtualenv:
        activate = os.path.join(os.path.expanduser(virtualenv), "bin", "activate")
        body = f". {shlex.quote(activate)} && {{\n{line}\n}}"
    if unset:
        body = f"unset {' '.join(unset)}\n{body}"
    return (
        f"{wait}{body}\n"
        "status=$?\n"
        f"printf '\\n[runs] %s exited with status %s; exit this shell to close the session.\\n' "
        f"{shlex.quote(name)} \"$status\"\n"
        'exec "${SHELL:-/bin/sh}"\n'
    )


def environment_for_session(server_env: Dict[str, str]) -> Tuple[Dict[str, str], List[str]]:
    """What a new session must be given (and must drop) so the run sees this shell's environment.

    A tmux server keeps the environment it was started with; without this a run would
    use the PATH (and conda or virtualenv) of whichever shell started the server.
    """
    if not server_env:
        return {}, []  # no server yet: the one we start inherits our environment
    given = {key: value for key, value in os.environ.items() if key not in _OWN_ENV and server_env.get(key) != value}
    dropped = sorted(key for key in server_env if key not in os.environ and key not in _OWN_ENV and key.isidentifier())
    return given, dropped


def host() -> str:
    import socket

    return socket.gethostname()


# Stopping and deleting ------------------------------------------------------------------


def stop_session(name: str, entry: Dict[str, Any], live: Dict[str, Tuple[str, int, int]]) -> Optional[str]:
    """Kill the run's tmux session if it is still running here; returns a note if not done."""
    from runs_manager import tmux

    session = entry.get("tmux_session")
    if not isinstance(session, str):
        session = names.session_name(name)
    recorded_host = entry.get("host")
    if recorded_host not in (None, host()):
        if session in live:
            return f"session '{session}' belongs to host {recorded_host}; not stopped from here"
        return None
    if session not in live:
        return None
    if not _same_session(entry, live[session]):
        return f"session '{session}' is not the one run '{name}' started; left alone"
    tmux.kill(live[session][0])
    return None


SESSION_FIELDS = ("tmux_session_id", "tmux_session_created", "tmux_server_pid")


def session_fields(identity: Tuple[str, int, int]) -> Dict[str, Any]:
    return dict(zip(SESSION_FIELDS, identity))


def _same_session(recorded: Dict[str, Any], live: Tuple[str, int, int]) -> bool:
    """Whether a live session is the recorded one (entries of the original tool record none
    of these; hand edits may drop some)."""
    return all(recorded.get(field) in (None, value) for field, value in zip(SESSION_FIELDS, live))


def remove_files(settings: Settings, name: str, others: RunSet) -> List[str]:
    """Delete a run's TensorBoard directory, checkpoints and emptied group directories.

    Nothing outside the runs directory is touched, and nothing that belongs to another run
    in ``others``. Returns notes on what was left alone, and why.
    """
    if not names.is_valid(name):
        return []  # a hand-edited name could be '../..': derive no paths from it
    files, notes = _files(settings, name, others)
    for path in files:
        fsutil.remove(path, settings.runs_dir)

    def has_other_runs(group: str) -> bool:  # e.g. checkpoints/sweep/, which sweep/b's save path needs
        return others.first_in_group(group, other_than=name) is not None

    fsutil.prune_empty_parents(tensorboard_dir(settings, name).rstrip(os.sep), settings.tensorboard_root, has_other_runs)
    fsutil.prune_empty_parents(checkpoint_path(settings, name), settings.checkpoints_root, has_other_runs)
    return notes


def run_files(settings: Settings, name: str, others: RunSet) -> List[str]:
    """The files of run ``name`` that exist: its TensorBoard directory and checkpoints."""
    return _files(settings, name, others)[0]


def _files(settings: Settings, name: str, others: RunSet) -> Tuple[List[str], List[str]]:
    files, notes = _candidate_files(settings, name, others)
    inside = [path for path in files if fsutil.is_inside(path, settings.runs_dir)]
    notes += [f"{path} is left alone: a symbolic link puts it outside the runs directory" for path in files if path not in inside]
    return inside, notes


def _candidate_files(settings: Settings, name: str, others: RunSet) -> Tuple[List[str], List[str]]:
    files, notes = [], []
    group_member = others.first_in_group(name, other_than=name)
    tb = tensorboard_dir(settings, name).rstrip(os.sep)
    ckpt = checkpoint_path(settings, name)
    for directory in (tb, ckpt):
        if os.path.lexists(directory) and group_member and os.path.isdir(directory):
            notes.append(f"{directory} is left alone: it holds files of run '{group_member}'")
        elif directory == tb and os.path.lexists(tb):
            files.append(tb)

    def is_run(candidate: str) -> bool:
        return candidate == name or others.has(candidate)

    for path in [ckpt] + sorted(glob.glob(glob.escape(ckpt) + ".ckpt*")):
        if path == ckpt and group_member and os.path.isdir(ckpt):
            continue
        if os.path.lexists(path) and _owner(os.path.relpath(path, settings.checkpoints_root), is_run) == name:
            files.append(path)
    return files, notes


def _owner(relative: str, is_run: Callable[[str], bool]) -> Optional[str]:
    """The run a checkpoint file belongs to: the longest run name it starts with.

    With runs 'a' and 'a.ckpt-x', checkpoints/a.ckpt-x-100.index is a.ckpt-x's (both
    names match the start; the longer one is more specific).
    """
    for end in range(len(relative), 0, -1):
        if is_run(relative[:end]):
            return relative[:end]
    return None


def _undo_new(settings: Settings, intent: Dict[str, Any], index: Index) -> None:
    """Recovery for a `runs new` that died half-way: keep a whole run, or leave nothing."""
    name = intent.get("name")
    if intent.get("op") != "new" or not isinstance(name, str) or not names.is_valid(name):
        return
    if index.has(name):  # recorded: a whole run, whose program may start now
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(tensorboard_dir(settings, name), STARTING))
        return
    from runs_manager import tmux

    session = intent.get("session")
    live = tmux.sessions() if shutil.which("tmux") else {}
    if isinstance(session, str) and session in live:
        if _same_session(intent, live[session]):
            tmux.kill(live[session][0])
    remove_files(settings, name, index)  # the TensorBoard directory too: a late session exits

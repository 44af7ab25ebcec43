"""A run's files: its TensorBoard directory and checkpoints, and deleting them safely."""
from __future__ import annotations

import bisect
import itertools
import os
import re
from typing import Dict, List, Optional, Protocol, Tuple

from runs_manager import fsutil, names
from runs_manager.runtime import heartbeat, runstate
from runs_manager.errors import RunsError
from runs_manager.settings import Settings

GITIGNORE = "# Created by runs: checkpoints and logs do not belong in git.\n*\n"
# In a new run's TensorBoard directory until its entry is recorded: the launch script
# waits for it to go, and starts the program only if the directory is still there.
STARTING = ".runs-starting"
# What a program given --save-path P writes besides P itself (a file or a directory):
# P.ckpt* (TensorFlow as the original tool used it) and TensorFlow's P[-STEP].index,
# .meta and .data-* files.
_CHECKPOINT_SUFFIX = re.compile(r"(?:\.ckpt.*|(?:-\d+)?\.(?:index|meta|data-\d+-of-\d+))?", re.S)


Listing = Dict[str, List[str]]  # a directory's entries, sorted


class RunSet(Protocol):
    """What deleting files needs to know of the other runs (an Index or a Transaction)."""

    def has(self, name: str) -> bool: ...

    def first_in_group(self, group: str, other_than: str = "") -> Optional[str]: ...


def tensorboard_dir(settings: Settings, name: str) -> str:
    return os.path.join(settings.tensorboard_root, name) + os.sep


def checkpoint_path(settings: Settings, name: str) -> str:
    return os.path.join(settings.checkpoints_root, name)


def paths(settings: Settings, name: str) -> Dict[str, str]:
    """What a run's placeholders stand for: absolute, so a command that changes directory
    (``cd src && python train.py --logdir {tb_dir}``) still writes into the runs directory."""
    runs_dir = os.path.abspath(settings.runs_dir)
    return {
        "name": name,
        "tb_dir": os.path.abspath(tensorboard_dir(settings, name)) + os.sep,
        "save_path": os.path.abspath(checkpoint_path(settings, name)),
        "runs_dir": runs_dir,
    }


ENVIRONMENT = {"name": "RUNS_NAME", "tb_dir": "RUNS_TB_DIR", "save_path": "RUNS_SAVE_PATH", "runs_dir": "RUNS_DIR"}


def environment(settings: Settings, name: str) -> Dict[str, str]:
    """The variables every run's program gets, whatever the launcher and the command."""
    return {ENVIRONMENT[key]: value for key, value in paths(settings, name).items()}


def log_path(settings: Settings, name: str) -> str:
    """Everything the run's program wrote to its terminal (see supervisor.py)."""
    return os.path.join(settings.logs_root, name + ".log")


def patch_path(settings: Settings, name: str) -> str:
    """The uncommitted changes a run started from (see patches.py)."""
    return os.path.join(settings.patches_root, name + ".patch")


def env_path(settings: Settings, name: str) -> str:
    """A queued run's environment, kept until it starts (see launch.store_environment)."""
    return os.path.join(settings.envs_root, name)


# What the run's supervisor keeps where a full disk cannot lose it (see runstate.py).
state_path = runstate.path


def create(settings: Settings, name: str, started: str) -> str:
    """Make a starting run's TensorBoard directory (holding the STARTING marker, whose path
    is returned), its log, its state file and the directory of its checkpoints. The
    TensorBoard directory, log and state file must not exist yet: the run's name was chosen
    so that they do not. ``started`` is its entry's datetime."""
    tb = tensorboard_dir(settings, name)
    os.makedirs(os.path.dirname(tb.rstrip(os.sep)), exist_ok=True)
    os.mkdir(tb)
    starting = os.path.join(tb, STARTING)
    open(starting, "x").close()
    os.makedirs(os.path.dirname(checkpoint_path(settings, name)), exist_ok=True)
    log = log_path(settings, name)
    os.makedirs(os.path.dirname(log), exist_ok=True)
    open(log, "x").close()  # the supervisor starts only if it finds it (not undone)
    runstate.create(settings, name, started)
    return starting


def uncreate(settings: Settings, name: str, others: RunSet) -> None:
    """Undo :func:`create` for a run that stays recorded (a queued run whose start failed):
    its patch, made when it was queued, stays."""
    if not names.is_valid(name):
        return
    for path in (tensorboard_dir(settings, name).rstrip(os.sep), log_path(settings, name), state_path(settings, name)):
        fsutil.remove(path, settings.runs_dir)
    prune(settings, name, others)


def ensure_gitignore(settings: Settings) -> None:
    """Make git ignore the runs directory, so checkpoints never end up in a commit.

    Call with the database lock held (it cleans up after an interrupted write).
    """
    gitignore = os.path.join(settings.runs_dir, ".gitignore")
    fsutil.remove_temp_files(gitignore)
    if not os.path.lexists(gitignore):
        fsutil.atomic_write(gitignore, GITIGNORE.encode())


def own_paths(settings: Settings, name: str) -> Tuple[str, ...]:
    """The paths run ``name`` owns outright, whoever else exists: its TensorBoard directory,
    checkpoint path, log, patch, kept environment, state file and heartbeat, in the order of
    :func:`roots`. Every per-run file a later feature adds belongs here, so that delete, mv,
    ``--overwrite``, pruning and new's collision checks all know of it."""
    return (tensorboard_dir(settings, name).rstrip(os.sep), checkpoint_path(settings, name), log_path(settings, name),
            patch_path(settings, name), env_path(settings, name), state_path(settings, name),
            heartbeat.path(settings.runs_dir, name))


def roots(settings: Settings) -> Tuple[str, ...]:
    """The directory each of :func:`own_paths` lies under, in the same order."""
    return (settings.tensorboard_root, settings.checkpoints_root, settings.logs_root, settings.patches_root,
            settings.envs_root, settings.states_root, heartbeat.root(settings.runs_dir))


def outside_runs_dir(settings: Settings, name: str) -> Optional[str]:
    """The first path of run ``name`` that a symbolic link would put outside the runs directory."""
    for path in own_paths(settings, name):
        if not fsutil.is_inside(path, settings.runs_dir):
            return path
    return None


def blocked(settings: Settings, name: str) -> Optional[str]:
    """A file where one of run ``name``'s directories must go: run 'a.ckpt-1.index/b' needs
    checkpoints/a.ckpt-1.index/, which may be a checkpoint file of run 'a'."""
    root = os.path.abspath(settings.runs_dir)
    # Not the environment, state and heartbeat files: a file above them is a run's own, so
    # the name would nest under a run, which the group check refuses in plainer words.
    for path in own_paths(settings, name)[:4]:
        parent = os.path.dirname(os.path.abspath(path))
        while parent.startswith(root + os.sep):
            if os.path.lexists(parent) and not os.path.isdir(parent):
                return parent
            parent = os.path.dirname(parent)
    return None


def existing(settings: Settings, name: str, others: RunSet) -> List[str]:
    """The files of run ``name`` that exist: its TensorBoard directory and checkpoints. Not
    a heartbeat: one left by the supervisor of a run deleted while it ran does not make the
    name taken (a new run of it makes the heartbeat anew)."""
    beat = heartbeat.path(settings.runs_dir, name)
    return [path for path in files(settings, name, others)[0] if path != os.path.abspath(beat) and path != beat]


def remove(settings: Settings, name: str, others: RunSet) -> List[str]:
    """Delete a run's TensorBoard directory, checkpoints and emptied group directories.

    Nothing outside the runs directory is touched, and nothing that belongs to another run
    in ``others``. Returns notes on what was left alone, and why.
    """
    if not names.is_valid(name):
        return []  # a hand-edited name could be '../..': derive no paths from it
    found, notes = files(settings, name, others)
    for path in found:
        fsutil.remove(path, settings.runs_dir)
    if fsutil.is_inside(patch_path(settings, name), settings.runs_dir):
        fsutil.remove_temp_files(patch_path(settings, name))  # of a `runs new` killed while writing it
    prune(settings, name, others)
    return notes


def prune(settings: Settings, name: str, others: RunSet) -> None:
    """Remove the group directories that run ``name``'s files (now gone) leave empty."""

    def has_other_runs(group: str) -> bool:  # e.g. checkpoints/sweep/, which sweep/b's save path needs
        return others.first_in_group(group, other_than=name) is not None

    for path, root in zip(own_paths(settings, name), roots(settings)):
        fsutil.prune_empty_parents(path, root, has_other_runs)


def files(settings: Settings, name: str, others: RunSet, listing: Optional[Listing] = None) -> Tuple[List[str], List[str]]:
    """(files to delete, notes on files left alone) for run ``name``. Callers asking for many
    runs pass one ``listing``, so that each directory is listed once, not once per run."""
    tb, ckpt, log, patch, env, state, live = own_paths(settings, name)
    member = others.first_in_group(name, other_than=name)
    candidates, notes = [], []
    for directory in (tb, ckpt):
        if member and os.path.isdir(directory) and not os.path.islink(directory):
            notes.append(f"{directory} is left alone: it holds files of run '{member}'")
        elif os.path.lexists(directory):
            candidates.append(directory)
    for path in (log, patch, env, state, live):
        # A run's log, patch, state and heartbeat are files: a directory there is a group's (logs/x.log/
        # of the runs 'x.log/...'), never run x's.
        if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
            candidates.append(path)
    for path in _beside(ckpt, {} if listing is None else listing):
        if owner(os.path.relpath(path, settings.checkpoints_root), name, others) == name:
            candidates.append(path)
    files = [path for path in candidates if fsutil.is_inside(path, settings.runs_dir)]
    notes += [f"{path} is left alone: a symbolic link puts it outside the runs directory" for path in candidates if path not in files]
    return files, notes


def _beside(path: str, listing: Listing) -> List[str]:
    """The paths in ``path``'s directory whose names are its name and then '.' or '-'."""
    directory, base = os.path.split(path)
    entries = listing.get(directory)
    if entries is None:
        try:
            entries = sorted(os.listdir(directory))
        except OSError:
            entries = []
        listing[directory] = entries
    found = []
    for mark in (".", "-"):
        for entry in itertools.islice(entries, bisect.bisect_left(entries, base + mark), None):
            if not entry.startswith(base + mark):
                break
            found.append(os.path.join(directory, entry))
    return found


def owner(relative: str, name: str, others: RunSet) -> Optional[str]:
    """The run a path beside run ``name``'s save path (relative to the checkpoints directory)
    belongs to, or None if it is no run's checkpoint file.

    A run's or a group's own path is theirs, never a checkpoint file of a shorter name:
    checkpoints/x.ckpt/ of run 'x.ckpt/y' is not run x's. Elsewhere the suffix rule decides,
    and the longest run whose save path could have written the file wins: with runs 'a' and
    'a.ckpt-x', a.ckpt-x-100.index is a.ckpt-x's, and with runs 'exp' and 'exp-1',
    exp-1000.index is exp's step 1000 (exp-1 would write exp-1-1000.index).
    """

    def is_run(candidate: str) -> bool:
        return candidate == name or others.has(candidate)

    if others.first_in_group(relative, other_than=name) is not None:
        return None  # a group's directory
    for end in range(len(relative), 0, -1):
        if _CHECKPOINT_SUFFIX.fullmatch(relative, end) and is_run(relative[:end]):
            return relative[:end]
    return None


def renames(settings: Settings, old: str, new: str, others: RunSet) -> List[Tuple[str, str]]:
    """(from, to) for each file of run ``old`` that `runs mv` moves to run ``new``."""
    pairs = []
    ckpt = (checkpoint_path(settings, old), checkpoint_path(settings, new))
    # The checkpoint path last: the files beside it (its prefix rule) are matched after the others.
    places = [pair for pair in zip(own_paths(settings, old), own_paths(settings, new)) if pair != ckpt] + [ckpt]
    for path in existing(settings, old, others):
        for source, target in places:
            if path == source or (source == ckpt[0] and path.startswith(source)):
                pairs.append((path, target + path[len(source) :]))
                break
    return pairs


def put_back(settings: Settings, moves: List[Tuple[str, str]], done: List[Tuple[str, str]], others: RunSet) -> None:
    """Undo renames (the last first), where the file is still at its new place, and remove
    the group directories made for the new names."""
    for source, target in reversed(done):
        if os.path.lexists(target) and not os.path.lexists(source):
            os.makedirs(os.path.dirname(source), exist_ok=True)
            os.rename(target, source)
    for _, after in moves:
        prune(settings, after, others)


def require_own_runs_dir(runs_dir: str, top: str, directory: str) -> None:
    """The runs directory gets a .gitignore of '*': it must not be (or hold) the project."""
    real = os.path.realpath(runs_dir)
    for project in (top, directory):
        project = os.path.realpath(project)
        if project == real or project.startswith(real.rstrip(os.sep) + os.sep):
            raise RunsError(
                f"runs-dir {runs_dir} holds the project itself; use a directory of its own, such as .runs/"
            )

"""Deleting runs all or nothing: their files into a trash directory, their entries out.

Under the database lock, and journaled before the first rename, each run's files are
renamed into a new directory under ``<runs-dir>/.trash/`` and then the runs' entries are
removed in one atomic change. Renames take microseconds whatever a file's size, so the
lock is held briefly; the trash is emptied after the lock is released. A delete that dies
half-way is finished by the next command to take the lock if its entries were removed, and
undone (every file renamed back) if they were not: a run is either whole or gone.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from runs_manager import faults, fsutil, names
from runs_manager.runtime import runfiles
from runs_manager.errors import RunsError
from runs_manager.settings import Settings

TRASH = ".trash"
_PREFIX = "delete-"  # what a delete makes; an undo that could not put files back renames it
_UNRESTORED = "unrestored-"

Entry = Dict[str, Any]


def root(settings: Settings) -> str:
    """Absolute, as are the paths in the journal: a supervisor recovering a delete spells
    the runs directory differently from the command that died."""
    return os.path.abspath(os.path.join(settings.runs_dir, TRASH))


def _usable_root(settings: Settings) -> Optional[str]:
    """The trash root if it is a real directory: never one a symbolic link puts elsewhere
    (inside the runs directory, emptying it would delete runs' own directories)."""
    directory = root(settings)
    return directory if os.path.isdir(directory) and not os.path.islink(directory) else None


def discard(settings: Settings, txn: Any, runs: Sequence[Tuple[str, Entry]]) -> Tuple[List[str], List[str], Optional[str]]:
    """Move the files of ``runs`` into a new trash directory and remove their entries.

    Call with the lock held (``txn``) and signals deferred. Returns the runs deleted, notes
    for the user (files left alone, runs kept) and the trash directory to :func:`empty`
    once the lock is released.
    """
    if not runs:
        return [], [], None
    plan, notes = _files(settings, txn, runs)
    trash = _make(settings) if any(plan.values()) else None
    numbers = iter(range(sum(map(len, plan.values()))))  # flat names in the trash: no directories to make
    pairs = {name: [(path, os.path.join(trash or "", str(next(numbers)))) for path in paths] for name, paths in plan.items()}
    txn.intend(_intent(trash, pairs))
    moved: List[Tuple[str, str]] = []
    try:
        kept, stuck = _move(pairs, moved, notes)
        deleted = [name for name, _ in runs if name not in kept]
        if kept:  # the journal must name exactly the runs whose entries go
            txn.intend(_intent(trash, {name: pairs[name] for name in deleted}))
        faults.point("delete:files-moved")
        txn.remove(deleted)
    except BaseException:
        _restore(settings, moved, trash)
        txn.done()
        raise
    txn.done()
    if stuck and trash is not None:  # files of a kept run are in it: never emptied
        notes.append(_keep(settings, trash))
        trash = None
    for name in deleted:
        _prune(settings, name, txn)
    return deleted, notes, _free_snapshots(settings, txn, [entry for name, entry in runs if name in deleted], trash)


def _free_snapshots(settings: Settings, txn: Any, entries: List[Entry], trash: Optional[str]) -> Optional[str]:
    """The code snapshots of deleted runs that no remaining run uses go into the trash too
    (one that stays behind after a crash here is only space: no run points at it)."""
    from runs_manager.runtime import snapshots

    roots = {snapshots.owned_root(settings, entry.get("code_dir")) for entry in entries} - {None}
    for root in sorted(str(root) for root in roots):
        if not os.path.isdir(root) or txn.uses("code_dir", root):
            continue
        trash = trash or _make(settings)
        with contextlib.suppress(OSError):
            os.chmod(root, 0o755)  # read-only: moving a directory to another parent rewrites its '..'
            try:
                os.rename(root, os.path.join(trash, "code-" + os.path.basename(root)))
            except OSError:
                os.chmod(root, 0o555)
                raise
    with contextlib.suppress(OSError):
        os.rmdir(settings.code_root)  # the last one gone
    return trash


def _files(settings: Settings, txn: Any, runs: Sequence[Tuple[str, Entry]]) -> Tuple[Dict[str, List[str]], List[str]]:
    """Each run's files (absolute paths), and notes of the files left alone."""
    plan: Dict[str, List[str]] = {}
    notes: List[str] = []
    listing: Dict[str, Any] = {}
    for name, _ in runs:
        if names.is_valid(name):
            found, left = runfiles.files(settings, name, txn, listing)
            plan[name] = [os.path.abspath(path) for path in found]
            notes += left
        else:  # a hand-edited name could be '../..': derive no paths from it
            plan[name] = []
            notes.append(f"'{_shown(name)}' is not a valid run name; only its entry is deleted")
    return plan, notes


def _move(pairs: Dict[str, List[Tuple[str, str]]], moved: List[Tuple[str, str]], notes: List[str]) -> Tuple[List[str], bool]:
    """Rename each run's files into the trash (adding them to ``moved``); a run whose files
    cannot all be moved gets its moved ones back and is kept. The runs kept, and whether
    some file could not be put back either."""
    kept, stuck = [], False
    for name, renames in pairs.items():
        done: List[Tuple[str, str]] = []
        try:
            for source, target in renames:
                try:
                    os.rename(source, target)
                except FileNotFoundError:
                    if os.path.lexists(source):
                        raise
                    continue  # gone since it was listed (a supervisor removes its heartbeat as it ends)
                done.append((source, target))
        except OSError as e:  # e.g. files still open on NFS: the run stays, to try again
            stuck = not _put_back(done) or stuck
            notes.append(f"could not delete the files of '{_shown(name)}' ({e.strerror}: {e.filename}); it is kept")
            kept.append(name)
        else:
            moved += done
    return kept, stuck


def _intent(trash: Optional[str], pairs: Dict[str, List[Tuple[str, str]]]) -> Dict[str, Any]:
    return {"op": "delete", "before_reads": True, "names": list(pairs), "trash": trash,
            "files": [list(pair) for renames in pairs.values() for pair in renames]}


def _make(settings: Settings) -> str:
    directory = root(settings)
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory)
    if _usable_root(settings) is None:
        raise RunsError(f"{directory} is not a directory (a symbolic link?); remove it and try again")
    return tempfile.mkdtemp(prefix=_PREFIX, dir=directory)


def _put_back(moved: Iterable[Tuple[str, str]]) -> bool:
    """Rename files back from the trash (the last first), where nothing has taken their
    place; returns whether every one went back."""
    whole = True
    for source, target in reversed(list(moved)):
        if not os.path.lexists(target):
            continue
        try:
            if os.path.lexists(source):
                raise FileExistsError(source)
            os.makedirs(os.path.dirname(source), exist_ok=True)
            os.rename(target, source)
        except OSError:
            whole = False
    return whole


def _restore(settings: Settings, moved: Iterable[Tuple[str, str]], trash: Optional[str]) -> None:
    """Undo the renames of a delete whose entries stay: the trash goes, or if a file could
    not go back, it is kept under a name no command empties."""
    _put_back(moved)
    if trash is None:
        return
    try:
        os.rmdir(trash)
    except FileNotFoundError:
        pass
    except OSError:  # not empty
        print(f"runs: note: {_keep(settings, trash)}", file=sys.stderr)


def _keep(settings: Settings, trash: str) -> str:
    kept = os.path.join(root(settings), _UNRESTORED + os.path.basename(trash)[len(_PREFIX):])
    with contextlib.suppress(OSError):
        os.rename(trash, kept)
    return f"some files of listed runs could not be put back from the trash; they are in {kept}"


def _prune(settings: Settings, name: str, others: Any) -> None:
    """After the entry is gone: a killed `runs new`'s temporary patch, and the group
    directories left empty (those of a deleted group's last member among them)."""
    if not names.is_valid(name):
        return
    patch = runfiles.patch_path(settings, name)
    if fsutil.is_inside(patch, settings.runs_dir):
        fsutil.remove_temp_files(patch)
    runfiles.prune(settings, name, others)


def recover(settings: Settings, intent: Dict[str, Any], index: Any) -> None:
    """A delete died half-way: finish it if its entries were removed, else undo it."""
    trash, listed, pairs = intent.get("trash"), intent.get("names"), intent.get("files")
    if not isinstance(listed, list) or not isinstance(pairs, list):
        return
    doomed = [name for name in listed if isinstance(name, str)]
    if not any(index.has(name) for name in doomed):
        for name in doomed:  # committed: only the emptying of the trash is left, for a later delete
            _prune(settings, name, index)
        return
    usable = _usable_root(settings)
    if usable is None or not isinstance(trash, str) or os.path.islink(trash) or not os.path.isdir(trash):
        return
    if os.path.realpath(os.path.dirname(os.path.abspath(trash))) != os.path.realpath(usable):
        return  # not a trash directory of this runs directory: nothing of it is touched
    safe = [(str(a), str(b)) for a, b in (p for p in pairs if isinstance(p, list) and len(p) == 2)
            if fsutil.is_inside(str(a), settings.runs_dir) and os.path.dirname(str(b)) == trash]
    _restore(settings, safe, trash)


def leftovers(settings: Settings) -> List[str]:
    """Trash directories of deletes that are done (call with the lock held, after recovery:
    every delete that is not done has been undone by then)."""
    directory = _usable_root(settings)
    if directory is None:
        return []
    found = [os.path.join(directory, entry) for entry in os.listdir(directory) if entry.startswith(_PREFIX)]
    return [path for path in found if os.path.isdir(path) and not os.path.islink(path)]


def empty(settings: Settings, trashes: Iterable[Optional[str]]) -> None:
    """Delete the contents of trash directories (without the lock: another command may be
    emptying the same one, which is fine)."""
    directory = _usable_root(settings)
    if directory is None:
        return
    for trash in trashes:
        if trash is not None and os.path.dirname(os.path.abspath(trash)) == directory and not os.path.islink(trash):
            with contextlib.suppress(OSError):
                fsutil.remove_tree(trash)  # code snapshots are read-only
    with contextlib.suppress(OSError):
        os.rmdir(directory)


def _shown(name: str) -> str:
    from runs_manager.output import printable

    return printable(name)

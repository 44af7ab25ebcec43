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
import shutil
import sys
import tempfile
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from runs_manager import faults, fsutil, names, runfiles
from runs_manager.errors import RunsError
from runs_manager.settings import Settings

TRASH = ".trash"
_PREFIX = "delete-"  # what a delete makes; an undo that could not put files back renames it
_UNRESTORED = "unrestored-"

Entry = Dict[str, Any]


def root(settings: Settings) -> str:
    return os.path.join(settings.runs_dir, TRASH)


def discard(settings: Settings, txn: Any, runs: Sequence[Tuple[str, Entry]]) -> Tuple[List[str], List[str], Optional[str]]:
    """Move the files of ``runs`` into a new trash directory and remove their entries.

    Call with the lock held (``txn``) and signals deferred. Returns the runs deleted, notes
    for the user (files left alone, runs kept) and the trash directory to :func:`empty`
    once the lock is released.
    """
    if not runs:
        return [], [], None
    plan, notes, listing = {}, [], {}  # type: ignore[var-annotated]
    for name, _ in runs:
        if names.is_valid(name):
            plan[name], left = runfiles.files(settings, name, txn, listing)
            notes += left
        else:  # a hand-edited name could be '../..': derive no paths from it
            plan[name] = []
            notes.append(f"'{_shown(name)}' is not a valid run name; only its entry is deleted")
    trash = _make(settings) if any(plan.values()) else None
    numbers = iter(range(sum(map(len, plan.values()))))  # flat names in the trash: no directories to make
    pairs = {name: [(path, os.path.join(trash or "", str(next(numbers)))) for path in paths] for name, paths in plan.items()}
    txn.intend(_intent(trash, pairs))
    moved: List[Tuple[str, str]] = []
    kept = []
    try:
        for name, renames in pairs.items():
            done: List[Tuple[str, str]] = []
            try:
                for source, target in renames:
                    os.rename(source, target)
                    done.append((source, target))
            except OSError as e:  # e.g. files still open on NFS: the run stays, to try again
                _put_back(done)
                notes.append(f"could not delete the files of '{_shown(name)}' ({e.strerror}: {e.filename}); it is kept")
                kept.append(name)
            else:
                moved += done
        deleted = [name for name, _ in runs if name not in kept]
        if kept:  # the journal must name exactly the runs whose entries go
            txn.intend(_intent(trash, {name: pairs[name] for name in deleted}))
        faults.point("delete:files-moved")
        txn.remove(deleted)
    except BaseException:
        _put_back(moved)
        _remove_empty(trash)
        txn.done()
        raise
    txn.done()
    for name in deleted:
        _prune(settings, name, txn)
    return deleted, notes, trash


def _intent(trash: Optional[str], pairs: Dict[str, List[Tuple[str, str]]]) -> Dict[str, Any]:
    return {"op": "delete", "before_reads": True, "names": list(pairs), "trash": trash,
            "files": [list(pair) for renames in pairs.values() for pair in renames]}


def _make(settings: Settings) -> str:
    directory = root(settings)
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory)
    if not fsutil.is_inside(os.path.join(directory, "x"), settings.runs_dir):
        raise RunsError(f"{directory} is a symbolic link out of the runs directory; remove it and try again")
    return tempfile.mkdtemp(prefix=_PREFIX, dir=directory)


def _put_back(moved: Iterable[Tuple[str, str]]) -> None:
    """Rename files back from the trash (the last first), where nothing has taken their place."""
    for source, target in reversed(list(moved)):
        if os.path.lexists(target) and not os.path.lexists(source):
            os.makedirs(os.path.dirname(source), exist_ok=True)
            os.rename(target, source)


def _remove_empty(trash: Optional[str]) -> None:
    if trash is not None:
        with contextlib.suppress(OSError):
            os.rmdir(trash)


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
    if not isinstance(trash, str) or os.path.dirname(os.path.normpath(trash)) != os.path.normpath(root(settings)):
        return  # not a trash directory of this runs directory: nothing of it is touched
    safe = [(str(a), str(b)) for a, b in (p for p in pairs if isinstance(p, list) and len(p) == 2)
            if fsutil.is_inside(str(a), settings.runs_dir) and os.path.dirname(str(b)) == trash]
    _put_back(safe)
    with contextlib.suppress(FileNotFoundError):
        if not os.listdir(trash):
            os.rmdir(trash)
            return
        kept = os.path.join(root(settings), _UNRESTORED + os.path.basename(trash))
        os.rename(trash, kept)  # never emptied as garbage: a run still listed had these files
        print(f"runs: note: some files of an interrupted delete could not be put back; they are in {kept}", file=sys.stderr)


def leftovers(settings: Settings) -> List[str]:
    """Trash directories of deletes that are done (call with the lock held, after recovery:
    every delete that is not done has been undone by then)."""
    directory = root(settings)
    try:
        found = os.listdir(directory)
    except OSError:
        return []
    return [os.path.join(directory, entry) for entry in found if entry.startswith(_PREFIX)]


def empty(settings: Settings, trashes: Iterable[Optional[str]]) -> None:
    """Delete the contents of trash directories (without the lock: another command may be
    emptying the same one, which is fine)."""
    for trash in trashes:
        if trash is not None and fsutil.is_inside(trash, settings.runs_dir):
            shutil.rmtree(trash, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(root(settings))


def _shown(name: str) -> str:
    from runs_manager.output import printable

    return printable(name)

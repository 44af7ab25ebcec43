"""Renaming runs (`runs mv`): their files, then their entries in one atomic change, with a
journal ("mv") so that the next command puts the files back if this one dies before the
entries changed. The undo is beside the change."""
from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

from runs_manager import faults, fsutil, launchers, names
from runs_manager.errors import RunsError
from runs_manager.runtime import runfiles

if TYPE_CHECKING:
    from runs_manager.settings import Settings
    from runs_manager.store.index import Index
    from runs_manager.store.transaction import Transaction


def files_of(settings: Settings, txn: Transaction, moves: List[Tuple[str, str]]) -> List[Tuple[str, str]]:
    # Absolute: the journal may be read by a supervisor, which spells the runs directory so.
    return [(os.path.abspath(source), os.path.abspath(target))
            for before, after in moves for source, target in runfiles.renames(settings, before, after, txn)]


def move(settings: Settings, txn: Transaction, moves: List[Tuple[str, str]], files: List[Tuple[str, str]]) -> None:
    """Rename the files, then the entries in one atomic change; a failure (or a crash,
    through the journal) puts the files back."""
    txn.intend({"op": "mv", "before_reads": True, "moves": [list(move) for move in moves], "files": [list(pair) for pair in files]})
    done: List[Tuple[str, str]] = []
    renamed: List[Tuple[Any, str, str, Dict[str, Any]]] = []
    try:
        for source, target in files:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.rename(source, target)
            done.append((source, target))
        faults.point("mv:files-moved")
        entries = dict(txn.entries(before for before, _ in moves))
        changes: Dict[str, Any] = {}
        for before, after in moves:
            launcher = launchers.of(entries[before]) or launchers.get(None)
            changes[before] = (after, {**entries[before], **launcher.rename(settings, before, after, entries[before])})
            if "patch" in entries[before]:  # the patch file moved with the run
                changes[before][1]["patch"] = runfiles.patch_path(settings, after)
            renamed.append((launcher, before, after, changes[before][1]))
        txn.change(changes)
    except BaseException:
        for launcher, before, after, entry in reversed(renamed):
            with contextlib.suppress(RunsError):
                launcher.rename(settings, after, before, entry, entries[before].get("tmux_session"))
        runfiles.put_back(settings, moves, done, txn)
        txn.done()
        raise
    txn.done()
    for before, _ in moves:
        runfiles.prune(settings, before, txn)


def undo_move(settings: Settings, intent: Dict[str, Any], index: Index) -> None:
    """A `runs mv` died: if its entries were renamed it is whole, else put the files back."""
    moves, files = intent.get("moves"), intent.get("files")
    if not (isinstance(moves, list) and isinstance(files, list)):
        return
    if moves and all(isinstance(m, list) and len(m) == 2 and index.has(str(m[1])) for m in moves):
        return  # recorded: every file is in its new place
    pairs = [(str(a), str(b)) for a, b in (f for f in files if isinstance(f, list) and len(f) == 2)]
    inside = [(a, b) for a, b in pairs if fsutil.is_inside(a, settings.runs_dir) and fsutil.is_inside(b, settings.runs_dir)]
    news = [(str(m[0]), str(m[1])) for m in moves if isinstance(m, list) and len(m) == 2 and names.is_valid(str(m[1]))]
    runfiles.put_back(settings, news, inside, index)
    for before, after in news:  # sessions were renamed before the entries: name them back
        entry = index.entry(before)
        if entry is not None and isinstance(entry.get("tmux_session"), str):
            launcher = launchers.of(entry) or launchers.get(None)
            with contextlib.suppress(RunsError):
                launcher.rename(settings, after, before, {**entry, "tmux_session": names.session_name(after)}, entry.get("tmux_session"))

"""The database of a project's runs, opened with the one table of how each journaled change
that died half-way is finished or undone (each undo sits beside its change)."""
from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

from runs_manager.store.database import Database
from runs_manager.errors import RunsError
from runs_manager.store.index import Index
from runs_manager.settings import Settings


def database(settings: Settings) -> Database:
    from runs_manager.runtime import runstate

    return Database(settings.db_path, recover=lambda intent, index: _recover(settings, intent, index),
                    settle=lambda txn: runstate.settle(settings, txn))


def require_one_database(settings: Settings) -> None:
    """Refuse to write a database beside another in the same runs directory: their runs'
    files would share tensorboard/, checkpoints/ and logs/, where neither knows the other's
    names, and a delete in one could take a checkpoint of the other's."""
    others = other_databases(settings)
    if others:
        raise RunsError(
            f"{settings.runs_dir} holds the database {others[0]}, so {settings.db_filename} cannot be a second one "
            "beside it (their runs would share its folders): give each database its own --runs-dir"
        )


def other_databases(settings: Settings) -> List[str]:
    """The databases in the runs directory other than this one: each has a lock file beside
    it once a runs command has read it; one written by hand is a YAML mapping of runs."""
    try:
        found = set(os.listdir(settings.runs_dir))
    except OSError:
        return []
    others = {name[: -len(".lock")] for name in found if name.endswith(".lock")} & found
    others |= {name for name in found if name.endswith((".yml", ".yaml")) and _looks_like_a_database(
        os.path.join(settings.runs_dir, name))}
    return sorted(others - {settings.db_filename})


def _looks_like_a_database(path: str) -> bool:
    """Whether a YAML file's first line is runs' header or a run with a command (read: 4 KB)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    from runs_manager.store.transaction import HEADER

    return head.startswith(HEADER[:16]) or (not head.startswith((b" ", b"-")) and b"\n  command: " in head)


def _recover(settings: Settings, intent: Dict[str, Any], index: Index) -> None:
    """Finish or undo the change a journal names (see each operation's module)."""
    from runs_manager.runtime import queue, renaming, starting, trash  # here: only a journal needs them

    undo = {"mv": renaming.undo_move, "start": queue.undo_start, "delete": trash.recover, "sweep": starting.undo_sweep}
    undo.get(str(intent.get("op")), starting.undo_new)(settings, intent, index)


def matching(settings: Any, pattern: Optional[str], statuses: Optional[Iterable[str]]) -> List[Tuple[str, Dict[str, Any], str]]:
    """(name, entry, status) of the runs whose name ``pattern`` matches and whose status is
    one of ``statuses`` (either may be None: no filter), oldest first."""
    from runs_manager import patterns
    from runs_manager.runtime import status

    wanted = status.parse(statuses)

    def query(index: Any) -> List[Tuple[str, Dict[str, Any], str]]:
        names = patterns.matching(pattern, index.names()) if pattern is not None else None
        return status.select(settings, index, names, wanted)

    return database(settings).read(query)


def note_stalled(settings: Settings) -> None:
    """Print queue.stalled_note, if there is one, on stderr (for `runs list` and `table`)."""
    import sys

    from runs_manager.runtime import queue

    def query(index: Any) -> Optional[str]:
        return queue.stalled_note(settings, index.entries(has_outcome=False)) if index.may_have_queued() else None

    note = database(settings).read(query)
    if note:
        print(f"runs: note: {note}", file=sys.stderr)

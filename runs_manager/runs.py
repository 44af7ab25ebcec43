"""The database of a project's runs, and undoing a `runs new` that died half-way."""
from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Dict

from runs_manager import launch, names, runfiles
from runs_manager.database import Database
from runs_manager.index import Index
from runs_manager.settings import Settings


SESSION_EXIT_WAIT = 1.0  # seconds; the launch script checks every 0.1 s


def database(settings: Settings) -> Database:
    return Database(settings.db_path, recover=lambda intent, index: _undo_new(settings, intent, index))


def _undo_new(settings: Settings, intent: Dict[str, Any], index: Index) -> None:
    """Keep a whole run, or leave nothing: called by the next command to take the lock."""
    name = intent.get("name")
    if intent.get("op") != "new" or not isinstance(name, str) or not names.is_valid(name):
        return
    if index.has(name):  # recorded: a whole run, whose program may start now
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(runfiles.tensorboard_dir(settings, name), runfiles.STARTING))
        return
    from runs_manager import tmux

    session = intent.get("session")
    live = tmux.sessions() if tmux.installed() else {}
    known = all(field in intent for field in launch.SESSION_FIELDS) and intent.get("host") in (None, launch.host())
    if isinstance(session, str) and session in live and known and launch.same_session(intent, live[session]):
        tmux.kill(live[session][0])
    runfiles.remove(settings, name, index)
    if isinstance(session, str) and session in live and not known:
        # A session the journal has no identity for: never killed on a guess. If it is the
        # run's, its script finds the TensorBoard directory gone and ends it in a moment.
        deadline = time.monotonic() + SESSION_EXIT_WAIT
        while session in tmux.sessions() and time.monotonic() < deadline:
            time.sleep(0.05)

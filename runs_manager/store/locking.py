"""The database's lock: an exclusive POSIX ``fcntl`` lock on ``<db>.lock``.

NFS supports these, and the kernel drops them when a process dies, so a stale lock never
blocks. Others hold it for milliseconds; a wait longer than ``LOCK_PATIENCE`` is said.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys
import time
from typing import Iterator

from runs_manager.errors import RunsError

LOCK_PATIENCE = 1.0  # seconds to wait for the lock before saying so


@contextlib.contextmanager
def locked(lock_path: str, db_path: str) -> Iterator[None]:
    """Hold the lock of the database ``db_path`` (its file is ``lock_path``)."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except FileNotFoundError:
        directory = os.path.dirname(lock_path) or "."
        if not os.path.isdir(directory):
            raise RunsError(f"there are no runs yet: the runs directory {directory} does not exist") from None
        raise RunsError(f"cannot lock the runs database: {lock_path} cannot be made") from None
    except OSError as e:
        raise RunsError(f"cannot lock the runs database: {e.strerror}: {lock_path}") from None
    try:
        if not _try_lock(fd, lock_path, patience=LOCK_PATIENCE):
            print(f"runs: waiting for another runs command to finish with {db_path}{_holder(lock_path)} ...",
                  file=sys.stderr)
            fcntl.lockf(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _holder(lock_path: str) -> str:
    """Who holds the lock, as far as this host can tell (another host's process is not named)."""
    from runs_manager import processes

    pid = processes.lock_holder(lock_path)
    return "" if pid is None or pid <= 0 else f": {processes.describe(pid)}"


def _try_lock(fd: int, path: str, patience: float) -> bool:
    """Try to take the lock for ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise RunsError(f"cannot lock {path}: {e.strerror}") from None
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)

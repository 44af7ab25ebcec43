"""The journal of an unfinished change (``<db>.pending``), and cutting off a torn append.

Before a change that a crash could leave half made, the writer records it here: what it
intends (so the next command can undo it) and the bytes of an append (so the next
command can recognise and cut off a torn one).
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
from typing import Any, Dict, Optional

from runs_manager import fsutil


class Journal:
    def __init__(self, path: str) -> None:
        self.path = path

    def read(self, clear_if_damaged: bool = True) -> Optional[Dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as f:
                record = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            if clear_if_damaged:
                self.clear()  # written atomically, so unreadable means not ours
            return None
        return record if isinstance(record, dict) else {}

    def write(self, record: Dict[str, Any]) -> None:
        fsutil.atomic_write(self.path, json.dumps(record).encode("utf-8"))

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def append_record(at: int, ino: int, blob: bytes) -> Dict[str, Any]:
    """What the journal holds of an append of ``blob`` at byte ``at`` of file ``ino``."""
    return {"at": at, "ino": ino, "bytes": base64.b64encode(blob).decode()}


def torn_append_at(
    data: bytes, append: Optional[Dict[str, Any]], st: os.stat_result, whole_too: bool = False
) -> Optional[int]:
    """Where a journaled append that was cut short (or, ``whole_too``, made whole) began,
    if ``data`` ends with it."""
    if not isinstance(append, dict):
        return None
    try:
        at, ino, blob = int(append["at"]), append["ino"], base64.b64decode(append["bytes"])
    except (KeyError, TypeError, ValueError):
        return None
    tail = data[at:]
    if st.st_ino == ino and 0 < len(tail) <= len(blob) - (not whole_too) and blob.startswith(tail):
        return at
    return None


def cut_torn_append(path: str, append: Optional[Dict[str, Any]], whole_too: bool = False) -> None:
    """If a crash cut an append to ``path`` short, remove the part that was written."""
    try:
        with open(path, "rb+") as f:
            data = f.read()
            at = torn_append_at(data, append, os.fstat(f.fileno()), whole_too)
            if at is not None:
                f.truncate(at)
                os.fsync(f.fileno())
    except (FileNotFoundError, IsADirectoryError):
        return

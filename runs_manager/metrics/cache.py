"""The cache of event files' states: ``<db>.metrics``, an SQLite file beside the index (in
memory if that cannot be). Only a cache: anything unexpected in it is made anew or read
again from the files."""
from __future__ import annotations

import json
import os
import sqlite3
from typing import Any, Callable, Dict, List, Set, Tuple

from runs_manager.metrics.files import SCHEMA, State, valid_state
from runs_manager.metrics.restarts import Replay, valid_replay

_TABLES = ("files", "replays")  # replays: a run directory's result under the restart rule (restarts.py)
_CREATE = (
    "CREATE TABLE files (path TEXT PRIMARY KEY, run TEXT NOT NULL, state TEXT NOT NULL)",
    "CREATE INDEX files_run ON files (run)",
    "CREATE TABLE replays (dir TEXT PRIMARY KEY, run TEXT NOT NULL, state TEXT NOT NULL)",
    "CREATE INDEX replays_run ON replays (run)",
)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA:
            conn.execute("BEGIN IMMEDIATE")  # one process at a time; another may have made it meanwhile
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA:
                for table in _TABLES:
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
                for statement in _CREATE:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA}")
            conn.execute("COMMIT")
        try:
            conn.execute("SELECT path, run, state FROM files LIMIT 1").fetchall()
            conn.execute("SELECT dir, run, state FROM replays LIMIT 1").fetchall()
        except sqlite3.OperationalError as e:
            if "no such" not in str(e):
                raise  # locked
            raise sqlite3.DatabaseError(f"not runs' metrics cache: {e}") from None  # removed and made anew
    except BaseException:
        conn.close()
        raise
    return conn


class Cache:
    """Event files' states, in an SQLite file beside the index (in memory if that cannot be)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, path: str) -> Cache:
        for _ in range(2):
            try:
                return cls(_connect(path))
            except sqlite3.OperationalError:
                break  # locked for longer than the timeout, or a read-only runs directory
            except sqlite3.DatabaseError:  # not an SQLite file, or a damaged one: it is only a cache
                try:
                    os.unlink(path)
                except OSError:
                    break
        conn = sqlite3.connect(":memory:", isolation_level=None)  # no cache: every file is read whole
        for statement in _CREATE:
            conn.execute(statement)
        return cls(conn)

    def close(self) -> None:
        self.conn.close()

    def states(self, dirs: List[str]) -> Dict[str, State]:
        """The cached states of the files under these run directories."""
        return self._rows("SELECT path, run, state FROM files", dirs, valid_state)

    def replays(self, dirs: List[str]) -> Dict[str, Replay]:
        """The kept results of the restart rule for these run directories (and their subdirectories)."""
        return self._rows("SELECT dir, run, state FROM replays", dirs, valid_replay)

    def _rows(self, select: str, dirs: List[str], valid: Callable[[Any], bool]) -> Dict[str, Any]:
        if len(dirs) <= 500:
            rows: List[Tuple[str, str]] = []
            for i in range(0, len(dirs), 100):
                part = dirs[i : i + 100]
                rows += self.conn.execute(
                    f"SELECT * FROM ({select}) WHERE run IN ({','.join('?' * len(part))})", part
                ).fetchall()
            rows = [(key, text) for key, _, text in rows]
        else:
            wanted = set(dirs)
            rows = [(key, text) for key, run, text in self.conn.execute(select) if run in wanted]
        found = {}
        for key, text in rows:
            try:
                value = json.loads(text)
            except (ValueError, TypeError):
                continue
            if valid(value):  # anything else is read again from the files
                found[key] = value
        return found

    def put(self, rows: List[Tuple[str, str, State]]) -> None:
        self._write(lambda: self.conn.executemany(
            "INSERT OR REPLACE INTO files (path, run, state) VALUES (?, ?, ?)",
            ((path, run, json.dumps(state)) for run, path, state in rows),
        ))

    def put_replays(self, rows: List[Tuple[str, str, Replay]]) -> None:
        self._write(lambda: self.conn.executemany(
            "INSERT OR REPLACE INTO replays (dir, run, state) VALUES (?, ?, ?)",
            ((directory, run, json.dumps(kept)) for run, directory, kept in rows),
        ))

    def drop_replays(self, dirs: List[str]) -> None:
        self._write(lambda: self.conn.executemany("DELETE FROM replays WHERE dir = ?", ((d,) for d in dirs)))

    def drop_runs(self, keep: Set[str]) -> None:
        """Forget the files of every run directory but those in ``keep`` (deleted or renamed runs)."""
        for table in _TABLES:
            try:
                gone = [run for (run,) in self.conn.execute(f"SELECT DISTINCT run FROM {table}") if run not in keep]
            except sqlite3.Error:
                return
            if gone:
                self._write(lambda table=table, gone=gone: self.conn.executemany(  # type: ignore[misc]
                    f"DELETE FROM {table} WHERE run = ?", ((run,) for run in gone)))

    def drop(self, paths: List[str]) -> None:
        self._write(lambda: self.conn.executemany("DELETE FROM files WHERE path = ?", ((p,) for p in paths)))

    def _write(self, change: Callable[[], Any]) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                change()
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        except sqlite3.Error:
            pass  # only a cache: the next command reads the files again

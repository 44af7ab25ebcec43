"""A derived index of the YAML database, so reads need not parse it.

The YAML file is the only source of truth. The index (an SQLite file beside it) holds, in
file order, each run's name, its entry as JSON and the byte length of its text, plus the
state of the YAML file it was built from: inode, size, times and a CRC-32 of the content.
It is written only by a process holding the database lock, and thrown away and rebuilt
whenever it does not describe the YAML file exactly.
"""
from __future__ import annotations

import functools
import json
import os
import sqlite3
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple, TypeVar

from runs_manager.store.filestate import FileState
from runs_manager.store.rows import IndexUnusable, decoded, decoded_parameters, has_outcome, kept_parameters, to_json
from runs_manager.text import PARAMETER_RULES

# 3: the types of a row are checked by SQLite as it is written; 4: each command's parameters
# are kept, read by the rules of text.PARAMETER_RULES (new rules make a new index)
SCHEMA = 4000 + PARAMETER_RULES

_CREATE = """
CREATE TABLE runs (
    pos INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (typeof(name) = 'text'),
    length INTEGER CHECK (length IS NULL OR (typeof(length) = 'integer' AND length >= 0)),
    entry TEXT NOT NULL CHECK (typeof(entry) = 'text'),
    params TEXT NOT NULL CHECK (typeof(params) = 'text'),  -- the command's parameters, read once (rows.kept_parameters)
    ended INTEGER NOT NULL CHECK (ended IN (0, 1))  -- 1 if the entry records an exit code: `--status running` reads only the others
);
CREATE INDEX runs_ended ON runs (ended, pos);
CREATE TABLE state (id INTEGER PRIMARY KEY CHECK (id = 0), json TEXT NOT NULL);
"""


F = TypeVar("F", bound=Callable[..., Any])


def _guarded(method: F) -> F:
    """Report a damaged index file as IndexUnusable, which callers answer by rebuilding it."""

    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except sqlite3.DatabaseError as e:
            raise IndexUnusable(str(e)) from None

    return guarded  # type: ignore[return-value]


class Index:
    def __init__(self, conn: sqlite3.Connection, path: Optional[str]) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: str, snapshot: bool) -> Index:
        """Open an existing index; with ``snapshot``, read-only and consistent until closed."""
        if not os.path.isfile(path):
            raise IndexUnusable("missing")
        uri = "file:" + _uri_path(path) + ("?mode=ro" if snapshot else "")
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
        except sqlite3.Error as e:
            raise IndexUnusable(str(e)) from None
        try:
            if snapshot:
                conn.execute("BEGIN")
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # takes the read lock now
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA:
                raise IndexUnusable("version")
            if not snapshot:
                conn.execute("PRAGMA synchronous=NORMAL")
        except (sqlite3.Error, IndexUnusable) as e:
            conn.close()  # a damaged or foreign file: do not keep it open
            raise IndexUnusable(str(e)) from None
        return cls(conn, path)

    @classmethod
    def create(cls, path: Optional[str]) -> Index:
        """A new, empty index at ``path`` (None: in memory), not yet committed."""
        conn = sqlite3.connect(":memory:" if path is None else path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=OFF" if path else "PRAGMA journal_mode=MEMORY")
        conn.execute("PRAGMA synchronous=OFF")  # written to a temporary file, renamed when whole
        conn.executescript(_CREATE)
        conn.execute(f"PRAGMA user_version={SCHEMA}")
        conn.execute("BEGIN")
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    def state(self) -> FileState:
        try:
            row = self.conn.execute("SELECT json FROM state").fetchone()
            return FileState(**json.loads(row[0]))
        except (sqlite3.Error, TypeError, ValueError) as e:
            raise IndexUnusable(str(e)) from None

    # Reads ----------------------------------------------------------------------------

    @_guarded
    def names(self) -> List[str]:
        self._check_names()
        return [name for (name,) in self.conn.execute("SELECT name FROM runs ORDER BY pos")]

    @_guarded
    def has(self, name: str) -> bool:
        found = self.conn.execute("SELECT 1 FROM runs WHERE name = ?", (name,)).fetchone() is not None
        if not found:
            self._check_names()
        return found

    def _check_names(self) -> None:
        """A name stored as bytes would hide its run from every lookup by name: found through
        the index of names (blobs sort after all text), so no row is scanned."""
        if self.conn.execute("SELECT 1 FROM runs WHERE name >= x'' LIMIT 1").fetchone() is not None:
            raise IndexUnusable("a run name that is not text")

    @_guarded
    def first_in_group(self, group: str, other_than: str = "") -> Optional[str]:
        """A run named ``group/...`` (but not ``other_than``), if any.

        A range scan of the name index: '0' is the character after '/'.
        """
        row = self.conn.execute(
            "SELECT name FROM runs WHERE name > ? AND name < ? AND name != ? ORDER BY name LIMIT 1",
            (group + "/", group + "0", other_than),
        ).fetchone()
        return None if row is None else str(row[0])

    @_guarded
    def uses(self, field: str, value: str) -> bool:
        """Whether some run's entry has ``field: value`` (a snapshot still in use), asked of
        SQLite's JSON functions: no entry is decoded in Python."""
        row = self.conn.execute("SELECT 1 FROM runs WHERE json_extract(entry, ?) = ? LIMIT 1", ("$." + field, value)).fetchone()
        return row is not None

    @_guarded
    def entry(self, name: str) -> Optional[Dict[str, Any]]:
        row = self.conn.execute("SELECT entry FROM runs WHERE name = ?", (name,)).fetchone()
        if row is None:
            self._check_names()
            return None
        return decoded(name, row[0])

    @_guarded
    def may_have_queued(self) -> bool:
        """False if no run without an outcome can be queued (SQLite scans the text of those
        runs, nothing is decoded); True means: look at their entries."""
        sql = "SELECT 1 FROM runs WHERE ended = 0 AND entry LIKE '%\"queued\": true%' LIMIT 1"
        return self.conn.execute(sql).fetchone() is not None

    @_guarded
    def entries(
        self, names: Optional[Iterable[str]] = None, has_outcome: Optional[bool] = None
    ) -> List[Tuple[str, Dict[str, Any]]]:
        """(name, entry) in file order, for all runs or for ``names``; with ``has_outcome``,
        only runs that have (or have not) recorded an exit code."""
        wanted, sql, params = _entries_query(names, has_outcome)
        if has_outcome is not None:
            self._check_ended()
        return [(name, decoded(name, entry)) for name, entry in self.conn.execute(sql, params) if wanted is None or name in wanted]

    def _check_ended(self) -> None:
        """A row's ``ended`` that is neither 0 nor 1 would hide it from both filters: found
        through the index on it (numbers sort before text and blobs), so no row is scanned."""
        bad = "SELECT 1 FROM runs WHERE ended > 1 OR ended < 0 OR (ended > 0 AND ended < 1) LIMIT 1"
        if self.conn.execute(bad).fetchone() is not None:
            raise IndexUnusable("a row whose 'ended' is not 0 or 1")

    def each_entry(
        self, names: Optional[Iterable[str]] = None, has_outcome: Optional[bool] = None, kept: bool = False
    ) -> Iterator[Tuple[Any, ...]]:
        """(name, entry) in file order, as ``entries`` gives them, one at a time: a caller that
        keeps a few values of each run never holds 100,000 decoded entries at once. With
        ``kept``: (name, entry, the command's parameters as the index keeps them)."""
        wanted, sql, arguments = _entries_query(names, has_outcome, ", params" if kept else "")
        try:
            if has_outcome is not None:
                self._check_ended()
            for row in self.conn.execute(sql, arguments):
                if wanted is None or row[0] in wanted:
                    yield (row[0], decoded(row[0], row[1]), decoded_parameters(row[0], row[2])) if kept else \
                        (row[0], decoded(row[0], row[1]))
        except sqlite3.DatabaseError as e:
            raise IndexUnusable(str(e)) from None

    @_guarded
    def keys(self) -> List[str]:
        """Every key that some run's entry has, in the order they first appear."""
        try:
            rows = self.conn.execute(
                "SELECT json_each.key FROM runs, json_each(runs.entry) "
                "WHERE json_type(runs.entry) = 'object' GROUP BY json_each.key ORDER BY min(runs.pos)"
            ).fetchall()
            return [str(key) for (key,) in rows]
        except sqlite3.OperationalError:  # an SQLite built without its JSON functions
            keys: Dict[str, None] = {}
            for (entry,) in self.conn.execute("SELECT entry FROM runs ORDER BY pos"):
                value = json.loads(entry)
                keys.update(dict.fromkeys(value if isinstance(value, dict) else ()))
            return list(keys)

    @_guarded
    def lengths(self) -> List[Tuple[str, int]]:
        rows = list(self.conn.execute("SELECT name, length FROM runs ORDER BY pos"))
        if not all(type(length) is int and length >= 0 for _, length in rows):
            raise IndexUnusable("a byte length that is not a number")
        return rows

    @_guarded
    def ranges(self, names: Iterable[str]) -> List[Tuple[str, int, int]]:
        """(name, offset after the header, byte length) of the runs ``names`` that exist,
        in file order. A few are looked up, so that changing one run of 100,000 does not
        read every row."""
        wanted = set(names)
        if len(wanted) > 20:
            found, offset = [], 0
            for name, length in self.lengths():
                if name in wanted:
                    found.append((name, offset, length))
                offset += length
            return found
        rows = sorted(
            row for name in wanted for row in self.conn.execute("SELECT pos, name, length FROM runs WHERE name = ?", (name,))
        )
        if not all(type(length) is int and length >= 0 for _, _, length in rows):
            raise IndexUnusable("a byte length that is not a number")
        return [
            (name, self.conn.execute("SELECT coalesce(sum(length), 0) FROM runs WHERE pos < ?", (pos,)).fetchone()[0], length)
            for pos, name, length in rows
        ]

    @_guarded
    def last(self) -> Optional[Tuple[str, int, Dict[str, Any]]]:
        """The last run in the file: name, byte length, entry."""
        row = self.conn.execute("SELECT name, length, entry FROM runs ORDER BY pos DESC LIMIT 1").fetchone()
        return None if row is None else (row[0], row[1], decoded(row[0], row[2]))

    # Writes (only under the database lock) -------------------------------------------

    def insert(self, runs: Iterable[Tuple[str, Dict[str, Any], Optional[int]]]) -> None:
        self.conn.executemany(
            "INSERT INTO runs (name, entry, length, ended, params) VALUES (?, ?, ?, ?, ?)",
            ((name, to_json(entry), length, has_outcome(entry), kept_parameters(entry)) for name, entry, length in runs),
        )

    def grow_last(self, extra: int) -> bool:
        """Extend the last run's byte range (text appended after it that is not a run)."""
        cursor = self.conn.execute("UPDATE runs SET length = length + ? WHERE pos = (SELECT max(pos) FROM runs)", (extra,))
        return cursor.rowcount == 1

    def replace(self, rows: Iterable[Tuple[str, int, Dict[str, Any], str]]) -> None:
        """Give runs a new entry and byte length, and maybe a new name: (new name, length, entry, old name)."""
        rows = list(rows)
        # Through names no run can have first, so that runs may trade names (a UNIQUE column).
        self.conn.executemany(
            "UPDATE runs SET name = ? WHERE name = ?", ((f"\0renaming {i}", old) for i, (_, _, _, old) in enumerate(rows))
        )
        self.conn.executemany(
            "UPDATE runs SET name = ?, length = ?, entry = ?, ended = ?, params = ? WHERE name = ?",
            ((name, length, to_json(entry), has_outcome(entry), kept_parameters(entry), f"\0renaming {i}")
             for i, (name, length, entry, _) in enumerate(rows)),
        )

    def delete(self, names: Iterable[str]) -> None:
        self.conn.executemany("DELETE FROM runs WHERE name = ?", ((name,) for name in names))

    def set_state(self, state: FileState) -> None:
        self.conn.execute("INSERT OR REPLACE INTO state (id, json) VALUES (0, ?)", (json.dumps(state._asdict()),))

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.conn.execute("COMMIT")


def _uri_path(path: str) -> str:
    from urllib.parse import quote

    return quote(os.path.abspath(path))


def _entries_query(names: Optional[Iterable[str]], has_outcome: Optional[bool], more: str = "") -> Tuple[Optional[Set[str]], str, List[Any]]:
    """The runs ``names`` (all when None) with or without an outcome: the names wanted (to
    filter what a full scan returns), the SQL and its parameters."""
    wanted = None if names is None else set(names)
    where: List[str] = []
    arguments: List[Any] = []
    if wanted is not None and len(wanted) <= 500:  # a few: look them up, do not scan every run
        where.append(f"name IN ({','.join('?' * len(wanted))})")
        arguments.extend(wanted)
    if has_outcome is not None:
        where.append("ended = ?")
        arguments.append(int(has_outcome))
    sql = f"SELECT name, entry{more} FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY pos"
    return wanted, sql, arguments

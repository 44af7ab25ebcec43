"""The runs database: a YAML file, read through a derived index, changed under a lock.

Guarantees (each has a test in tests/test_database.py and tests/test_reliability.py):
- Every change happens under an exclusive POSIX ``fcntl`` lock on ``<db>.lock`` (locking.py;
  NFS supports these; the kernel drops them when a process dies, so a stale lock never blocks).
- A change is an append of whole entries, fsynced, or an atomic replace (temp file in the
  same directory, fsync, ``os.replace``). A torn append is recognised from the journal
  (``<db>.pending``) and cut off by the next command that takes the lock.
- Readers never take the lock unless the index must be rebuilt (or an interrupted ``mv``
  undone first): they read a consistent SQLite snapshot, so they never see half a change.

The journal is journal.py, changes under the lock are transaction.py, and keeping the
index in step with the file is indexing.py.
- A malformed file is reported with its name and line and is never written.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import zlib
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple, TypeVar

from runs_manager import faults, fsutil
from runs_manager.errors import RunsError
from runs_manager.store.index import Index, IndexUnusable
from runs_manager.store.locking import locked
from runs_manager.store.journal import Journal, cut_torn_append, torn_append_at
from runs_manager.store.indexing import Progress, appended_runs, apply, file_crc, no_gc, state_of
from runs_manager.store.splice import PREPARED_MARK, PREPARED_STALE, Prepared, prepare
from runs_manager.store.transaction import HEADER, Transaction

__all__ = ["HEADER", "Database", "Transaction"]

# A change to the YAML file within this long of the index being written may share its
# timestamp (coarse file-system clocks), so the content is then compared too.
RACY_NS = 2_000_000_000
SHOW_PROGRESS_BYTES = 4_000_000
READ_ATTEMPTS = 5

Entry = Dict[str, Any]
Recover = Callable[[Dict[str, Any], Index], None]
Settle = Callable[[Transaction], None]  # brings in what was kept outside the file meanwhile
T = TypeVar("T")


class Database:
    def __init__(self, path: str, recover: Optional[Recover] = None, settle: Optional[Settle] = None) -> None:
        self.path = path
        self._settle = settle
        self.index_path = path + ".index"
        self.lock_path = path + ".lock"
        self.journal_path = path + ".pending"
        self.journal = Journal(self.journal_path)
        self._recover_intent = recover

    # Reading --------------------------------------------------------------------------

    def read(self, query: Callable[[Index], T]) -> T:
        """``query`` answered from a consistent view of the runs; a damaged index is rebuilt."""
        try:
            with self.reading() as index:
                return query(index)
        except IndexUnusable:
            self._discard_index()
        with self.reading() as index:
            try:
                return query(index)
            except IndexUnusable as e:
                raise RunsError(f"cannot read the index {self.index_path}: {e}") from None

    def _discard_index(self) -> None:
        with locked(self.lock_path, self.path), contextlib.suppress(FileNotFoundError):
            os.unlink(self.index_path)

    @contextlib.contextmanager
    def reading(self) -> Iterator[Index]:
        """A consistent view of every run, as the YAML file holds them now."""
        if not self._exists():
            index = Index.create(None)
        else:
            index = self._open_fresh_snapshot()
        try:
            yield index
        finally:
            index.close()

    def _open_fresh_snapshot(self) -> Index:
        with contextlib.suppress(IndexUnusable):
            index = Index.open(self.index_path, snapshot=True)
            try:
                if self._is_fresh(index) and not self._unfinished_move():
                    return index
            except IndexUnusable:
                pass
            index.close()
        if not self._writable():
            return self._build_in_memory()  # a read-only runs directory
        with locked(self.lock_path, self.path):
            index = self._refresh()
            if index.path is None:  # the index file cannot be written: this one is in memory
                print(f"runs: note: the index {self.index_path} cannot be written (remove it if it is not a file); "
                      "until it can, every command reads the whole database", file=sys.stderr)
                return index
            index.close()
            try:
                # Opened before the lock is released, so no change can come in between.
                return Index.open(self.index_path, snapshot=True)
            except IndexUnusable as e:
                raise RunsError(f"cannot read the index {self.index_path}: {e}") from None

    def _unfinished_move(self) -> bool:
        """Whether a change that moved files may have died half-way (its journal says so):
        readers must then let its recovery run first, or they would show files missing."""
        if not os.path.lexists(self.journal_path):
            return False  # the usual case: one stat
        intent = (self.journal.read(clear_if_damaged=False) or {}).get("intent")
        return isinstance(intent, dict) and bool(intent.get("before_reads"))

    def _exists(self) -> bool:
        if os.path.isdir(self.path):
            raise RunsError(f"{self.path} is a directory, not a runs database")
        if os.path.islink(self.path) and not os.path.exists(self.path):
            raise RunsError(f"{self.path} is a symbolic link to a missing file")
        return os.path.lexists(self.path)

    def _writable(self) -> bool:
        return os.access(os.path.dirname(self.path) or ".", os.W_OK)

    # Writing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self, prepared: Optional[Prepared] = None) -> Iterator[Transaction]:
        """Hold the lock and a fresh index; changes go through the Transaction (which uses
        ``prepared``, from :meth:`prepare`, if it still fits)."""
        txn: Optional[Transaction] = None
        try:
            self._exists()
            with locked(self.lock_path, self.path):
                txn = Transaction(self, self._refresh(), prepared)  # it uses or discards ``prepared``
                try:
                    if self._settle is not None:
                        self._settle(txn)
                    yield txn
                finally:
                    txn.close()
        finally:
            if prepared is not None and txn is None:
                prepared.discard()  # the lock was never reached

    def prepare(self, changes: Mapping[str, Any]) -> Optional[Prepared]:
        """The slow part of ``Transaction.change(changes)``, done now, without the lock:
        give the result to :meth:`writing`."""
        try:
            with self.reading() as index:
                return prepare(self, index, changes)
        except (RunsError, IndexUnusable):
            return None

    def _refresh(self) -> Index:
        """Under the lock: finish or undo an interrupted change, then bring the index up to date."""
        for path in (self.path, self.index_path, self.journal_path):
            fsutil.remove_temp_files(path)
        fsutil.remove_temp_files(os.path.realpath(self.path), PREPARED_MARK, older_than=PREPARED_STALE)
        journal = self.journal.read()
        if journal is not None:
            cut_torn_append(self.path, journal.get("append"))
        index = self._updated_index()
        if journal is not None:
            intent = journal.get("intent")
            if self._recover_intent is not None and isinstance(intent, dict):
                try:
                    self._recover_intent(intent, index)
                except (RunsError, OSError) as e:  # the journal must not block every later command
                    print(f"runs: could not undo an interrupted change to {self.path}: {e}", file=sys.stderr)
            self.journal.clear()
        return index

    def _updated_index(self) -> Index:
        if not self._exists():
            return self._replace_index(b"", None)
        index: Optional[Index] = None
        with contextlib.suppress(IndexUnusable):
            index = Index.open(self.index_path, snapshot=False)
            if self._is_fresh(index):
                return index
        data, st = self._read()
        if index is not None:
            with contextlib.suppress(IndexUnusable):
                if self._add_appended(index, data, st):
                    return index
            index.close()
        return self._replace_index(data, st)

    def _is_fresh(self, index: Index) -> bool:
        state = index.state()
        try:
            # Opened, not just stat'ed: NFS revalidates attributes on open (close-to-open),
            # so a change made on another machine is seen now, not seconds later.
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                if not state.same_stat(st):
                    return False
                if st.st_mtime_ns + RACY_NS < os.stat(self.index_path).st_mtime_ns:
                    return True
                if file_crc(f, st.st_size) != state.crc:
                    return False
        except FileNotFoundError:
            return False
        # Checked: stamp the index with the time of this check. Once that is past the racy
        # window, later commands trust the times alone (both are the file server's clock).
        with contextlib.suppress(OSError):
            os.utime(self.index_path)
        return True

    def _add_appended(self, index: Index, data: bytes, st: os.stat_result) -> bool:
        """Take in runs appended to the file since the index was written (by another
        process or machine); False if the file changed in any other way."""
        state = index.state()
        appended = appended_runs(index, state, data, st)
        if appended is None:
            return False
        runs, header = appended
        tail = data[state.size :]

        # Text before the first new run belongs to the last old one, or to the header.
        new_header = state.header + header if index.last() is None else state.header

        def change() -> None:
            if header:
                index.grow_last(header)
            index.insert(runs)

        return apply(index, change, state_of(st, zlib.crc32(tail, state.crc), tail, new_header, True))

    def _read(self) -> Tuple[bytes, os.stat_result]:
        """The file's content and the state it was read in (read again if it changed meanwhile)."""
        try:
            with open(self.path, "rb") as f:
                for _ in range(READ_ATTEMPTS):
                    st = os.fstat(f.fileno())
                    f.seek(0)
                    data = f.read()
                    if len(data) == st.st_size and os.fstat(f.fileno()).st_mtime_ns == st.st_mtime_ns:
                        return data, st
            raise RunsError(f"{self.path} keeps changing while runs reads it; is something writing it without runs?")
        except FileNotFoundError:
            return b"", os.stat_result((0,) * 10)
        except OSError as e:
            raise RunsError(f"cannot read {self.path}: {e.strerror}") from None

    def _replace_index(self, data: bytes, st: Optional[os.stat_result]) -> Index:
        """Rebuild the index file from ``data``; in memory if the file cannot be written
        (a full disk must not stop reads, nor the delete that frees space)."""
        temp = f"{self.index_path}{fsutil.TEMP_MARK}{os.getpid()}"
        try:
            self._build(data, st, path=temp).close()
            fsutil.fsync_file(temp)  # written without syncing: whole on disk before it is renamed
            # A journal left by a crashed writer would be applied to the new file: remove it.
            for suffix in ("-journal", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.index_path + suffix)
            os.replace(temp, self.index_path)
            return Index.open(self.index_path, snapshot=False)
        except (OSError, sqlite3.Error, IndexUnusable):
            return self._build(data, st, path=None)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temp)

    def _build_in_memory(self) -> Index:
        """An index of the file as it is, for a runs directory this process cannot write to."""
        data, st = self._read()
        journal = self.journal.read(clear_if_damaged=False) or {}
        at = torn_append_at(data, journal.get("append"), st)
        return self._build(data if at is None else data[:at], st, path=None)

    def _build(self, data: bytes, st: Optional[os.stat_result], path: Optional[str]) -> Index:
        from runs_manager.store import yamlfile

        with Progress(self.path, len(data), SHOW_PROGRESS_BYTES) as progress, no_gc():
            for chunked in (True, False):
                index = Index.create(path)
                parser = yamlfile.Parser(data, progress)
                faults.point("index:rebuilding")
                try:
                    index.insert((name, entry, length) for name, entry, length, _ in parser.runs(chunked))
                    break
                except yamlfile.Unsplittable:
                    index.close()
                    if path:
                        os.unlink(path)
                except yamlfile.ParseError as e:
                    index.close()
                    where = f"{self.path}, line {e.line + 1}" if e.line is not None else self.path
                    raise RunsError(f"{where}: {e.message}") from None
                except BaseException:
                    index.close()
                    raise
        simple = parser.simple and chunked
        index.set_state(state_of(st, zlib.crc32(data), data, parser.header, simple))
        index.commit()
        return index

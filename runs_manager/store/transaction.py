"""Changes to the runs database while its lock is held: append, splice, rewrite.

A new run is appended as text (journaled, so a torn append is cut off later). Removing,
changing or renaming runs splices their byte ranges: the file is streamed into a
temporary file with the new text in place, and that replaces the old file atomically.
Memory stays bounded whatever the size of the database.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import zlib
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, TypeVar

from runs_manager import faults, fsutil
from runs_manager.store import journal
from runs_manager.errors import RunsError
from runs_manager.store.filestate import FileState
from runs_manager.store.index import Index, IndexUnusable
from runs_manager.store.indexing import apply, last_entry_keeps, state_of
from runs_manager.store.splice import Change, Entry, Misplaced, Plan, Prepared, exact_text, plan_of, spliced

if TYPE_CHECKING:
    from runs_manager.store.database import Database

# Ends with a blank line: comments directly above a run belong to that run.
HEADER = (
    b"# runs database: one entry per run, oldest first. Edit with care: keep each run name\n"
    b"# at the start of its line; 'runs' notices hand edits and re-reads the file.\n\n"
)

T = TypeVar("T")
# A splice done: the file's new state, each changed run's new byte length, the changes made.
Spliced = Tuple[Tuple[FileState, Dict[str, int]], Dict[str, Change]]


class Transaction:
    """Changes to the database while its lock is held."""

    def __init__(self, db: Database, index: Index, prepared: Optional[Prepared] = None) -> None:
        self._db = db
        self.index = index
        self._intent: Optional[Dict[str, Any]] = None
        self._prepared = prepared

    def close(self) -> None:
        self.index.close()
        if self._prepared is not None:
            self._prepared.discard()
            self._prepared = None

    # Queries: a damaged index is rebuilt from the YAML file (the lock is held) and asked again.

    def names(self) -> List[str]:
        return self._ask(lambda index: index.names())

    def entry(self, name: str) -> Optional[Entry]:
        return self._ask(lambda index: index.entry(name))

    def entries(self, names: Optional[Iterable[str]] = None, has_outcome: Optional[bool] = None) -> List[Tuple[str, Entry]]:
        wanted = None if names is None else list(names)
        return self._ask(lambda index: index.entries(wanted, has_outcome))

    def has(self, name: str) -> bool:
        return self._ask(lambda index: index.has(name))

    def first_in_group(self, group: str, other_than: str = "") -> Optional[str]:
        return self._ask(lambda index: index.first_in_group(group, other_than))

    def uses(self, field: str, value: str) -> bool:
        return self._ask(lambda index: index.uses(field, value))

    def _ask(self, query: Callable[[Index], T]) -> T:
        try:
            return query(self.index)
        except IndexUnusable:
            self.index.close()
            self.index = self._db._replace_index(*self._db._read())
            return query(self.index)

    def intend(self, intent: Dict[str, Any]) -> None:
        """Record what is about to happen, so that a crash half-way can be undone.

        The next command to take the lock calls the Database's ``recover`` with it.
        """
        self._db.journal.write({"intent": intent})
        self._intent = intent

    def done(self) -> None:
        self._db.journal.clear()
        self._intent = None

    # Appending ------------------------------------------------------------------------

    def add(self, name: str, entry: Entry) -> None:
        self.add_all([(name, entry)])

    def add_all(self, runs: List[Tuple[str, Entry]]) -> None:
        """Append runs (new names, each once), all in one write: a sweep of 100 runs costs
        one journal, one append and one sync, and a crash leaves all of them or none."""
        if not runs:
            return
        blobs = [exact_text(name, entry) for name, entry in runs]
        db, state = self._db, self._ask(lambda index: index.state())
        if not db._exists() or state.size == 0:
            self._replace(HEADER + b"".join(blobs))
        elif not state.simple or not (
            state.ends_with_newline or self._ask(lambda index: last_entry_keeps(index, db._read()[0], b"\n"))
        ):
            # Cannot append: a file without a final newline whose last value would change
            # with one (a block scalar) is rewritten too.
            self._rewrite({}, added=runs)
        else:
            if not state.ends_with_newline:
                blobs[0] = b"\n" + blobs[0]
            self._append(runs, blobs, state)
        if self._intent is None:
            self.done()  # no intent of the caller's: the journal only covered this append

    def _append(self, runs: List[Tuple[str, Entry]], blobs: List[bytes], state: FileState) -> None:
        db = self._db
        blob = b"".join(blobs)
        record = {"intent": self._intent, "append": journal.append_record(state.size, state.ino, blob)}
        db.journal.write(record)
        faults.point("append:journal-written")
        try:
            with open(db.path, "ab") as f:
                if os.fstat(f.fileno()).st_size != state.size:
                    raise RunsError(f"{db.path} changed while runs was writing it; try again")
                if faults.armed("append:torn"):
                    f.write(blob[: len(blob) // 2])
                    f.flush()
                    faults.point("append:torn")
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
                st = os.fstat(f.fileno())
        except OSError as e:
            # Failed (a full disk, or an fsync error NFS reports late): take back what was
            # written, whole or in part, so the caller's undo leaves nothing behind.
            journal.cut_torn_append(db.path, record["append"], whole_too=True)
            raise RunsError(f"cannot write {db.path}: {e.strerror}") from None
        faults.point("append:written")
        self._update_index(
            lambda: self.index.insert([(name, entry, len(text)) for (name, entry), text in zip(runs, blobs)]),
            state_of(st, zlib.crc32(blob, state.crc), blob, state.header, True),
        )
        faults.point("index:written")

    def _update_index(self, change: Callable[[], None], state: FileState) -> None:
        """Bring the index in line with a change already made to the YAML file.

        The YAML file is the truth: if the index cannot follow, it is thrown away (and rebuilt
        by the next command) rather than failing a change that has happened.
        """
        if not apply(self.index, change, state):
            self.index.close()
            with contextlib.suppress(OSError):
                os.unlink(self._db.index_path)
            self.index = self._db._build(*self._db._read(), path=None)

    # Splicing -------------------------------------------------------------------------

    def remove(self, names: Iterable[str]) -> None:
        self.change({name: None for name in names})

    def update(self, name: str, entry: Entry) -> None:
        """Replace run ``name``'s entry (in its place in the file)."""
        self.change({name: (name, entry)})

    def change(self, changes: Mapping[str, Change]) -> None:
        """Remove, replace or rename runs, all in one atomic replace of the file.

        Every new name must be free (or one of the runs being changed).
        """
        if not changes:
            return
        blobs = {old: exact_text(*new) for old, new in changes.items() if new is not None}
        state = self._ask(lambda index: index.state())
        if not self._db._exists():
            return
        done = self._install_prepared(state, changes) or self._splice_changes(state, changes, blobs)
        if done is None:
            return  # rewritten whole: the index was rebuilt
        (new_state, lengths_now), present = done
        rows = [(new[0], lengths_now[new[0]], new[1], old) for old, new in present.items() if new is not None]

        def index_change() -> None:
            self.index.delete(name for name, new in present.items() if new is None)
            self.index.replace(rows)

        self._update_index(index_change, new_state)

    def _splice_changes(self, state: FileState, changes: Mapping[str, Change], blobs: Dict[str, bytes]) -> Optional[Spliced]:
        for attempt in range(2):
            ranges = self._ask(lambda index: index.ranges(changes))
            present = {name: changes[name] for name, _, _ in ranges}  # the runs that exist
            if not state.simple:
                self._rewrite(present)
                return None
            try:
                return self._splice(state, plan_of(state, ranges, present, blobs)), present
            except Misplaced:
                if attempt:
                    raise RunsError(f"{self._db.path} changed while runs was reading it; try again") from None
                # The index's byte ranges are off (a damaged index): rebuild it, never splice by them.
                self.index.close()
                self.index = self._db._replace_index(*self._db._read())
                state = self.index.state()
        raise AssertionError("unreachable")

    def _splice(self, state: FileState, plan: Plan) -> Tuple[FileState, Dict[str, int]]:
        """Write the file with each planned range replaced; returns its new state and the
        byte length each replaced run's range now has, by the run's new name."""
        path = self._db.path
        temp, crc, last, lengths = spliced(path, state, plan, fsutil.TEMP_MARK)
        fsutil.install(temp, os.path.realpath(path))
        return state_of(os.stat(path), crc, last, state.header, True), lengths

    def _install_prepared(self, state: FileState, changes: Mapping[str, Change]) -> Optional[Spliced]:
        """Put the file :func:`prepare` wrote in place, if it was made from the file as it is
        now for exactly these changes: the lock is then held for a rename, not a copy."""
        prepared, self._prepared = self._prepared, None
        if prepared is None:
            return None
        path = os.path.realpath(self._db.path)
        try:
            if prepared.state != state or prepared.asked != dict(changes) or not state.same_stat(os.stat(path)):
                prepared.discard()  # the file changed (by hand, too, since it was checked), or the change asked did
                return None
            fsutil.install(prepared.temp, path)
        except FileNotFoundError:  # removed as stale by another command meanwhile (or the database)
            prepared.discard()
            return None
        new_state = state_of(os.stat(path), prepared.crc, prepared.last, state.header, True)
        return (new_state, prepared.lengths), prepared.present

    def _rewrite(self, changes: Mapping[str, Change], added: Iterable[Tuple[str, Entry]] = ()) -> None:
        """Rewrite a file that cannot be changed in place (see yamlfile): parse it whole."""
        from runs_manager.store import yamlfile

        data, _ = self._db._read()
        try:
            _, runs = yamlfile.parse_all(data)
        except yamlfile.ParseError as e:  # the index was fresh, so this is a race with an editor
            raise RunsError(f"{self._db.path} changed while runs was reading it: {e.message}") from None
        if re.search(rb"^[ \t]*#", data, re.M):
            print(f"runs: note: {self._db.path} was rewritten in canonical form (it could not be changed in place); "
                  "its comments were not kept", file=sys.stderr)
        kept = []
        for name, entry, _, _ in runs:
            new = changes.get(name, (name, entry))
            if new is not None:
                kept.append(new)
        self._replace(HEADER + yamlfile.dump_all(kept + list(added)))

    def _replace(self, data: bytes) -> None:
        try:
            fsutil.atomic_write(os.path.realpath(self._db.path), data)
        except OSError as e:
            raise RunsError(f"cannot write {self._db.path}: {e.strerror}; it is unchanged") from None
        self.index.close()
        self.index = self._db._replace_index(*self._db._read())

"""Splicing the database file: the text of runs replaced, renamed or removed in their byte
ranges, streamed into a temporary file (memory stays bounded whatever the file's size).

A splice may be prepared before the database lock is taken (``prepare``): the transaction
then only renames the prepared file into place, if the database is still the file it was
made from. Comments directly above a run belong to it and move with it.
"""
from __future__ import annotations

import contextlib
import os
import zlib
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Tuple

from runs_manager import fsutil
from runs_manager.errors import RunsError
from runs_manager.store.filestate import FileState
from runs_manager.store.index import Index, IndexUnusable

if TYPE_CHECKING:
    from runs_manager.store.database import Database

BLOCK = 1 << 20
Entry = Dict[str, Any]
# What a splice does to a run: None removes it, (name, entry) replaces it (maybe renamed).
Change = Optional[Tuple[str, Entry]]
Plan = List[Tuple[int, int, bytes, str, Optional[str]]]  # (start, stop, text in place, run, new name)
PREPARED_MARK = ".prepared-"
PREPARED_STALE = 600.0  # seconds: a prepared file older than this was left by a crash


class Prepared(NamedTuple):
    """The file a splice would write, written before the lock is taken (see :func:`prepare`)."""

    temp: str
    state: FileState  # of the file it was made from
    asked: Dict[str, Change]
    present: Dict[str, Change]  # the runs of ``asked`` that the file holds
    crc: int
    last: bytes
    lengths: Dict[str, int]

    def discard(self) -> None:
        """Remove the file, not used (the database changed, or the change asked did)."""
        with contextlib.suppress(OSError):
            os.unlink(self.temp)


def prepare(db: Database, index: Index, changes: Mapping[str, Change]) -> Optional[Prepared]:
    """Write the file ``Transaction.change(changes)`` would write, from ``index`` (a snapshot),
    without the lock: copying a 50 MB file takes a tenth of a second that every other command
    and supervisor would otherwise wait. Under the lock it is used only if the file is still
    the one it was made from; None when it cannot be made (the change then splices as ever)."""
    try:
        blobs = {old: exact_text(*new) for old, new in changes.items() if new is not None}
        state = index.state()
        if not state.simple or not db._exists():
            return None
        ranges = index.ranges(changes)
        present = {name: changes[name] for name, _, _ in ranges}
        temp, crc, last, lengths = spliced(db.path, state, plan_of(state, ranges, present, blobs), PREPARED_MARK)
    except (RunsError, OSError, IndexUnusable, Misplaced):
        return None
    return Prepared(temp, state, dict(changes), present, crc, last, lengths)


def plan_of(state: FileState, ranges: Iterable[Tuple[str, int, int]], present: Mapping[str, Change], blobs: Mapping[str, bytes]) -> Plan:
    plan = []
    for name, start, length in ranges:
        new, at = present[name], state.header + start
        plan.append((at, at + length, blobs.get(name, b""), name, None if new is None else new[0]))
    return plan


def spliced(path: str, state: FileState, plan: Plan, mark: str) -> Tuple[str, int, bytes, Dict[str, int]]:
    """A temporary file beside ``path`` holding it with each planned range replaced; returns
    it with its CRC, last piece and the byte length of each replaced run, by its new name."""
    from runs_manager.store import yamlfile

    lengths: Dict[str, int] = {}
    crc_old, crc_new, last = 0, 0, b""
    with open(path, "rb") as f:
        if not state.same_stat(os.fstat(f.fileno())):
            raise RunsError(f"{path} changed while runs was reading it; try again")

        def copy(stop: int) -> Iterator[bytes]:
            nonlocal crc_old
            while f.tell() < stop:
                block = f.read(min(BLOCK, stop - f.tell()))
                if not block:
                    raise RunsError(f"{path} changed while runs was reading it; try again")
                crc_old = zlib.crc32(block, crc_old)
                yield block

        def pieces() -> Iterator[bytes]:
            nonlocal crc_old
            for start, stop, blob, name, new_name in plan:
                yield from copy(start)
                old = f.read(stop - start)
                if (yamlfile.load_one(old) or ("",))[0] != name:
                    raise Misplaced  # before anything is replaced: the temporary file goes
                crc_old = zlib.crc32(old, crc_old)
                if new_name is not None:
                    blob = keeping_comments(old, blob)
                    lengths[new_name] = len(blob)
                    yield blob
            yield from copy(state.size)

        def counted() -> Iterator[bytes]:
            nonlocal crc_new, last
            for piece in pieces():
                if piece:
                    crc_new, last = zlib.crc32(piece, crc_new), piece
                    yield piece
            if crc_old != state.crc or f.read(1):
                raise RunsError(f"{path} changed while runs was reading it; try again")

        try:
            temp = fsutil.write_temp(os.path.realpath(path), counted(), mark)
        except OSError as e:
            raise RunsError(f"cannot write {path}: {e.strerror}; it is unchanged") from None
    return temp, crc_new, last, lengths


class Misplaced(Exception):
    """A byte range of the index does not hold the run it names."""


def exact_text(name: str, entry: Entry) -> bytes:
    from runs_manager.store import yamlfile

    blob = yamlfile.exact_text(name, entry)
    if blob is None:
        raise RunsError(f"run '{name}' cannot be stored in YAML exactly as given")
    return blob


def keeping_comments(old: bytes, blob: bytes) -> bytes:
    """``blob`` with the text around the old entry that is not part of it: the comment lines
    directly above it (they belong to it), and blank and comment lines after it (a heading
    for the next runs), if the entry still reads the same with them."""
    from runs_manager.store import yamlfile

    lines = old.splitlines(keepends=True)
    lead = 0
    while lead < len(lines) and lines[lead].startswith(b"#") and lines[lead].endswith(b"\n"):
        lead += 1
    trail = len(lines)
    while trail > lead + 1 and (lines[trail - 1].startswith(b"#") or not lines[trail - 1].strip()):
        trail -= 1
    before, after = b"".join(lines[:lead]), b"".join(lines[trail:])
    if after and not after.endswith(b"\n"):
        after += b"\n"  # the entry no longer ends the file without a final newline
    wanted = yamlfile.load_one(blob)
    for candidate in (before + blob + after, before + blob):
        if candidate == blob or yamlfile.load_one(candidate) == wanted:
            return candidate
    return blob

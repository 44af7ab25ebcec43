"""Keeping the index in step with the YAML file: what it records of the file, changing it
all or nothing, and taking in runs that another process appended.
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import sqlite3
import sys
import zlib
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from runs_manager.store.filestate import FileState
from runs_manager.store.index import Index, IndexUnusable

Entry = Dict[str, Any]


def appended_runs(
    index: Index, state: FileState, data: bytes, st: os.stat_result
) -> Optional[Tuple[List[Tuple[str, Entry, Optional[int]]], int]]:
    """The runs appended after what the index describes, and the bytes before the first of
    them; None if the file changed otherwise, or the new text is not plain appended runs."""
    if not (
        state.simple
        and state.ends_with_newline
        and st.st_ino == state.ino
        and len(data) > state.size
        and zlib.crc32(memoryview(data)[: state.size]) == state.crc
    ):
        return None
    from runs_manager.store import yamlfile  # here: PyYAML is needed only to parse or write

    tail = data[state.size :]
    if yamlfile.has_document_markers(tail, after_first_key=False):
        return None  # a second document: the full parse reports it
    parser = yamlfile.Parser(tail)
    try:
        runs = [(name, entry, length) for name, entry, length, _ in parser.runs()]
    except (yamlfile.ParseError, yamlfile.Unsplittable):
        return None  # the full rebuild reports it with the right line
    if not parser.simple:
        return None
    # Text before the first new run joins the last old one (a `|+` scalar would keep it).
    if parser.header and not last_entry_keeps(index, data[: state.size], tail[: parser.header]):
        return None
    return runs, parser.header


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Parsing allocates millions of objects that are never cyclic garbage: collecting
    them over and over would more than double the time of a large rebuild."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def file_crc(f: Any, size: int) -> int:
    crc = 0
    while size > 0:
        block = f.read(min(size, 1 << 20))
        if not block:
            break
        crc = zlib.crc32(block, crc)
        size -= len(block)
    return crc


def last_entry_keeps(index: Index, data: bytes, extra: bytes) -> bool:
    """Whether the last run's entry reads the same with ``extra`` text after it."""
    from runs_manager.store import yamlfile
    from runs_manager.store.rows import to_json

    last = index.last()
    if last is None:
        return True
    name, length, entry = last
    loaded = yamlfile.load_one(data[len(data) - length :] + extra)
    return loaded is not None and loaded[0] == name and json.loads(to_json(loaded[1])) == entry


def apply(index: Index, change: Callable[[], None], state: FileState) -> bool:
    """Change the index and record the YAML file's new state, all or nothing."""
    try:
        index.begin()
        try:
            change()
            index.set_state(state)
            index.commit()
        except BaseException:
            index.conn.execute("ROLLBACK")
            raise
    except (sqlite3.Error, IndexUnusable):
        return False
    return True


def state_of(st: Optional[os.stat_result], crc: int, data: bytes, header: int, simple: bool) -> FileState:
    """The index's record of the YAML file: ``data`` is its content, or its last part."""
    if st is None:
        st = os.stat_result((0,) * 10)
    return FileState(
        ino=st.st_ino,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        ctime_ns=st.st_ctime_ns,
        crc=crc,
        header=header,
        simple=simple,
        ends_with_newline=not data or data.endswith(b"\n"),
    )
class Progress:
    """Says on stderr that a large database is being indexed, and how far it has got."""

    def __init__(self, path: str, total: int, threshold: int) -> None:
        self.path, self.total, self.shown = path, total, -1
        self.active = total >= threshold
        self.tty = sys.stderr.isatty()

    def __enter__(self) -> Callable[[int], None]:
        if self.active:
            print(f"runs: indexing {self.path} ({self.total / 1e6:.0f} MB), once after it changed outside runs ...",
                  file=sys.stderr, end="" if self.tty else "\n", flush=True)
        return self.update

    def update(self, done: int) -> None:
        percent = 100 * done // max(self.total, 1)
        if self.active and percent // 10 != self.shown // 10:
            self.shown = percent
            print(f"\rruns: indexing {self.path}: {percent}%" if self.tty else f"runs: indexing: {percent}%",
                  file=sys.stderr, end="" if self.tty else "\n", flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self.active and self.tty:
            print(file=sys.stderr)

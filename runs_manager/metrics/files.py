"""Event files: finding them, their cached state, and reading their records.

The records' framing (TFRecord: an 8-byte length, its masked CRC-32C, the data, the data's
masked CRC-32C) is walked here, so that the byte offset read so far is known; every
record's two checksums are verified with the ``crc32c`` package, and its data decoded as an
``Event`` with TensorBoard's protobuf classes. A file whose identity, size and times are
unchanged is not opened; one that grew is read from the stored offset; one that shrank,
changed identity or first bytes, or was rewritten in place, is read again from the start.
A torn record at the end (or one claiming more than the file holds) ends the reading there.
"""
from __future__ import annotations

import json
import os
import stat
import struct
import zlib
from typing import Any, Dict, Iterator, List, Optional, Tuple

from runs_manager.metrics.events import accumulate

SCHEMA = 3  # 2: NaN points counted apart from min, max and mean; 3: restarts kept (restarts.py)
HEAD = 64  # bytes of a file's start whose CRC tells a rewritten file from an appended one
CHUNK = 8 << 20
PARALLEL_BYTES = 32 << 20  # more than this to read: files are read by one process per core
_HEADER = struct.Struct("<QI")
_CRC = struct.Struct("<I")

State = Dict[str, Any]  # a file's cached state (see fresh_state)


def event_files(directory: str) -> List[Tuple[str, str, os.stat_result]]:
    """(path, subdirectory, stat) of the event files under ``directory``, by TensorBoard's
    rule ('tfevents' in the name), sorted as TensorBoard reads them (by name)."""
    found = []
    for root, subdirs, files in os.walk(directory):
        subdirs.sort()
        relative = os.path.relpath(root, directory)
        for name in sorted(files):
            if "tfevents" not in name:
                continue
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:
                continue  # removed meanwhile, or a dangling link
            if stat.S_ISREG(st.st_mode):
                found.append((path, "" if relative == "." else relative, st))
    return found


def unchanged(state: State, st: os.stat_result) -> bool:
    """As the index's FileState.same_stat: identity, size and times as when it was read."""
    return bool(
        state.get("schema") == SCHEMA
        and (state["dev"], state["ino"], state["size"], state["mtime_ns"], state.get("ctime_ns"))
        == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    )


def fresh_state(st: os.stat_result) -> State:
    return {
        "schema": SCHEMA, "dev": st.st_dev, "ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "offset": 0, "head": None, "version": None, "starts": 0, "first_step": None, "prev_step": None,
        "disorder": False, "damaged": None, "torn": False, "tags": {}, "others": {}, "plugins": {},
        "starts_at": [], "legacy": False,
    }


_INTEGERS = ("dev", "ino", "size", "mtime_ns", "ctime_ns", "offset", "starts")
_OPTIONAL = {"head": int, "version": (int, float), "first_step": int, "prev_step": int, "damaged": str}


def valid_state(state: Any) -> bool:
    """Whether a cached state has every field of :func:`fresh_state`, of its type (a damaged or
    hand-made cache row is read again from the file, never trusted)."""
    if not isinstance(state, dict) or state.get("schema") != SCHEMA:
        return False
    if not all(type(state.get(key)) is int for key in _INTEGERS):
        return False
    if not all(state.get(key) is None or isinstance(state[key], kind) and not isinstance(state[key], bool)
               for key, kind in _OPTIONAL.items()) or not all(key in state for key in _OPTIONAL):
        return False
    if not all(isinstance(state.get(key), bool) for key in ("disorder", "torn", "legacy")):
        return False
    starts = state.get("starts_at")
    if not isinstance(starts, list) or not all(isinstance(s, list) and len(s) == 2 and all(type(x) is int for x in s)
                                               for s in starts):
        return False
    others, plugins = state.get("others"), state.get("plugins")
    if not isinstance(others, dict) or not isinstance(plugins, dict):
        return False
    return valid_tags(state.get("tags")) and all(isinstance(k, str) for k in others.values())


def valid_tags(tags: Any) -> bool:
    """Whether ``tags`` maps tags to aggregates (events.Agg) of the right types."""
    return isinstance(tags, dict) and all(
        isinstance(a, list) and len(a) == 8 and type(a[0]) is int and a[0] > 0 and type(a[1]) is int
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a[2], a[5]))
        and all(x is None or isinstance(x, (int, float)) and not isinstance(x, bool) for x in a[3:5])
        and isinstance(a[6], bool) and type(a[7]) is int and 0 <= a[7] <= a[0]
        for a in tags.values())


def _resumable(old: Optional[State], st: os.stat_result) -> bool:
    """Whether the file is ``old``'s, only appended to: its reading goes on from old's offset."""
    return bool(
        old is not None
        and old.get("schema") == SCHEMA
        and (old["dev"], old["ino"]) == (st.st_dev, st.st_ino)
        and st.st_size >= old["size"]
        and not (st.st_size == old["size"] and st.st_mtime_ns != old["mtime_ns"])  # changed in place, not grown
    )


def read_all(todo: List[Tuple[str, os.stat_result, Optional[State]]]) -> Dict[str, State]:
    """New states of the files to (re)read: in this process, or one process per core when there is much to read."""
    if not todo:
        return {}
    total = sum(st.st_size - (old["offset"] if _resumable(old, st) and old else 0) for _, st, old in todo)
    workers = min(len(todo), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    if total > PARALLEL_BYTES and workers > 1:
        import multiprocessing

        jobs = sorted(todo, key=lambda job: -job[1].st_size)  # the largest first: the workers finish together
        # Forked workers that ignore Ctrl-C: the parent's KeyboardInterrupt ends the pool
        # (terminate, on leaving the block), and no worker prints a traceback.
        with multiprocessing.get_context("fork").Pool(workers, initializer=_quiet) as pool:
            states = pool.map(_read_job, jobs, chunksize=1)
        return {path: state for (path, _, _), state in zip(jobs, states)}
    return {path: _read_job((path, st, old)) for path, st, old in todo}


def _quiet() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _read_job(job: Tuple[str, os.stat_result, Optional[State]]) -> State:
    path, st, old = job
    try:
        return read_file(path, st, old)
    except OSError as e:
        state = fresh_state(st)
        state["damaged"] = f"unreadable: {e.strerror or e}"
        return state


def read_file(path: str, st: os.stat_result, old: Optional[State]) -> State:
    """``path``'s state after reading what ``old`` has not read (all of it without ``old``)."""
    with open(path, "rb") as f:
        head = zlib.crc32(f.read(HEAD))
        if _resumable(old, st) and old is not None and old["head"] == head:
            state: State = json.loads(json.dumps(old))  # a copy
            state.update(size=st.st_size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns)
        else:
            state = fresh_state(st)
            state["head"] = head
        if state["damaged"]:
            return state  # read again only once the file is rewritten
        records = Records(f, state["offset"])
        accumulate(state, records)
        state["offset"], state["torn"], state["damaged"] = records.offset, records.torn, records.damaged
    return state


class Records:
    """The Event records of an open file from ``offset``: stops at the first damaged or incomplete one."""

    def __init__(self, f: Any, offset: int) -> None:
        self.f, self.offset = f, offset
        self.torn = False
        self.damaged: Optional[str] = None

    def __iter__(self) -> Iterator[Any]:
        from crc32c import crc32c
        from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
        from tensorboard.compat.proto.event_pb2 import Event  # type: ignore[import-untyped]

        decode = Event.FromString
        unpack, crc_of = _HEADER.unpack_from, _CRC.unpack_from
        f = self.f
        size = os.fstat(f.fileno()).st_size  # no record longer than the file is read (or allocated)
        f.seek(self.offset)
        buf, i, base = f.read(CHUNK), 0, self.offset

        while True:
            n = len(buf)
            if n - i < 16:
                more = f.read(CHUNK)
                buf, base, i = buf[i:] + more, base + i, 0
                n = len(buf)
                if n < 16:
                    self.torn = n > 0
                    return
            length, length_crc = unpack(buf, i)
            crc = crc32c(buf[i : i + 8])
            if (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF != length_crc:
                self.damaged = f"a bad record length at byte {base + i}"
                return
            end = i + 12 + length + 4
            if base + end > size and base + end > os.fstat(f.fileno()).st_size:
                self.torn = True  # more than the file holds (a crafted length, or still being written)
                return
            if end > n:
                more = f.read(max(CHUNK, end - n))
                buf, base, end, i = buf[i:] + more, base + i, end - i, 0
                if end > len(buf):
                    self.torn = True
                    return
            data = buf[i + 12 : end - 4]
            crc = crc32c(data)
            if (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF != crc_of(buf, end - 4)[0]:
                self.damaged = f"a bad checksum at byte {base + i}"
                return
            try:
                event = decode(data)
            except DecodeError:
                self.damaged = f"a record that is no event at byte {base + i}"
                return
            i = end
            self.offset = base + i
            yield event

"""Scalars from runs' TensorBoard event files, read incrementally (`runs table --metrics`, `runs metrics`).

Reader: the records' framing (TFRecord: an 8-byte length, its masked CRC-32C, the data,
the data's masked CRC-32C) is walked here, so that the byte offset read so far is known;
every record's two checksums are verified with the ``crc32c`` package (a C
implementation: TensorBoard's own pure-Python one takes 0.5 s for 50,000 records), and
its data decoded as an ``Event`` with TensorBoard's protobuf classes
(``tensorboard.compat.proto.event_pb2``). TensorBoard's ``EventFileLoader`` reads the
same records but says nothing of its offset, and would import numpy and its TensorFlow
stub (150 ms).

Cache: ``<db>.metrics``, an SQLite file beside the index, holds for each event file its
identity (device, inode), size, modification and change times, the offset after the last whole
record read, a CRC-32 of its first bytes, and per tag the aggregates of the points read
(count, last step, value at the last step, min, max, sum). A file whose identity, size
and times are unchanged (the index's rule for the YAML file) is not opened; one that grew is read from the stored offset; one that
shrank, changed identity or first bytes, or was rewritten in place, is read again from
the start. A torn record at the end (a writer that has not flushed it whole yet) ends
the reading there: the next read starts at it.

Restarts, as TensorBoard shows them (its event accumulator, with the default
``--purge_orphaned_data``): in files of event format 2 (every current writer), each
``SessionLog.START`` after a run directory's first one drops every earlier point whose
step is at or above the START's step; in older files, a summary whose step is below the
previous summary's drops the earlier points of its tags at or above its step. A run
directory where that can happen is read whole, in file order, each time (rare). Without
a purge every point counts, and the value at the largest step is the last one (the later
point wins on a repeated step).

Files in a subdirectory of a run's TensorBoard directory are a run of their own for
TensorBoard (Keras writes ``train/`` and ``validation/``): their tags are named
``SUBDIR/TAG`` here.

Nothing else in runs imports this module, and it imports TensorBoard only when a file
has new bytes to read.
"""
from __future__ import annotations

import json
import os
import sqlite3
import stat
import struct
import sys
import zlib
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

from runs_manager.errors import RunsError

INSTALL = "pip install 'runs-manager[metrics]'"
AGGREGATES = ("last", "min", "max", "mean", "step", "count")
SCHEMA = 1
HEAD = 64  # bytes of a file's start whose CRC tells a rewritten file from an appended one
CHUNK = 8 << 20
PARALLEL_BYTES = 32 << 20  # more than this to read: files are read by one process per core
START = 1  # SessionLog.START
_HEADER = struct.Struct("<QI")
_CRC = struct.Struct("<I")

State = Dict[str, Any]  # a file's cached state (see _fresh)
Agg = List[Any]  # [count, last step, last value, min, max, sum, float32]


class Spec(NamedTuple):
    """One column of --metrics: ``tag`` or ``tag:aggregate``."""

    column: str
    tag: str
    aggregate: str


class Tag(NamedTuple):
    """A scalar tag's aggregates over a run's points."""

    points: int
    step: int
    last: float
    min: float
    max: float
    mean: float

    def get(self, aggregate: str) -> Any:
        return {"last": self.last, "min": self.min, "max": self.max, "mean": self.mean,
                "step": self.step, "count": self.points}[aggregate]


class RunMetrics(NamedTuple):
    scalars: Dict[str, Tag]
    others: Dict[str, str]  # tags that hold no scalars: what they hold (image, histo, a plugin's name)


def parse_specs(values: Optional[Sequence[str]]) -> List[Spec]:
    """The columns of --metrics (comma-separated or repeated): ``tag`` or ``tag:aggregate``.

    A tag whose own name ends in ``:max`` is asked for as ``tag:max:last``."""
    specs: List[Spec] = []
    for value in values or ():
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            tag, sep, aggregate = part.rpartition(":")
            if not sep or aggregate not in AGGREGATES:
                tag, aggregate = part, "last"
            if not tag:
                raise RunsError(f"--metrics needs a tag before ':{aggregate}', such as loss:{aggregate}")
            if any(s.column == part for s in specs):
                raise RunsError(f"metric '{_printable(part)}' is given twice in --metrics")
            specs.append(Spec(part, tag, aggregate))
    if values is not None and not specs:
        raise RunsError("--metrics needs at least one tag, such as loss or val/acc:max")
    return specs


def require() -> None:
    """A one-line error unless the reader's packages are installed (without importing them)."""
    import importlib.util

    missing = [name for name in ("tensorboard", "crc32c") if importlib.util.find_spec(name) is None]
    if missing:
        raise RunsError(f"reading TensorBoard events needs {' and '.join(missing)}: {INSTALL}")


def cache_path(settings: Any) -> str:
    return str(settings.db_path) + ".metrics"


def collect(settings: Any, runs: Sequence[Tuple[str, bool]], every_run: bool = False) -> Dict[str, RunMetrics]:
    """The scalars of each run (name, has ended), from the event files under its
    TensorBoard directory; damaged files are named once each on stderr. With ``every_run``
    (``runs`` are all the database's runs), the cache forgets the files of runs that are gone."""
    from runs_manager import names, runfiles

    dirs: Dict[str, str] = {}
    for name, _ in runs:
        if names.is_valid(name):  # a hand-edited name could be '../..': derive no paths from it
            dirs[name] = os.path.abspath(runfiles.tensorboard_dir(settings, name))
    listing = {name: _event_files(directory) for name, directory in dirs.items()}
    run_dir = {path: dirs[name] for name, files in listing.items() for path, _, _ in files}
    cache = Cache.open(cache_path(settings))
    try:
        cached = cache.states(list(dirs.values()))
        todo = [(path, st, cached.get(path)) for files in listing.values() for path, _, st in files
                if path not in cached or not _unchanged(cached[path], st)]
        fresh = _read_all(todo)
        if fresh:
            cache.put([(run_dir[path], path, state) for path, state in fresh.items()])
        gone = [path for path in cached if path not in run_dir]
        if gone:
            cache.drop(gone)
        if every_run:
            cache.drop_runs(set(dirs.values()))
    finally:
        cache.close()
    states = {**cached, **fresh}
    ended = dict(runs)
    result: Dict[str, RunMetrics] = {}
    for name, _ in runs:
        files = listing.get(name, [])
        result[name] = _combine(files, states)
        for path, _, _ in files:
            _warn(states[path], path, ended[name])
    return result


def _printable(text: str) -> str:
    from runs_manager.output import printable

    return printable(text)


def _warn(state: State, path: str, ended: bool) -> None:
    if state.get("damaged"):
        print(f"runs: warning: {_printable(path)} is damaged ({state['damaged']}); its scalars are those before it",
              file=sys.stderr)
    elif state.get("torn") and ended:
        print(f"runs: warning: {_printable(path)} ends in an incomplete record at byte {state['offset']} "
              "(truncated?); its scalars are those before it", file=sys.stderr)


# Files ----------------------------------------------------------------------------------

def _event_files(directory: str) -> List[Tuple[str, str, os.stat_result]]:
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


def _unchanged(state: State, st: os.stat_result) -> bool:
    """As the index's FileState.same_stat: identity, size and times as when it was read."""
    return bool(
        state.get("schema") == SCHEMA
        and (state["dev"], state["ino"], state["size"], state["mtime_ns"], state.get("ctime_ns"))
        == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    )


def _fresh(st: os.stat_result) -> State:
    return {
        "schema": SCHEMA, "dev": st.st_dev, "ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "offset": 0, "head": None, "version": None, "starts": 0, "first_step": None, "prev_step": None,
        "disorder": False, "damaged": None, "torn": False, "tags": {}, "others": {}, "plugins": {},
    }


_INTEGERS = ("dev", "ino", "size", "mtime_ns", "ctime_ns", "offset", "starts")
_OPTIONAL = {"head": int, "version": (int, float), "first_step": int, "prev_step": int, "damaged": str}


def _valid(state: Any) -> bool:
    """Whether a cached state has every field of :func:`_fresh`, of its type (a damaged or
    hand-made cache row is read again from the file, never trusted)."""
    if not isinstance(state, dict) or state.get("schema") != SCHEMA:
        return False
    if not all(type(state.get(key)) is int for key in _INTEGERS):
        return False
    if not all(state.get(key) is None or isinstance(state[key], kind) and not isinstance(state[key], bool)
               for key, kind in _OPTIONAL.items()) or not all(key in state for key in _OPTIONAL):
        return False
    if not isinstance(state.get("disorder"), bool) or not isinstance(state.get("torn"), bool):
        return False
    tags, others, plugins = state.get("tags"), state.get("others"), state.get("plugins")
    if not isinstance(tags, dict) or not isinstance(others, dict) or not isinstance(plugins, dict):
        return False
    return all(isinstance(a, list) and len(a) == 7 and type(a[0]) is int and a[0] > 0 and type(a[1]) is int
               and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in a[2:6])
               and isinstance(a[6], bool) for a in tags.values()) and all(isinstance(k, str) for k in others.values())


def _resumable(old: Optional[State], st: os.stat_result) -> bool:
    """Whether the file is ``old``'s, only appended to: its reading goes on from old's offset."""
    return bool(
        old is not None
        and old.get("schema") == SCHEMA
        and (old["dev"], old["ino"]) == (st.st_dev, st.st_ino)
        and st.st_size >= old["size"]
        and not (st.st_size == old["size"] and st.st_mtime_ns != old["mtime_ns"])  # changed in place, not grown
    )


def _read_all(todo: List[Tuple[str, os.stat_result, Optional[State]]]) -> Dict[str, State]:
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
        state = _fresh(st)
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
            state = _fresh(st)
            state["head"] = head
        if state["damaged"]:
            return state  # read again only once the file is rewritten
        records = Records(f, state["offset"])
        _accumulate(state, records)
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


# Points -----------------------------------------------------------------------------------

def _value(v: Any, state: State) -> Optional[Tuple[float, bool]]:
    """The scalar of a summary value that is no ``simple_value``, and whether it is float32;
    None (and the tag noted in ``state``) for an image, a histogram or another plugin's tensor."""
    kind = v.WhichOneof("value")
    if kind == "simple_value":
        return v.simple_value, True
    if kind == "tensor":
        plugins = state["plugins"]
        tag = v.tag
        if v.HasField("metadata") and v.metadata.plugin_data.plugin_name:
            plugins[tag] = v.metadata.plugin_data.plugin_name
        plugin = plugins.get(tag)
        scalar = _tensor_scalar(v.tensor) if plugin == "scalars" else None
        if scalar is None:
            state["others"].setdefault(tag, plugin or "tensor")
        return scalar
    if kind is not None:
        state["others"].setdefault(v.tag, kind)  # image, histo, audio
    return None


_DTYPES = {1: ("<f", True), 2: ("<d", False), 3: ("<i", False), 9: ("<q", False), 19: ("<e", True)}


def _tensor_scalar(tensor: Any) -> Optional[Tuple[float, bool]]:
    """The value of a one-element tensor (tf.summary.scalar writes a float32 scalar), and
    whether it is float32 or narrower; None for anything else."""
    if any(d.size != 1 for d in tensor.tensor_shape.dim):
        return None
    dtype = _DTYPES.get(tensor.dtype)
    if dtype is None:
        return None
    fmt, narrow = dtype
    if tensor.tensor_content:
        if len(tensor.tensor_content) != struct.calcsize(fmt):
            return None
        return float(struct.unpack(fmt, tensor.tensor_content)[0]), narrow
    for field in ("float_val", "double_val", "int_val", "int64_val"):
        values = getattr(tensor, field)
        if len(values) == 1:
            return float(values[0]), narrow
    if len(tensor.half_val) == 1:
        return float(struct.unpack("<e", struct.pack("<H", tensor.half_val[0] & 0xFFFF))[0]), True
    return None


def _accumulate(state: State, events: Any) -> None:
    """Fold ``events`` into the file's state: aggregates per tag, file version, STARTs, step order.

    The loop of every point: written for speed (50,000 points a file are common)."""
    tags: Dict[str, Agg] = state["tags"]
    prev = state["prev_step"]
    for event in events:
        what = event.WhichOneof("what")
        if what == "summary":
            step = event.step
            if prev is None:
                if state["first_step"] is None:
                    state["first_step"] = step
            elif step < prev:
                state["disorder"] = True
            prev = step
            for v in event.summary.value:
                x, narrow = v.simple_value, True
                if not x and not v.HasField("simple_value"):  # 0.0 is also what other kinds of value read as
                    scalar = _value(v, state)
                    if scalar is None:
                        continue
                    x, narrow = scalar
                tag = v.tag
                a = tags.get(tag)
                if a is None:
                    tags[tag] = [1, step, x, x, x, x, narrow]
                    continue
                a[0] += 1
                if step >= a[1]:
                    a[1] = step
                    a[2] = x
                if x < a[3]:
                    a[3] = x
                elif x > a[4]:
                    a[4] = x
                a[5] += x
                if not narrow:
                    a[6] = False
        elif what == "file_version":
            state["version"] = _version(event.file_version)
        elif what == "session_log" and event.session_log.status == START:
            state["starts"] += 1
    state["prev_step"] = prev


def _version(text: str) -> float:
    """As TensorBoard's event_util.ParseFileVersion: 'brain.Event:2' is 2.0, nonsense -1."""
    try:
        return float(text.split("brain.Event:")[-1])
    except ValueError:
        return -1.0


# Runs -------------------------------------------------------------------------------------

def _combine(files: List[Tuple[str, str, os.stat_result]], states: Dict[str, State]) -> RunMetrics:
    """A run's scalars: each TensorBoard run (the directory, each subdirectory) folded in file order."""
    groups: Dict[str, List[str]] = {}
    for path, subdir, _ in files:
        groups.setdefault(subdir, []).append(path)
    scalars: Dict[str, Tag] = {}
    others: Dict[str, str] = {}
    for subdir, paths in groups.items():
        prefix = subdir.replace(os.sep, "/") + "/" if subdir else ""
        group = [states[p] for p in paths]
        if _needs_replay(group):
            aggs, kinds = _replay(paths)
        else:
            aggs, kinds = _merge(group)
        for tag, a in aggs.items():
            scalars[prefix + tag] = _tag(a)
        for tag, kind in kinds.items():
            if tag not in aggs:
                others[prefix + tag] = kind
    return RunMetrics(scalars, others)


def _needs_replay(group: List[State]) -> bool:
    """Whether TensorBoard would purge points of this run directory (see the module's doc)."""
    if sum(s["starts"] for s in group) > 1:
        return True
    version: Optional[float] = None
    last: Optional[int] = None
    for s in group:
        version = s["version"] if s["version"] is not None else version
        legacy = version is None or version < 2
        if legacy and (s["disorder"] or (last is not None and s["first_step"] is not None and s["first_step"] < last)):
            return True
        last = s["prev_step"] if s["prev_step"] is not None else last
    return False


def _merge(group: List[State]) -> Tuple[Dict[str, Agg], Dict[str, str]]:
    aggs: Dict[str, Agg] = {}
    kinds: Dict[str, str] = {}
    for s in group:
        for tag, kind in s["others"].items():
            kinds.setdefault(tag, kind)
        for tag, a in s["tags"].items():
            m = aggs.get(tag)
            if m is None:
                aggs[tag] = list(a)
                continue
            m[0] += a[0]
            if a[1] >= m[1]:
                m[1], m[2] = a[1], a[2]
            m[3], m[4], m[5], m[6] = min(m[3], a[3]), max(m[4], a[4]), m[5] + a[5], m[6] and a[6]
    return aggs, kinds


def _replay(paths: List[str]) -> Tuple[Dict[str, Agg], Dict[str, str]]:
    """TensorBoard's reading of a run directory, purges included, from the files themselves."""
    points: Dict[str, List[Tuple[int, float, bool]]] = {}
    scratch: State = {"others": {}, "plugins": {}}
    version: Optional[float] = None
    seen_start = False
    most_recent = -1
    for path in paths:
        try:
            f = open(path, "rb")
        except OSError:
            continue
        with f:
            for event in Records(f, 0):
                if event.HasField("file_version"):
                    version = _version(event.file_version)
                has_summary = event.HasField("summary")
                if version is not None and version >= 2:
                    if event.HasField("session_log") and event.session_log.status == START:
                        if seen_start:
                            for tag in points:
                                points[tag] = [p for p in points[tag] if p[0] < event.step]
                        seen_start = True
                elif has_summary and event.step < most_recent:
                    for v in event.summary.value:
                        if v.tag in points:
                            points[v.tag] = [p for p in points[v.tag] if p[0] < event.step]
                if has_summary:
                    most_recent = event.step
                    for v in event.summary.value:
                        scalar = _value(v, scratch)
                        if scalar is not None:
                            points.setdefault(v.tag, []).append((event.step, scalar[0], scalar[1]))
    aggs: Dict[str, Agg] = {}
    for tag, series in points.items():
        if not series:
            continue
        a: Agg = [0, series[0][0], series[0][1], series[0][1], series[0][1], 0.0, True]
        for step, x, narrow in series:
            a[0] += 1
            if step >= a[1]:
                a[1], a[2] = step, x
            a[3], a[4], a[5], a[6] = min(a[3], x), max(a[4], x), a[5] + x, a[6] and narrow
        aggs[tag] = a
    return aggs, scratch["others"]


def _tag(a: Agg) -> Tag:
    count, step, last, low, high, total, narrow = a
    short = _short if narrow else float
    return Tag(count, step, short(last), short(low), short(high), short(total / count))


def _short(x: float) -> float:
    """A float32's value with the fewest digits that give it back (0.1, not 0.10000000149011612)."""
    if x != x or x in (float("inf"), float("-inf")):
        return x
    try:
        packed = struct.pack("<f", x)
    except OverflowError:
        return x
    for digits in range(6, 10):
        y = float(f"{x:.{digits}g}")
        if struct.pack("<f", y) == packed:
            return y
    return x


# The cache ------------------------------------------------------------------------------

_CREATE = (
    "CREATE TABLE files (path TEXT PRIMARY KEY, run TEXT NOT NULL, state TEXT NOT NULL)",
    "CREATE INDEX files_run ON files (run)",
)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA:
            conn.execute("BEGIN IMMEDIATE")  # one process at a time; another may have made it meanwhile
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA:
                conn.execute("DROP TABLE IF EXISTS files")
                for statement in _CREATE:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA}")
            conn.execute("COMMIT")
        try:
            conn.execute("SELECT path, run, state FROM files LIMIT 1").fetchall()
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
        if len(dirs) <= 500:
            rows: List[Tuple[str, str]] = []
            for i in range(0, len(dirs), 100):
                part = dirs[i : i + 100]
                rows += self.conn.execute(
                    f"SELECT path, state FROM files WHERE run IN ({','.join('?' * len(part))})", part
                ).fetchall()
        else:
            wanted = set(dirs)
            rows = [(p, s) for p, r, s in self.conn.execute("SELECT path, run, state FROM files") if r in wanted]
        states = {}
        for path, text in rows:
            try:
                state = json.loads(text)
            except (ValueError, TypeError):
                continue
            if _valid(state):  # anything else is read again from the file
                states[path] = state
        return states

    def put(self, rows: List[Tuple[str, str, State]]) -> None:
        self._write(lambda: self.conn.executemany(
            "INSERT OR REPLACE INTO files (path, run, state) VALUES (?, ?, ?)",
            ((path, run, json.dumps(state)) for run, path, state in rows),
        ))

    def drop_runs(self, keep: Set[str]) -> None:
        """Forget the files of every run directory but those in ``keep`` (deleted or renamed runs)."""
        try:
            gone = [run for (run,) in self.conn.execute("SELECT DISTINCT run FROM files") if run not in keep]
        except sqlite3.Error:
            return
        if gone:
            self._write(lambda: self.conn.executemany("DELETE FROM files WHERE run = ?", ((run,) for run in gone)))

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



def tensorboard_dir(settings: Any, name: str) -> str:
    from runs_manager import runfiles

    return os.path.abspath(runfiles.tensorboard_dir(settings, name))

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

Restarts are shown as TensorBoard shows them, purges included (restarts.py says how, and
how its results are kept in the cache).

Files in a subdirectory of a run's TensorBoard directory are a run of their own for
TensorBoard (Keras writes ``train/`` and ``validation/``): their tags are named
``SUBDIR/TAG`` here.

Modules: ``files`` (finding and reading event files), ``events`` (events to points),
``combine`` (a run's scalars), ``restarts`` (TensorBoard's purges), ``cache``. Nothing else in runs imports this package, and it imports TensorBoard only when a file
has new bytes to read.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from runs_manager.errors import RunsError
from runs_manager.metrics.cache import Cache
from runs_manager.metrics.combine import RunMetrics, Tag, combine
from runs_manager.metrics.files import State, event_files, read_all, unchanged

__all__ = ["AGGREGATES", "INSTALL", "RunMetrics", "Spec", "Tag", "cache_path", "collect", "parse_specs", "require", "tensorboard_dir"]

INSTALL = "pip install 'runs-manager[metrics]'"
AGGREGATES = ("last", "min", "max", "mean", "step", "count", "nan")


class Spec(NamedTuple):
    """One column of --metrics: ``tag`` or ``tag:aggregate``."""

    column: str
    tag: str
    aggregate: str


def parse_specs(values: Optional[Sequence[str]]) -> List[Spec]:
    """The columns of --metrics (comma-separated or repeated): ``tag`` or ``tag:aggregate``.

    A tag whose own name ends in ``:max`` is asked for as ``tag:max:last``. Any tag can be
    asked for in double quotes, with ``""`` for a quote inside: ``"a,b":max``, ``" x "``,
    ``""`` (the empty tag); outside quotes a part is stripped of blanks."""
    specs: List[Spec] = []
    for value in values or ():
        for part, tag, aggregate in _parts(value):
            if any(s.column == part for s in specs):
                raise RunsError(f"metric '{_printable(part)}' is given twice in --metrics")
            specs.append(Spec(part, tag, aggregate))
    if values is not None and not specs:
        raise RunsError("--metrics needs at least one tag, such as loss or val/acc:max")
    return specs


def _parts(value: str) -> List[Tuple[str, str, str]]:
    """(column, tag, aggregate) of each comma-separated part of one --metrics value."""
    found: List[Tuple[str, str, str]] = []
    i = 0
    while i <= len(value):
        while i < len(value) and value[i] in " \t":
            i += 1
        if i < len(value) and value[i] == '"':
            begin = i
            tag, i = _quoted(value, i)
            end = value.find(",", i)
            end = len(value) if end < 0 else end
            rest = value[i:end].strip()
            aggregate = rest[1:] if rest.startswith(":") else rest
            if aggregate and (not rest.startswith(":") or aggregate not in AGGREGATES):
                raise RunsError(f"in --metrics, after a quoted tag comes ':' and one of {', '.join(AGGREGATES)}, "
                                f"not '{_printable(rest)}'")
            found.append((value[begin:end].strip(), tag, aggregate or "last"))
        else:
            end = value.find(",", i)
            end = len(value) if end < 0 else end
            part = value[i:end].strip()
            if part:
                tag, sep, aggregate = part.rpartition(":")
                if not sep or aggregate not in AGGREGATES:
                    tag, aggregate = part, "last"
                if not tag:
                    raise RunsError(f"--metrics needs a tag before ':{aggregate}', such as loss:{aggregate}")
                found.append((part, tag, aggregate))
        i = end + 1
    return found


def _quoted(value: str, start: int) -> Tuple[str, int]:
    """The tag in double quotes at ``start`` ('""' is a quote), and where the text after it begins."""
    tag, i = [], start + 1
    while i < len(value):
        if value[i] == '"':
            if value[i + 1:i + 2] == '"':
                tag.append('"')
                i += 2
                continue
            return "".join(tag), i + 1
        tag.append(value[i])
        i += 1
    raise RunsError(f"a quote is not closed in --metrics: {_printable(value)}")


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
    from runs_manager import names
    from runs_manager.runtime import runfiles

    dirs: Dict[str, str] = {}
    for name, _ in runs:
        if names.is_valid(name):  # a hand-edited name could be '../..': derive no paths from it
            dirs[name] = os.path.abspath(runfiles.tensorboard_dir(settings, name))
    listing = {name: event_files(directory) for name, directory in dirs.items()}
    run_dir = {path: dirs[name] for name, files in listing.items() for path, _, _ in files}
    cache = Cache.open(cache_path(settings))
    try:
        cached = cache.states(list(dirs.values()))
        todo = [(path, st, cached.get(path)) for files in listing.values() for path, _, st in files
                if path not in cached or not unchanged(cached[path], st)]
        fresh = read_all(todo)
        if fresh:
            cache.put([(run_dir[path], path, state) for path, state in fresh.items()])
        gone = [path for path in cached if path not in run_dir]
        if gone:
            cache.drop(gone)
        if every_run:
            cache.drop_runs(set(dirs.values()))
        states = {**cached, **fresh}
        result = _combine(cache, runs, listing, dirs, states)
    finally:
        cache.close()
    ended = dict(runs)
    for name, _ in runs:
        for path, _, _ in listing.get(name, []):
            _warn(states[path], path, ended[name])
    return result


def _combine(cache: Cache, runs: Sequence[Tuple[str, bool]], listing: Dict[str, List[Tuple[str, str, Any]]],
             dirs: Dict[str, str], states: Dict[str, State]) -> Dict[str, RunMetrics]:
    """Each run's scalars, and the restart rule's results kept for next time."""
    kept = cache.replays(list(dirs.values()))
    made: Dict[str, Any] = {}
    result = {name: combine(listing.get(name, []), states, kept, made) for name, _ in runs}
    run_of = {os.path.dirname(path): dirs[name] for name, files in listing.items() for path, _, _ in files}
    changed = [(run_of[d], d, r) for d, r in made.items() if kept.get(d) is not r]
    if changed:
        cache.put_replays(changed)
    unused = [d for d in kept if d not in made]  # its run directory no longer restarts (files removed)
    if unused:
        cache.drop_replays(unused)
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


def tensorboard_dir(settings: Any, name: str) -> str:
    from runs_manager.runtime import runfiles

    return os.path.abspath(runfiles.tensorboard_dir(settings, name))

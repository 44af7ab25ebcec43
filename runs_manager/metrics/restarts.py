"""TensorBoard's purges on restarts, read as a stream, and their result kept for next time.

The rule, as TensorBoard's event accumulator applies it (with its default
``--purge_orphaned_data``), to a run directory's files in name order: in files of event
format 2 (every current writer), each ``SessionLog.START`` after the first drops every
earlier point whose step is at or above the START's step; in older files, a summary whose
step is below the previous summary's drops the earlier points of its tags at or above its
step.

Read in two passes, so that memory holds no point: the first finds the purges (where each
is, its step, and its tags: every tag for a START); the second folds a point into its tag's
aggregates only if it survives, which it does when its step is below the step of every
later purge of its tag. Memory: the purges (one a restart in event format 2; in older files
one each time a step goes back, which a file logging one tag by iteration and another by
epoch does often), the aggregates, and one chunk of a file.

Kept in the cache (:class:`Replay`): the aggregates, the rule's state, and how far each file
was read. A later read with nothing new costs a cache row. One where only the last file
grew, or new files follow it, folds only the new events, as long as none of them is a
purge: nothing comes after them, so they all survive, and nothing earlier changes. Anything
else (a new restart, an earlier file changed) is read again in the two passes, once.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, NamedTuple, Optional, Tuple

from runs_manager.metrics.events import START, State, accumulate, scalar_of, version_of
from runs_manager.metrics.files import Records, valid_tags

Replay = Dict[str, Any]  # {"files": [[path, dev, ino, head, size, mtime_ns, ctime_ns, offset]], "rule": [...], "tags", "others", "plugins"}
_IDENTITY = ("dev", "ino", "head", "size", "mtime_ns", "ctime_ns")
_INFINITY = float("inf")


class Purge(NamedTuple):
    at: Tuple[int, int]  # (the file's number in read order, the byte offset after its record)
    step: int
    tags: Optional[FrozenSet[str]]  # None: every tag (a START)


class _Purged(Exception):
    """A new event is a purge: the kept result cannot simply grow."""


class Rule:
    """The restart rule's state as a run directory's events are read in order."""

    def __init__(self, version: Optional[float] = None, seen_start: bool = False, most_recent: int = -1) -> None:
        self.version, self.seen_start, self.most_recent = version, seen_start, most_recent

    def see(self, event: Any) -> Optional[Tuple[int, Optional[FrozenSet[str]]]]:
        """The purge ``event`` makes, (step, tags), if it makes one."""
        what = event.WhichOneof("what")
        modern = self.version is not None and self.version >= 2
        if what == "summary":
            step = event.step
            purge = None if modern or step >= self.most_recent else (step, frozenset(v.tag for v in event.summary.value))
            self.most_recent = step
            return purge
        if what == "file_version":
            self.version = version_of(event.file_version)
        elif what == "session_log" and modern and event.session_log.status == START:
            if self.seen_start:
                return event.step, None
            self.seen_start = True
        return None

    def saved(self) -> List[Any]:
        return [self.version, self.seen_start, self.most_recent]


def replay(paths: List[str], states: Dict[str, State], kept: Optional[Replay]) -> Replay:
    """The run directory's aggregates under the rule: ``kept`` as it is, ``kept`` grown by
    the new events, or the files read again."""
    if kept is not None and valid_replay(kept):
        done = kept["files"]
        if len(done) == len(paths) and all(row[0] == p and _same(row, states[p]) for row, p in zip(done, paths)):
            return kept
        try:
            grown = _grow(paths, states, kept)
        except _Purged:
            grown = None
        if grown is not None:
            return grown
    return _read_again(paths, states)


def _same(row: List[Any], state: State) -> bool:
    return bool(row[1:7] == [state[key] for key in _IDENTITY])


def _grow(paths: List[str], states: Dict[str, State], kept: Replay) -> Optional[Replay]:
    """``kept`` with the events after it, when only its last file grew or new files follow."""
    done = kept["files"]
    if not done or len(done) > len(paths) or any(row[0] != p for row, p in zip(done, paths)):
        return None
    if not all(_same(row, states[p]) for row, p in zip(done[:-1], paths)):
        return None
    last, state = done[-1], states[paths[len(done) - 1]]
    if [state["dev"], state["ino"], state["head"]] != last[1:4] or state["size"] < last[4] or (
            state["size"] == last[4] and state["mtime_ns"] != last[5]):
        return None  # rewritten, not appended to
    scratch: State = json.loads(json.dumps(_as_state(kept)))  # a copy: a purge among the new events discards it
    rule = Rule(*kept["rule"])
    rows = [list(row) for row in done[:-1]]
    for k in range(len(done) - 1, len(paths)):
        offset = last[7] if k == len(done) - 1 else 0
        offset = _fold(paths[k], offset, lambda records: accumulate(scratch, _checked(records, rule)))
        rows.append(_row(paths[k], states[paths[k]], offset))
    return _result(rows, rule, scratch)


def _checked(records: Records, rule: Rule) -> Iterator[Any]:
    for event in records:
        if rule.see(event) is not None:
            raise _Purged
        yield event


def _read_again(paths: List[str], states: Dict[str, State]) -> Replay:
    rule = Rule()
    purges: List[Purge] = []
    ends: List[int] = []
    if not any(states[p]["legacy"] for p in paths):
        # Every file of event format 2 from its first record: the purges are its STARTs,
        # which reading the files' states noted (in parallel, when there is much to read).
        starts = [Purge((k, at), step, None) for k, p in enumerate(paths) for at, step in states[p]["starts_at"]]
        purges, ends = starts[1:], [states[p]["offset"] for p in paths]
        # The version in effect after the last file: the last one any file gave (a file may give none yet).
        rule.version = next((states[p]["version"] for p in reversed(paths) if states[p]["version"] is not None), None)
        rule.seen_start = bool(starts)
        rule.most_recent = next((states[p]["prev_step"] for p in reversed(paths) if states[p]["prev_step"] is not None), -1)
    else:
        for k, path in enumerate(paths):  # the first pass: where the purges are
            ends.append(_fold(path, 0, lambda records, k=k: _purges_of(records, k, rule, purges)))
    survivors = _Survivors(purges)
    scratch: State = _as_state({"tags": {}, "others": {}, "plugins": {}})
    for k, path in enumerate(paths):  # the second: the points that survive them
        if ends[k]:
            _fold(path, 0, lambda records, k=k: accumulate(scratch, survivors.events(records, k, ends[k], scratch)))
    return _result([_row(p, states[p], end) for p, end in zip(paths, ends)], rule, scratch)


def _purges_of(records: Records, k: int, rule: Rule, purges: List[Purge]) -> None:
    for event in records:
        purge = rule.see(event)
        if purge is not None:
            purges.append(Purge((k, records.offset), *purge))


def _fold(path: str, offset: int, read: Callable[[Records], None]) -> int:
    """``read`` the records of ``path`` from ``offset``; the offset after the last whole record."""
    try:
        f = open(path, "rb")
    except OSError:
        return offset
    with f:
        records = Records(f, offset)
        read(records)
        return records.offset


class _Survivors:
    """The second pass: each event with only the points no later purge drops."""

    def __init__(self, purges: List[Purge]) -> None:
        self.purges, self.next = purges, 0  # the first purge after the events seen so far
        self.all = [_INFINITY] * (len(purges) + 1)  # the lowest step of the STARTs from here on
        for i in reversed(range(len(purges))):
            self.all[i] = min(self.all[i + 1], purges[i].step if purges[i].tags is None else _INFINITY)
        self.tagged: Dict[str, Tuple[List[int], List[float], List[int]]] = {}  # tag: (purges, lowest steps from each, cursor)
        for i, purge in enumerate(purges):
            for tag in purge.tags or ():
                self.tagged.setdefault(tag, ([], [], [0]))[0].append(i)
        for indices, lows, _ in self.tagged.values():
            lows.extend(_INFINITY for _ in indices)
            for n in reversed(range(len(indices))):
                lows[n] = min(lows[n + 1] if n + 1 < len(indices) else _INFINITY, purges[indices[n]].step)

    def events(self, records: Records, k: int, end: int, scratch: State) -> Iterator[Any]:
        purges, count = self.purges, len(self.purges)
        for event in records:
            if self.next < count:
                at = (k, records.offset)
                while self.next < count and purges[self.next].at <= at:
                    self.next += 1
                if self.next < count and event.WhichOneof("what") == "summary":
                    if self.tagged:
                        event = event if self._trim(event, scratch) else None
                    elif event.step >= self.all[self.next]:  # STARTs only: the event's points go together
                        for v in event.summary.value:
                            scalar_of(v, scratch)  # a dropped first point may carry its tag's plugin
                        event = None
            if event is not None:
                yield event
            if records.offset >= end:
                return  # as far as the first pass read: a purge after it is unknown

    def _trim(self, event: Any, scratch: State) -> bool:
        """Drop the event's points that a later purge drops; whether any is left."""
        values, step = event.summary.value, event.step
        dropped = [i for i, v in enumerate(values) if step >= self._limit(v.tag)]
        for i in reversed(dropped):
            scalar_of(values[i], scratch)  # a dropped first point may carry its tag's plugin
            del values[i]
        return len(values) > 0

    def _limit(self, tag: str) -> float:
        low = self.all[self.next]
        found = self.tagged.get(tag)
        if found is not None:
            indices, lows, cursor = found
            while cursor[0] < len(indices) and indices[cursor[0]] < self.next:
                cursor[0] += 1
            if cursor[0] < len(indices):
                low = min(low, lows[cursor[0]])
        return low


def _as_state(kept: Replay) -> State:
    """A state :func:`accumulate` can fold into (its bookkeeping fields unused here)."""
    return {"tags": kept["tags"], "others": kept["others"], "plugins": kept["plugins"], "prev_step": None,
            "first_step": None, "disorder": False, "version": None, "starts": 0, "starts_at": [], "legacy": False}


def _row(path: str, state: State, offset: int) -> List[Any]:
    return [path, *(state[key] for key in _IDENTITY), offset]


def _result(rows: List[List[Any]], rule: Rule, scratch: State) -> Replay:
    return {"files": rows, "rule": rule.saved(), "tags": scratch["tags"], "others": scratch["others"],
            "plugins": scratch["plugins"]}


def valid_replay(kept: Any) -> bool:
    """Whether a kept result has every field, of its type (anything else is read again)."""
    if not isinstance(kept, dict):
        return False
    files, rule = kept.get("files"), kept.get("rule")
    if not isinstance(files, list) or not all(
            isinstance(row, list) and len(row) == 8 and isinstance(row[0], str)
            and all(type(x) is int for x in row[1:3] + row[4:]) and (row[3] is None or type(row[3]) is int)
            for row in files):
        return False
    if not (isinstance(rule, list) and len(rule) == 3 and (rule[0] is None or type(rule[0]) in (int, float))
            and type(rule[1]) is bool and type(rule[2]) is int):
        return False
    others, plugins = kept.get("others"), kept.get("plugins")
    return (valid_tags(kept.get("tags")) and isinstance(others, dict) and isinstance(plugins, dict)
            and all(isinstance(k, str) and isinstance(v, str) for d in (others, plugins) for k, v in d.items()))

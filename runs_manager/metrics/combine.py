"""A run's scalars from its files' states: each TensorBoard run (the directory, each
subdirectory) folded in file order, with TensorBoard's purges on restarts.

A run directory whose files' states say a purge can happen (a second ``SessionLog.START``,
or steps going back in files of the old event format) is read by restarts.py, which
keeps its result in the cache. Without a purge every point counts, and the value at the
largest step is the last one (the later point wins on a repeated step).
"""
from __future__ import annotations

import os
import struct
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from runs_manager.metrics.events import Agg
from runs_manager.metrics.files import State
from runs_manager.metrics.restarts import Replay, replay


class Tag(NamedTuple):
    """A scalar tag's aggregates over a run's points."""

    points: int
    step: int
    last: float
    min: float  # of the points that are not NaN (NaN if every one is)
    max: float
    mean: float
    nan: int  # how many points are NaN

    def get(self, aggregate: str) -> Any:
        return {"last": self.last, "min": self.min, "max": self.max, "mean": self.mean,
                "step": self.step, "count": self.points, "nan": self.nan}[aggregate]


class RunMetrics(NamedTuple):
    scalars: Dict[str, Tag]
    others: Dict[str, str]  # tags that hold no scalars: what they hold (image, histo, a plugin's name)


def combine(files: List[Tuple[str, str, os.stat_result]], states: Dict[str, State],
            kept: Dict[str, Replay], made: Dict[str, Replay]) -> RunMetrics:
    """A run's scalars: each TensorBoard run (the directory, each subdirectory) folded in
    file order. Restarts' results are taken from ``kept`` and put in ``made`` (by directory)."""
    groups: Dict[str, List[str]] = {}
    for path, subdir, _ in files:
        groups.setdefault(subdir, []).append(path)
    scalars: Dict[str, Tag] = {}
    others: Dict[str, str] = {}
    top: Tuple[Dict[str, Tag], Dict[str, str]] = ({}, {})  # the run directory's own tags, named last
    for subdir, paths in groups.items():
        prefix = subdir.replace(os.sep, "/") + "/" if subdir else ""
        group = [states[p] for p in paths]
        if _needs_replay(group):
            directory = os.path.dirname(paths[0])
            made[directory] = replay(paths, states, kept.get(directory))
            aggs, kinds = made[directory]["tags"], made[directory]["others"]
        else:
            aggs, kinds = _merge(group)
        into = top if not subdir else (scalars, others)
        for tag, a in aggs.items():
            into[0][prefix + tag] = _tag(a)
        for tag, kind in kinds.items():
            if tag not in aggs:
                into[1][prefix + tag] = kind
    # A top-level tag 'train/loss' and the train/ subdirectory's 'loss' are two series, as
    # TensorBoard shows them: the top-level one is named './train/loss'.
    taken = scalars.keys() | others.keys()
    scalars.update(("./" + tag if tag in taken else tag, value) for tag, value in top[0].items())
    others.update(("./" + tag if tag in taken else tag, value) for tag, value in top[1].items())
    return RunMetrics(scalars, others)


def _needs_replay(group: List[State]) -> bool:
    """Whether TensorBoard would purge points of this run directory (see the module's doc)."""
    if sum(s["starts"] for s in group) > 1:
        return True
    version: Optional[float] = None
    last: Optional[int] = None
    for s in group:
        version = s["version"] if s["version"] is not None else version
        # A file's own flag too: its version may have changed within it, or come after its summaries.
        legacy = s["legacy"] or version is None or version < 2
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
            if a[3] is not None:
                m[3], m[4] = (a[3], a[4]) if m[3] is None else (min(m[3], a[3]), max(m[4], a[4]))
            m[5], m[6], m[7] = m[5] + a[5], m[6] and a[6], m[7] + a[7]
    return aggs, kinds


def _tag(a: Agg) -> Tag:
    count, step, last, low, high, total, narrow, nans = a
    short = _short if narrow else float
    nan = float("nan")
    numbers = count - nans
    return Tag(count, step, short(last), nan if low is None else short(low), nan if high is None else short(high),
               short(total / numbers) if numbers else nan, nans)


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

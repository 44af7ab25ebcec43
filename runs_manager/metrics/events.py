"""Events to points: the scalar of each summary value (simple values and TF2 tensors), folded
into a file's state as per-tag aggregates, with what restarts need (file version, STARTs,
step order)."""
from __future__ import annotations

import struct
from typing import Any, Dict, List, Optional, Tuple

START = 1  # SessionLog.START
State = Dict[str, Any]
# [count, last step, last value, min, max, sum, float32, NaN count]: min, max and sum over
# the points that are not NaN (None while there is none), so no order of points changes them.
Agg = List[Any]
MAX_STARTS = 1000  # STARTs a file's state keeps (where each is, and its step)


def scalar_of(v: Any, state: State) -> Optional[Tuple[float, bool]]:
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


def accumulate(state: State, events: Any) -> None:
    """Fold ``events`` into the file's state: aggregates per tag, file version, STARTs, step order.

    For restarts.py, each START's place (the offset after its record, when ``events`` has
    one) and step; and ``legacy`` once the file has a summary or START not under event
    format 2 of its own, whose purges only reading the files in order can tell.

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
                if not _modern(state["version"]):
                    state["legacy"] = True
            elif step < prev:
                state["disorder"] = True
            prev = step
            for v in event.summary.value:
                x, narrow = v.simple_value, True
                if not x and not v.HasField("simple_value"):  # 0.0 is also what other kinds of value read as
                    scalar = scalar_of(v, state)
                    if scalar is None:
                        continue
                    x, narrow = scalar
                tag = v.tag
                a = tags.get(tag)
                if a is None:
                    tags[tag] = [1, step, x, x, x, x, narrow, 0] if x == x else [1, step, x, None, None, 0.0, narrow, 1]
                    continue
                a[0] += 1
                if step >= a[1]:
                    a[1] = step
                    a[2] = x
                if x != x:  # NaN: counted, never a min, max or part of the mean
                    a[7] += 1
                elif a[3] is None:
                    a[3] = a[4] = a[5] = x
                else:
                    if x < a[3]:
                        a[3] = x
                    elif x > a[4]:
                        a[4] = x
                    a[5] += x
                if not narrow:
                    a[6] = False
        elif what == "file_version":
            state["version"] = version_of(event.file_version)
            if not _modern(state["version"]):
                state["legacy"] = True
        elif what == "session_log" and event.session_log.status == START:
            state["starts"] += 1
            if len(state["starts_at"]) < MAX_STARTS:
                state["starts_at"].append([getattr(events, "offset", 0), event.step])
            else:
                state["legacy"] = True  # too many to keep: restarts.py finds them itself
            if not _modern(state["version"]):
                state["legacy"] = True
    state["prev_step"] = prev


def _modern(version: Optional[float]) -> bool:
    """Event format 2 or later: restarts are told by STARTs, not by steps going back."""
    return version is not None and version >= 2


def version_of(text: str) -> float:
    """As TensorBoard's event_util.ParseFileVersion: 'brain.Event:2' is 2.0, nonsense -1."""
    try:
        return float(text.split("brain.Event:")[-1])
    except ValueError:
        return -1.0

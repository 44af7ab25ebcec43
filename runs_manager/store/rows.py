"""How a run's entry is a row of the index: JSON of plain types, checked when read back.

The index is derived from the YAML file, so a row that is not what runs wrote (a damaged or
hand-made index) is never shown: it raises ``IndexUnusable`` and callers rebuild the index.
"""
from __future__ import annotations

import datetime
import json
from typing import Any, Dict, List


class IndexUnusable(Exception):
    """The index file is missing, damaged or of another version."""


def decoded(name: Any, text: Any) -> Dict[str, Any]:
    """A row's entry, checked: the index is derived from the YAML file, and a row that is
    not what runs wrote (a damaged or hand-made file) makes callers rebuild it, never shown."""
    try:
        entry = json.loads(text) if type(text) is str else None
    except ValueError:
        raise IndexUnusable(f"the entry of run {name!r} is not JSON") from None
    if type(entry) is not dict or type(name) is not str:
        raise IndexUnusable(f"the entry of run {name!r} is not a mapping")
    return entry


def has_outcome(entry: Dict[str, Any]) -> int:
    """1 if the entry records an outcome, by outcome.py's rule."""
    from runs_manager.outcome import outcome

    return int(outcome(entry) is not None)


def to_json(entry: Dict[str, Any]) -> str:
    return json.dumps(_plain(entry), ensure_ascii=False)


def _plain(value: Any) -> Any:
    """The entry with every YAML type a hand edit can bring in turned into JSON types."""
    if isinstance(value, dict):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _key(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return str(key).lower()
    return key if isinstance(key, str) else str(_plain(key))


def kept_parameters(entry: Dict[str, Any]) -> str:
    """The command's parameters as the index keeps them (JSON: [key, raw, typed] each)."""
    from runs_manager.text import params

    return json.dumps(params.kept_form(entry.get("command")), ensure_ascii=False)


def decoded_parameters(name: Any, text: Any) -> List[Any]:
    """A row's kept parameters, checked like its entry (see :func:`decoded`); each item's
    form is checked as it is read (params.parameters_from)."""
    try:
        kept = json.loads(text) if type(text) is str else None
    except ValueError:
        kept = None
    if type(kept) is not list:
        raise IndexUnusable(f"the parameters of run {name!r} are not what runs keeps")
    return kept

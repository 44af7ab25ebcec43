"""The times of entries: ISO 8601 with the local zone (``datetime``, ``ended``, ``started``),
written by one function and read by one."""
from __future__ import annotations

import datetime
from typing import Any, Optional


def now() -> str:
    """This moment as entries record it: '2026-12-07T01:02:03.456789+01:00'."""
    return datetime.datetime.now().astimezone().isoformat()


def moment(value: Any) -> Optional[float]:
    """An ISO 8601 time (or one YAML already read as a timestamp) as a Unix time; None if
    it is none. A time without a zone is local."""
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
        except ValueError:
            return None
    if not isinstance(value, datetime.datetime):
        return None
    return (value if value.tzinfo else value.astimezone()).timestamp()

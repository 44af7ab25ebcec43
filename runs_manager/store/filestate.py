"""What the index knows of the YAML file it describes: enough to tell, without reading it,
whether the file is still the one the index was built from (a hand edit of the same size
included: the CRC is compared when the times are too close to tell)."""
from __future__ import annotations

import os
from typing import NamedTuple


class FileState(NamedTuple):  # a NamedTuple, not a dataclass: dataclasses costs start-up time
    """What the index knows of the YAML file it describes."""

    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    crc: int
    header: int  # bytes before the first entry
    simple: bool  # entries can be appended and spliced as text
    ends_with_newline: bool

    def same_stat(self, st: os.stat_result) -> bool:
        return (self.ino, self.size, self.mtime_ns, self.ctime_ns) == (
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
        )

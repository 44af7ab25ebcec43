"""A run's state file: what its supervisor knows, kept where a full disk cannot lose it.

``<runs-dir>/state/<name>`` is written once, whole (1,024 bytes), when the run is created
with its other files, and from then on only overwritten in place with ``pwrite`` and
``fsync``: the one exception to temp-file-and-rename, because overwriting bytes a file
already has needs no new blocks, so the outcome is kept even on a full disk. It holds:

- the supervisor's part (bytes 0-511): the host and boot it runs on, the identity of the
  keeper process that leads the program's terminal (pid and start time, as /proc gives
  them: a recycled pid never matches), and once the program has ended, its outcome;
- a kill request (bytes 512-1023), written by `runs kill` before it signals the program.

The supervisor opens the file that names its run's start time, and keeps it open: the run
it records is the one whose state file is still this file (same inode), whatever hand edits
do to the entry, and a run deleted and made anew under the same name has a new one.
"""
from __future__ import annotations

import contextlib
import json
import os
import stat
from typing import Any, Dict, Optional

from runs_manager import fsutil, processes
from runs_manager.settings import Settings

PART = 512
SIZE = 2 * PART
SUPERVISOR, KILL = 0, PART  # offsets of the two parts
# In the runs directory itself, where no run's file is: its size says whether an outcome
# waits to be copied into the database (0 no, 1 yes). Growing a file by truncate allocates
# no block, so a supervisor can say so on a full disk.
PENDING = ".outcomes-pending"
Entry = Dict[str, Any]


def root(settings: Settings) -> str:
    return settings.states_root


def path(settings: Settings, name: str) -> str:
    """Run ``name``'s state file (runfiles lists it with the run's other files)."""
    return os.path.join(settings.states_root, name)


def _flag(settings: Settings) -> str:
    return os.path.join(settings.runs_dir, PENDING)


def pending(settings: Settings) -> bool:
    """Whether some outcome may be kept in a state file only (one stat)."""
    try:
        return os.stat(_flag(settings)).st_size > 0
    except OSError:
        return False


def raise_flag(settings: Settings) -> None:
    """Tell the next command that takes the lock to copy kept outcomes into the database."""
    with contextlib.suppress(OSError):
        os.truncate(_flag(settings), 1)


def _open(settings: Settings, name: str, mode: int) -> Optional[int]:
    """A run's state file, opened without blocking (a FIFO planted there must not hang
    runs) and only if it is a regular file of the full size; None otherwise."""
    from runs_manager import names

    if not names.is_valid(name):
        return None  # a hand-edited name could be '../..': derive no path from it
    try:
        fd = os.open(path(settings, name), mode | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size < SIZE:
        os.close(fd)
        return None
    return fd


def _encode(fields: Entry) -> bytes:
    data = json.dumps(fields, separators=(",", ":")).encode()
    if len(data) >= PART:  # a very long kill reason, say: keep what tells the status
        data = json.dumps({k: fields[k] for k in ("ended", "exit_code", "killed") if k in fields})[: PART - 1].encode()
    return data.ljust(PART - 1) + b"\n"


class Record:
    """The supervisor's open state file."""

    def __init__(self, settings: Settings, name: str, fd: int) -> None:
        self.settings, self.name, self.fd = settings, name, fd
        self.fields: Entry = {}

    @classmethod
    def open(cls, settings: Settings, name: str, started: str) -> Optional["Record"]:
        """The run's state file, if it is the one `runs new` made for the run that started
        at ``started`` (a supervisor given another start time is not this run's)."""
        fd = _open(settings, name, os.O_RDWR)
        if fd is None:
            return None
        record = cls(settings, name, fd)
        record.fields = _part(fd, SUPERVISOR)
        if record.fields.get("started") != started:
            os.close(fd)
            return None
        return record

    def write(self, **fields: Any) -> None:
        """Overwrite the supervisor's part in place, synced (no new blocks needed)."""
        self.fields.update(fields)
        os.pwrite(self.fd, _encode(self.fields), SUPERVISOR)
        os.fsync(self.fd)

    def is_current(self) -> bool:
        """Whether this file is still the run's state file (not deleted, nor made anew)."""
        try:
            here, there = os.fstat(self.fd), os.stat(path(self.settings, self.name))
        except OSError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def kill_reason(self) -> Optional[str]:
        reason = _part(self.fd, KILL).get("killed")
        return reason if isinstance(reason, str) else None

    def flag_unrecorded(self) -> None:
        raise_flag(self.settings)

    def ran_before(self) -> bool:
        """Whether a supervisor ran this run before (its keeper or outcome is here): the
        scheduler requeued the run's batch job, which starts its script again."""
        return any(key in self.fields for key in ("keeper", "exit_code"))

    def begin_again(self) -> Entry:
        """Start the file afresh for another attempt; returns what the last one left (its
        keeper, host and outcome). Its kill request, if any, was that attempt's too."""
        before, self.fields = self.fields, {"started": self.fields.get("started")}
        os.pwrite(self.fd, _encode(self.fields) + _encode({}), SUPERVISOR)
        os.fsync(self.fd)
        return before



def create(settings: Settings, name: str, started: str) -> None:
    """Write a new run's state file whole (its blocks are allocated now, so overwriting
    them later needs none), naming the run's start time. Raises OSError."""
    target = path(settings, name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not os.path.exists(_flag(settings)):
        open(_flag(settings), "a").close()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        with fsutil.naming(target):
            os.write(fd, _encode({"started": started}) + _encode({}))
    finally:
        os.close(fd)


def read(settings: Settings, name: str) -> Entry:
    """The supervisor's part of a run's state file ({} if there is none, or it is damaged)."""
    fd = _open(settings, name, os.O_RDONLY)
    if fd is None:
        return {}
    try:
        return _part(fd, SUPERVISOR)
    finally:
        os.close(fd)


def request_kill(settings: Settings, name: str, reason: str) -> bool:
    """Write why the run is being killed where its supervisor will read it (no new blocks)."""
    fd = _open(settings, name, os.O_WRONLY)
    if fd is None:
        return False
    try:
        os.pwrite(fd, _encode({"killed": reason} if reason else {}), KILL)
        os.fsync(fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _part(fd: int, offset: int) -> Entry:
    try:
        data = os.pread(fd, PART, offset)
        fields = json.loads(data.decode("utf-8")) if data.strip() else {}
    except (OSError, ValueError):
        return {}
    return fields if isinstance(fields, dict) else {}


def outcome(fields: Entry) -> Optional[Entry]:
    """The outcome a state file holds: ended, exit_code and perhaps killed; None if none."""
    code = fields.get("exit_code")
    if isinstance(code, bool) or not isinstance(code, int) or not isinstance(fields.get("ended"), str):
        return None
    found = {"ended": fields["ended"], "exit_code": code}
    if isinstance(fields.get("killed"), str):
        found["killed"] = fields["killed"]
    return found


def settle(settings: Settings, txn: Any) -> None:
    """Under the lock: copy into the database the outcomes that supervisors kept only in
    their state files (they could not write it). One stat when there are none."""
    if not pending(settings):
        return
    try:
        os.truncate(_flag(settings), 0)  # first: a supervisor failing from now on raises it again
    except OSError:
        return
    from runs_manager import names
    from runs_manager.errors import RunsError

    changes = {}
    for name, entry in txn.entries(has_outcome=False):
        found = outcome(read(settings, name)) if names.is_valid(name) else None
        if found is not None and "exit_code" not in entry:
            if "killed" in entry:
                found.pop("killed", None)  # `runs kill` said why first
            changes[name] = (name, {**entry, **found})
    try:
        txn.change(changes)
    except RunsError:  # still no room: the next command tries again
        raise_flag(settings)


def keep_outcome(settings: Settings, name: str, found: Entry) -> bool:
    """Keep an outcome recorded by another than the supervisor (`runs kill` of an orphaned
    program) in the run's state file, when the database cannot take it now."""
    fd = _open(settings, name, os.O_RDWR)
    if fd is None:
        return False
    try:
        os.pwrite(fd, _encode({**_part(fd, SUPERVISOR), **found, "unrecorded": True}), SUPERVISOR)
        os.fsync(fd)
    except OSError:
        return False
    finally:
        os.close(fd)
    raise_flag(settings)
    return True


def orphan_group(settings: Settings, name: str, fields: Optional[Entry] = None) -> int:
    """The process group of a run's program that outlived its supervisor here, 0 if none.

    The keeper recorded in the state file must still be the same process (pid and start
    time, on this host and boot); the program is the other process group of its session.
    """
    fields = read(settings, name) if fields is None else fields
    keeper = fields.get("keeper")
    if fields.get("host") != host() or fields.get("boot") != boot_id() or not _pair(keeper):
        return 0
    pid, started = keeper
    # A copied runs directory holds the same state file: the keeper must be this run's, of
    # this runs directory (a fork of its supervisor, whose arguments say so) and lead its session.
    if processes.start_time(pid) != started or not processes.is_keeper_of(pid, os.path.abspath(settings.runs_dir), name):
        return 0
    return processes.session_group(pid)


def _pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


boot_id, host = processes.boot_id, processes.host

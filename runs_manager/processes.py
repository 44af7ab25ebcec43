"""Processes of runs on this machine: which supervisor is alive, and its program's group.

A run's supervisor holds a POSIX lock on the run's log for as long as it lives; the
kernel drops the lock when the process dies (even by SIGKILL), so a held lock is proof of
a live supervisor, and the kernel names its pid. Its program runs in a process group of
its own, in a session led by the supervisor's child (see program.py).
"""
from __future__ import annotations

import fcntl
import os
import struct
from typing import List, Optional, Tuple

# struct flock on Linux: short l_type, l_whence; off_t l_start, l_len; pid_t l_pid.
_FLOCK = "hhqqi"


def lock_holder(path: str) -> Optional[int]:
    """The pid of the process that holds a lock on ``path``, or None (no lock, no file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0) + bytes(8)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    except OSError:
        return None
    finally:
        os.close(fd)
    kind, _, _, _, pid = struct.unpack_from(_FLOCK, answer)
    return None if kind == fcntl.F_UNLCK else int(pid)


def host() -> str:
    import socket

    return socket.gethostname()


def boot_id() -> str:
    """This boot of this machine: a pid names the same process only within one."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def _stat(pid: int) -> Optional[List[str]]:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, session, ...)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def describe(pid: int) -> str:
    """``pid``, its command line and whether it is stopped (Ctrl-Z), for a message."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = [w.decode("utf-8", "replace") for w in f.read().split(b"\0") if w]
    except OSError:
        words = []
    command = " ".join(" ".join(words).split())  # one line, whatever the arguments hold
    shown = f"process {pid}" + (f" ({command[:120]}{'...' if len(command) > 120 else ''})" if command else "")
    state = (_stat(pid) or ["?"])[0]
    if state in ("T", "t"):
        shown += f", which is stopped: resume it with 'fg' in its shell, or 'kill -CONT {pid}'"
    return shown


# What a supervisor's command line holds (launchers/base.py BOOTSTRAP): its module as it is
# now, and as it was before the package had subpackages (those supervisors live on through
# an upgrade of runs, and must still be recognised: killed, stopped, never signalled by mistake).
SUPERVISOR_MARKERS = (b"from runs_manager.runtime.supervisor import main", b"from runs_manager.supervisor import main")


def is_supervisor(pid: int) -> bool:
    """Whether process ``pid`` runs runs' supervisor (see launchers/base.py supervisor_argv)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            line = f.read()
    except OSError:
        return False
    return any(marker in line for marker in SUPERVISOR_MARKERS)


def program_group(supervisor: int) -> Tuple[str, int]:
    """Where the program of ``supervisor`` is: ("running", its process group), "starting"
    (no program group yet) or "ended" (the keeper has exited). The keeper (program.py) is the supervisor's child that leads
    a session of its own; the program's group is the other group in that session. A child
    cannot be a reused pid, and neither can its session's members."""
    keeper = None
    for pid in _pids():
        fields = _stat(pid)
        if fields and len(fields) > 3 and fields[1] == str(supervisor) and fields[2] == fields[3] == str(pid):
            keeper = (pid, fields[0])
            break
    if keeper is None:
        return "starting", 0
    if keeper[1] == "Z":
        return "ended", 0
    group = session_group(keeper[0])
    # A live keeper without the program's group: the program is not in it yet (the keeper
    # leaves only once the group is empty).
    return ("running", group) if group else ("starting", 0)


def session_group(keeper: int) -> int:
    """The program's process group in the session the keeper leads (0 if none is alive)."""
    for pid in _pids():
        fields = _stat(pid)
        if fields and len(fields) > 3 and fields[3] == str(keeper) and fields[2] != str(keeper) and fields[0] != "Z":
            return int(fields[2])
    return 0


def is_keeper_of(pid: int, runs_dir: str, name: str) -> bool:
    """Whether process ``pid`` is the keeper of run ``name`` of ``runs_dir``: a fork of that
    run's supervisor (so its arguments are the supervisor's: see supervisor.argv) that
    leads a session of its own."""
    fields = _stat(pid)
    if not fields or len(fields) < 4 or fields[3] != str(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().split(b"\0")
    except OSError:
        return False
    at = next((i for i, word in enumerate(words) if any(marker in word for marker in SUPERVISOR_MARKERS)), None)
    # After the bootstrap: the package's parent, the runs directory, the database file, the name.
    return at is not None and words[at + 2 : at + 5 : 2] == [os.fsencode(runs_dir), os.fsencode(name)]


def start_time(pid: int) -> Optional[int]:
    """When process ``pid`` started (clock ticks since boot): with its pid, an identity no
    later process has. None if there is no such process (or it is a zombie)."""
    fields = _stat(pid)
    if not fields or len(fields) < 20 or fields[0] == "Z":
        return None
    return int(fields[19])


def group_members(group: int) -> List[int]:
    """The live processes of a process group (zombies are not alive)."""
    members = []
    for pid in _pids():
        fields = _stat(pid)
        if fields and len(fields) > 2 and fields[2] == str(group) and fields[0] != "Z":
            members.append(pid)
    return members


def _pids() -> List[int]:
    try:
        return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return []


def signal_group(group: int, signum: int) -> bool:
    """Send ``signum`` to a process group; False if it has no process left."""
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        return False
    return True

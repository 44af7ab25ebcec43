"""Heartbeats: whether a run is alive, seen from every host that shares the runs directory.

Each run's supervisor keeps ``<runs-dir>/live/<name>`` while it lives (so the directory
holds live runs only, and one walk of it finds them all) and writes a few bytes into it
every beat (10 s). The file's modification time is then the shared filesystem's clock at the last
beat, and a reader compares it with that same clock, read from a file it writes just then:
clock skew between hosts never matters. A run of another host is ``running`` while its
heartbeat is at most three beats old, and ``lost`` once it is older; a run without a
heartbeat (recorded by an older runs, or by the original tool) stays ``unknown``. Runs of
this host keep the exact check of their supervisor's lock.

Beats write bytes rather than set times: ``os.utime`` takes the writer's clock (and a
faked one under faketime), a ``write()`` the filesystem's. Readers open the file before
they look at its time, which NFS's close-to-open consistency makes fresh.
"""
from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Callable, Dict, Iterable, List, Optional, Set

from runs_manager import fsutil, processes

LIVE = "live"
_CLOCK = ".clock-"
_REQUEST_AT = 128  # a kill request's place in the heartbeat file, after the beats
_REQUEST_SIZE = 128


def beat_seconds() -> float:
    """``RUNS_HEARTBEAT`` seconds between beats (10 by default; tests beat faster)."""
    try:
        return max(0.05, float(os.environ.get("RUNS_HEARTBEAT", "10")))
    except ValueError:
        return 10.0


def stale_seconds() -> float:
    return 3 * beat_seconds()


def root(runs_dir: str) -> str:
    return os.path.join(runs_dir, LIVE)


def path(runs_dir: str, name: str) -> str:
    """Run ``name``'s heartbeat (runfiles.own_paths lists it with the run's other files)."""
    return os.path.join(root(runs_dir), name)


class Beater:
    """A supervisor's heartbeat: call it often; it writes at most every beat_seconds()."""

    def __init__(self, runs_dir: str, name: str) -> None:
        self.root = root(runs_dir)
        self.path = path(runs_dir, name)
        self.every = beat_seconds()
        self.count = 0
        self.last = 0.0
        self.made = False
        self.gone = False
        self.identity: tuple = ()
        self.handled = ""  # the last kill request acted on
        self.on_request: Callable[[int], None] = lambda signum: None
        self.beat()

    def __call__(self) -> None:
        if time.monotonic() - self.last >= self.every:
            self.beat()

    def beat(self) -> None:
        """Write the beat, and read the place of a kill request. Opened and closed each
        time: NFS sends a write to the server at close (its time is the beat), and shows
        another host's write (a request) at open."""
        self.last = time.monotonic()
        self.count += 1
        if self.gone:
            return
        flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
        try:
            if not self.made:
                # A file of its own (a new inode): one left by an earlier run of the name, and a
                # request in it, are not this run's, and that run's supervisor tells them apart.
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
                flags |= os.O_CREAT | os.O_EXCL
            fd = os.open(self.path, flags, 0o644)
        except FileNotFoundError:
            # Made once and gone since: the run was deleted while it ran. Never made anew,
            # or the name would look taken to the next `runs new` of it.
            self.gone = self.made
            return
        except OSError:  # no heartbeat (a full disk) only leaves other hosts unsure; tried again next beat
            return
        try:
            identity = os.fstat(fd)[1:3]  # inode and device
        except OSError:
            identity = ()
        if self.made and identity != self.identity:  # a later run of the name made it anew: not ours
            os.close(fd)
            self.gone = True
            return
        self.made, self.identity = True, identity
        try:
            # In place: the same block every time, so a full disk does not stop it.
            os.pwrite(fd, f"{processes.host()[:64]} {os.getpid()} {self.count:>12}\n".encode(), 0)
            request = os.pread(fd, _REQUEST_SIZE, _REQUEST_AT).split()
        except OSError:
            request = []
        finally:
            os.close(fd)
        self._answer(request)

    def _answer(self, words: List[bytes]) -> None:
        """Act on a kill request another host wrote into the heartbeat (once each)."""
        if len(words) < 3 or words[0] != b"kill" or not words[1].isdigit():
            return
        token = words[2].decode("ascii", "replace")
        if token != self.handled and int(words[1]) in signal.valid_signals():
            self.handled = token
            self.on_request(int(words[1]))

    def stop(self) -> None:
        """The run's outcome is recorded: no heartbeat is needed any more."""
        if self.made and not self.gone:
            self.made = False
            with contextlib.suppress(OSError):
                if os.lstat(self.path)[1:3] == self.identity:  # never a later run's of the same name
                    os.unlink(self.path)
            # The group directories it leaves empty (one another beat needs again is made again).
            fsutil.prune_empty_parents(self.path, self.root, lambda group: False)


def request_kill(runs_dir: str, name: str, signum: int) -> bool:
    """Ask the supervisor of run ``name``, on another host, to send ``signum`` to its
    program (at its next beat); False if the run has no heartbeat to ask through."""
    try:
        fd = os.open(path(runs_dir, name), os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        token = f"{processes.host()}-{os.getpid()}-{time.monotonic_ns()}"
        os.pwrite(fd, f"kill {signum} {token}\n".encode().ljust(_REQUEST_SIZE), _REQUEST_AT)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def alive(runs_dir: str, names: Iterable[str]) -> Dict[str, Optional[bool]]:
    """For runs of other hosts: True while the heartbeat is fresh, False once it is stale,
    None without one. One listing of the heartbeat directory, one open per heartbeat."""
    names = list(names)
    present = _present(root(runs_dir))
    answers: Dict[str, Optional[bool]] = {name: None for name in names}
    beating = [name for name in names if name in present]
    now = _filesystem_now(runs_dir) if beating else 0.0
    for name in beating:
        written = _written(path(runs_dir, name))
        if written is not None:
            answers[name] = now - written <= stale_seconds()
    return answers


def _present(directory: str) -> Set[str]:
    """The names of the runs with a heartbeat (group directories walked: few, live runs only)."""
    found: Set[str] = set()
    for parent, _, files in os.walk(directory):
        relative = os.path.relpath(parent, directory)
        found.update(name if relative == "." else f"{relative}/{name}" for name in files if not name.startswith(_CLOCK))
    return found


def _written(heartbeat: str) -> Optional[float]:
    try:
        fd = os.open(heartbeat, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None  # the run ended meanwhile (its outcome is recorded), or was deleted
    try:
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)


def _filesystem_now(runs_dir: str) -> float:
    """The shared filesystem's clock now: the modification time of a file written now."""
    probe = os.path.join(root(runs_dir), f"{_CLOCK}{processes.host()}-{os.getpid()}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError:  # a read-only runs directory: this host's clock is the best there is
        return time.time()
    try:
        os.write(fd, b"now\n")
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)

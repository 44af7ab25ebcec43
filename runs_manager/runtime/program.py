"""Starting a run's program on a pseudo-terminal of its own, under a keeper process.

The keeper leads the terminal's session and stays until the program's whole process group
has ended; the program runs in a group of its own, in the foreground. So a wrapper script
that dies of SIGTERM does not hang up the terminal under the program it started (which
may still be saving a checkpoint), and `runs kill` signals exactly the program's group.
The keeper's exit status is the program's, as a shell reports it (128+N for signal N).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from typing import Callable, NoReturn, Sequence, Tuple

from runs_manager import processes

POLL = 0.2  # seconds between checks whether the program's group is empty
# Python ignores these at start-up; the program must get the defaults a shell gives it.
DEFAULTS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT,
            signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCHLD, signal.SIGTTOU, signal.SIGTTIN,
            signal.SIGTSTP)
# The keeper outlives any of these: it ends when the program's group has.
_KEEPER_IGNORES = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
                   signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)


def start(slave: int, program: Sequence[str], supervisors: Sequence[int] = (),
          forked: Callable[[int], None] = lambda keeper: None) -> Tuple[int, int]:
    """Fork the keeper, which starts ``program`` on the terminal ``slave``. Returns the
    keeper's pid and the program's process group (0 if it could not be started).

    ``supervisors`` are the supervisor's own descriptors (the terminal's master side, the
    log, ...), which the keeper closes: if the supervisor dies, the master side closes
    with it and the program is hung up, as a terminal's program is when it is closed.

    Call with the signals to forward blocked: the group exists once this returns."""
    ready_r, ready_w = os.pipe()
    keeper = os.fork()
    if keeper == 0:
        os.close(ready_r)
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(-1)
        with contextlib.suppress(Exception):
            forked(os.getpid())  # before the program starts: no moment in which it runs unrecorded
        for fd in supervisors:
            with contextlib.suppress(OSError):
                os.close(fd)
        _keep(slave, program, ready_w)
    os.close(ready_w)
    with os.fdopen(ready_r, "rb") as ready:
        told = ready.read()
    return keeper, int(told) if told.isdigit() else 0


def reset_signals() -> None:
    """The signal dispositions and mask a program started from a shell has."""
    for sig in DEFAULTS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _keep(slave: int, program: Sequence[str], ready: int) -> NoReturn:
    """The keeper: session leader of the terminal, parent of the program."""
    code = 127
    try:
        import termios

        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for sig in _KEEPER_IGNORES:
            signal.signal(sig, signal.SIG_IGN)
        child = os.fork()
        if child == 0:
            _exec(slave, program)
        with contextlib.suppress(OSError):  # both sides set it: whichever runs first
            os.setpgid(child, child)
        with contextlib.suppress(OSError):
            os.tcsetpgrp(slave, child)
        os.write(ready, str(child).encode())
        os.close(ready)
        os.close(slave)

        def hang_up(signum: int, frame: object) -> None:
            # The terminal was hung up: its master side closed, which happens only when
            # the supervisor has died. Passed on as a shell passes it to its jobs.
            with contextlib.suppress(OSError):
                os.killpg(child, signal.SIGHUP)
                os.killpg(child, signal.SIGCONT)

        signal.signal(signal.SIGHUP, hang_up)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        _, status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
        # The run is over when its whole group is: a process it left in the background,
        # or one that ignored a hang-up, is still part of it.
        while processes.group_members(child):
            time.sleep(POLL)
    finally:
        os._exit(code)


def _exec(slave: int, program: Sequence[str]) -> NoReturn:
    try:
        os.setpgid(0, 0)
        os.tcsetpgrp(slave, os.getpid())  # SIGTTOU is ignored here (inherited from the keeper)
        reset_signals()
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        os.closerange(3, 1 << 16)
        os.execvp(program[0], list(program))
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.write(2, f"runs: cannot start {program[0]}: {e}\r\n".encode())
    os._exit(127)

"""The relay between a run's program and the supervisor's terminal: the program runs on a
pseudo-terminal of its own under a keeper process (program.py); everything it writes is
copied to the log and to the supervisor's terminal, keys and window sizes are passed
through, and signals the supervisor gets are forwarded to the program's process group (a
hang-up too, as a terminal would)."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
from typing import Any, Callable, List, Optional, Sequence

POLL = 0.2  # seconds between checks of the terminal when nothing wakes the relay
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


class Relay:
    """The program on a pseudo-terminal, its output copied to the log and to our terminal."""

    def __init__(self, log: int) -> None:
        self.log = log
        self.tty = os.isatty(0)
        self.saved: Optional[List[Any]] = None
        self.master = -1
        self.keeper = 0
        self.wakeup = -1
        self.pid = 0  # the program's process group, while it has one
        self.hung_up = False  # by a SIGHUP: the terminal was closed
        self.detached = False  # no longer writing to our terminal
        self.carry = b""  # a carriage return that may start a CRLF
        self.early: List[int] = []  # signals that came before the program started
        self.private: List[int] = []  # more descriptors of ours that the keeper must not keep
        self.on_start: Callable[[int], None] = lambda keeper: None
        self.tick: Callable[[], None] = lambda: None  # called at least every POLL seconds while the program runs
        for sig in _FORWARDED:
            signal.signal(sig, self._forward)
        signal.signal(signal.SIGHUP, self._hang_up)

    def run(self, program: Sequence[str]) -> int:
        """Run the program to its end; its exit status as a shell reports it."""
        import pty

        self.master, slave = pty.openpty()
        self._copy_window_size()
        signal.signal(signal.SIGWINCH, lambda signum, frame: self._copy_window_size())
        # Held while deciding and forking, so none falls between the two unanswered.
        held = {signal.SIGHUP, *_FORWARDED}
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
        if self.early:  # asked to stop before the program started: it never does
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
            return 128 + self.early[0]
        from runs_manager.runtime import program as program_

        # A signal (the keeper's SIGCHLD above all) wakes the relay at once.
        self.wakeup, wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        os.set_blocking(wakeup_w, False)
        signal.set_wakeup_fd(wakeup_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self.keeper, self.pid = program_.start(slave, program, [self.master, self.log, self.wakeup, wakeup_w, *self.private],
                                               forked=self.on_start)
        self.on_start(self.keeper)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)  # what came meanwhile reaches the group now
        os.close(slave)
        if self.tty:
            import termios
            import tty

            self.saved = termios.tcgetattr(0)
            tty.setraw(0)
        return self._relay()

    def _relay(self) -> int:
        open_master = True
        while True:
            watched = [self.wakeup] + ([self.master] if open_master else [])
            if self.tty and not self.detached:
                watched.append(0)
            ready, _, _ = select.select(watched, [], [], POLL)
            self.tick()
            if self.wakeup in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wakeup, 512)
            if self.master in ready and not self._copy_output():
                open_master = False  # every process closed the terminal; the keeper ends soon
            if 0 in ready:
                self._copy_input()
            if self._ended():
                while open_master and select.select([self.master], [], [], 0.05)[0] and self._copy_output():
                    pass  # what the program wrote just before it ended
                self.pid = 0  # its group is gone: forward nothing more
                _, status = os.waitpid(self.keeper, 0)
                return os.waitstatus_to_exitcode(status) % 256

    def _ended(self) -> bool:
        """Whether the keeper has ended (with the program's whole group)."""
        info = os.waitid(os.P_PID, self.keeper, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return info is not None and info.si_pid == self.keeper

    def _copy_output(self) -> bool:
        try:
            data = os.read(self.master, 1 << 16)
        except OSError as e:
            if e.errno != errno.EIO:  # EIO: every process has closed the terminal
                raise
            data = b""
        if not data:
            return False
        if not self.detached:
            try:
                _write_all(1, data)
            except OSError:
                self._detach()
        text = self.carry + data
        self.carry = b"\r" if text.endswith(b"\r") else b""
        self._log(text[: len(text) - len(self.carry)].replace(b"\r\n", b"\n"))
        return True

    def _copy_input(self) -> None:
        try:
            data = os.read(0, 1 << 16)
        except OSError:
            data = b""
        if not data:
            self._detach()
            return
        with contextlib.suppress(OSError):
            _write_all(self.master, data)

    def _log(self, data: bytes) -> None:
        try:
            _write_all(self.log, data)
        except OSError:
            pass  # a full disk: the program goes on, and so does the rest of its log when it can

    def flush(self) -> None:
        self._log(self.carry)
        self.carry = b""

    def note(self, text: Optional[str]) -> None:
        if text:
            self._log(f"\n[runs] {text}\n".encode())
            if not self.detached:
                with contextlib.suppress(OSError):
                    os.write(2, f"\r\n[runs] {text}\r\n".encode())

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the program, as a signal to the supervisor would (a kill
        request from another host)."""
        self._forward(signum, None)

    def _forward(self, signum: int, frame: Any) -> None:
        if not self.pid:
            self.early.append(signum)
        else:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signum)

    def _hang_up(self, signum: int, frame: Any) -> None:
        self.hung_up = True
        self._detach()
        if not self.pid:
            self.early.append(signum)
        else:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGHUP)
                os.killpg(self.pid, signal.SIGCONT)

    def _detach(self) -> None:
        """Our terminal is gone: stop writing to it (the log goes on)."""
        if self.detached:
            return
        self.detached = True
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        self.saved = None

    def _copy_window_size(self) -> None:
        if not self.tty or self.detached or self.master < 0:
            return
        import termios

        with contextlib.suppress(OSError):
            size = fcntl.ioctl(0, termios.TIOCGWINSZ, bytes(8))
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)

    def restore_terminal(self) -> None:
        if self.saved is not None:
            import termios

            with contextlib.suppress(OSError):
                termios.tcsetattr(0, termios.TCSADRAIN, self.saved)
            self.saved = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]

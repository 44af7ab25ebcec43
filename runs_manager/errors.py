from __future__ import annotations


class Interrupted(BaseException):
    """A signal (Ctrl-C, a hang-up, a kill request) that arrived while a change was half made,
    acted on once the change was finished or undone."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class RunsError(Exception):
    """A failure the user can act on.

    Raised where the problem is found, with one plain sentence; ``main`` prints it
    once as ``runs: error: ...`` and exits non-zero.
    """

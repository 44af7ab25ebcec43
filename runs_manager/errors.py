from __future__ import annotations


class RunsError(Exception):
    """A failure the user can act on.

    Raised where the problem is found, with one plain sentence; ``main`` prints it
    once as ``runs: error: ...`` and exits non-zero.
    """

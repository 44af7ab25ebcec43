"""tmux, through libtmux: starting, finding and stopping the sessions of runs.

Sessions are always addressed by exact name or id: a bare ``-t exp`` would also match
``exp1509804959``, since tmux completes prefixes.
"""
from __future__ import annotations

import shutil
from typing import Any, Dict, List, Sequence, Tuple

from runs_manager.errors import RunsError



# A session's id, creation time (s) and server pid: ids restart from $0 with each server,
# so all three tell a run's session from a later one of the same name.
Identity = Tuple[str, int, int]
_IDENTITY = "#{session_id}\t#{session_created}\t#{pid}"


class TmuxError(RunsError):
    pass


def installed() -> bool:
    return shutil.which("tmux") is not None


def require() -> None:
    if not installed():
        raise RunsError("tmux is not installed; runs starts each run in a tmux session (apt-get install tmux)")


def _run(*args: str) -> List[str]:
    """The one place that runs tmux."""
    require()
    import libtmux  # imported here: only `new` and `delete` talk to tmux

    proc: Any = libtmux.Server().cmd(*args)
    if proc.returncode != 0:
        raise TmuxError(f"tmux {args[0]} failed: {' '.join(proc.stderr)}")
    return list(proc.stdout)


def _no_server(error: TmuxError) -> bool:
    message = str(error)
    return "no server running" in message or "error connecting to" in message


def sessions() -> Dict[str, Identity]:
    """Session name -> identity, for every session of the tmux server."""
    try:
        lines = _run("list-sessions", "-F", _IDENTITY + "\t#{session_name}")
    except TmuxError as e:
        if _no_server(e):
            return {}
        raise
    found = {}
    for line in lines:
        sid, created, pid, name = line.split("\t", 3)
        found[name] = (sid, int(created), int(pid))
    return found


def environment() -> Dict[str, str]:
    """The tmux server's global environment (what a new session starts with)."""
    try:
        lines = _run("show-environment", "-g")
    except TmuxError as e:
        if _no_server(e):
            return {}
        raise
    env: Dict[str, str] = {}
    last = None
    for line in lines:
        name, eq, value = line.partition("=")
        if eq and name.replace("_", "a").isalnum():
            env[name] = value
            last = name
        elif last is not None and not line.startswith("-"):
            env[last] += "\n" + line  # a value with a newline in it (an exported function)
    return env


def new_session(session: str, directory: str, argv: Sequence[str]) -> Identity:
    """Start a detached session running ``argv`` (no shell in between)."""
    out = _run("new-session", "-d", "-P", "-F", _IDENTITY, "-s", session, "-c", directory, "--", *argv)
    sid, created, pid = out[0].split("\t")
    return sid, int(created), int(pid)


def kill(session_id: str) -> None:
    try:
        _run("kill-session", "-t", session_id)
    except TmuxError as e:
        if not (_no_server(e) or "can't find session" in str(e)):
            raise


def rename(session_id: str, new_name: str) -> None:
    _run("rename-session", "-t", session_id, "--", new_name)

"""A run's command line and environment, and the identity of its tmux session."""
from __future__ import annotations

import os
import re
import shlex
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from runs_manager import names
from runs_manager.errors import RunsError
from runs_manager.runfiles import checkpoint_path, tensorboard_dir
from runs_manager.settings import Settings
from runs_manager.tmux import Identity

# Set by tmux (or the shell) for each pane; passing ours on would mislead the program.
_OWN_ENV = {
    "TMUX", "TMUX_PANE", "TERM", "TERM_PROGRAM", "TERM_PROGRAM_VERSION",
    "PWD", "OLDPWD", "SHLVL", "_", "COLUMNS", "LINES",
}
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# tmux refuses a command message over 16 KB; keep the environment we pass well under it.
MAX_ENV_BYTES = 12_000
SESSION_FIELDS = ("tmux_session_id", "tmux_session_created", "tmux_server_pid")


def host() -> str:
    import socket

    return socket.gethostname()


def activate_script(settings: Settings) -> Optional[str]:
    if not settings.virtualenv_path:
        return None
    return os.path.join(os.path.expanduser(settings.virtualenv_path), "bin", "activate")


def program_flags(settings: Settings, name: str) -> List[Tuple[str, str]]:
    """The flags passed to the program after its command: paths of its own, and extra flags."""
    flags = []
    if settings.tb_dir_flag:
        flags.append((settings.tb_dir_flag, tensorboard_dir(settings, name)))
    if settings.save_path_flag:
        flags.append((settings.save_path_flag, checkpoint_path(settings, name)))
    runs_dir = settings.runs_dir.rstrip(os.sep) or os.sep
    for flag, value in settings.extra_flags:
        flags.append((flag, value.replace("<runs-dir>", runs_dir).replace("<run-name>", name)))
    return flags


# Words a shell runs itself (or that start a compound command): `exec` cannot run them.
_SHELL_OWN = frozenset(
    "! { } ( ) if then else elif fi do done case esac while until for in function select "
    ". : source alias bg break cd command continue eval exec exit export fg getopts hash jobs "
    "local read readonly return set shift times trap type ulimit umask unalias unset wait".split()
)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def exec_form(line: str) -> str:
    """``line`` with ``exec`` before its command when it is one simple command, so that
    the shell becomes the program: signals reach the program itself, and its exit status
    is the program's own. Anything else (``&&``, ``;``, ``|``, redirections, substitutions,
    shell builtins, several lines) is left as it is."""
    import io

    stream = io.StringIO(line)
    lexer = shlex.shlex(stream, posix=True, punctuation_chars="();<>|&\n")
    lexer.whitespace = " \t"  # a line break outside quotes ends a command, like ';'
    lexer.whitespace_split = True
    command, at = None, 0
    try:
        while True:
            token = lexer.get_token()
            if token is None:
                break
            if token and all(c in "();<>|&\n" for c in token):
                return line
            if command is None and _ASSIGNMENT.match(token):
                at = stream.tell()  # after the assignment and the blank that ends it
            elif command is None:
                command = token
    except ValueError:  # unbalanced quotes: the shell will say so
        return line
    if command is None or command in _SHELL_OWN or "$(" in line or "`" in line:
        return line
    return line[:at] + "exec " + line[at:]


def command_line(command: str, flags: Iterable[Tuple[str, str]]) -> str:
    """The command as typed, then each flag and value as a shell word of its own."""
    return command + "".join(f" {shlex.quote(flag)} {shlex.quote(value)}" for flag, value in flags)


class Environment:
    """What a new session must be given (and must drop) so the run sees this shell's
    environment: a tmux server keeps the one it was started with, and without this a run
    would use the PATH (conda, virtualenv) of whichever shell started the server."""

    def __init__(self, server_env: Mapping[str, str]) -> None:
        self.given: Dict[str, str] = {}
        self.dropped: List[str] = []
        if server_env:  # else no server yet: the one we start inherits our environment
            self.given = {k: v for k, v in os.environ.items() if k not in _OWN_ENV and server_env.get(k) != v}
            self.dropped = sorted(k for k in server_env if k not in os.environ and k not in _OWN_ENV and _SHELL_NAME.fullmatch(k))
        if sum(len(k) + len(v) + 2 for k, v in self.given.items()) > MAX_ENV_BYTES:
            raise RunsError(
                "your environment differs from the tmux server's by more than tmux can pass on; "
                "start runs from a fresh tmux server (tmux kill-server) or unset large variables"
            )


def session_fields(identity: Identity) -> Dict[str, Any]:
    return dict(zip(SESSION_FIELDS, identity))


def same_session(recorded: Mapping[str, Any], live: Identity) -> bool:
    """Whether a live session is the recorded one (entries of the original tool record none
    of these fields; hand edits may drop some)."""
    return all(recorded.get(field) in (None, value) for field, value in zip(SESSION_FIELDS, live))


def stop_session(name: str, entry: Mapping[str, Any], live: Mapping[str, Identity]) -> Optional[str]:
    """Kill the run's tmux session if it is still running here; returns a note if not done."""
    from runs_manager import tmux
    from runs_manager.output import printable

    session = entry.get("tmux_session")
    if not isinstance(session, str):
        session = names.session_name(name)
    shown = printable(session)
    recorded_host = entry.get("host")
    if recorded_host not in (None, host()):
        return f"session '{shown}' of host {printable(str(recorded_host))} was not stopped: stop it there" if session in live else None
    if session not in live:
        return None
    if not same_session(entry, live[session]):
        return f"session '{shown}' is not the one run '{printable(name)}' started; left alone"
    tmux.kill(live[session][0])
    return None

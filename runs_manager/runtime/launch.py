"""A run's command line and environment, and the identity of its tmux session."""
from __future__ import annotations

import os
import re
import shlex
from typing import AbstractSet, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from runs_manager import fsutil, processes
from runs_manager.runtime import runfiles
from runs_manager.errors import RunsError
from runs_manager.text.placeholders import ASSIGNMENT, SHELLS
from runs_manager.settings import Settings

# Set by tmux (or the shell) for each pane; passing ours on would mislead the program.
_OWN_ENV = {
    "TMUX", "TMUX_PANE", "TERM", "TERM_PROGRAM", "TERM_PROGRAM_VERSION",
    "PWD", "OLDPWD", "SHLVL", "_", "COLUMNS", "LINES",
}
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# tmux refuses a command message over 16 KB; keep the environment we pass well under it.
MAX_ENV_BYTES = 12_000


host = processes.host


def activate_script(settings: Settings) -> Optional[str]:
    if not settings.virtualenv_path:
        return None
    return os.path.join(os.path.expanduser(settings.virtualenv_path), "bin", "activate")


def program_line(settings: Settings, name: str, command: str) -> str:
    """The shell line that runs the program: the command with its placeholders filled,
    then the flags it did not place itself. Raises RunsError if the shell would not pass
    those flags to any program (after a comment, a trailing backslash, an open quote)."""
    from runs_manager.text import placeholders

    used = placeholders.check(command, placeholders.RESERVED)
    values = runfiles.paths(settings, name)
    flags = program_flags(settings, name, used, command)
    if flags:
        require_appendable(command, [flag for flag, _ in flags])
    return command_line(placeholders.substitute(command, values), flags)


def program_flags(settings: Settings, name: str, placed: AbstractSet[str] = frozenset(), command: str = "") -> List[Tuple[str, str]]:
    """The flags passed to the program after its command, with absolute paths (a command
    that changes directory still writes into the runs directory): paths of its own, unless
    the command placed them with placeholders or passes that flag itself, and extra flags."""
    given = passed_flags(command)
    paths = runfiles.paths(settings, name)
    flags = []
    if settings.tb_dir_flag and "tb_dir" not in placed and settings.tb_dir_flag not in given:
        flags.append((settings.tb_dir_flag, paths["tb_dir"]))
    if settings.save_path_flag and "save_path" not in placed and settings.save_path_flag not in given:
        flags.append((settings.save_path_flag, paths["save_path"]))
    for flag, value in settings.extra_flags:
        flags.append((flag, _extra_value(settings, name, value)))
    return flags


def passed_flags(command: str) -> AbstractSet[str]:
    """The options COMMAND passes itself (``--tb-dir /data/tb`` and ``--tb-dir=/data/tb``
    both pass ``--tb-dir``): runs does not append a second one, which would override it."""
    from runs_manager.text import shellwords

    if not command:
        return frozenset()
    return {word.split("=", 1)[0] for simple in shellwords.commands(command) for word in simple[1:] if word.startswith("-")}


def skipped_flags(settings: Settings, command: str, placed: AbstractSet[str] = frozenset()) -> List[str]:
    """The configured path flags that COMMAND passes itself, with a value of its own rather
    than a placeholder, so runs does not append them."""
    given = passed_flags(command)
    return [flag for key, flag in (("tb_dir", settings.tb_dir_flag), ("save_path", settings.save_path_flag))
            if flag and flag in given and key not in placed]


_SENTINEL = "runs-appended-flag"


def require_appendable(command: str, flags: Sequence[str]) -> None:
    """Refuse a COMMAND after which appended flags would never reach a program: the
    shell would read them as part of a comment, of a word a trailing backslash continues,
    of a quote left open, or of a here-document."""
    from runs_manager.text import shellwords
    from runs_manager.errors import RunsError

    words = [word for simple in shellwords.commands(command + " " + _SENTINEL) for word in simple]
    if words and words[-1] == _SENTINEL:
        return
    last = words[-1] if words else ""
    why = ("it ends with a backslash" if last.startswith(" ") else "a quote is left open" if _open_quote(command)
           else "it ends with a comment or a here-document")
    raise RunsError(f"the appended {', '.join(dict.fromkeys(flags))} would be lost: {why}; place them in COMMAND "
                    "with {tb_dir} and {save_path}, or end COMMAND where its program's words end")


def _open_quote(command: str) -> bool:
    try:
        shlex.split(command, comments=False)
    except ValueError:
        return True
    return False


def _extra_value(settings: Settings, name: str, template: str) -> str:
    """An extra flag's value: placeholders filled, and the original tool's spellings."""
    from runs_manager.text import placeholders

    runs_dir = os.path.abspath(settings.runs_dir)
    values = runfiles.paths(settings, name)
    placeholders.check(template, placeholders.RESERVED, "extra-flags")
    return "".join(
        values[piece.name] if isinstance(piece, placeholders.Placeholder)
        else piece.replace("<runs-dir>", runs_dir).replace("<run-name>", name)
        for piece in placeholders.parse(template, "extra-flags")
    )


# Words a shell runs itself (or that start a compound command): `exec` cannot run them.
_SHELL_OWN = frozenset(
    "! { } ( ) if then else elif fi do done case esac while until for in function select "
    ". : source alias bg break cd command continue eval exec exit export fg getopts hash jobs "
    "local read readonly return set shift times trap type ulimit umask unalias unset wait".split()
)
_OPERATORS = "();<>|&\n"
_CLOSERS = frozenset({"fi", "done", "esac", "}"})  # words after which nothing may follow


def _tokens(line: str) -> Iterator[Tuple[str, int]]:
    """The line's shell tokens (words unquoted, operators as they are) and where each ends,
    from the standard library's shell lexer; ValueError if a quote is left open."""
    import io

    stream = io.StringIO(line)
    lexer = shlex.shlex(stream, posix=True, punctuation_chars=_OPERATORS)
    lexer.whitespace = " \t"  # a line break outside quotes ends a command, like ';'
    lexer.whitespace_split = True
    while True:
        token = lexer.get_token()
        if token is None:
            return
        yield token, stream.tell()


def _is_operator(token: str) -> bool:
    return bool(token) and all(c in _OPERATORS for c in token)


def exec_form(line: str) -> str:
    """``line`` with ``exec`` before its command when it is one simple command, so that
    the shell becomes the program: signals reach the program itself, and its exit status
    is the program's own. Anything else (``&&``, ``;``, ``|``, redirections, substitutions,
    shell builtins, several lines) is left as it is."""
    command, at = None, 0
    try:
        for token, end in _tokens(line):
            if _is_operator(token):
                return line
            if command is None and ASSIGNMENT.match(token):
                at = end  # after the assignment and the blank that ends it
            elif command is None:
                command = token
    except ValueError:  # unbalanced quotes: the shell will say so
        return line
    if command is None or command in _SHELL_OWN or "$(" in line or "`" in line:
        return line
    return line[:at] + "exec " + line[at:]


def flags_note(command: str, flags: Sequence[str]) -> Optional[str]:
    """When ``command`` is compound, which part of it the appended ``flags`` reach."""
    try:
        tokens = [token for token, _ in _tokens(command)]
    except ValueError:
        return None
    if not tokens:
        return None
    appended = f"the appended {', '.join(dict.fromkeys(flags))}"
    segments: List[List[str]] = [[]]
    redirected = False
    target = False  # the word after a redirection is its file, not the program's
    for token in tokens:
        if _is_operator(token) and not token.startswith((">", "<")):
            segments.append([])
        elif _is_operator(token):
            redirected = target = True
            if segments[-1] and segments[-1][-1].isdigit():
                segments[-1].pop()  # the file descriptor of `2>`
        elif target:
            target = False
        else:
            segments[-1].append(token)
    words = segments[-1]
    heredoc = any(_is_operator(token) and "<<" in token for token in tokens)
    if not words or words[0] in _CLOSERS or heredoc:
        last = "a here-document" if heredoc else f"'{tokens[-1].strip() or 'a line break'}'"
        return f"{appended} do not reach the program: after {last} the shell rejects them or runs them as a command of their own; {_PLACE}"
    if len(segments) > 1:
        return f"{appended} go to '{shlex.join(words)}' only, the last command of COMMAND; {_PLACE}"
    program = [word for word in words if not ASSIGNMENT.match(word)]
    if program and os.path.basename(program[0]) in SHELLS and any(w.startswith("-") and "c" in w[1:] for w in program[1:]):
        return f"{appended} go to {program[0]} as $0, $1, ..., not to the command of its -c; {_PLACE}"
    if redirected:
        return f"{appended} go to '{shlex.join(program or words)}', past its redirections: that works, and placeholders ({{tb_dir}}, {{save_path}}) can place them elsewhere"
    return None


_PLACE = "to give them to another part, write them there with placeholders ({tb_dir}, {save_path}), or read $RUNS_TB_DIR and $RUNS_SAVE_PATH in the program"


def command_line(command: str, flags: Iterable[Tuple[str, str]]) -> str:
    """The command, then each flag and value as a shell word of its own."""
    return command + "".join(f" {shlex.quote(flag)} {shlex.quote(value)}" for flag, value in flags)


class Environment:
    """What a new session must be given (and must drop) so the run sees this shell's
    environment: a tmux server keeps the one it was started with, and without this a run
    would use the PATH (conda, virtualenv) of whichever shell started the server."""

    def __init__(self, server_env: Mapping[str, str], wanted: Optional[Mapping[str, str]] = None) -> None:
        """``wanted``: the environment the run must see (a queued run's, captured when it was
        recorded); this process's by default."""
        # Without a server yet, the one we start inherits this process's environment.
        base = server_env or (os.environ if wanted is not None else {})
        wanted = os.environ if wanted is None else wanted
        self.server = dict(server_env)
        self.given: Dict[str, str] = {}
        self.dropped: List[str] = []
        if base:
            self.given = {k: v for k, v in wanted.items() if k not in _OWN_ENV and base.get(k) != v}
            supervisor_sets = set(runfiles.ENVIRONMENT.values())  # the run's own, set by its supervisor
            self.dropped = sorted(k for k in base if k not in wanted and k not in _OWN_ENV and k not in supervisor_sets
                                  and _SHELL_NAME.fullmatch(k))
        if sum(len(k) + len(v) + 2 for k, v in self.given.items()) > MAX_ENV_BYTES:
            raise RunsError(
                "your environment differs from the tmux server's by more than tmux can pass on; "
                "start runs from a fresh tmux server (tmux kill-server) or unset large variables"
            )


def captured_environment() -> Dict[str, str]:
    """This shell's environment as a queued run keeps it: without runs' own variables (each
    run gets its own), tmux's, and CUDA_VISIBLE_DEVICES (set only from the run's own GPU)."""
    own = {"RUNS_NAME", "RUNS_TB_DIR", "RUNS_SAVE_PATH", "RUNS_DIR", "CUDA_VISIBLE_DEVICES"}
    return {k: v for k, v in os.environ.items() if k not in own and k not in _OWN_ENV and not k.startswith("TMUX")}


def store_environment(path: str, env: Mapping[str, str]) -> None:
    """Keep a queued run's environment beside it, readable by its owner alone (it may hold
    credentials the program needs); removed once the run has started."""
    import json

    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        with fsutil.naming(path):
            os.fchmod(fd, 0o600)
            data = json.dumps(dict(env)).encode()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def stored_environment(path: str) -> Optional[Dict[str, str]]:
    """A queued run's kept environment; None if there is none (a run queued by an older runs)."""
    import json
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            env = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        return None
    return env

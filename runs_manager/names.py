"""Run names: what is allowed, and the names derived from them (tmux sessions, unique names)."""
from __future__ import annotations

import re
from typing import Callable, Iterator, Optional

# ASCII only: names become directory names, tmux session names and shell words on every
# machine that shares the runs directory, whatever its locale.
_PART = re.compile(r"[A-Za-z0-9._+=@,-]+")
MAX_PART = 200  # leaves room under the 255-byte file-name limit for TensorFlow's .ckpt-N.index
MAX_NAME = 1000
RULE = (
    "a run name is one or more parts separated by '/', each made of ASCII letters, digits "
    f"and ._+=@,- (not '.' or '..', at most {MAX_PART} characters)"
)


def problem(name: str) -> Optional[str]:
    """Why ``name`` is not a valid run name, or None if it is."""
    if not name:
        return "the run name is empty"
    if len(name) > MAX_NAME:
        return f"the run name is longer than {MAX_NAME} characters"
    for part in name.split("/"):
        if not part:
            return f"'{_show(name)}' has an empty part (a leading, trailing or double '/')"
        if part in (".", ".."):
            return f"'{_show(name)}' has a part '{part}'"
        if len(part) > MAX_PART:
            return f"a part of the run name is longer than {MAX_PART} characters"
        if not _PART.fullmatch(part):
            bad = next(c for c in part if not _PART.fullmatch(c))
            return f"'{_show(name)}' contains {_show_char(bad)}"
    return None


def is_valid(name: str) -> bool:
    return problem(name) is None


def groups(name: str) -> Iterator[str]:
    """The groups a name belongs to: 'a/b/c' is in 'a' and 'a/b'."""
    parts = name.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])


def group_conflict(name: str, exists: Callable[[str], bool], first_in_group: Callable[[str], Optional[str]]) -> Optional[str]:
    """The existing run that ``name`` would nest under ('a' for 'a/b') or contain ('a/b' for 'a')."""
    for group in groups(name):
        if exists(group):
            return group
    return first_in_group(name)


def session_name(name: str) -> str:
    """The tmux session for a run.

    tmux rewrites '.' and ':' in session names. Valid names hold no ':', and '.' maps to
    '~', which they cannot hold either: one-to-one, so no two runs share a session.
    """
    return name.replace(".", "~")


SESSION_TRIES = 100


def session_names(name: str, project: str) -> Iterator[str]:
    """tmux sessions a run may have, best first: its own name, then (when the user's one
    tmux server has a session of that name already, such as another project's run
    'baseline') the name with its project's, then those numbered."""
    base = session_name(name)
    yield base
    # Only what tmux keeps as it is ('.' and ':' it rewrites; '\\' and control characters it escapes).
    own = f"{base}@{re.sub(r'[^A-Za-z0-9_+=@,-]', '_', project) or 'runs'}"
    yield own
    for n in range(2, SESSION_TRIES):
        yield f"{own}-{n}"


def unique_candidates(name: str, timestamp: int) -> Iterator[str]:
    """Names to try when ``name`` is taken: the original tool appended the Unix time."""
    yield f"{name}{timestamp}"
    n = 2
    while True:
        yield f"{name}{timestamp}-{n}"
        n += 1


def _show(text: str) -> str:
    return text.encode("unicode_escape").decode("ascii")


def _show_char(char: str) -> str:
    if char.isprintable() and not char.isspace():
        return f"'{char}'"
    return "a space" if char == " " else f"the character U+{ord(char):04X}"

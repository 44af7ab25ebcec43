"""Placeholders in a run's command and extra flags: ``{tb_dir}``, ``{save_path}``, ``{name}``,
``{runs_dir}`` (and, for sweeps, the grid's keys: one mechanism, one set of values).

``{{`` and ``}}`` are literal braces; the shell's own ``${VAR}`` passes through untouched.

In a command, each value is written so that the shell that runs the line reads exactly the
value, wherever the placeholder stands: quoted as a word of its own when unquoted, escaped
inside "..." or '...', and quoted twice when the word is the script of a nested shell
(``bash -c '... {tb_dir} ...'``). Where that cannot be promised (inside backquotes, a
here-document or ``${...}``, after a backslash) the command is refused: a silently wrong
argument costs a user a whole run.
"""
from __future__ import annotations

import os
import re
import shlex
from typing import List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple, Union

from runs_manager.errors import RunsError

RESERVED = ("name", "tb_dir", "save_path", "runs_dir")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash"})  # read a script given with -c
# Words that may stand before a shell without changing how it reads its script.
WRAPPERS = frozenset({"env", "exec", "nohup", "command", "time", "nice", "setsid", "stdbuf"})
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")  # a word that sets a variable for the command after it


class Placeholder(NamedTuple):
    name: str
    column: int  # 1-based, for messages


Piece = Union[str, Placeholder]


def parse(template: str, what: str = "the command") -> List[Piece]:
    """The template as literal text and placeholders; a brace that starts none is an error."""
    return [piece for piece, _ in _pieces(template, what)]


def _pieces(template: str, what: str) -> List[Tuple[Piece, str]]:
    """Each piece of the template with the text it was written as (``{{`` for ``{``)."""
    pieces: List[Tuple[Piece, str]] = []
    text: List[str] = []
    start, i, n = 0, 0, len(template)
    while i < n:
        c = template[i]
        if template.startswith("${", i):
            end = _parameter_end(template, i, what)
            text.append(template[i:end])
            i = end
        elif template.startswith("{{", i) or template.startswith("}}", i):
            text.append(c)
            i += 2
        elif c == "{":
            match = _IDENTIFIER.match(template, i + 1)
            if not match or not template.startswith("}", match.end()):
                raise RunsError(
                    f"'{{' at column {i + 1} of {what} starts no placeholder such as {{tb_dir}}; "
                    "write '{{' for a literal '{'"
                )
            if text:
                pieces.append(("".join(text), template[start:i]))
            pieces.append((Placeholder(match.group(), i + 1), template[i:match.end() + 1]))
            text = []
            i = start = match.end() + 1
        elif c == "}":
            raise RunsError(f"'}}' at column {i + 1} of {what} closes no placeholder; write '}}}}' for a literal '}}'")
        else:
            text.append(c)
            i += 1
    if text:
        pieces.append(("".join(text), template[start:]))
    return pieces


def _parameter_end(template: str, start: int, what: str) -> int:
    """The end of the shell parameter expansion ``${...}`` at ``start`` (nested ones included)."""
    depth, i = 0, start + 1
    while i < len(template):
        if template[i] == "{":
            depth += 1
        elif template[i] == "}":
            depth -= 1
            if depth == 0:
                inner = template[start + 2:i]
                if any(_IDENTIFIER.fullmatch(m) for m in re.findall(r"(?<![$])\{([^{}]*)\}", inner)):
                    raise RunsError(
                        f"a placeholder inside ${{...}} (column {start + 1} of {what}) cannot be quoted safely; "
                        "put it outside, or use the RUNS_* environment variables"
                    )
                return i + 1
        i += 1
    raise RunsError(f"'${{' at column {start + 1} of {what} is never closed")


def used(template: str, what: str = "the command") -> Set[str]:
    return {piece.name for piece in parse(template, what) if isinstance(piece, Placeholder)}


def check(template: str, known: Sequence[str], what: str = "the command") -> Set[str]:
    """The placeholders ``template`` uses; an error if one of them is not known."""
    names = used(template, what)
    unknown = sorted(names - set(known))
    if unknown:
        listed = ", ".join("{" + name + "}" for name in known)
        raise RunsError(f"unknown placeholder {{{unknown[0]}}} in {what}; known placeholders: {listed} (write {{{{ and }}}} for literal braces)")
    return names


def fill(template: str, values: Mapping[str, str], what: str = "the command") -> str:
    """The template with each placeholder replaced by its value as it is (no shell quoting)."""
    return "".join(piece if isinstance(piece, str) else values[piece.name] for piece in parse(template, what))


def substitute(command: str, values: Mapping[str, str]) -> str:
    """The command line with each placeholder written so the shell reads exactly its value."""
    out = ""
    for piece in parse(command):
        if isinstance(piece, str):
            out += piece
            continue
        refusal = _refusal(_scan(out))
        if refusal:
            raise RunsError(f"placeholder {{{piece.name}}} at column {piece.column} of the command is {refusal}")
        out += encode(values[piece.name], out)
    return out


def substitute_some(command: str, values: Mapping[str, str]) -> str:
    """The command as a template still: the placeholders of ``values`` (a sweep's grid keys)
    written as :func:`substitute` writes them, braces in them doubled, every other
    placeholder and literal kept as typed. Filling the rest later gives what substituting
    all at once would."""
    shell, out = "", ""
    for piece, source in _pieces(command, "the command"):
        if isinstance(piece, str):
            shell, out = shell + piece, out + source
            continue
        refusal = _refusal(_scan(shell))
        if refusal:
            raise RunsError(f"placeholder {{{piece.name}}} at column {piece.column} of the command is {refusal}")
        if piece.name in values:
            written = encode(values[piece.name], shell)
            shell, out = shell + written, out + written.replace("{", "{{").replace("}", "}}")
        else:  # a path placeholder, filled when the run starts: any plain word keeps the quoting state
            shell, out = shell + encode("x", shell), out + source
    return out


def encode(value: str, before: str) -> str:
    """``value`` as it must be written right after the shell text ``before``."""
    state = _scan(before)
    if state.script is not None:  # the word is a nested shell's script: quote for that shell first
        refusal = _refusal(_scan(state.script))
        if refusal:
            raise RunsError(f"a placeholder in the script of a nested shell is {refusal}")
        value = encode(value, state.script)
    if state.kind == "'":
        return value.replace("'", "'\\''")
    if state.kind == '"':
        return re.sub(r'([\\"$`])', r"\\\1", value)
    return shlex.quote(value)


def _refusal(state: _State) -> Optional[str]:
    if state.heredoc:
        return "after a here-document (<<), where it cannot be quoted safely; use the RUNS_* environment variables"
    if state.escaped:
        return "right after a backslash, which would change its first character"
    if state.kind == "`":
        return "inside backquotes, where quoting is unreliable; use $(...) instead"
    return None


class _Frame:
    """One level of shell quoting: unquoted text (the line or a $(...)), or a quote."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "top", "$(", "'", '"', "`", "${"
        self.words: List[str] = []  # of the current simple command (unquoted frames only)
        self.word: Optional[str] = None  # its word being read, as the shell will see it
        self.depth = 0  # open parentheses inside a $(...)
        self.redirect = False  # the next word is a redirection's target, not the command's


class _State(NamedTuple):
    kind: str
    escaped: bool
    heredoc: bool
    script: Optional[str]  # when the word being read is the script of `sh -c`: its text so far


def _scan(text: str) -> _State:
    """The shell's quoting state at the end of ``text`` (POSIX sh, as /bin/sh reads it)."""
    stack = [_Frame("top")]
    heredoc = escaped = False
    i, n = 0, len(text)
    while i < n:
        frame, c = stack[-1], text[i]
        unquoted = _unquoted(stack)
        if c == "\\":
            if i + 1 == n:
                escaped = True
            elif frame.kind in ("top", "$(") or (frame.kind == '"' and text[i + 1] in '$`"\\\n'):
                _add(unquoted, "" if text[i + 1] == "\n" else text[i + 1])
            elif frame.kind == "'":
                _add(unquoted, c)
                i -= 1  # a backslash is plain text in single quotes
            else:
                _add(unquoted, text[i:i + 2])
            i += 2
            continue
        if frame.kind == "'":
            if c == "'":
                stack.pop()
            else:
                _add(unquoted, c)
        elif frame.kind in ('"', "`", "${") and c == {'"': '"', "`": "`", "${": "}"}[frame.kind]:
            stack.pop()
        elif text.startswith("$(", i) or text.startswith("${", i):
            if frame.kind != "`":
                _add(unquoted, "")
                stack.append(_Frame(text[i:i + 2]))
            i += 1
        elif c in "'\"`" and frame.kind in ("top", "$(", "${") or (c == "`" and frame.kind == '"'):
            _add(unquoted, "")
            stack.append(_Frame(c))
        elif frame.kind in ("top", "$("):
            if c == "#" and frame.word is None:
                end = text.find("\n", i)
                i = n if end < 0 else end
                continue
            if text.startswith("<<", i):
                heredoc = True
            elif frame.kind == "$(" and c == ")" and frame.depth == 0:
                stack.pop()
                i += 1
                continue
            _operator(frame, c, text[i - 1] if i else "")
        elif frame.kind == '"':
            _add(unquoted, c)
        i += 1
    top = stack[-1]
    frame = _unquoted(stack)
    return _State(top.kind if top.kind != "$(" else "top", escaped, heredoc, _script(frame))


def _unquoted(stack: List[_Frame]) -> _Frame:
    return next(frame for frame in reversed(stack) if frame.kind in ("top", "$("))


def _add(frame: _Frame, chars: str) -> None:
    frame.word = (frame.word or "") + chars


def _operator(frame: _Frame, c: str, previous: str) -> None:
    """An unquoted character: part of a word, or a blank or operator that ends one."""
    if c not in " \t\n;&|()<>":
        _add(frame, c)
        return
    if c in "&|" and previous and previous in "<>":
        return  # `2>&1`, `>|`: still the redirection, not a new command
    if frame.word is not None:
        if not frame.redirect:
            frame.words.append(frame.word)
        frame.redirect = False
        frame.word = None
    if c in "<>":
        frame.redirect = True
    elif c in "\n;&|()":
        frame.words = []
        if frame.kind == "$(" and c in "()":
            frame.depth += 1 if c == "(" else -1


def _script(frame: _Frame) -> Optional[str]:
    """The script so far, if the word being read is the script operand of a shell's -c."""
    if frame.redirect:
        return None
    words = list(frame.words)
    while words and (words[0] in WRAPPERS or ASSIGNMENT.match(words[0])):
        words.pop(0)
    if not words or os.path.basename(words[0]) not in SHELLS:
        return None
    options = words[1:]
    if any(not option.startswith("-") for option in options):
        return None  # the script operand was already given
    if not any("c" in option[1:] for option in options if not option.startswith("--")):
        return None
    return frame.word or ""


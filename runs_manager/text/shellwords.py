"""Splitting a command line into words as POSIX sh does, without running anything: which
words each simple command gets, after quote removal, with redirections, comments and
here-documents skipped. A word whose value only the running shell knows (it holds ``$...``,
backquotes, a glob, ``~`` or a brace) is an :class:`Unknown`, and so is a word holding a
placeholder of runs' own (``{tb_dir}``): such words are never read as what they look like.
"""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

from runs_manager.errors import RunsError


class Unknown(str):
    """A word only the running shell knows; its text is the part of it before the first
    expansion (``--lr=`` of ``--lr=$LR``), which may still say which flag it sets."""


Word = str  # or Unknown
# A line without these is split by the shell at blanks alone: str.split() reads it (the common case, fast).
_SPECIAL = re.compile(r"[^ \t!%+,\-./0-9:=@A-Z\]^_a-z]")  # printable ASCII but quotes, $, globs, operators...
_ORDINARY = re.compile(r"[^ \t\n'\"\\$`<>(){}|;&#*?\[~\x00]+")
PLACEHOLDER = "\x00"  # stands for {tb_dir} and the others: runs fills them in
_NOT_A_HOME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*[.@=]")  # after ~: no user's home, so the shell keeps ~
_EXPANDS = re.compile(r"\$[A-Za-z0-9_@*#?$!{('-]")  # unquoted; $'...' is bash's quoting
_EXPANDS_QUOTED = re.compile(r"\$[A-Za-z0-9_@*#?$!{(-]")  # inside "...", where $' is plain text
_BACKQUOTED = re.compile(r"`(\\.|[^`\\])*`", re.DOTALL)
_ANSI_C = re.compile(r"\$'(\\.|[^'\\])*'", re.DOTALL)
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*|.)", re.DOTALL)
_REDIRECTION = re.compile(r"<<-|<<|<>|<&|>>|>&|>\||<|>")
_BRACKETS = re.compile(r"\\.|'[^']*'|\"(\\.|[^\"\\])*\"|[(){}]", re.DOTALL)  # quotes skipped


def commands(command: str) -> List[List[Word]]:
    """The words of each simple command in ``command`` (an Unknown for a word the shell expands)."""
    if not _SPECIAL.search(command):
        return [command.split()]
    if "{" in command or "}" in command:
        command = _without_placeholders(command)
    return _Splitter(command).split()


def _without_placeholders(command: str) -> str:
    from runs_manager.text import placeholders

    try:
        pieces = placeholders.parse(command)
    except RunsError:
        return command  # not a template after all (the original tool's entries): braces as typed
    return "".join(piece if isinstance(piece, str) else PLACEHOLDER for piece in pieces)


class _Splitter:
    """Words and simple commands, quotes removed; redirections, comments and here-documents
    skipped; any word holding an expansion marked unknown. Unbalanced quotes end the line."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.commands: List[List[Word]] = [[]]
        self.word: Optional[List[str]] = None
        self.unknown = False
        self.quoted = False  # the word has quotes or backslashes: `"2">` is no file descriptor
        self.prefix = ""  # of an unknown word: its text before the first expansion
        self.redirect: Optional[str] = None  # "<<", "<<-" or ">": the next word is its target
        self.heredocs: List[Tuple[str, bool]] = []  # delimiters whose bodies follow the next newline

    def split(self) -> List[List[Word]]:
        text, n = self.text, len(self.text)
        while self.i < n:
            match = _ORDINARY.match(text, self.i)
            if match:
                self._add(match.group())
                self.i = match.end()
                continue
            self._special(text[self.i])
        self._end_word()
        return [words for words in self.commands if words]

    def _special(self, c: str) -> None:
        text = self.text
        if c in " \t":
            self._end_word()
            self.i += 1
        elif c == "\n":
            self._end_word()
            self._end_command()
            self.i += 1
            self._skip_heredocs()
        elif c == "#" and self.word is None:
            end = text.find("\n", self.i)
            self.i = len(text) if end < 0 else end
        elif c == "#":
            self._add(c)
            self.i += 1
        elif c == "\\":
            following = text[self.i + 1:self.i + 2]
            if following != "\n":
                self._add(following or c)
                self.quoted = True
            self.i += 2
        elif c == "'":
            end = text.find("'", self.i + 1)
            if end < 0:
                self._unknown()
            self._add(text[self.i + 1:] if end < 0 else text[self.i + 1:end])
            self.quoted = True
            self.i = len(text) if end < 0 else end + 1
        elif c == '"':
            self._double_quoted()
        elif c in "$`":
            self._expansion()
        elif c in "<>":
            self._redirection()
        elif c in ";&|()":
            self._end_word()
            self._end_command()
            self.i += 1
        elif c == "~" and self.word is None and _NOT_A_HOME.match(text, self.i + 1):
            self._add(c)  # Hydra's ~key removal: no login name has a '.', '@' or '=' (the shell leaves it)
            self.i += 1
        else:  # a glob, ~, brace or placeholder: what the program gets is decided later
            self._unknown()
            self._add(c)
            self.i += 1

    def _unknown(self) -> None:
        if not self.unknown:
            self.prefix = "".join(self.word or ())
        self.unknown = True

    def _add(self, chars: str) -> None:
        if self.word is None:
            self.word = []
        self.word.append(chars)

    def _end_word(self) -> None:
        if self.word is None:
            return
        value = "".join(self.word)
        if self.redirect is not None:
            if self.redirect.startswith("<<"):
                self.heredocs.append((value, self.redirect == "<<-"))
            self.redirect = None
        elif not self.unknown and PLACEHOLDER in value:  # quoted: a value runs fills in, never the marker
            self.commands[-1].append(Unknown(value[:value.index(PLACEHOLDER)]))
        else:
            self.commands[-1].append(Unknown(self.prefix) if self.unknown else value)
        self.word, self.unknown, self.quoted = None, False, False

    def _end_command(self) -> None:
        if self.commands[-1]:
            self.commands.append([])

    def _double_quoted(self) -> None:
        text, i = self.text, self.i + 1
        self._add("")
        self.quoted = True
        while i < len(text) and text[i] != '"':
            c = text[i]
            if c == "\\" and text[i + 1:i + 2] in ('"', "\\", "$", "`", "\n"):
                self._add(text[i + 1] if text[i + 1] != "\n" else "")
                i += 2
            elif c in "$`" and self._expands(i, quoted=True):
                self._unknown()
                i = self._expansion_end(i)
            else:
                self._add(c)
                i += 1
        if i >= len(text):
            self._unknown()
        self.i = i + 1

    def _expands(self, i: int, quoted: bool = False) -> bool:
        """Whether the $ or ` at ``i`` starts an expansion ($'...' is bash's quoting, not in "...")."""
        return self.text[i] == "`" or bool((_EXPANDS_QUOTED if quoted else _EXPANDS).match(self.text, i))

    def _expansion(self) -> None:
        if not self._expands(self.i):
            self._add("$")
            self.i += 1
            return
        self._unknown()
        self._add("")
        self.i = self._expansion_end(self.i)

    def _expansion_end(self, i: int) -> int:
        """Where the expansion starting at ``i`` ($NAME, ${...}, $(...), `...`) ends."""
        text = self.text
        if text[i] == "`":
            match = _BACKQUOTED.match(text, i)
            return match.end() if match else len(text)
        opener = text[i + 1]
        if opener == "'":  # bash's $'...': one quoted word to dash and bash alike
            match = _ANSI_C.match(text, i)
            return match.end() if match else len(text)
        if opener not in "({":
            match = _PARAMETER.match(text, i)
            return match.end() if match else len(text)
        return _closing(text, i + 2, opener)

    def _redirection(self) -> None:
        text = self.text
        if self.word is not None and not self.unknown and not self.quoted and "".join(self.word).isdigit():
            self.word = None  # `2>`: the number names a file descriptor, it is not a word
        self._end_word()
        match = _REDIRECTION.match(text, self.i)
        assert match  # text[self.i] is < or >
        operator = match.group()
        self.redirect = operator if operator.startswith("<<") else ">"
        self.i = match.end()

    def _skip_heredocs(self) -> None:
        text = self.text
        for delimiter, tabs in self.heredocs:
            while self.i < len(text):
                end = text.find("\n", self.i)
                line = text[self.i:] if end < 0 else text[self.i:end]
                self.i = len(text) if end < 0 else end + 1
                if (line.lstrip("\t") if tabs else line) == delimiter:
                    break
        self.heredocs = []


def _closing(text: str, i: int, opener: str) -> int:
    """The index just past the bracket that closes the ``(`` or ``{`` opened before ``i``."""
    closer = ")" if opener == "(" else "}"
    depth = 1
    for match in _BRACKETS.finditer(text, i):
        token = match.group()
        if token == opener:
            depth += 1
        elif token == closer:
            depth -= 1
            if depth == 0:
                return match.end()
    return len(text)

"""A run's parameters: what was varied, read from its entry (nothing is stored in the YAML,
so entries of older versions and of the original tool have them too; the derived index
keeps each command's, read once, and rebuilds them when RULES changes).

A run's parameters are its sweep's ``grid`` values, then the flags of its recorded
``command`` as the shell splits it: ``--key value``, ``--key=value``, a bare ``--flag``
(true) and Hydra-style ``key=value``, ``+key=value`` and ``++key=value`` overrides; a flag
given twice keeps its last value, as argparse does. Short flags (``-k v``) stay out: whether
``v`` is their value only the program knows. A word whose value the shell decides only when
it runs (``$VAR``, ``$(...)``, a glob, ``~``) or that runs fills in (``{tb_dir}``) gives no
parameter, and neither do runs' own flags (``--tb-dir``, ``--save-path``, extra flags).
Values are typed as YAML 1.2 reads them: ``0.1`` a number, ``true`` a boolean.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Dict, FrozenSet, List, Optional, Set

from runs_manager.text import PARAMETER_RULES, shellwords
from runs_manager.text.placeholders import ASSIGNMENT, WRAPPERS
from runs_manager.text.shellwords import Unknown, Word

Raw = Any  # a parameter's text as the program receives it, or True for a bare --flag
RULES = PARAMETER_RULES  # the rules' version (text/__init__.py): change it with them
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# Hydra's keys may name a config group (hydra/job_logging) and a package (db@backup).
_HYDRA_KEY = r"[A-Za-z_][A-Za-z0-9_.@/-]*"
_OVERRIDE = re.compile(rf"\+{{0,2}}({_HYDRA_KEY})=(.*)", re.DOTALL)
_REMOVAL = re.compile(rf"~({_HYDRA_KEY})(=.*)?", re.DOTALL)
_NEGATIVE = re.compile(r"-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def parameters(entry: Any, own: FrozenSet[str] = frozenset()) -> Dict[str, Any]:
    """The run's parameters, typed, in the order they first appear: grid values first.
    ``own``: names of flags that are runs' own (:func:`own_flags`), never parameters."""
    found = raw_parameters(entry, own)
    for key, raw in found.items():
        found[key] = typed(raw)  # in place: a second dict per run costs a tenth of the time at 100,000 runs
    return found


def raw_parameters(entry: Any, own: FrozenSet[str] = frozenset()) -> Dict[str, Raw]:
    """The run's parameters as the program receives them (True for a bare ``--flag``)."""
    if not isinstance(entry, dict):
        return {}
    command = entry.get("command")
    return _combined(entry.get("grid"), command_parameters(command) if isinstance(command, str) else {}, own)


def parameters_from(entry: Any, kept: List[Any], own: FrozenSet[str] = frozenset(),
                    only: Optional[Set[str]] = None) -> Dict[str, Any]:
    """:func:`parameters`, from the command's parameters as :func:`kept_form` gave them
    (the index keeps them, so that no command is parsed again): the same, to the value;
    with ``only``, those of these names. A kept item of another form raises ValueError."""
    if not isinstance(entry, dict):
        return {}
    read: Dict[str, Raw] = {}
    values: Dict[str, Any] = {}
    for key, raw, value in kept:
        if type(key) is not str or not (type(raw) is str or raw is True):
            raise ValueError(f"a kept parameter of another form: {key!r}")
        read[key] = raw
        values[key] = value
    grid = entry.get("grid")
    if only is not None and not isinstance(grid, dict):  # the usual case: nothing to combine
        return {key: values[key] for key in only if key in values and key not in own}
    found = _combined(grid, read, own)
    grid_keys = {str(k) for k in grid} if isinstance(grid, dict) else set()
    for key, raw in found.items():
        found[key] = typed(raw) if key in grid_keys or key not in values else values[key]
    return found if only is None else {key: value for key, value in found.items() if key in only}


def kept_form(command: Any) -> List[Any]:
    """The command's parameters as the index keeps them: [key, raw, typed] in order."""
    if not isinstance(command, str):
        return []
    return [[key, raw, typed(raw)] for key, raw in command_parameters(command).items()]


def _combined(grid: Any, read: Dict[str, Raw], own: FrozenSet[str]) -> Dict[str, Raw]:
    """Grid values first, then the command's parameters but runs' own flags (whatever their
    syntax); a grid value wins over a flag of its name."""
    found: Dict[str, Raw] = {}
    if isinstance(grid, dict):
        found.update((str(k), v) for k, v in grid.items() if _is_key(str(k)) and isinstance(v, (str, int, float, bool)))
    if own:
        read = {key: raw for key, raw in read.items() if key not in own}
    for key in _filled_in(found, read):
        del found[key]
    for key, raw in read.items():
        if key not in found:  # a grid value says exactly what was varied: it wins
            found[key] = raw
    return found


def _filled_in(grid: Dict[str, Raw], read: Dict[str, Raw]) -> List[str]:
    """Grid keys whose value is the whole value of one parameter of another name in the
    command (``db.user={user}``): the command's name for it is the one shown, once. (The
    entry keeps the command with the values written in, so the value says which.)"""
    gone = []
    for key, value in grid.items():
        if key not in read:
            holders = [name for name, raw in read.items() if raw is not True and raw == str(value)]
            if len(holders) == 1 and holders[0] not in grid:
                gone.append(key)
    return gone


def own_flags(settings: Any) -> FrozenSet[str]:
    """The names of the flags runs adds to every command line (``tb-dir``, ...)."""
    flags = [settings.tb_dir_flag, settings.save_path_flag] + [flag for flag, _ in settings.extra_flags]
    return frozenset(flag.lstrip("-") for flag in flags if flag)


def command_parameters(command: str, own: FrozenSet[str] = frozenset()) -> Dict[str, Raw]:
    """The flags and overrides of a shell command line, the last of each winning; not
    runs' own flags (``own``)."""
    found: Dict[str, Raw] = {}
    for words in shellwords.commands(command):
        _read(words, found)
    return {key: raw for key, raw in found.items() if key not in own} if own else found


def _read(words: List[Word], found: Dict[str, Raw]) -> None:
    """The parameters of one simple command's words into ``found``."""
    i, n = _program(words) + 1, len(words)
    options = True
    while i < n:
        word = words[i]
        i += 1
        if type(word) is Unknown:
            _forget(word, found)
            continue
        if options and word[:2] == "--":
            if word == "--":
                options = False
                continue
            key, equals, value = word[2:].partition("=")
            if not _is_key(key):
                continue
            if not equals:
                following = words[i] if i < n else "--"
                # A key=value word after a bare flag is an override of its own, as Hydra programs mean it.
                takes = type(following) is Unknown or not (
                    following[:1] == "-" and _flag_like(following) or "=" in following and _OVERRIDE.fullmatch(following))
                value = following if takes else True
                i += takes
            if type(value) is Unknown:
                found.pop(key, None)  # its last value is the shell's to decide
            else:
                found[key] = value  # a key given again keeps the place where it first appeared
        elif word[:1] == "~":
            match = _REMOVAL.fullmatch(word)
            if match:  # Hydra's ~key: the key is gone from the config
                found.pop(match.group(1), None)
        elif "=" in word and word[0] != "-":
            match = _OVERRIDE.fullmatch(word)
            if match:
                found[match.group(1)] = _unquoted(match.group(2))


def _unquoted(value: str) -> str:
    """An override's value as Hydra's grammar reads it: quotes around the whole value go."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _program(words: List[Word]) -> int:
    """Where the program is among the words: after assignments, and wrappers with their options."""
    i, wrapped = 0, False
    while i < len(words) and type(words[i]) is not Unknown:
        word = words[i]
        if word in WRAPPERS:  # words that stand before the program without being its arguments
            wrapped = True
        elif not ("=" in word and ASSIGNMENT.match(word) or wrapped and word[:1] == "-"):
            break
        i += 1
    return i


def _forget(word: Unknown, found: Dict[str, Raw]) -> None:
    """A word the shell expands may set the flags its literal start names: those are unknown now."""
    text = word[2:] if word[:2] == "--" else word.lstrip("+") if "=" in word and word[:1] != "-" else None
    if text is None:
        return
    key, equals, _ = text.partition("=")
    for name in [name for name in found if (name == key if equals else name.startswith(key))]:
        del found[name]


@functools.lru_cache(maxsize=4096)  # the same few names in every run
def _is_key(name: str) -> bool:
    return _KEY.fullmatch(name) is not None


def _flag_like(word: str) -> bool:
    """Whether argparse would take ``word`` for an option rather than a value."""
    return word.startswith("-") and len(word) > 1 and " " not in word and not _NEGATIVE.fullmatch(word)


# Values as YAML 1.2 reads them (its core schema) -----------------------------------------

_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_SPECIAL_VALUES = {
    "true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False,
    "null": None, "Null": None, "NULL": None, "~": None,
    ".inf": float("inf"), ".Inf": float("inf"), ".INF": float("inf"),
    "+.inf": float("inf"), "+.Inf": float("inf"), "+.INF": float("inf"),
    "-.inf": float("-inf"), "-.Inf": float("-inf"), "-.INF": float("-inf"),
    ".nan": float("nan"), ".NaN": float("nan"), ".NAN": float("nan"),
}


def typed(raw: Raw) -> Any:
    """``raw`` as YAML 1.2 reads a plain scalar: a number, a boolean, null, or the text."""
    if not isinstance(raw, str):
        return raw
    if raw.isdigit() and raw.isascii() and len(raw) < 400:  # the commonest: a seed, a count
        return int(raw)
    return _typed(raw)


@functools.lru_cache(maxsize=4096)  # a sweep's values repeat across its runs
def _typed(raw: str) -> Any:
    if raw in _SPECIAL_VALUES:
        return _SPECIAL_VALUES[raw]
    if len(raw) > 400:  # no sensible number is this long (and int() refuses 4,300 digits)
        return raw
    if _INT.fullmatch(raw):
        return int(raw, 0) if raw[:2] in ("0x", "0o") else int(raw)
    if _FLOAT.fullmatch(raw):
        return float(raw)
    return raw


def same(a: Any, b: Any) -> bool:
    """Whether two typed values are the same parameter value (1, 1.0 and true are not)."""
    return type(a) is type(b) and repr(a) == repr(b)

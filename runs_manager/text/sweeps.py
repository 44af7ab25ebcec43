"""Sweeps: a grid of values (``--grid lr=0.1,0.01 --grid seed=1,2``) made into one run per
combination, each with its own name, command and description.

The grid's keys are placeholders like ``{tb_dir}`` (one mechanism: placeholders.py). A
member's command is the sweep's with the grid values written in, quoted as shell words,
and its path placeholders kept as typed, so that `runs reproduce` of a member prints a
plain run's command. Everything is checked before anything is recorded.
"""
from __future__ import annotations

import itertools
import re
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

from runs_manager import names
from runs_manager.text import placeholders
from runs_manager.errors import RunsError
from runs_manager.output import printable

MAX_MEMBERS = 10_000  # more needs --yes: a typo (`--grid seed=$(seq 100000)`) costs a machine
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Grid = List[Tuple[str, List[str]]]  # (key, values) in the order given


class Member(NamedTuple):
    name: str
    command: str  # the grid values written in; {tb_dir} and the others still as typed
    description: str
    values: Dict[str, str]


def parse_grid(options: Optional[Sequence[str]], grid_file: Optional[str]) -> Grid:
    """The grid of ``--grid KEY=V1,V2`` options and of a ``--grid-file``, checked."""
    grid: Grid = []
    for option in options or ():
        key, equals, text = option.partition("=")
        if not equals:
            raise RunsError(f"--grid {printable(option)}: write KEY=VALUE1,VALUE2,... such as --grid lr=0.1,0.01")
        values = text.split(",")
        if any(not value for value in values):
            raise RunsError(f"--grid {printable(option)} has an empty value; values are separated by single commas "
                            "(use --grid-file for values that contain commas)")
        grid.append((key.strip(), values))
    if grid_file is not None:
        grid += _read_grid_file(grid_file)
    seen: Set[str] = set()
    for key, values in grid:
        _check_key(key, seen)
        seen.add(key)
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise RunsError(f"grid key '{key}' has the value '{printable(repeated[0])}' twice; each run of a sweep must differ")
        for value in values:
            if "${" in value:
                raise RunsError(f"grid value '{printable(value)}' of '{key}' contains '${{', which cannot be written "
                                "into a command safely; pass it through the environment instead")
    return grid


def _check_key(key: str, seen: Any) -> None:
    if not _KEY.fullmatch(key):
        raise RunsError(f"grid key '{printable(key)}' is not a name of letters, digits and _ (it becomes the placeholder {{KEY}})")
    if key in placeholders.RESERVED:
        raise RunsError(f"grid key '{key}' is reserved: {{{key}}} is the run's own ({', '.join(placeholders.RESERVED)} are)")
    if key in seen:
        raise RunsError(f"grid key '{key}' is given twice")


def _read_grid_file(path: str) -> Grid:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise RunsError(f"cannot read --grid-file {printable(path)}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise RunsError(f"--grid-file {printable(path)} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict) or not data:
        raise RunsError(f"--grid-file {printable(path)} must hold a mapping of keys to lists of values, such as 'lr: [0.1, 0.01]'")
    grid: Grid = []
    for key, values in data.items():
        if not isinstance(values, list):
            values = [values]
        if not values:
            raise RunsError(f"grid key '{printable(str(key))}' of {printable(path)} has no values")
        texts = [_text(value) for value in values]
        if any(text is None or text == "" for text in texts):
            raise RunsError(f"grid key '{printable(str(key))}' of {printable(path)} has an empty or non-scalar value")
        grid.append((str(key), [text for text in texts if text is not None]))
    return grid


def _text(value: Any) -> Optional[str]:
    """A YAML scalar as the text a command gets: true/false as YAML writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return None


def size(grid: Grid) -> int:
    count = 1
    for _, values in grid:
        count *= len(values)
    return count


def members(name: str, command: str, description: str, grid: Grid) -> List[Member]:
    """One member per combination of the grid's values, in the order given (the last key
    varies fastest); errors for a key the command does not use, and for names that are
    invalid or the same."""
    keys = [key for key, _ in grid]
    used = placeholders.check(command, [*placeholders.RESERVED, *keys])
    unused = [key for key in keys if key not in used]
    if unused:
        raise RunsError(f"grid key '{unused[0]}' is not used in COMMAND: write {{{unused[0]}}} where its value goes "
                        "(otherwise its runs would all be the same)")
    in_name = placeholders.check(name, keys, "NAME")
    placeholders.check(description, [*keys, "name"], "the description")
    result: List[Member] = []
    taken: Dict[str, Dict[str, str]] = {}
    for combination in itertools.product(*(values for _, values in grid)):
        values = dict(zip(keys, combination))
        member = placeholders.fill(name, values, "NAME") if in_name else f"{name}/{_member_part(name, values)}"
        problem = names.problem(member)
        if problem:
            raise RunsError(f"the sweep's run name '{printable(member)}' is invalid: {problem}; {names.RULE}. "
                            "Name the runs with placeholders instead, such as NAME 'lr{lr}'")
        if member in taken:
            raise RunsError(f"the sweep names two runs '{member}' ({_label(taken[member])} and {_label(values)}); "
                            "put every grid key in NAME, or leave its placeholders out")
        taken[member] = values
        text = placeholders.fill(description, {**values, "name": member}, "the description")
        result.append(Member(member, placeholders.substitute_some(command, values), text, values))
    return result


# A default member name holds only what programs take in a path and in their key=value
# grammars: Hydra's overrides (+tb_dir={tb_dir}) and TensorBoard's --logdir_spec split at
# '=' and ','. So 'sw/db-mysql_user-root', not 'sw/db=mysql,user=root'.
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9._-]+")


def _member_part(sweep: str, values: Dict[str, str]) -> str:
    """A member's default name below the sweep's: KEY-VALUE for each key, joined by '_'."""
    for key, value in values.items():
        if not _PLAIN_VALUE.fullmatch(value):
            bad = next(c for c in value if not _PLAIN_VALUE.fullmatch(c))
            raise RunsError(f"grid value '{printable(value)}' of '{key}' holds {printable(repr(bad))}, which a default run "
                            "name leaves out (names hold letters, digits and ._- so that programs' key=value grammars "
                            "and paths take them): name the runs with placeholders instead, such as NAME "
                            f"'{printable(sweep)}/{key}{{{key}}}'")
    return "_".join(f"{key}-{value}" for key, value in values.items())


def _label(values: Dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in values.items())


def gpu_key(gpu: str) -> str:
    """One spelling per GPU: an index as a number (00 is 0), a UUID as written."""
    return str(int(gpu)) if gpu.isascii() and gpu.isdigit() else gpu


def parse_gpus(text: Optional[str]) -> Optional[List[str]]:
    """The GPUs of ``--gpus 0,1,2,3``: device numbers (or UUIDs), each once."""
    if text is None:
        return None
    gpus = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not gpu for gpu in gpus):
        raise RunsError(f"--gpus {printable(text)}: give GPU numbers separated by commas, such as --gpus 0,1,2,3")
    for gpu in gpus:
        if not re.fullmatch(r"\d+|(GPU|MIG)-[A-Za-z0-9-]+", gpu):
            raise RunsError(f"--gpus: '{printable(gpu)}' is not a GPU number (0, 1, ...) or a GPU UUID (GPU-...)")
    gpus = [gpu_key(gpu) for gpu in gpus]
    if len(set(gpus)) != len(gpus):
        raise RunsError(f"--gpus {printable(text)} names a GPU twice")
    return gpus

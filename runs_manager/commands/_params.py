"""`runs table`'s parameters as columns: which columns name one, filling them, and the
columns of --params (those whose values differ among the runs shown)."""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, Dict, List, Optional, Set, Tuple

    from runs_manager.settings import Settings
    from runs_manager.store.index import Index

PARAM = "param:"  # a column that is a run's parameter, whatever the entries' keys


def parameter_of(key: str) -> str:
    """The parameter a column names: param:KEY's KEY, or the key itself."""
    return key[len(PARAM):] if key.startswith(PARAM) else key


def names(index: Index, names: Optional[List[str]], own: Any) -> List[str]:
    """Every parameter of the runs shown, for the suggestions of an unknown column (read
    again: without --params the rows hold only those asked for)."""
    found: Dict[str, None] = {}
    for _, entry, kept in index.each_entry(names, kept=True):
        found.update(dict.fromkeys(_parameters(entry, kept, own)))
    return list(found)


def _parameters(entry: Any, kept: List[Any], own: Any, only: Optional[Set[str]] = None) -> Dict[str, Any]:
    """A run's parameters from what the index keeps; a kept item of another form (a damaged
    or hand-made index) makes the index be rebuilt."""
    from runs_manager.store.rows import IndexUnusable
    from runs_manager.text import params

    try:
        return params.parameters_from(entry, kept, own, only)
    except (ValueError, TypeError):
        raise IndexUnusable("a row's kept parameters are not what runs keeps") from None


def resolve(rows: List[List[Any]], keys: List[str], maybe: List[str], seen: Set[str], at: int) -> Set[str]:
    """Fill the columns that name a parameter (param:KEY, or a KEY no entry shown has but a
    run's parameters do) from each row's parameters at ``at``; the keys so filled."""
    found: Set[str] = set()
    for key in maybe:
        parameter = parameter_of(key)
        if key == parameter and key in seen:
            continue  # an entry key wins: param:KEY asks for the parameter
        if not any(parameter in row[at] for row in rows):
            continue  # unknown: check_keys says so, with the parameters among its suggestions
        found.add(key)
        position = keys.index(key)
        for row in rows:
            row[position] = row[at].get(parameter)
    return found


def columns(settings: Settings, rows: List[List[Any]], at: int, asked: Set[str], taken: Set[str],
                       every: bool) -> List[Tuple[str, str]]:
    """(header, parameter) for --params: those not already ``asked`` for whose values differ
    among ``rows`` (all with ``every``, or when there is one run), in the order they first
    appear; a header ``taken`` by an entry key or column is written param:KEY. The constant
    ones are named on stderr."""
    import sys

    from runs_manager import tabular
    from runs_manager.text import params
    from runs_manager.output import cell, printable

    width = settings.cut_width
    order = list(dict.fromkeys(key for row in rows for key in row[at]))
    order = [key for key in order if key not in asked]
    absent = object()
    columns, constant = [], []
    for key in order:
        first = rows[0][at].get(key, absent)
        if every or len(rows) < 2 or any(not params.same(row[at].get(key, absent), first) for row in rows[1:]):
            columns.append((PARAM + key if key in taken or key in tabular.DERIVED or key in tabular.RUNS_KEYS else key, key))
        else:
            constant.append(f"{printable(key)}={'null' if first is None else cell(first, width)}")
    if constant:
        print(f"runs: note: parameters the same in every run shown, left out: {', '.join(constant)} "
              "(--params all shows them)", file=sys.stderr)
    return columns

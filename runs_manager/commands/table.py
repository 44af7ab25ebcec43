"""`runs table`: the runs as a table, oldest first, or sorted; chosen columns; human or machine formats."""
from __future__ import annotations

from runs_manager import flags
from runs_manager.commands import _params
from runs_manager.errors import RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

    from runs_manager.store.index import Index
    from runs_manager.settings import Settings

NAME = "table"
HELP = "show runs as a table"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(NAME, help=HELP, description="Show runs as a table, oldest first.")
    flags.add_selection(parser)
    parser.add_argument("--columns", "-c", action="append", metavar="COLUMNS",
                        help="columns to show, separated by commas: name, status, any key of the entries or a "
                        "run's parameter such as lr (param:lr if an entry key has the same name) "
                        "(default name,status,command,commit,datetime,description,host)")
    parser.add_argument("--sort", action="append", metavar="KEY",
                        help="sort by KEY, a column name (repeat it for ties); -KEY sorts descending. Times sort "
                        "as times, numbers as numbers, missing values last")
    parser.add_argument("--metrics", "-m", action="append", metavar="TAGS",
                        help="columns of TensorBoard scalars, separated by commas: TAG (its last value) or "
                        "TAG:AGGREGATE, AGGREGATE one of last, min, max, mean, step (the last step), count: "
                        "--metrics loss,val/acc:max (needs pip install 'runs-manager[metrics]')")
    parser.add_argument("--params", nargs="?", const="differing", metavar="all",
                        help="a column for each parameter (grid value, --flag or key=value override of the "
                        "command) whose value differs among the runs shown; --params all: every parameter. "
                        "Without --columns the table is then name, status, the parameters and any --metrics")
    parser.add_argument("--reverse", "-r", action="store_true", help="descending (newest first without --sort)")
    flags.add_table_format(parser)
    flags.add(parser, "runs-dir", "db-filename", "column-width")
    parse = parser.parse_args
    # `--sort -datetime`: argparse would take -datetime for an option.
    parser.parse_args = lambda args=None, namespace=None: parse(_join_sort(args), namespace)
    parser.set_defaults(run=lambda args, settings: table(
        settings, args.pattern, args.status, args.columns, args.sort, args.reverse, args.format, args.metrics,
        args.params))


SHORT = ("-p", "-s", "-c", "-m", "-r", "-f", "-h")  # `--sort -p X` lacks a key: argparse says so


def _join_sort(args: Optional[Sequence[str]]) -> Optional[List[str]]:
    if args is None:
        return None
    joined: List[str] = []
    i = 0
    while i < len(args):
        if args[i] == "--":
            return joined + list(args[i:])
        following = args[i + 1] if i + 1 < len(args) else ""
        if args[i] == "--sort" and following.startswith("-") and not following.startswith("--") and following not in SHORT:
            joined.append("--sort=" + following)
            i += 2
            continue
        joined.append(args[i])
        i += 1
    return joined


class _Plan:
    """A table's arguments, every one checked before the database is read. (A plain class:
    typing's NamedTuple would cost `runs --help` its start-up time.)"""

    def __init__(self, tablefmt: str, shown: List[str], order: List[Tuple[str, bool]], wanted: Optional[Set[str]],
                 specs: List[Any], keys: List[str], maybe: List[str], with_params: bool, needs_status: bool) -> None:
        self.tablefmt = tablefmt
        self.shown = shown  # the columns asked for
        self.order = order  # sort keys, descending or not
        self.wanted = wanted  # statuses, or None for all
        self.specs = specs  # --metrics columns
        self.metric_columns = [spec.column for spec in specs]
        self.keys = keys  # shown, then metric columns, then sort keys not shown
        self.maybe = maybe  # keys that may name a parameter
        self.with_params = with_params  # each row carries its run's parameters, at len(keys)
        self.needs_status = needs_status  # each row carries its status, last
        # Without --params only the parameters the maybe keys name are needed (cheaper at 100,000 runs).
        self.only: Optional[Set[str]] = None
        self.chosen = False  # the columns are --columns': fitting a terminal leaves none out


def table(
    settings: Settings,
    pattern: Optional[str],
    statuses: Optional[List[str]] = None,
    columns: Optional[List[str]] = None,
    sort: Optional[List[str]] = None,
    reverse: bool = False,
    fmt: str = "plain",
    metric_tags: Optional[List[str]] = None,
    params_shown: Optional[str] = None,
) -> int:
    from runs_manager.runtime import runs

    plan = _plan(pattern, statuses, columns, sort, reverse, fmt, metric_tags, params_shown)
    rows, pending, who, seen, found = _read(settings, plan, pattern)
    rows, who, lost = _with_statuses(settings, plan, rows, pending, who)
    if plan.specs:
        _fill_metrics(settings, rows, who, plan.specs, [plan.keys.index(spec.column) for spec in plan.specs],
                      pattern is None and plan.wanted is None)
    _write(settings, plan, rows, found, seen, params_shown, reverse)
    for name, reason in lost.items():
        import sys

        from runs_manager.output import printable

        print(f"runs: note: run '{printable(name)}' is lost: {reason}", file=sys.stderr)
    runs.note_stalled(settings)
    return 0


def _plan(pattern: Optional[str], statuses: Optional[List[str]], columns: Optional[List[str]], sort: Optional[List[str]],
          reverse: bool, fmt: str, metric_tags: Optional[List[str]], params_shown: Optional[str]) -> _Plan:
    from runs_manager import patterns, tabular
    from runs_manager.output import printable
    from runs_manager.runtime import status

    tablefmt = tabular.check_format(fmt)
    if params_shown not in (None, "differing", "all"):
        raise RunsError(f"--params takes 'all' or nothing, not '{printable(params_shown)}'")
    shown = tabular.parse_columns(columns) if columns is not None or params_shown is None else ["name", "status"]
    order = tabular.parse_sort(sort, reverse)
    wanted = status.parse(statuses)
    if pattern is not None:
        patterns.compile_pattern(pattern)
    specs: List[Any] = []
    if metric_tags is not None:
        from runs_manager import metrics  # only here: it reads TensorBoard's event files

        specs = metrics.parse_specs(metric_tags)
        for spec in specs:
            if spec.column in shown:
                raise RunsError(f"'{printable(spec.column)}' is given both in --columns and in --metrics")
        metrics.require()
    metric_columns = [spec.column for spec in specs]
    keys = shown + metric_columns
    keys += [key for key, _ in order if key not in keys]
    # Keys that may name a parameter: read each run's parameters only if there is one.
    maybe = [key for key in keys if key not in metric_columns and key not in tabular.DERIVED and key not in tabular.RUNS_KEYS]
    plan = _Plan(tablefmt, shown, order, wanted, specs, keys, maybe, bool(maybe) or params_shown is not None,
                 "status" in keys or wanted is not None)
    if params_shown is None:
        plan.only = {_params.parameter_of(key) for key in maybe}
    plan.chosen = columns is not None
    return plan


def _read(settings: Settings, plan: _Plan, pattern: Optional[str]) -> Any:
    """Each run's row (a value per key, then its parameters and status if needed), the runs
    whose status their launchers must tell, each row's run for --metrics, the entries' keys,
    and the keys found to name parameters; every key is checked before anything is printed."""
    from runs_manager import outcome, patterns, tabular
    from runs_manager.runtime import runs
    from runs_manager.text import params

    from runs_manager.store.rows import IndexUnusable

    own = params.own_flags(settings)
    from_kept = params.parameters_from
    keys, metric_columns = plan.keys, plan.metric_columns
    position = keys.index("status") if "status" in keys else None

    def query(index: Index) -> Any:
        names = patterns.matching(pattern, index.names()) if pattern is not None else None
        rows: List[List[Any]] = []
        pending: List[Any] = []
        who: List[Tuple[str, bool]] = []  # with --metrics: each row's run, and whether it has ended
        seen: Set[str] = set()
        for name, entry, *kept in index.each_entry(names, outcome.has_outcome_for(plan.wanted), kept=plan.with_params):
            row = [None if key in metric_columns else tabular.value_of(name, entry, key) for key in keys]
            state = outcome.outcome(entry) if (plan.specs or plan.needs_status) and isinstance(entry, dict) else None
            if plan.specs:
                who.append((name, state is not None))
            if plan.with_params:
                seen.update(entry if isinstance(entry, dict) else ())
                try:  # read once, when the index took the entry in
                    row.append(from_kept(entry, kept[0], own, plan.only))  # at len(keys), before the status
                except (ValueError, TypeError):  # a kept item of another form: a damaged or hand-made index
                    raise IndexUnusable(f"the kept parameters of run {name!r} are not what runs keeps") from None
            if plan.needs_status:
                if state is None:
                    pending.append((name, entry if isinstance(entry, dict) else {}, row))
                elif position is not None:
                    row[position] = state
                row.append(state)  # the status, last, for --status
            rows.append(row)
        found = _params.resolve(rows, keys, plan.maybe, seen, len(keys))
        asked = [(key, "--columns") for key in plan.shown if key in plan.maybe and key not in found]
        asked += [(key, "--sort") for key, _ in plan.order if key in plan.maybe and key not in found]
        tabular.check_keys(asked, seen, index.keys, lambda: _params.names(index, names, own))
        return rows, pending, who, seen, found

    return runs.database(settings).read(query)


def _with_statuses(settings: Settings, plan: _Plan, rows: List[List[Any]], pending: List[Any],
                   who: List[Tuple[str, bool]]) -> Tuple[List[List[Any]], List[Tuple[str, bool]], Dict[str, str]]:
    """The statuses of runs without an outcome (their launchers say, all at once), then only
    the rows --status wants; and why runs are lost, where known."""
    from runs_manager.runtime import status

    lost: Dict[str, str] = {}
    if pending:
        derived = status.derive(settings, [(name, entry) for name, entry, _ in pending], why=lost)
        for name, _, row in pending:
            row[-1] = derived[name]
            if "status" in plan.keys:
                row[plan.keys.index("status")] = derived[name]
    if plan.wanted is not None:
        if plan.specs:
            who = [run for run, row in zip(who, rows) if row[-1] in plan.wanted]
        rows = [row for row in rows if row[-1] in plan.wanted]
    return rows, who, lost


def _write(settings: Settings, plan: _Plan, rows: List[List[Any]], found: Set[str], seen: Set[str],
           params_shown: Optional[str], reverse: bool) -> None:
    from runs_manager import tabular

    shown, keys, metric_columns = plan.shown, plan.keys, plan.metric_columns
    added: List[Tuple[str, str]] = []  # (header, parameter) of the --params columns
    if params_shown is not None:
        asked = {_params.parameter_of(key) for key in found if key in shown}
        added = _params.columns(settings, rows, len(keys), asked, seen | set(shown) | set(metric_columns),
                                   params_shown == "all")
    if plan.order:
        rows = tabular.sort_rows(rows, [(keys.index(key), descending) for key, descending in plan.order])
    elif reverse:
        rows.reverse()
    from runs_manager.fit import terminal_columns

    # The default table on a terminal, with no width set, fits it; anywhere else cells are cut at a fixed width.
    fit = terminal_columns() if settings.column_width is None and plan.tablefmt == "simple" else None
    n, m, at = len(shown), len(shown) + len(metric_columns), len(keys)  # keys: shown, metrics, sort keys
    if added:  # the --params columns go between the columns asked for and the metrics
        out = (row[:n] + [row[at].get(p) for _, p in added] + row[n:m] for row in rows)
    else:
        out = (row[:m] for row in rows)
    tabular.write(out, shown + [header for header, _ in added] + metric_columns, plan.tablefmt, settings.cut_width, fit,
                  chosen=plan.chosen)


def _fill_metrics(settings: Settings, rows: List[List[Any]], who: List[Tuple[str, bool]], specs: List[Any],
                  positions: List[int], every_run: bool) -> None:
    """Put each run's scalars in the --metrics columns; say which tags no run shown has."""
    import sys

    from runs_manager import metrics
    from runs_manager.output import printable

    found = metrics.collect(settings, who, every_run)
    for row, (name, _) in zip(rows, who):
        scalars = found[name].scalars
        for spec, position in zip(specs, positions):
            tag = scalars.get(spec.tag)
            row[position] = None if tag is None else tag.get(spec.aggregate)
    for spec, position in zip(specs, positions):
        if rows and all(row[position] is None for row in rows):
            kinds = {found[name].others[spec.tag] for name, _ in who if spec.tag in found[name].others}
            holds = f" (it holds {', '.join(sorted(kinds))}, not scalars)" if kinds else ""
            print(f"runs: note: no run shown has a scalar '{printable(spec.tag)}'{holds}; "
                  "'runs metrics NAME' lists a run's tags", file=sys.stderr)

"""`runs table`: the runs as a table, oldest first, or sorted; chosen columns; human or machine formats."""
from __future__ import annotations

from runs_manager import flags
from runs_manager.errors import RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, List, Optional, Sequence, Set, Tuple

    from runs_manager.index import Index
    from runs_manager.settings import Settings

STATUS_HELP = ("only runs in this state: queued, pending, running, finished, failed, killed, lost, unknown "
               "(repeat it, or separate states with commas)")

NAME = "table"
HELP = "show runs as a table"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(NAME, help=HELP, description="Show runs as a table, oldest first.")
    parser.add_argument("--pattern", "-p", metavar="REGEX", help="only runs whose names this regular expression matches in full")
    parser.add_argument("--status", "-s", action="append", metavar="STATUS", help=STATUS_HELP)
    parser.add_argument("--columns", "-c", action="append", metavar="COLUMNS",
                        help="columns to show, separated by commas: name, status and any key of the entries "
                        "(default name,status,command,commit,datetime,description,host)")
    parser.add_argument("--sort", action="append", metavar="KEY",
                        help="sort by KEY, a column name (repeat it for ties); -KEY sorts descending. Times sort "
                        "as times, numbers as numbers, missing values last")
    parser.add_argument("--metrics", "-m", action="append", metavar="TAGS",
                        help="columns of TensorBoard scalars, separated by commas: TAG (its last value) or "
                        "TAG:AGGREGATE, AGGREGATE one of last, min, max, mean, step (the last step), count: "
                        "--metrics loss,val/acc:max (needs pip install 'runs-manager[metrics]')")
    parser.add_argument("--reverse", "-r", action="store_true", help="descending (newest first without --sort)")
    parser.add_argument("--format", "-f", default="plain", metavar="FORMAT",
                        help="plain (the default), a tabulate format (github, grid, rst, ...), or csv, tsv, json, "
                        "jsonl: whole values, for programs")
    flags.add(parser, "runs-dir", "db-filename", "column-width")
    parse = parser.parse_args
    # `--sort -datetime`: argparse would take -datetime for an option.
    parser.parse_args = lambda args=None, namespace=None: parse(_join_sort(args), namespace)
    parser.set_defaults(run=lambda args, settings: table(
        settings, args.pattern, args.status, args.columns, args.sort, args.reverse, args.format, args.metrics))


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


def table(
    settings: Settings,
    pattern: Optional[str],
    statuses: Optional[List[str]] = None,
    columns: Optional[List[str]] = None,
    sort: Optional[List[str]] = None,
    reverse: bool = False,
    fmt: str = "plain",
    metric_tags: Optional[List[str]] = None,
) -> int:
    from runs_manager import patterns, runs, status, tabular
    from runs_manager.output import printable

    # Every argument is checked before the database is read, and every key before a row is printed.
    tablefmt = tabular.check_format(fmt)
    shown = tabular.parse_columns(columns)
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
    shown = shown + metric_columns
    keys = shown + [key for key, _ in order if key not in shown]
    needs_status = "status" in keys or wanted is not None
    has_outcome: Optional[bool] = None
    if wanted is not None and wanted <= status.WITHOUT_OUTCOME:
        has_outcome = False  # the index rules out runs that cannot have a wanted status
    elif wanted is not None and not wanted & status.WITHOUT_OUTCOME:
        has_outcome = True

    def query(index: Index) -> Any:
        names = patterns.matching(pattern, index.names()) if pattern is not None else None
        rows: List[List[Any]] = []
        pending: List[Any] = []
        who: List[Tuple[str, bool]] = []  # with --metrics: each row's run, and whether it has ended
        seen: Set[str] = set()
        check_seen = any(key not in tabular.DERIVED and key not in tabular.RUNS_KEYS for key in keys)
        position = keys.index("status") if "status" in keys else None
        for name, entry in index.each_entry(names, has_outcome):
            row = [None if key in metric_columns else tabular.value_of(name, entry, key) for key in keys]
            if specs:
                who.append((name, isinstance(entry, dict) and status.outcome(entry) is not None))
            if check_seen and isinstance(entry, dict):
                seen.update(entry)
            if needs_status:
                state = status.outcome(entry) if isinstance(entry, dict) else None
                if state is None:
                    pending.append((name, entry if isinstance(entry, dict) else {}, row))
                elif position is not None:
                    row[position] = state
                row.append(state)  # the status, last, for --status
            rows.append(row)
        asked = [(key, "--columns") for key in shown if key not in metric_columns]
        asked += [(key, "--sort") for key, _ in order if key not in metric_columns]
        tabular.check_keys(asked, seen, index.keys)
        return rows, pending, who

    rows, pending, who = runs.database(settings).read(query)
    if pending:  # runs without an outcome: their launchers say whether they are alive, all at once
        derived = status.derive(settings, [(name, entry) for name, entry, _ in pending])
        for name, _, row in pending:
            row[-1] = derived[name]
            if "status" in keys:
                row[keys.index("status")] = derived[name]
    if wanted is not None:
        if specs:
            who = [run for run, row in zip(who, rows) if row[-1] in wanted]
        rows = [row for row in rows if row[-1] in wanted]
    if specs:
        _fill_metrics(settings, rows, who, specs, [keys.index(spec.column) for spec in specs], pattern is None and wanted is None)
    if order:
        rows = tabular.sort_rows(rows, [(keys.index(key), descending) for key, descending in order])
    elif reverse:
        rows.reverse()
    count = len(shown)
    width = settings.column_width or None  # 0: no cutting
    tabular.write((row[:count] for row in rows), shown, tablefmt, width)
    return 0


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

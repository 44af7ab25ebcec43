"""`runs metrics NAME`: a run's TensorBoard scalar tags and their aggregates."""
from __future__ import annotations

from runs_manager import flags

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any

    from runs_manager.settings import Settings

NAME = "metrics"
HELP = "list a run's TensorBoard scalars"
COLUMNS = ("tag", "count", "step", "last", "min", "max", "mean")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME, help=HELP,
        description="List the scalar tags of run NAME's TensorBoard events: how many points each has (count), "
        "its last step, the value at that step (last), min, max and mean. 'runs table --metrics TAG,...' "
        "shows them beside other runs' (needs pip install 'runs-manager[metrics]').",
    )
    parser.add_argument("name", metavar="NAME")
    flags.add_table_format(parser)
    flags.add(parser, "runs-dir", "db-filename", "column-width")
    parser.set_defaults(run=lambda args, settings: metrics(settings, args.name, args.format))


def metrics(settings: Settings, name: str, fmt: str = "plain") -> int:
    import sys

    from runs_manager import metrics as reading, tabular
    from runs_manager.runtime import status
    from runs_manager.commands.lookup import find
    from runs_manager.output import printable

    tablefmt = tabular.check_format(fmt)
    reading.require()
    entry = find(settings, name)  # an unknown name is an error that suggests close ones
    ended = isinstance(entry, dict) and status.outcome(entry) is not None
    found = reading.collect(settings, [(name, ended)])[name]
    rows = [[tag, t.points, t.step, t.last, t.min, t.max, t.mean] for tag, t in sorted(found.scalars.items())]
    columns = COLUMNS
    if any(t.nan for t in found.scalars.values()):  # a column of its own only where some point is NaN
        columns += ("nan",)
        for row, (_, t) in zip(rows, sorted(found.scalars.items())):
            row.append(t.nan)
    tabular.write(rows, columns, tablefmt, settings.cut_width, whole=("tag",))  # a tag is what --metrics is given
    if tablefmt not in tabular.MACHINE_FORMATS:
        if not rows:
            print(f"runs: note: run '{printable(name)}' has no scalars in {reading.tensorboard_dir(settings, name)}",
                  file=sys.stderr)
        if found.others:
            listed = ", ".join(f"{printable(tag)} ({kind})" for tag, kind in sorted(found.others.items()))
            print(f"runs: note: tags without scalars: {listed}", file=sys.stderr)
    return 0

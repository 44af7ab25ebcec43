"""`runs lookup NAME [KEY]`: one run's entry, or one of its values."""
from __future__ import annotations

from runs_manager import flags
from runs_manager.errors import RunsError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and the modules below cost start-up time `runs --help` cannot spare
    from typing import Any, List, Optional

    from runs_manager.settings import Settings

NAME = "lookup"
HELP = "print a run's entry or one value"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME, help=HELP, description="Print KEY of run NAME, or the whole entry as YAML."
    )
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("key", metavar="KEY", nargs="?", help="command, commit, datetime, description, host, status, ended, exit_code, ...")
    parser.add_argument("--format", "-f", default="yaml", metavar="FORMAT", choices=FORMATS,
                        help="yaml (the default; a value of text as it is) or json")
    flags.add(parser, "runs-dir", "db-filename")
    parser.set_defaults(run=lambda args, settings: lookup(settings, args.name, args.key, args.format))


FORMATS = ("yaml", "json")


def lookup(settings: Settings, name: str, key: Optional[str], fmt: str = "yaml") -> int:
    from runs_manager.output import printable

    entry = find(settings, name)
    if key is None:
        print(_json(entry) if fmt == "json" else _yaml(entry), end="")
        return 0
    if key == "status" and "status" not in entry:
        from runs_manager.runtime import status

        state = status.derive(settings, [(name, entry)])[name]
        print(_json(state) if fmt == "json" else state, end="" if fmt == "json" else "\n")
        return 0
    if key in ("ended", "exit_code") and key not in entry:
        from runs_manager.runtime import status

        state = status.derive(settings, [(name, entry)])[name]
        raise RunsError(f"run '{printable(name)}' has no {key}: it has not ended as far as runs knows (status: {state})")
    if key not in entry:
        from runs_manager.output import did_you_mean

        keys = ", ".join(list(entry) + ["status"])
        hint = did_you_mean(key, list(entry) + ["status"])
        raise RunsError(f"run '{printable(name)}' has no key '{printable(key)}'; {hint}(its keys: {keys})")
    value = entry[key]
    if fmt == "json":
        print(_json(value), end="")
    else:
        print(value if isinstance(value, str) else _yaml(value).rstrip("\n").removesuffix("\n..."))
    return 0


def find(settings: Settings, name: str) -> Any:
    """The entry of run ``name``; unknown names are an error that suggests close ones."""
    from runs_manager.runtime import runs
    from runs_manager.output import printable

    db = runs.database(settings)
    entry = db.read(lambda index: index.entry(name))
    if entry is not None:
        return entry
    close = db.read(lambda index: _close_names(name, index.names()))
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "; see 'runs list'"
    raise RunsError(f"no run named '{printable(name)}'{hint}")


def _close_names(name: str, names: List[str]) -> List[str]:
    import difflib

    # difflib over 100,000 names takes seconds; names of a similar length are enough.
    similar = [n for n in names if abs(len(n) - len(name)) <= max(3, len(name) // 3)]
    return difflib.get_close_matches(name, similar, n=3, cutoff=0.6)


def _json(value: Any) -> str:
    from runs_manager.tabular import json_text

    return json_text(value) + "\n"


def _yaml(value: Any) -> str:
    import yaml

    return str(yaml.safe_dump(value, default_flow_style=False, sort_keys=False, allow_unicode=True, width=1 << 30))

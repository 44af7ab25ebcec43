"""Configuration: defaults < ``.runsrc`` < command-line flags, decided here and only here."""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping, NamedTuple, Optional, Tuple

from runs_manager.errors import RunsError

from runs_manager.flags import KEYS

RUNSRC = ".runsrc"
FIXED_COLUMN_WIDTH = 30  # cells cut at this width in a table that is not fitted to a terminal

Flags = Tuple[Tuple[str, str], ...]


class Settings(NamedTuple):  # a NamedTuple, not a dataclass: dataclasses costs start-up time
    runs_dir: str = ".runs/"
    db_filename: str = ".runs.yml"
    tb_dir_flag: Optional[str] = "--tb-dir"
    save_path_flag: Optional[str] = "--save-path"
    column_width: Optional[int] = None  # None: the default table fits a terminal (fit.py), else cut at 30
    virtualenv_path: Optional[str] = None
    extra_flags: Flags = ()
    allow_dirty: bool = False
    launcher: str = "tmux"
    sbatch_args: Tuple[str, ...] = ()
    keep_sessions: str = "single"  # which finished runs keep their tmux session: always, single, never
    snapshot: str = "auto"  # which runs run from a snapshot of their code: auto (those that start later), always, never
    project: str = ""  # the project's directory (see find_project) relative to this one; "": this one

    @property
    def cut_width(self) -> Optional[int]:
        """Where human tables cut cells when they are not fitted to a terminal (None: never)."""
        return FIXED_COLUMN_WIDTH if self.column_width is None else (self.column_width or None)

    @property
    def db_path(self) -> str:
        return os.path.join(self.runs_dir, self.db_filename)

    @property
    def tensorboard_root(self) -> str:
        return os.path.join(self.runs_dir, "tensorboard")

    @property
    def checkpoints_root(self) -> str:
        return os.path.join(self.runs_dir, "checkpoints")

    @property
    def logs_root(self) -> str:
        return os.path.join(self.runs_dir, "logs")

    @property
    def patches_root(self) -> str:
        return os.path.join(self.runs_dir, "patches")

    @property
    def states_root(self) -> str:
        return os.path.join(self.runs_dir, "state")

    @property
    def code_root(self) -> str:
        return os.path.join(self.runs_dir, "code")

    @property
    def envs_root(self) -> str:
        return os.path.join(self.runs_dir, "env")

    @classmethod
    def load(cls, cli: Mapping[str, Any], runsrc: Optional[str] = RUNSRC) -> Settings:
        """Merge the defaults, the ``.runsrc`` file (if any; None: ignore it) and flags given
        on the command line.

        ``cli`` maps keys (``runs-dir`` or ``runs_dir``) to the strings the user typed; keys
        the user did not give must be absent.
        """
        project = ""
        if runsrc in (RUNSRC, None):  # the user's own (tests name files of theirs): found from below too
            found = find_project(os.getcwd())
            if found is not None and found != os.path.abspath(os.getcwd()):
                project = os.path.relpath(found)
                runsrc = None if runsrc is None else os.path.join(project, RUNSRC)
        file = _read_runsrc(runsrc) if runsrc is not None else {}
        runsrc = runsrc or RUNSRC
        sources = {key: (value, runsrc) for key, value in file.items()}
        for key, value in cli.items():
            sources[_normalize(key)] = (value, "--" + _normalize(key))
        values = {}
        for key, (raw, source) in sources.items():
            value = _PARSERS[key](raw, f"{source}: {key}" if source == runsrc else source)
            if value is not _DEFAULT:
                values[key.replace("-", "_")] = value
        if "sbatch-args" in map(_normalize, cli) and "sbatch-args" in file:
            # The command line's sbatch options add to .runsrc's (later ones win in sbatch).
            values["sbatch_args"] = _sbatch_args(file["sbatch-args"], f"{runsrc}: sbatch-args") + values["sbatch_args"]
        if "extra-flags" in map(_normalize, cli) and "extra-flags" in file:
            # --extra-flag adds to .runsrc's extra-flags, as --sbatch-args does.
            values["extra_flags"] = _extra_flags(file["extra-flags"], f"{runsrc}: extra-flags") + values["extra_flags"]
        if project:  # the project's .runsrc and runs directory are the project's, from a subdirectory too
            for key, default in (("runs_dir", cls().runs_dir), ("virtualenv_path", None)):
                given = _normalize(key) in map(_normalize, cli)
                value = values.get(key, default)
                if not given and value is not None:
                    values[key] = os.path.join(project, os.path.expanduser(value))
            values["project"] = project
        return cls(**values)

    def launch_settings(self) -> dict[str, Any]:
        """The settings that shape a run's launch and differ from the built-in defaults, as
        a run's entry records them (``settings``) and `runs reproduce` prints them."""
        # Found from a subdirectory, the project's own runs directory is the default there.
        default = Settings(runs_dir=os.path.join(self.project, Settings().runs_dir))
        keys = ("runs_dir", "db_filename", "tb_dir_flag", "save_path_flag", "extra_flags", "virtualenv_path")
        found = {key: [list(pair) for pair in getattr(self, key)] if key == "extra_flags" else getattr(self, key)
                 for key in keys if getattr(self, key) != getattr(default, key)}
        if self.project:  # relative to a subdirectory, which `runs reproduce` does not print: exact instead
            found.update({key: os.path.abspath(found[key]) for key in ("runs_dir", "virtualenv_path") if found.get(key)})
        return found


def find_project(start: str) -> Optional[str]:
    """Like git: the nearest directory from ``start`` up to the top of its git work tree
    that holds a ``.runsrc`` or a runs directory with a database (the defaults'); None when
    none does, or ``start`` is in no work tree (a directory above it is no project of its)."""
    here = os.path.abspath(start)
    default = Settings()
    found = None
    while True:
        if found is None and (os.path.isfile(os.path.join(here, RUNSRC))
                              or os.path.isfile(os.path.join(here, default.runs_dir, default.db_filename))):
            found = here
        if os.path.lexists(os.path.join(here, ".git")):
            return found  # the work tree's top
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _normalize(key: str) -> str:
    return key.replace("_", "-")


def _read_runsrc(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise RunsError(f"cannot read {path}: {e}") from None
    import yaml  # here, not at the top: `runs --help` must not pay for it

    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark is not None else path
        raise RunsError(f"{where} is not valid YAML: {_one_line(getattr(e, 'problem', None) or e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RunsError(f"{path} must be a mapping of settings (key: value), not {_kind(data)}")
    result: dict[str, Any] = {}
    for key, value in data.items():
        name = _normalize(str(key))
        if name not in KEYS:
            from runs_manager.output import did_you_mean

            close = did_you_mean(name, KEYS)
            hint = f"; {close.rstrip()}" if close else f"; known keys: {', '.join(KEYS)}"
            raise RunsError(f"{path}: unknown key '{key}'{hint}")
        if name in result:
            raise RunsError(f"{path}: '{key}' is given twice")
        result[name] = value
    return result


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


class _Default:
    """Marks 'use the default' so that null and empty values fall through to it."""


_DEFAULT: Any = _Default()


def _is_null(raw: Any) -> bool:
    return raw is None or raw == "None"


def _text(raw: Any, where: str, what: str) -> str:
    if not isinstance(raw, str):
        raise RunsError(f"{where} must be {what}, not {_kind(raw)}")
    if "\0" in raw:
        raise RunsError(f"{where} must not contain a NUL character")
    return raw


def _path(raw: Any, where: str) -> Any:
    if raw is None or raw == "":
        return _DEFAULT
    return os.path.expanduser(_text(raw, where, "a path"))


def _file_name(raw: Any, where: str) -> Any:
    value = _path(raw, where)
    if value is not _DEFAULT and (os.sep in value or value in (".", "..")):
        raise RunsError(f"{where} must be a file name inside the runs directory, got '{value}'")
    return value


def _flag(raw: Any, where: str) -> Optional[str]:
    if _is_null(raw):
        return None
    if not _text(raw, where, "a flag such as --tb-dir").strip():
        raise RunsError(f"{where} must be a flag such as --tb-dir, or None to pass no flag")
    return str(raw)


def _optional_path(raw: Any, where: str) -> Optional[str]:
    if _is_null(raw) or raw == "":
        return None
    return _text(raw, where, "a path")


def _width(raw: Any, where: str) -> Any:
    if _is_null(raw) or raw == "":
        return _DEFAULT
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise RunsError(f"{where} must be a whole number (0: cells are never cut), got {raw!r}")
    return raw


def _extra_flags(raw: Any, where: str) -> Flags:
    if _is_null(raw):
        return ()
    problem = f"{where} must be a list of [flag, value] pairs, such as [[--log-dir, <runs-dir>/logs/<run-name>]]"
    if not isinstance(raw, list):
        raise RunsError(problem)
    pairs = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and item[0].strip()):
            raise RunsError(problem)
        flag, value = item
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise RunsError(problem)
        # The original's .runsrc wrote extra flags without dashes (goal-log-dir); keep that working.
        if "\0" in flag + str(value):
            raise RunsError(f"{where} must not contain a NUL character")
        pairs.append((flag if flag.startswith("-") else "--" + flag, str(value)))
    return tuple(pairs)


def _switch(raw: Any, where: str) -> Any:
    if _is_null(raw) or raw == "":
        return _DEFAULT
    if isinstance(raw, bool):
        return raw
    words = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
    if isinstance(raw, str) and raw.strip().lower() in words:
        return words[raw.strip().lower()]
    raise RunsError(f"{where} must be true or false, got {raw!r}")


def _launcher(raw: Any, where: str) -> Any:
    if _is_null(raw) or raw == "":
        return _DEFAULT
    if raw not in LAUNCHERS:
        raise RunsError(f"{where} must be one of {', '.join(LAUNCHERS)}, got {raw!r}")
    return raw


def _sbatch_args(raw: Any, where: str) -> Tuple[str, ...]:
    """A list in .runsrc; one string, split as a shell would, on the command line."""
    if _is_null(raw) or raw == "":
        return ()
    if isinstance(raw, str):
        import shlex

        try:
            return tuple(shlex.split(raw))
        except ValueError as e:
            raise RunsError(f"{where}: {e}") from None
    if isinstance(raw, list) and all(isinstance(arg, (str, int)) and not isinstance(arg, bool) for arg in raw):
        return tuple(str(arg) for arg in raw)
    raise RunsError(f"{where} must be a list of sbatch options, such as [--partition=gpu, --time=04:00:00]")


LAUNCHERS = ("tmux", "slurm")
KEEP_SESSIONS = ("always", "single", "never")


def _keep_sessions(raw: Any, where: str) -> Any:
    if _is_null(raw) or raw == "":
        return _DEFAULT
    if raw not in KEEP_SESSIONS:
        raise RunsError(f"{where} must be one of {', '.join(KEEP_SESSIONS)} (which finished runs keep their tmux "
                        f"session: 'single' keeps those not made by --grid), got {raw!r}")
    return raw

SNAPSHOT = ("auto", "always", "never")


def _snapshot(raw: Any, where: str) -> Any:
    if _is_null(raw) or raw == "":
        return _DEFAULT
    if isinstance(raw, bool):  # `snapshot: true` reads as YAML's boolean
        return "always" if raw else "never"
    if raw not in SNAPSHOT:
        raise RunsError(f"{where} must be one of {', '.join(SNAPSHOT)} (auto: runs that start later, queued runs "
                        f"and Slurm jobs, run from a snapshot of their code), got {raw!r}")
    return raw


_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "runs-dir": _path,
    "db-filename": _file_name,
    "tb-dir-flag": _flag,
    "save-path-flag": _flag,
    "column-width": _width,
    "virtualenv-path": _optional_path,
    "extra-flags": _extra_flags,
    "allow-dirty": _switch,
    "launcher": _launcher,
    "sbatch-args": _sbatch_args,
    "keep-sessions": _keep_sessions,
    "snapshot": _snapshot,
}


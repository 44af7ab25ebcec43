"""What every launcher shares: the interface it implements, what starting a run takes, and
the command lines of a run's supervisor and of its program (pre-commit's lang_base.py and
pipx's backends/_base.py play this part). Imports nothing of runs above the rules."""
from __future__ import annotations

import os
import shlex
import sys
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Protocol, Sequence, Tuple

from runs_manager.runtime import launch
from runs_manager.settings import Settings

Entry = Mapping[str, Any]


class Start(NamedTuple):
    """What a launcher needs to start a run."""

    settings: Settings
    name: str
    started: str  # the entry's datetime: tells this run from a later one of the same name
    line: str  # the shell command line of the program, flags included
    directory: str
    wait: bool = True  # until the run's supervisor is up; a batch of starts waits once, for all
    member: bool = False  # of a sweep (--grid): its session closes when it ends, unless keep-sessions says otherwise


class Launcher(Protocol):
    name: str

    def check(self, settings: Settings) -> Any:
        """Raise RunsError if runs cannot be started now; returns what start needs (may be None)."""

    def start(self, run: Start, prepared: Any) -> Dict[str, Any]:
        """Start the run's supervisor; returns the fields that identify it, for the entry."""

    def alive(self, settings: Settings, runs: Sequence[Tuple[str, Entry]]) -> Dict[str, Any]:
        """For each run: whether its program is alive (True, False), None if that cannot be
        told from here, or "pending" for a run a scheduler has queued."""

    def signal(self, settings: Settings, name: str, entry: Entry, signum: int) -> bool:
        """Send ``signum`` to the run's program; False if it is not running."""

    def stop(self, settings: Settings, runs: Sequence[Tuple[str, Entry]]) -> Dict[str, Optional[str]]:
        """Stop what these runs started, and their programs, before their files are deleted;
        a note for each not done."""

    def rename(self, settings: Settings, old: str, new: str, entry: Entry, back: Optional[str] = None) -> Dict[str, Any]:
        """Follow a rename of the run (``entry`` is its entry under ``old``); returns the
        entry's fields that change. Called back with the names swapped to undo it, with ``back``
        the session name the entry records, to go back to."""


# How a supervisor process is recognised (processes.py): keep it, even when the module moves.
BOOTSTRAP = "import sys; sys.path[0] = sys.argv.pop(1); from runs_manager.runtime.supervisor import main; sys.exit(main(sys.argv[1:]))"


def supervisor_argv(settings: Settings, name: str, started: str, program: Sequence[str], keep_open: bool) -> List[str]:
    """The command that starts the supervisor of run ``name`` (with this Python and this copy of runs)."""
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    runs_dir = os.path.abspath(settings.runs_dir)
    words = [sys.executable, "-c", BOOTSTRAP, package_parent, runs_dir, settings.db_filename, name, started]
    return words + ["keep-open" if keep_open else "exit", "--", *program]


def program_script(settings: Settings, line: str, env: launch.Environment) -> str:
    """The shell script the supervisor runs: this shell's environment, the virtualenv, the program."""
    script = f"unset {' '.join(env.dropped)}\n" if env.dropped else ""
    activate = launch.activate_script(settings)
    line = launch.exec_form(line)
    return script + (f". {shlex.quote(activate)} && {{\n{line}\n}}\n" if activate else f"{line}\n")

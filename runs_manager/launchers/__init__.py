"""How runs are started and stopped: the launcher interface, and the launchers by name.

A launcher starts a run's supervisor somewhere (a tmux session here; a batch job
elsewhere), tells whether runs are alive (for all of them at once: one query, never one
per run), delivers signals to a run's program, and stops what it started. The supervisor
(supervisor.py), which records the outcome and writes the log, is the same for all.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, NamedTuple, Optional, Protocol, Sequence, Tuple

from runs_manager.errors import RunsError
from runs_manager.settings import Settings

Entry = Mapping[str, Any]
DEFAULT = "tmux"


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

    def rename(self, old: str, new: str, entry: Entry) -> Dict[str, Any]:
        """Follow a rename of the run (``entry`` is its entry under ``old``); returns the
        entry's fields that change. Called back with the names swapped to undo it."""


def get(name: Optional[str]) -> Launcher:
    from runs_manager.launchers import slurm, tmux

    launchers: Dict[str, Launcher] = {tmux.NAME: tmux.TmuxLauncher(), slurm.NAME: slurm.SlurmLauncher()}
    if name is None:
        name = DEFAULT
    if name not in launchers:
        raise RunsError(f"unknown launcher '{name}'; known: {', '.join(launchers)}")
    return launchers[name]


def of(entry: Entry) -> Optional[Launcher]:
    """The launcher that started a run, or None for runs recorded before runs supervised them."""
    name = entry.get("launcher")
    if not isinstance(name, str):
        return None
    try:
        return get(name)
    except RunsError:
        return None

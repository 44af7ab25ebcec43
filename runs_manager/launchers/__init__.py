"""How runs are started and stopped: the launcher interface, and the launchers by name.

A launcher starts a run's supervisor somewhere (a tmux session here; a batch job
elsewhere), tells whether runs are alive (for all of them at once: one query, never one
per run), delivers signals to a run's program, and stops what it started. The supervisor
(supervisor.py), which records the outcome and writes the log, is the same for all.
"""
from __future__ import annotations

from typing import Dict, Optional

from runs_manager.errors import RunsError
from runs_manager.launchers.base import Entry, Launcher, Start  # noqa: F401 (the interface, named from here too)

DEFAULT = "tmux"


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

"""Stopping runs before their files go (delete, --overwrite): each through the launcher
that started it."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from runs_manager.settings import Settings


def stop(settings: Settings, runs: List[Tuple[str, Any]]) -> Dict[str, Optional[str]]:
    """Stop the runs' sessions and programs, each through the launcher that started it
    (runs recorded before launchers existed had tmux sessions). A run with a recorded
    outcome needs no launcher: only its tmux session, still open, is closed if tmux is here."""
    from runs_manager import launchers, tmux
    from runs_manager.runtime import status

    by_launcher: Dict[str, List[Tuple[str, Any]]] = {}
    for name, entry in runs:
        launcher = launchers.of(entry) or launchers.get(None)
        if status.outcome(entry) is not None and (launcher.name != "tmux" or not tmux.installed()):
            continue
        by_launcher.setdefault(launcher.name, []).append((name, entry))
    notes: Dict[str, Optional[str]] = {}
    for launcher_name, group in by_launcher.items():
        notes.update(launchers.get(launcher_name).stop(settings, group))
    return notes

"""What `runs new` says once runs are recorded: where each started, the patch stored, and
where appended flags went (for the printing, apart from the recording in new.py)."""
from __future__ import annotations

import os
import sys

from runs_manager import names

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` costs start-up time that `runs --help` cannot spare
    from typing import Any, Dict, Optional

    from runs_manager.runtime.patches import Patch
    from runs_manager.settings import Settings


def note_flags(settings: Settings, name: str, command: str) -> None:
    """Say, once, where the appended flags went when the command is compound."""
    from runs_manager.runtime import launch
    from runs_manager.text import placeholders

    used = placeholders.used(command)
    flags = [flag for flag, _ in launch.program_flags(settings, name, used, command)]
    note = launch.flags_note(command, flags) if flags else None
    if note:
        print(f"runs: note: {note}", file=sys.stderr)
    for flag in launch.skipped_flags(settings, command, used):
        print(f"runs: note: COMMAND passes {flag} itself, so runs does not append its own (a second one would "
              "override yours); the run's own path is in $RUNS_TB_DIR / $RUNS_SAVE_PATH", file=sys.stderr)


def started(name: str, commit: str, entry: Dict[str, Any]) -> None:
    import shlex

    if "job_id" in entry:
        print(f"Submitted run '{name}' at commit {commit[:12]} as Slurm job {entry['job_id']}.")
        print(f"Its output: runs logs -f {shlex.quote(name)}   (its state: runs lookup {shlex.quote(name)} status)")
        return
    session = entry["tmux_session"]
    print(f"Started run '{name}' at commit {commit[:12]} in tmux session '{session}'.")
    own = names.session_name(name)
    if session != own:
        print(f"(tmux already has a session '{own}', another project's or yours: this run's is '{session}'.)")
    attach = "switch-client" if os.environ.get("TMUX") else "attach"
    print(f"To watch it: tmux {attach} -t {shlex.quote('=' + session)}   (its output: runs logs -f {shlex.quote(name)})")


def patch_stored(settings: Settings, name: str, patch: Optional[Patch]) -> None:
    if patch is None:
        return
    from runs_manager.runtime import patches, runfiles

    count = len(patch.changes)
    print(f"Stored the uncommitted changes ({count} file{'s' if count != 1 else ''}, {patches.size_text(len(patch.data))}) "
          f"as {runfiles.patch_path(settings, name)}; 'runs reproduce' re-applies them.")
    if patch.submodules:
        print(f"runs: note: the patch records the commit of submodule {', '.join(patch.submodules)}, "
              "not its contents: those (and changes inside it) are not captured", file=sys.stderr)


def where(entry: Dict[str, Any]) -> str:
    if "job_id" in entry:
        return f"submitted as Slurm job {entry['job_id']}"
    gpu = f" on GPU {entry['cuda_visible_devices']}" if "cuda_visible_devices" in entry else ""
    return f"started in tmux session '{entry.get('tmux_session')}'{gpu}"


SHOW_MEMBERS = 20


def sweep(name: str, commit: str, states: Dict[str, str], single: bool) -> None:
    import re
    import shlex

    queued = sum(state == "queued" for state in states.values())
    if single:
        member, state = next(iter(states.items()))
        if member != name:
            print(f"The name '{name}' is taken; this run is named '{member}'.")
        print(f"Run '{member}' at commit {commit[:12]}: {state}" + (" until a slot or GPU is free." if state == "queued" else "."))
        print(f"Its state: runs lookup {shlex.quote(member)} status   (its output: runs logs -f {shlex.quote(member)})")
        return
    waiting = f", {queued} queued (they start as earlier ones end)" if queued else ""
    print(f"Sweep '{name}': {len(states)} runs at commit {commit[:12]}, {len(states) - queued} started{waiting}.")
    width = max(len(member) for member in states)
    for i, (member, state) in enumerate(states.items()):
        if i == SHOW_MEMBERS and len(states) > SHOW_MEMBERS + 1:
            print(f"  ... and {len(states) - SHOW_MEMBERS} more")
            break
        print(f"  {member.ljust(width)}  {state}")
    shown = f"{name}/.*" if all(member.startswith(name + "/") for member in states) else "|".join(map(re.escape, states))
    if len(shown) < 200:
        print(f"See them: runs table --pattern {shlex.quote(shown)}")

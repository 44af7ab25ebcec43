"""Starting runs: a new run's entry and files, its name made free, its start journaled
("new": undone by the next command if this one dies before recording it), and the runs of
a sweep recorded as queued ("sweep"). Each journal operation's undo is beside its do.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from runs_manager import names
from runs_manager.errors import RunsError
from runs_manager.runtime import launch, runfiles, sessions

if TYPE_CHECKING:
    from runs_manager.interrupts import Deferred
    from runs_manager.launchers import Launcher
    from runs_manager.runtime.patches import Patch
    from runs_manager.runtime.runfiles import RunSet
    from runs_manager.settings import Settings
    from runs_manager.store.database import Database, Transaction
    from runs_manager.store.index import Index
    from runs_manager.text.sweeps import Member

SESSION_EXIT_WAIT = 1.0  # seconds; the supervisor checks at least every 0.1 s


def stop_first(settings: Settings, db: Database, names: List[str]) -> None:
    """Stop the runs --overwrite replaces before the lock is taken: a program may take
    seconds to end, and every other command would wait that long. (What could not be
    stopped is said once, by the stop under the lock.)"""
    from runs_manager.runtime.stopping import stop

    stop(settings, db.read(lambda index: index.entries(names)))


def discard_for_overwrite(settings: Settings, txn: Transaction, name: str) -> List[str]:
    """--overwrite: the old run goes all or nothing, as `runs delete` deletes it. Returns the
    trash directories to empty once the lock is released (this one's among them)."""
    from runs_manager import interrupts
    from runs_manager.runtime import trash
    from runs_manager.runtime.stopping import stop

    notes = [stop(settings, [(name, txn.entry(name) or {})]).get(name)]  # stopped already, unless it started since
    with interrupts.deferred():
        deleted, more, _ = trash.discard(settings, txn, [(name, txn.entry(name) or {})])
    for note in filter(None, notes + more):
        print(f"runs: {note}", file=sys.stderr)
    if not deleted:
        raise RunsError(f"run '{name}' could not be deleted; nothing else changed")
    return trash.leftovers(settings)


def free_name(settings: Settings, name: str, index: RunSet) -> str:
    """``name``, or if it is taken the original tool's answer: the name plus the Unix time."""
    import time

    from runs_manager import names
    from runs_manager.runtime import runfiles

    conflict = names.group_conflict(name, index.has, index.first_in_group)
    if conflict:
        raise RunsError(
            f"run '{conflict}' exists, so '{name}' cannot be used: a run cannot also be a group of runs ('a' and 'a/b')"
        )

    def free(candidate: str) -> bool:
        # Files of that name without an entry are not ours to reuse or delete. (A tmux
        # session of that name, another project's run, does not take it: see session_names.)
        return (
            not index.has(candidate)
            and not runfiles.existing(settings, candidate, index)
            and names.group_conflict(candidate, index.has, index.first_in_group) is None
        )

    if free(name):
        return name
    for candidate in names.unique_candidates(name, int(time.time())):
        if free(candidate):
            problem = names.problem(candidate)
            if problem:
                raise RunsError(f"the name '{name}' is taken and a unique name cannot be made from it: {problem}")
            return candidate
    raise AssertionError("unreachable")


def require_free(settings: Settings, members: List[Member], txn: Transaction) -> None:
    """Every run name of the sweep is free, and none is a group of another."""
    from runs_manager import names
    from runs_manager.runtime import runfiles

    wanted = {member.name for member in members}
    for member in members:
        inside = next((group for group in names.groups(member.name) if group in wanted), None)
        if inside:
            raise RunsError(f"the sweep names runs '{inside}' and '{member.name}': a run cannot also be a group of runs")
        conflict = names.group_conflict(member.name, txn.has, txn.first_in_group)
        if conflict:
            raise RunsError(f"run '{conflict}' exists, so the sweep's run '{member.name}' cannot be made: "
                            "a run cannot also be a group of runs ('a' and 'a/b')")
        files = runfiles.existing(settings, member.name, txn)
        if files:
            raise RunsError(f"{files[0]} exists without a run recorded for it: the sweep's run '{member.name}' cannot use it")


def entry_of(settings: Settings, name: str, command: str, description: str, commit: str, launcher: str,
           extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """A new run's entry, before anything of it is started."""
    from runs_manager import times

    return {
        "command": command,
        "commit": commit,
        "datetime": times.now(),
        "description": description,
        "host": launch.host(),
        "launched": launch.program_line(settings, name, command),
        "launcher": launcher,
        "settings": settings.launch_settings(),  # what `runs reproduce` needs to launch it the same way
        **(extra or {}),
    }


def store_patch(settings: Settings, name: str, entry: Dict[str, Any], patch: Optional[Patch]) -> None:
    if patch is None:
        return
    from runs_manager import faults
    from runs_manager.runtime import patches, runfiles

    entry["patch"] = runfiles.patch_path(settings, name)
    entry["patch_sha256"] = patch.sha256
    patches.store(entry["patch"], patch.data)
    faults.point("new:patch-written")


def start(
    settings: Settings,
    txn: Transaction,
    name: str,
    command: str,
    description: str,
    commit: str,
    directory: str,
    launcher: Launcher,
    prepared: Any,
    interrupted: Deferred,
    patch: Optional[Patch] = None,
    extra: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    import contextlib

    from runs_manager import faults, names, tmux
    from runs_manager.launchers import Start

    session = names.session_name(name)
    entry = entry_of(settings, name, command, description, commit, launcher.name, extra)
    line = entry["launched"]
    intent: Dict[str, Any] = {"op": "new", "name": name, "session": session, "host": entry["host"], "launcher": launcher.name}
    txn.intend(intent)
    faults.point("new:journal-written")
    try:
        store_patch(settings, name, entry, patch)  # first: if it cannot be stored, nothing is started
        starting = runfiles.create(settings, name, entry["datetime"])
        faults.point("new:dirs-created")
        fields = launcher.start(Start(settings, name, entry["datetime"], line, directory), prepared)
        entry.update(fields)
        intent.update(fields, session=fields.get("tmux_session", session))
        txn.intend(intent)  # so that recovery can stop exactly this session
        faults.point("new:session-started")
        interrupted.check()
        txn.add(name, entry)
    except BaseException:
        if "tmux_session_id" in entry:  # only the session this process started
            sessions.stop_session(name, entry, tmux.sessions())
        if "job_id" in entry:  # only the job this process submitted
            from runs_manager.launchers import slurm

            slurm.cancel(entry["job_id"])
        runfiles.remove(settings, name, txn)
        txn.done()
        raise
    # Recorded: the run is whole, whatever happens now. Its program may start.
    with contextlib.suppress(OSError):
        os.unlink(starting)
    txn.done()
    return entry


def record_queued(settings: Settings, txn: Transaction, members: List[Member], extra: Dict[str, Any], commit: str,
                   launcher: str, patch: Optional[Patch]) -> None:
    """Append the sweep's runs as queued, in one write; their patches (stored first) are
    removed again if that fails, and by the next command if this one dies."""

    entries = []
    for member in members:
        fields = {**extra, **({"grid": member.values} if member.values else {})}
        entries.append((member.name, entry_of(settings, member.name, member.command, member.description, commit, launcher, fields)))
    # Each keeps this shell's environment, to start with it whoever starts it (see queue.py);
    # the journal lets the next command remove what a `runs new` killed meanwhile left.
    txn.intend({"op": "sweep", "names": [member.name for member in members]})
    environment = launch.captured_environment()
    try:
        for member_name, entry in entries:
            store_patch(settings, member_name, entry, patch)
            launch.store_environment(runfiles.env_path(settings, member_name), environment)
        txn.add_all(entries)
    except BaseException:
        for member_name, _ in entries:
            runfiles.remove(settings, member_name, txn)
        raise
    finally:
        txn.done()


def undo_new(settings: Settings, intent: Dict[str, Any], index: Index) -> None:
    """Keep a whole run, or leave nothing: called by the next command to take the lock."""
    name = intent.get("name")
    if intent.get("op") != "new" or not isinstance(name, str) or not names.is_valid(name):
        return
    if index.has(name):  # recorded: a whole run, whose program may start now
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(runfiles.tensorboard_dir(settings, name), runfiles.STARTING))
        return
    from runs_manager import tmux

    if intent.get("job_id") is not None:  # submitted, never recorded: it must not run
        from runs_manager.launchers import slurm

        slurm.cancel(intent["job_id"])
    session = intent.get("session")
    live = tmux.sessions() if tmux.installed() else {}
    sessions.kill_journaled(intent, intent.get("host"), live)
    runfiles.remove(settings, name, index)
    if isinstance(session, str) and session in live and not sessions.journal_knows(intent, intent.get("host")):
        # A session the journal has no identity for: never killed on a guess. If it is the
        # run's, its supervisor finds the TensorBoard directory gone and ends it in a moment.
        deadline = time.monotonic() + SESSION_EXIT_WAIT
        while session in tmux.sessions() and time.monotonic() < deadline:
            time.sleep(0.05)


def undo_sweep(settings: Settings, intent: Dict[str, Any], index: Index) -> None:
    """A `runs new` of a sweep died storing its runs' patches and environments: those of
    runs it did not record go."""
    for name in intent.get("names") or ():
        if isinstance(name, str) and names.is_valid(name) and not index.has(name):
            runfiles.remove(settings, name, index)

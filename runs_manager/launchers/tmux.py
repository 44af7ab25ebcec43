"""The tmux launcher: each run's supervisor in a detached tmux session of its own.

The session stays open when the program ends (a shell, below the program's output) until
the user closes it or deletes the run. Liveness is the supervisor's lock on the run's log
(processes.py), so telling whether runs are alive asks tmux nothing at all.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from runs_manager import names, processes, tmux
from runs_manager.errors import RunsError
from runs_manager.runtime import heartbeat, launch, runfiles, runstate, sessions
from runs_manager.launchers.base import Entry, Start, program_script, supervisor_argv
from runs_manager.settings import Settings

NAME = "tmux"
LOCK_WAIT = 15.0  # seconds for a new session's supervisor to take its lock (it starts Python)
PROGRAM_WAIT = 5.0  # seconds for a supervisor to start its program once the run is recorded
STOP_GRACE = 5.0  # seconds a deleted run's program has after its hang-up, then after SIGTERM
# A run whose supervisor has not taken its lock this long after it was started is lost, not
# starting: far beyond the slowest start seen (seconds, a few hundred runs at once).
STARTING_DEADLINE = 600.0


class TmuxLauncher:
    name = NAME

    def check(self, settings: Settings) -> launch.Environment:
        tmux.require()
        return launch.Environment(tmux.environment())

    def start(self, run: Start, prepared: Any) -> Dict[str, Any]:
        env: launch.Environment = prepared
        program = ["/bin/sh", "-c", program_script(run.settings, run.line, env)]
        keep = run.settings.keep_sessions == "always" or (run.settings.keep_sessions == "single" and not run.member)
        words = supervisor_argv(run.settings, run.name, run.started, program, keep_open=keep)
        assignments = [f"{k}={v}" for k, v in env.given.items()]
        argv = (["env", *assignments] if assignments else []) + words
        session, identity = _free_session(run.settings, run.name, lambda s: tmux.new_session(s, run.directory, argv))
        fields = {"tmux_session": session, **sessions.session_fields(identity)}
        if run.wait:
            wait_for_supervisors([(runfiles.log_path(run.settings, run.name), fields)])
        return fields

    def alive(self, settings: Settings, runs: Sequence[Tuple[str, Entry]]) -> Dict[str, Any]:
        here = launch.host()
        # Another host's runs: their heartbeats in the shared runs directory (heartbeat.py).
        remote = [name for name, entry in runs if entry.get("host") not in (None, here) and names.is_valid(name)]
        answers: Dict[str, Any] = heartbeat.alive(settings.runs_dir, remote) if remote else {}
        for name, entry in runs:
            if name in answers:
                continue
            if entry.get("host") not in (None, here) or not names.is_valid(name):
                answers[name] = None
            elif processes.lock_holder(runfiles.log_path(settings, name)) is not None:
                answers[name] = True
            else:  # no supervisor holds the log: not started yet, gone, or gone with its program left
                fields = runstate.read(settings, name)
                if runstate.orphan_group(settings, name, fields):
                    answers[name] = "orphaned"
                elif fields.get("started") and "keeper" not in fields:
                    # A slow start (a loaded node, a virtualenv on a slow disk), until the deadline.
                    answers[name] = "starting" if _recent(entry) else "never-started"
                else:
                    answers[name] = False
        return answers

    def signal(self, settings: Settings, name: str, entry: Entry, signum: int) -> bool:
        if entry.get("host") not in (None, launch.host()):  # its supervisor signals it, asked through its heartbeat
            return names.is_valid(name) and heartbeat.request_kill(settings.runs_dir, name, signum)
        group = _program_group(settings, name, entry, wait=PROGRAM_WAIT)
        return bool(group) and processes.signal_group(group, signum)

    def stop(self, settings: Settings, runs: Sequence[Tuple[str, Entry]]) -> Dict[str, Optional[str]]:
        """Close the runs' sessions (a hang-up, as closing a terminal) and wait until their
        programs have ended, SIGKILLing what is left after a grace period: their files
        are deleted next, and no late write may land in them."""
        groups = [group for group in (_program_group(settings, name, entry, wait=0) for name, entry in runs) if group]
        live = tmux.sessions() if runs and tmux.installed() else {}  # no tmux here: no session to close
        notes = {name: sessions.stop_session(name, entry, live) for name, entry in runs}
        for then in (signal.SIGTERM, signal.SIGKILL, None):
            deadline = time.monotonic() + STOP_GRACE
            while groups and time.monotonic() < deadline:
                groups = [group for group in groups if processes.group_members(group)]
                time.sleep(0.05 if groups else 0)
            if not groups or then is None:
                break
            for group in groups:
                processes.signal_group(group, then)
        return notes

    def rename(self, settings: Settings, old: str, new: str, entry: Entry, back: Optional[str] = None) -> Dict[str, Any]:
        session = entry.get("tmux_session")
        if not isinstance(session, str):
            return {}
        back = back if isinstance(back, str) and back else None  # from an entry: perhaps hand-edited
        if entry.get("host") in (None, launch.host()) and tmux.installed():
            live = tmux.sessions()
            current = sessions.live_session(session, entry, live)
            if current is not None:
                sid = live[current][0]
                chosen, _ = _free_session(settings, new, lambda s: tmux.rename(sid, s), current, back)
                return {"tmux_session": chosen}
        return {"tmux_session": back or names.session_name(new)}


def _recent(entry: Entry) -> bool:
    """Whether the run was started (or recorded) less than STARTING_DEADLINE ago."""
    from runs_manager.times import moment

    when = moment(entry.get("started") or entry.get("datetime"))
    return when is not None and time.time() - when < STARTING_DEADLINE


def _program_group(settings: Settings, name: str, entry: Entry, wait: float) -> int:
    """The process group of a run's program running here, 0 if there is none. Only the
    group of runs' own supervisor holding the run's log lock is ever named; a program still
    being started is waited for up to ``wait`` seconds."""
    if not names.is_valid(name) or entry.get("host") not in (None, launch.host()):
        return 0
    log = runfiles.log_path(settings, name)
    deadline = time.monotonic() + wait
    while True:
        holder = processes.lock_holder(log)
        if holder is None:  # no supervisor: an orphaned program, whose keeper is the one recorded
            return runstate.orphan_group(settings, name)
        if not processes.is_supervisor(holder):
            return 0  # not ours: whatever holds the lock is never signalled
        where, group = processes.program_group(holder)
        if where == "running":
            return group
        if where == "ended" or time.monotonic() > deadline:
            return 0
        time.sleep(0.02)  # recorded a moment ago: the supervisor is starting the program


def wait_for_supervisors(started: Sequence[Tuple[str, Dict[str, Any]]]) -> None:
    """Until each new session's supervisor holds the lock on its log (path, session fields),
    the run would look lost. Sessions started together start their supervisors at once."""
    deadline = time.monotonic() + LOCK_WAIT
    polls = 0
    waiting = list(started)
    while waiting and time.monotonic() < deadline:
        waiting = [(log, fields) for log, fields in waiting if processes.lock_holder(log) is None]
        polls += 1
        if waiting and polls % 50 == 0 and not all(_session_alive(fields) for _, fields in waiting):
            from runs_manager.errors import RunsError

            raise RunsError(f"the run's supervisor ended at once (is {sys.executable} still usable?)")
        if waiting:
            time.sleep(0.005)


def _free_session(settings: Settings, name: str, make: Callable[[str], Any], current: Optional[str] = None,
                  first: Optional[str] = None) -> Tuple[str, Any]:
    """The first of the run's possible sessions (``first``, then names.session_names) that
    tmux lets ``make`` have, and what it returned. Tried rather than looked up: a session of
    that name may be another project's, made a moment ago."""
    project = os.path.basename(os.path.dirname(os.path.abspath(settings.runs_dir)))
    for session in [first, *names.session_names(name, project)] if first else names.session_names(name, project):
        if session == current:
            return session, None
        try:
            return session, make(session)
        except tmux.TmuxError as e:
            if "duplicate session" not in str(e):
                raise
    raise RunsError(f"tmux has sessions of every name tried for run '{name}' ({names.SESSION_TRIES}); close some")


def _session_alive(fields: Dict[str, Any]) -> bool:
    live = tmux.sessions()
    session = fields["tmux_session"]
    return session in live and sessions.same_session(fields, live[session])

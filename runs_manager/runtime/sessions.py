"""A run's tmux session, told from any other of its name: the identity recorded with the
run (id, creation time, server pid) must match the live session's before it is touched."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from runs_manager import names
from runs_manager.processes import host
from runs_manager.tmux import Identity

SESSION_FIELDS = ("tmux_session_id", "tmux_session_created", "tmux_server_pid")


def session_fields(identity: Identity) -> Dict[str, Any]:
    return dict(zip(SESSION_FIELDS, identity))


SESSION_AFTER = 5.0  # seconds: a run's own session is created just after its entry's datetime


def same_session(recorded: Mapping[str, Any], live: Identity) -> bool:
    """Whether a live session is provably the recorded one: by its id (and whichever other
    fields hand edits left), or, for entries that record no id (the original tool's), by
    being created within a few seconds after the entry's datetime. A user's own session of
    the same name, made years later, is never taken for the run's."""
    if any(recorded.get(field) not in (None, value) for field, value in zip(SESSION_FIELDS, live)):
        return False
    if recorded.get(SESSION_FIELDS[0]) is not None:
        return True
    from runs_manager.times import moment

    started = moment(recorded.get("datetime"))
    # tmux gives whole seconds, so a session made in the same second reads up to 1 s earlier.
    return started is not None and started - 1 <= live[1] <= started + SESSION_AFTER


def journal_knows(record: Mapping[str, Any], recorded_host: Any) -> bool:
    """Whether a journal holds the identity of the session it names, made on this host: only
    then is that session killed by a recovery, never on a guess."""
    return all(field in record for field in SESSION_FIELDS) and recorded_host in (None, host())


def kill_journaled(record: Mapping[str, Any], recorded_host: Any, live: Mapping[str, Identity]) -> None:
    """Kill the session a journal's ``record`` names, if it is the one the journal knows."""
    from runs_manager import tmux

    session = record.get("session")
    if isinstance(session, str) and session in live and journal_knows(record, recorded_host) and same_session(record, live[session]):
        tmux.kill(live[session][0])


def live_session(session: str, entry: Mapping[str, Any], live: Mapping[str, Identity]) -> Optional[str]:
    """The run's live session: under its recorded name, or found by its id (renamed by an
    mv undone half-way, or by the user)."""
    if session in live and same_session(entry, live[session]):
        return session
    if entry.get(SESSION_FIELDS[0]) is None:
        return None
    return next((s for s, identity in live.items() if same_session(entry, identity)), None)


def stop_session(name: str, entry: Mapping[str, Any], live: Mapping[str, Identity]) -> Optional[str]:
    """Kill the run's tmux session if it is still running here; returns a note if not done."""
    from runs_manager import tmux
    from runs_manager.output import printable

    session = entry.get("tmux_session")
    if not isinstance(session, str):
        session = names.session_name(name)
    shown = printable(session)
    recorded_host = entry.get("host")
    if recorded_host not in (None, host()):
        return f"session '{shown}' of host {printable(str(recorded_host))} was not stopped: stop it there" if session in live else None
    found = live_session(session, entry, live)
    if found is None:
        return f"session '{shown}' is not the one run '{printable(name)}' started; left alone" if session in live else None
    tmux.kill(live[found][0])
    return None

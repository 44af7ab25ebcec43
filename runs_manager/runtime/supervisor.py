"""The supervisor: runs a run's program and records how it ended. Shared by every launcher.

It holds a lock on the run's log for as long as it lives (proof that the run is alive:
see processes.py), gives the program a pseudo-terminal of its own under a keeper process
(program.py; the program sees a terminal, and progress bars and colours behave as in a
shell), copies everything the program writes there to the log and to its own terminal,
and passes keys and window sizes through (relay.py). When the
program ends it records ``ended`` and ``exit_code`` (as a shell reports it: 128+N for
signal N) in the run's entry, under the database lock.

A hang-up (the tmux session closed, its server killed) is passed on to the program, as a
terminal would, and recorded as the reason the run was killed.
"""
from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from runs_manager import processes
from runs_manager.runtime import heartbeat, runstate
from runs_manager.runtime.relay import Relay
from runs_manager.settings import Settings

STARTING_POLL = 0.02  # seconds, growing to STARTING_POLL_MAX: `runs new` may have died
STARTING_LIMIT = 300.0  # seconds: `runs new` records a run within seconds of starting it
STARTING_POLL_MAX = 0.1  # an undone run's supervisor must end within runs.SESSION_EXIT_WAIT
RECORD_ATTEMPTS = 30  # without a state file, where the outcome is kept meanwhile
RECORD_RETRY = 2.0  # seconds, growing to RECORD_RETRY_MAX
RECORD_RETRY_MAX = 60.0
HANGUP = "hang-up: the run's terminal (its tmux session or server) was closed"


def main(args: Sequence[str]) -> int:
    runs_dir, db_filename, name, started, keep, dashes, *program = args
    assert dashes == "--" and program, "usage: RUNS_DIR DB_FILENAME NAME STARTED keep-open|exit -- PROGRAM..."
    from runs_manager.runtime import runfiles

    settings = Settings(runs_dir=runs_dir, db_filename=db_filename)
    try:
        log = os.open(runfiles.log_path(settings, name), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0  # `runs new` died and its run was undone
    # Taken before `runs new` records the run (it waits for it): a recorded run without
    # an outcome is running exactly as long as this lock is held.
    fcntl.lockf(log, fcntl.LOCK_EX)
    relay = Relay(log)  # from now on, a hang-up or a kill request is the run's end
    # Beating before the run is recorded: other hosts see it running as soon as it is.
    relay.tick = beater = heartbeat.Beater(settings.runs_dir, name)
    if not _recorded(settings, name):
        beater.stop()
        return 0
    # After the wait: `runs new` of a sweep waits for each supervisor's lock, and a hundred
    # supervisors importing at once would make it wait for every import.
    _load_recording()
    os.environ.update(runfiles.environment(settings, name))  # here, so that every launcher's runs get them
    if os.path.realpath(os.getcwd()).startswith(os.path.realpath(settings.code_root) + os.sep):
        from runs_manager.runtime.snapshots import make_link_targets

        make_link_targets(settings.code_root, os.getcwd())  # outputs/ and the like, for the program to write into
    state = _reserve(settings, name, started, relay)
    if state is not None and state.ran_before():
        relay.note(_begin_again(settings, name, state))
    beater.on_request = relay.signal  # `runs kill` on another host asks through the heartbeat
    code = relay.run(program)
    _end(settings, name, started, code, relay, state)
    beater.stop()
    os.close(log)  # drops the lock: the run is over, and its outcome recorded
    if keep == "keep-open" and not relay.detached:
        _keep_open(name, code, relay)
    return 0


def _recorded(settings: Settings, name: str) -> bool:
    """Wait until `runs new` has recorded the run (its STARTING marker goes); False if it
    never does, or undid the run: then the program never runs (a batch job would hold its node)."""
    from runs_manager.runtime import runfiles

    tensorboard = runfiles.tensorboard_dir(settings, name)
    delay = STARTING_POLL
    deadline = time.monotonic() + STARTING_LIMIT
    while os.path.exists(os.path.join(tensorboard, runfiles.STARTING)):
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 1.5, STARTING_POLL_MAX)
    return os.path.isdir(tensorboard)


def _end(settings: Settings, name: str, started: str, code: int, relay: Relay, state: Optional[runstate.Record]) -> None:
    """Keep the outcome in the state file, record it in the entry, and start the queued runs
    its end makes room for."""
    from runs_manager.runtime import runfiles

    ended = _now()
    relay.flush()
    outcome: Dict[str, Any] = {"ended": ended, "exit_code": code}
    if relay.hung_up:
        outcome["killed"] = HANGUP
    if state is not None:
        outcome.update(killed=state.kill_reason() or outcome.get("killed"))
        outcome = {key: value for key, value in outcome.items() if value is not None}
        try:
            state.write(**outcome)  # in place: kept even on a full disk
        except OSError as e:
            relay.note(f"could not keep the outcome in {runstate.path(settings, name)} ({e.strerror})")
    note, in_queue = record(settings, name, started, outcome, state, relay.note)
    relay.note(note)
    if in_queue:  # its end may free a slot or a GPU for queued runs: no daemon starts them
        for key in (*runfiles.ENVIRONMENT.values(), "CUDA_VISIBLE_DEVICES"):
            os.environ.pop(key, None)  # this run's own: a tmux server it starts must not inherit them
        relay.note(advance_queue(settings))


def _keep_open(name: str, code: int, relay: Relay) -> None:
    """A single run's tmux session stays open: the terminal back as it was, and a shell."""
    relay.restore_terminal()
    print(f"\n[runs] {name} exited with status {code}; exit this shell to close the session.", flush=True)
    shell = os.environ.get("SHELL") or "/bin/sh"
    from runs_manager.runtime import program as program_

    program_.reset_signals()  # the shell gets a shell's signals, not Python's
    with contextlib.suppress(OSError):
        os.execvp(shell, [shell])


def _reserve(settings: Settings, name: str, started: str, relay: Relay) -> Optional[runstate.Record]:
    """The run's state file, made with the run; the keeper's identity goes into it as soon
    as the keeper exists (see runstate.py)."""
    state = runstate.Record.open(settings, name, started)
    if state is None:
        return None  # a run made by an older runs: its entry's datetime tells it

    def started(keeper: int) -> None:
        with contextlib.suppress(OSError):
            state.write(keeper=[keeper, processes.start_time(keeper)], host=runstate.host(), boot=runstate.boot_id())

    relay.private.append(state.fd)
    relay.on_start = started
    return state


REQUEUED = "requeued by Slurm"
OUTCOME_KEYS = ("ended", "exit_code", "killed")


def _begin_again(settings: Settings, name: str, state: runstate.Record) -> Optional[str]:
    """This run's supervisor ran before: the scheduler requeued its job (a preemption, a
    node failure) and runs it again. The last attempt's outcome (recorded, kept in the state
    file, or none if it died first) moves to the entry's ``attempts``; ``restarts`` counts
    them and ``restarted`` is when this attempt began, so the run is running, not killed.
    Returns a note if the entry could not be changed."""
    from runs_manager.runtime import runs

    last = state.fields
    kept = runstate.outcome(last) or {}
    try:
        with runs.database(settings).writing() as txn:
            entry = txn.entry(name)
            if entry is not None and state.is_current():
                attempt = {key: entry.pop(key) for key in OUTCOME_KEYS if key in entry} or dict(kept)
                if not attempt:
                    attempt["lost"] = "its supervisor ended without recording an outcome"
                if attempt.get("exit_code") != 0 and "killed" not in attempt:
                    attempt["killed"] = REQUEUED
                if isinstance(last.get("host"), str):
                    attempt["host"] = last["host"]
                attempts = entry.get("attempts")
                entry["attempts"] = [*(attempts if isinstance(attempts, list) else []), attempt]
                entry.update(restarts=len(entry["attempts"]), restarted=_now())
                txn.update(name, entry)
    except Exception as e:  # the program runs all the same; its outcome is kept as ever
        return f"could not record that run '{name}' started again ({e})"
    finally:
        with contextlib.suppress(OSError):
            state.begin_again()  # after the entry has the last outcome: it is never only here
    return None


def _load_recording() -> None:
    """Import now what recording the outcome needs: the installed copy of runs may be
    replaced (a rebuilt virtualenv) during a run of several days."""
    from runs_manager import times  # noqa: F401
    from runs_manager.runtime import runs  # noqa: F401
    from runs_manager.store import indexing, journal, splice, transaction, yamlfile  # noqa: F401


def record(settings: Settings, name: str, started: str, outcome: Dict[str, Any], state: Optional[runstate.Record] = None,
           say: Callable[[Optional[str]], None] = lambda note: None) -> Tuple[Optional[str], bool]:
    """Add the outcome to the run's entry; returns a note if it could not be done, and
    whether the run was one of a queue's. With the outcome kept in the state file, it tries
    for as long as it lives (a full disk, a damaged database: a person may fix it), backing
    off; the next command to take the lock copies it meanwhile, if this one dies."""
    from runs_manager.runtime import runs
    from runs_manager.errors import RunsError

    delay = RECORD_RETRY
    db = runs.database(settings)
    if state is not None and processes.lock_holder(db.lock_path) is not None:
        state.flag_unrecorded()  # it will wait for the lock: should it die meanwhile, the next command copies it
    for attempt in itertools.count(1):
        try:
            with db.writing() as txn:
                entry = txn.entry(name)
                if entry is None or not _is_this_run(entry, started, state):
                    return None, False  # deleted (or deleted and made anew) while it ran
                if "exit_code" not in entry:
                    if "killed" in entry:
                        outcome.pop("killed", None)  # `runs kill` said why first
                    entry.update(outcome)
                    txn.update(name, entry)
                return None, "queue" in entry
        except Exception as e:  # a full disk, a damaged file, a value YAML cannot hold: try again
            problem = str(e) if isinstance(e, (RunsError, OSError)) else f"{type(e).__name__}: {e}"
            if state is None and attempt >= RECORD_ATTEMPTS:
                return f"could not record how run '{name}' ended ({problem})", False
            if attempt == 1:
                if state is not None:
                    with contextlib.suppress(OSError):
                        state.write(unrecorded=True)  # statuses read the outcome from the state file now
                    state.flag_unrecorded()
                say(f"could not record how run '{name}' ended yet ({problem}); trying again")
            time.sleep(delay)
            delay = min(delay * 1.5, RECORD_RETRY_MAX)
    raise AssertionError("unreachable")


def _is_this_run(entry: Dict[str, Any], started: str, state: Optional[runstate.Record]) -> bool:
    """Whether the entry is still the run this supervisor was started for: its state file
    is still the one it made (hand edits of the entry cannot change that), or, without one,
    the entry's start time is the one it was given."""
    if state is not None:
        return state.is_current()
    return entry.get("datetime") == started


def advance_queue(settings: Settings) -> Optional[str]:
    """Start the queued runs that fit now; a note of what was started, or why not."""
    try:
        from runs_manager.runtime import queue, runs

        with runs.database(settings).writing() as txn:
            started, notes, _ = queue.advance(settings, txn)
    except Exception as e:  # the run's outcome is recorded; `runs resume` can start the queue
        return f"could not start the next queued runs ({e}); 'runs resume' starts them"
    return "; ".join([f"started queued run '{name}'" for name in started] + notes) or None


def _now() -> str:
    from runs_manager import times

    return times.now()

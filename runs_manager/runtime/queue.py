"""The queue of runs waiting for a slot or a GPU, run without a daemon.

`runs new` of a sweep (and of any run given --max-parallel or --gpus) records its runs
as ``queued`` (``queued: true``, and under ``queue`` what starting them needs), all in one
append, then starts as many as fit: all of them, without limits. Whenever a run of a
queue ends, its supervisor calls :func:`advance` under the database lock: that starts
the queued runs that now fit, oldest first. Under the lock, two ending runs never start the same run or give two
runs one GPU. GPUs are shared by all the queues of a host: a GPU is busy while any run
on it is alive. `runs resume` calls :func:`advance` too: for queued runs whose running
predecessors were lost (a reboot), which no supervisor will ever start.

A queued run starts from the snapshot of its code (snapshots.py) whatever the work tree
holds by then. One recorded without a snapshot (``snapshot: never``, or by an older runs)
starts from the work tree as it is then, so only if the tree is still at the run's commit
(and, for a run with a patch, holds the same changes); otherwise it stays queued, and
`runs resume` says why.
"""
from __future__ import annotations

import collections
import contextlib
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from runs_manager import times
from runs_manager.runtime import launch, runfiles, sessions
from runs_manager.errors import RunsError
from runs_manager.settings import Settings
from runs_manager.runtime.status import is_queued as is_queued  # the rule is status.py's, one for both

Entry = Dict[str, Any]


def fields(queue_id: str, max_parallel: Optional[int], gpus: Optional[Sequence[str]], settings: Settings, directory: str) -> Entry:
    """What a queued entry holds under ``queue``: enough to start it from any process."""
    queue: Entry = {"id": queue_id, "directory": os.path.abspath(directory)}
    if max_parallel is not None:
        queue["max_parallel"] = max_parallel
    if gpus:
        queue["gpus"] = ",".join(gpus)
    if settings.virtualenv_path:
        queue["virtualenv_path"] = os.path.abspath(os.path.expanduser(settings.virtualenv_path))
    if settings.keep_sessions != Settings().keep_sessions:  # whoever starts them, as runs new was told
        queue["keep_sessions"] = settings.keep_sessions
    return queue


def _queue_of(entry: Mapping[str, Any]) -> Entry:
    queue = entry.get("queue")
    return queue if isinstance(queue, dict) else {}


def _gpus(queue: Mapping[str, Any]) -> List[str]:
    from runs_manager.text.sweeps import gpu_key

    gpus = queue.get("gpus")
    return [gpu_key(gpu) for gpu in gpus.split(",") if gpu] if isinstance(gpus, str) else []


class Plan:
    """Which queued runs fit now, and why the others wait."""

    def __init__(self, settings: Settings, without_outcome: Sequence[Tuple[str, Entry]], only: Optional[Set[str]] = None) -> None:
        from runs_manager.launchers import tmux as tmux_launcher

        here = launch.host()
        mine = [(name, entry) for name, entry in without_outcome if entry.get("host") == here]
        self.queued = [(name, entry) for name, entry in mine if is_queued(entry) and (only is None or name in only)]
        others = [(name, entry) for name, entry in mine if not is_queued(entry) and entry.get("launcher") == tmux_launcher.NAME]
        alive = tmux_launcher.TmuxLauncher().alive(settings, others) if self.queued and others else {}
        live = [entry for name, entry in others if alive.get(name)]
        from runs_manager.text.sweeps import gpu_key

        self.busy = {gpu_key(entry["cuda_visible_devices"]) for entry in live if isinstance(entry.get("cuda_visible_devices"), str)}
        self.running = collections.Counter(_queue_of(entry).get("id") for entry in live if "queue" in entry)

    def fitting(self) -> List[Tuple[str, Entry, Optional[str]]]:
        """(name, entry, GPU or None) of the queued runs that may start now, oldest first."""
        chosen = []
        busy, running = set(self.busy), collections.Counter(self.running)
        for name, entry in self.queued:
            queue = _queue_of(entry)
            limit = queue.get("max_parallel")
            if isinstance(limit, int) and running[queue.get("id")] >= limit:
                continue
            gpu = None
            if _gpus(queue):
                free = [gpu for gpu in _gpus(queue) if gpu not in busy]
                if not free:
                    continue
                gpu = free[0]
                busy.add(gpu)
            running[queue.get("id")] += 1
            chosen.append((name, entry, gpu))
        return chosen


def stalled_note(settings: Settings, without_outcome: Sequence[Tuple[str, Entry]]) -> Optional[str]:
    """A note naming the queued runs of this host that nothing will start: no run of a
    queue is running here, so no supervisor's end will start them (the `runs new` that
    recorded them was killed, or their running predecessors were lost)."""
    from runs_manager.launchers import tmux as tmux_launcher

    here = launch.host()
    mine = [(name, entry) for name, entry in without_outcome if entry.get("host") == here]
    queued = sum(1 for _, entry in mine if is_queued(entry))
    if not queued:
        return None
    runners = [(name, entry) for name, entry in mine if not is_queued(entry) and "queue" in entry
               and entry.get("launcher") == tmux_launcher.NAME]
    alive = tmux_launcher.TmuxLauncher().alive(settings, runners) if runners else {}
    if any(alive.get(name) is True for name, _ in runners):
        return None
    runs = f"{queued} queued run{'s' if queued != 1 else ''}"
    return f"{runs} of this host will not start by themselves (no run of a queue is running here); 'runs resume' starts them"


TreeKey = Tuple[Any, ...]  # (directory, commit, patch SHA-256 or None): the tree a queued run needs


def advance(settings: Settings, txn: Any, only: Optional[Set[str]] = None, fresh: Optional[TreeKey] = None) -> Tuple[List[str], List[str], int]:
    """Start the queued runs that fit now (of ``only``, if given), oldest first; the
    caller holds the lock. Returns (started, notes, how many stay queued). ``fresh``: a
    tree the caller (`runs new`) has just checked, not to be checked again."""
    plan = Plan(settings, txn.entries(has_outcome=False), only)
    if not plan.queued:
        return [], [], 0
    chosen, notes = _tree_checked(settings, plan.fitting(), fresh)
    if chosen:
        _start(settings, txn, chosen)
    return [name for name, _, _ in chosen], notes, len(plan.queued) - len(chosen)


def _tree_checked(
    settings: Settings, chosen: List[Tuple[str, Entry, Optional[str]]], fresh: Optional[TreeKey]
) -> Tuple[List[Tuple[str, Entry, Optional[str]]], List[str]]:
    """The chosen runs whose work tree is still what they were recorded from."""
    verdicts: Dict[TreeKey, Optional[str]] = {} if fresh is None else {fresh: None}
    kept, notes = [], []
    for name, entry, gpu in chosen:
        key = (_queue_of(entry).get("directory"), entry.get("commit"), entry.get("patch_sha256"))
        if key not in verdicts:
            verdicts[key] = _tree_problem(settings, entry)
            if verdicts[key]:
                notes.append(f"{verdicts[key]}: its queued runs wait; restore it and run 'runs resume'")
        if verdicts[key] is None:
            kept.append((name, entry, gpu))
    return kept, notes


def _tree_problem(settings: Settings, entry: Mapping[str, Any]) -> Optional[str]:
    from runs_manager import git

    directory = str(_queue_of(entry).get("directory"))
    if entry.get("code_dir"):  # it runs from its snapshot: the work tree may have moved on
        return None if os.path.isdir(directory) else f"the snapshot {entry['code_dir']} of the queued runs' code is gone"
    commit = entry.get("commit")
    try:
        head = git.head_commit(directory)
        if head != commit:
            return f"the work tree {directory} is at commit {head[:12]}, not at {str(commit)[:12]} where the queued runs were recorded"
        if "patch_sha256" in entry:
            from runs_manager.runtime import patches

            if patches.make(directory, settings.runs_dir).sha256 != entry["patch_sha256"]:
                return f"the uncommitted changes in {directory} are not those the queued runs were recorded with"
        elif git.dirty_paths(directory, except_under=settings.runs_dir):
            return f"the work tree {directory} has uncommitted changes the queued runs were not recorded with"
    except (RunsError, OSError) as e:
        return f"the work tree {directory} cannot be checked ({e})"
    return None


def _start(settings: Settings, txn: Any, chosen: List[Tuple[str, Entry, Optional[str]]]) -> None:
    """Start the chosen runs side by side, then record them as started in one change of
    the file; a crash half-way is undone by the next command (undo_start)."""
    from runs_manager import faults, interrupts, names, tmux
    from runs_manager.launchers import tmux as tmux_launcher

    launcher = tmux_launcher.TmuxLauncher()
    base = launcher.check(settings)
    # Journaled twice, not twice per run (each write is synced): the sessions' identities
    # come after; a session the journal has none for is ended by its own supervisor,
    # which finds its TensorBoard directory gone.
    intent: Entry = {"op": "start", "host": launch.host(), "runs": [{"name": name, "session": names.session_name(name)} for name, _, _ in chosen]}
    txn.intend(intent)
    started: Dict[str, Tuple[str, Entry]] = {}
    markers, created = [], []
    with interrupts.deferred():  # a Ctrl-C stops once these are started and recorded
        try:
            starts = [_prepared(settings, base, name, entry, gpu, markers, created) for name, entry, gpu in chosen]
            for (name, entry, gpu), fields in zip(chosen, _start_sessions(launcher, starts)):
                record = {key: value for key, value in entry.items() if key != "queued"}
                record.update(fields, started=times.now())
                if gpu is not None:
                    record["cuda_visible_devices"] = gpu
                started[name] = (name, record)
            for run in intent["runs"]:
                run.update({key: started[run["name"]][1][key] for key in sessions.SESSION_FIELDS},
                           session=started[run["name"]][1]["tmux_session"])
            txn.intend(intent)
            faults.point("queue:session-started")
            tmux_launcher.wait_for_supervisors([(runfiles.log_path(settings, name), record) for name, (_, record) in started.items()])
            txn.change(started)
        except BaseException:
            live = tmux.sessions()
            for name, (_, record) in started.items():
                sessions.stop_session(name, record, live)
            for name in created:
                runfiles.uncreate(settings, name, txn)
            txn.done()
            raise
    for marker in markers:  # recorded: their programs may start
        with contextlib.suppress(OSError):
            os.unlink(marker)
    for name in started:  # started with it: the kept environment (credentials, maybe) goes
        with contextlib.suppress(OSError):
            os.unlink(runfiles.env_path(settings, name))
    txn.done()


def _prepared(settings: Settings, base: launch.Environment, name: str, entry: Entry, gpu: Optional[str],
              markers: List[str], created: List[str]) -> Tuple[Any, launch.Environment]:
    """A queued run's files made (its STARTING marker added to ``markers``, its name to
    ``created``), and what starting it takes: its own settings, directory and environment."""
    from runs_manager.launchers import Start

    queue = _queue_of(entry)
    keep = queue.get("keep_sessions")
    run_settings = settings._replace(virtualenv_path=queue.get("virtualenv_path"),
                                     keep_sessions=keep if keep in ("always", "single", "never") else "single")
    env = _environment(base, launch.stored_environment(runfiles.env_path(settings, name)), gpu)
    markers.append(runfiles.create(run_settings, name, entry["datetime"]))
    created.append(name)
    return Start(run_settings, name, entry["datetime"], entry["launched"], str(queue.get("directory")),
                 wait=False, member="sweep" in entry), env


SESSION_THREADS = 8  # tmux clients at once: each waits for the server's answer


def _start_sessions(launcher: Any, starts: List[Tuple[Any, launch.Environment]]) -> List[Entry]:
    """Each run's session fields, in order. The first session is started alone (it may
    start the tmux server), the others by a few tmux clients at a time."""
    if not starts:
        return []
    first = launcher.start(*starts[0])
    if len(starts) == 1:
        return [first]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(SESSION_THREADS) as pool:
        futures = [pool.submit(launcher.start, *start) for start in starts[1:]]
    fields, failed = [first], None
    for future in futures:
        if future.exception() is not None:
            failed = failed or future.exception()
            fields.append({})
        else:
            fields.append(future.result())
    if failed is not None:
        # Stop the ones that did start before saying why.
        from runs_manager import tmux

        live = tmux.sessions()
        for (start, _), started in zip(starts, fields):
            if started:
                sessions.stop_session(start.name, started, live)
        raise failed
    return fields


def _environment(base: launch.Environment, kept: Optional[Dict[str, str]], gpu: Optional[str]) -> launch.Environment:
    """A started run's environment: the one its `runs new` kept (else this process's, as a
    run queued by an older runs has none), never the RUNS_* variables of the run whose
    supervisor this may be, and CUDA_VISIBLE_DEVICES from the run's own GPU alone."""
    wanted = dict(kept if kept is not None else launch.captured_environment())
    if gpu is not None:
        wanted["CUDA_VISIBLE_DEVICES"] = gpu
    return launch.Environment(base.server, wanted)


def undo_start(settings: Settings, intent: Mapping[str, Any], index: Any) -> None:
    """A start of queued runs died half-way: keep each run recorded as started, put the
    others back in the queue (their sessions stopped, their new files removed)."""
    from runs_manager import names, tmux

    runs = intent.get("runs")
    if not isinstance(runs, list):
        return
    live = tmux.sessions() if tmux.installed() else {}
    for run in runs:
        name = run.get("name") if isinstance(run, dict) else None
        if not isinstance(name, str) or not names.is_valid(name):
            continue
        entry = index.entry(name)
        if entry is not None and not is_queued(entry):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(runfiles.tensorboard_dir(settings, name), runfiles.STARTING))
            continue
        sessions.kill_journaled(run, intent.get("host"), live)
        runfiles.uncreate(settings, name, index)


def remove_from_queue(entry: Entry, why: str) -> Entry:
    """The entry of a queued run that will never start: killed, without an exit code."""
    record = {key: value for key, value in entry.items() if key != "queued"}
    record.update(killed=why, ended=times.now())
    return record

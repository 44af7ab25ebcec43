"""Concurrency and locking: many `runs` processes on one database lose nothing.

- 12 concurrent `runs new`: 12 entries, 12 sessions, a file that parses.
- A storm of 50 processes (new with distinct and colliding names, delete -y, list,
  table): nothing lost or duplicated, every run has its own name, readers always see a
  consistent set of runs, and the YAML file parses at every moment.
- Runs ending at once, and runs ending in the middle of the storm: every outcome recorded.
- The lock is a POSIX fcntl lock on <db>.lock, held only around read-modify-write: a
  writer waits for it, a dead holder never blocks, readers never need it.
"""
from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import yaml

from tests.conftest import NO_FLAGS, Result, run_process
from tests.test_reliability import (
    WAITING,
    Proc,
    assert_clean_exit,
    assert_consistent_listing,
    assert_intact,
    assert_no_orphans,
    assert_nothing,
    assert_whole,
    db_file,
    db_names,
    leftovers,
    listed,
    load_db,
    lock_file,
    make_victim,
    started_name,
    tmux_sessions,
    wait_for,
)

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def table_names(result: Result) -> List[str]:
    """The name column of `runs table` (names hold no spaces)."""
    lines = result.out.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("---"))
    return [line.split()[0] for line in lines[rule + 1 :] if line.strip()]


def test_runs_ending_at_once_lose_no_outcome(repo: Path, runs: Callable[..., Result]) -> None:
    """Twelve supervisors record their outcomes at the same moment: each under the lock,
    none lost, none written into another run's entry."""
    go = repo.parent / "go"
    names = [f"e{i:02d}" for i in range(12)]
    for i, name in enumerate(names):
        assert runs("new", name, f"while [ ! -e {go} ]; do sleep 0.01; done; exit {i}", *NO_FLAGS).code == 0
    before = load_db(repo)
    go.touch()
    assert wait_for(lambda: all("exit_code" in entry for entry in load_db(repo).values()), timeout=30)
    db = load_db(repo)
    assert list(db) == names
    for i, name in enumerate(names):
        assert db[name]["exit_code"] == i
        assert {k: v for k, v in db[name].items() if k not in ("ended", "exit_code")} == before[name]
    assert leftovers(repo) == []



def test_queued_runs_started_by_runs_ending_at_once_start_once_each(repo: Path, runs: Callable[..., Result]) -> None:
    """Four runs on four GPUs end at the same moment, and each supervisor starts queued
    runs: under the lock, no queued run starts twice and no GPU gets two runs."""
    go = repo.parent / "go"
    marks = repo.parent / "marks"
    marks.mkdir()
    # Every run appends its name and GPU to a file of its own; the first four wait for go.
    command = f'echo "$CUDA_VISIBLE_DEVICES" >> {marks}/{{i}}; while [ {{i}} -lt 4 ] && [ ! -e {go} ]; do sleep 0.01; done; sleep 0.{{i}}'
    result = runs("new", "c", command, "--grid", "i=" + ",".join(map(str, range(12))), "--gpus", "0,1,2,3", *NO_FLAGS)
    assert result.code == 0, result.err
    assert "4 started, 8 queued" in result.out
    go.touch()
    names = [f"c/i-{i}" for i in range(12)]
    assert wait_for(lambda: all("exit_code" in load_db(repo).get(name, {}) for name in names), timeout=60)
    db = load_db(repo)
    assert all(db[name]["exit_code"] == 0 for name in names)
    for i, name in enumerate(names):
        assert (marks / str(i)).read_text() == db[name]["cuda_visible_devices"] + "\n", f"{name} started twice or on another GPU"
    # No GPU ran two runs at once: on each GPU, each run started after the one before it ended.
    for gpu in "0123":
        on_gpu = sorted((db[name]["started"], db[name]["ended"]) for name in names if db[name]["cuda_visible_devices"] == gpu)
        assert all(later[0] >= earlier[1] for earlier, later in zip(on_gpu, on_gpu[1:])), on_gpu
    assert leftovers(repo) == []

def test_twelve_concurrent_new(repo: Path) -> None:
    assert tmux_sessions() == {}  # no tmux server yet, no runs directory yet
    names = [f"c{i:02d}" for i in range(12)]
    procs = [Proc("new", name, "sleep 600; true") for name in names]
    results = [proc.finish(60) for proc in procs]
    for name, result in zip(names, results):
        assert_clean_exit(result)
        assert started_name(result) == name
    assert sorted(db_names(repo)) == names  # every entry, once
    db, live = load_db(repo), tmux_sessions()
    for name in names:
        assert_whole(repo, name, db, live)
    assert sorted(live) == names
    assert_no_orphans(repo)
    assert leftovers(repo) == []
    assert listed(run_process("list", timeout=30)) == db_names(repo)


class _Watcher(threading.Thread):
    """Reads the database over and over while other processes change it."""

    def __init__(self, check: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.check = check
        self.stop = threading.Event()
        self.count = 0
        self.failures: List[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.check()
            except Exception as e:  # noqa: BLE001 - every failure is reported by the test
                self.failures.append(f"{type(e).__name__}: {e}")
            self.count += 1


def test_storm_of_fifty_processes(repo: Path, runs: Callable[..., Result]) -> None:
    keep = [make_victim(runs, repo, f"keep-{i}") for i in range(3)]
    doomed = [make_victim(runs, repo, f"del-{i}").name for i in range(8)]
    # Runs that all end in the middle of the storm: their supervisors record outcomes
    # while new and delete rewrite the file.
    go = repo.parent / "go"
    enders = [f"end-{i}" for i in range(6)]
    for name in enders:
        assert runs("new", name, f"while [ ! -e {go} ]; do sleep 0.02; done; exit {len(name)}", *NO_FLAGS).code == 0
    keep_names = [v.name for v in keep] + enders
    # Every name that can exist during the storm.
    possible = re.compile(r"keep-\d|del-\d|end-\d|n-\d+|dup(\d{10}(-\d+)?)?|keep-0\d{10}(-\d+)?")

    def yaml_parses() -> None:
        # As the README tells other programs to read the file: under a shared lock on
        # <db>.lock (without it, an append crossing a page boundary shows a page at a time).
        fd = os.open(str(db_file(repo)) + ".lock", os.O_RDONLY)
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH)
            data = yaml.load(db_file(repo).read_bytes(), Loader=_Loader)
        finally:
            os.close(fd)
        missing = set(keep_names) - set(data)
        assert not missing, f"the file lacks {missing}"

    def list_is_consistent() -> None:
        result = run_process("list", timeout=60)
        assert_clean_exit(result)
        names = listed(result)
        assert len(names) == len(set(names)), f"listed twice: {names}"
        assert set(keep_names) <= set(names), f"runs missing from a listing: {set(keep_names) - set(names)}"
        assert all(possible.fullmatch(n) for n in names), f"unknown names listed: {names}"

    file_reader, list_reader = _Watcher(yaml_parses), _Watcher(list_is_consistent)
    commands: List[List[str]] = (
        [["new", f"n-{i}", "sleep 600; true"] for i in range(14)]
        + [["new", "dup", "sleep 600; true"] for _ in range(8)]
        + [["new", "keep-0", "sleep 600; true"] for _ in range(4)]
        + [["delete", name, "-y"] for name in doomed]
        + [["list"] for _ in range(8)]
        + [["table"] for _ in range(8)]
    )
    assert len(commands) == 50
    order = sorted(range(50), key=lambda i: (i * 7) % 50)  # interleave the kinds
    file_reader.start()
    list_reader.start()
    t0 = int(time.time())
    procs = {}
    for position, i in enumerate(order):
        procs[i] = Proc(*commands[i])
        if position == 20:
            go.touch()
    results = {i: proc.finish(90) for i, proc in procs.items()}
    t1 = int(time.time())
    file_reader.stop.set()
    list_reader.stop.set()
    file_reader.join(60)
    list_reader.join(60)

    for i, result in results.items():
        assert_clean_exit(result)
    printed = [started_name(results[i]) for i in range(26)]
    assert len(set(printed)) == 26, f"two runs got the same name: {printed}"
    names = db_names(repo)
    assert len(names) == len(set(names)), f"duplicate entries: {names}"
    assert sorted(names) == sorted(keep_names + printed), "entries lost or made up"

    dups = sorted(printed[14:22])
    assert dups.count("dup") == 1
    for name in dups:
        match = re.fullmatch(r"dup(\d{10})(-\d+)?", name) if name != "dup" else None
        assert name == "dup" or (match and t0 <= int(match.group(1)) <= t1), f"bad unique name {name!r}"
    for name in printed[22:26]:
        match = re.fullmatch(r"keep-0(\d{10})(-\d+)?", name)
        assert match and t0 <= int(match.group(1)) <= t1, f"bad unique name {name!r}"

    assert wait_for(lambda: all("exit_code" in load_db(repo)[name] for name in enders), timeout=30), "an outcome was lost"
    db, live = load_db(repo), tmux_sessions()
    assert [db[name]["exit_code"] for name in enders] == [len(name) for name in enders]
    assert_intact(keep, db, live)
    for name in printed:
        assert_whole(repo, name, db, live)
    for name in doomed:
        assert_nothing(repo, name, db, live)
    for i in range(34, 42):  # list
        assert_consistent_listing(results[i], must=keep_names, may=set(printed) | set(doomed))
    for i in range(42, 50):  # table
        rows = table_names(results[i])
        assert len(rows) == len(set(rows)) and set(keep_names) <= set(rows) <= set(keep_names + printed + doomed)
    assert_no_orphans(repo)
    assert leftovers(repo) == []
    assert listed(run_process("list", timeout=30)) == names

    assert file_reader.count > 0 and list_reader.count > 0
    assert not file_reader.failures, f"a reader of the YAML file saw it broken: {file_reader.failures[:3]}"
    assert not list_reader.failures, f"`runs list` during the storm: {list_reader.failures[:3]}"


# The lock -----------------------------------------------------------------------------


def _hold_lock(repo: Path) -> int:
    fd = os.open(lock_file(repo), os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    return fd


def test_writer_waits_for_the_posix_lock_then_completes(repo: Path, runs: Callable[..., Result]) -> None:
    keep = make_victim(runs, repo, "keep-a")
    fd = _hold_lock(repo)  # a POSIX (fcntl) lock on <db>.lock, as runs takes it
    try:
        proc = Proc("new", "blocked", "sleep 600; true")
        assert not wait_for(lambda: not proc.running(), timeout=2.0), f"runs did not wait for the lock: {proc.err}"
        assert wait_for(lambda: WAITING in proc.err, timeout=10.0), proc.err  # and it says why it waits
        assert "blocked" not in load_db(repo)
        assert "blocked" not in tmux_sessions()
    finally:
        os.close(fd)  # closing drops the lock
    result = proc.finish(20)
    assert_clean_exit(result)
    db, live = load_db(repo), tmux_sessions()
    assert_whole(repo, "blocked", db, live)
    assert_intact([keep], db, live)


def test_lock_of_a_killed_process_never_blocks(repo: Path, runs: Callable[..., Result]) -> None:
    keep = make_victim(runs, repo, "keep-a")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.lockf(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(600)\n",
            str(lock_file(repo)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        proc = Proc("new", "after", "sleep 600; true")
        assert wait_for(lambda: WAITING in proc.err or not proc.running(), timeout=10)
        assert proc.running(), "runs did not wait for a live holder of the lock"
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        result = proc.finish(10)  # the kernel dropped the dead holder's lock
        assert_clean_exit(result)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    # The lock file stays, and never blocks anyone.
    assert lock_file(repo).exists()
    start = time.monotonic()
    result = run_process("new", "next", "sleep 600; true", timeout=20)
    assert_clean_exit(result)
    assert WAITING not in result.err and time.monotonic() - start < 5
    db, live = load_db(repo), tmux_sessions()
    assert_whole(repo, "after", db, live)
    assert_whole(repo, "next", db, live)
    assert_intact([keep], db, live)


def test_readers_do_not_take_the_lock(repo: Path, runs: Callable[..., Result]) -> None:
    """The lock is held only around the read-modify-write: with a fresh index, every
    reader works while another process holds it."""
    keep = [make_victim(runs, repo, "keep-a", "--description=first"), make_victim(runs, repo, "keep.b")]
    fd = _hold_lock(repo)
    try:
        checks: Dict[tuple, Callable[[Result], bool]] = {
            ("list",): lambda r: listed(r) == ["keep-a", "keep.b"],
            ("list", "--pattern", r"keep\..*"): lambda r: listed(r) == ["keep.b"],
            ("table",): lambda r: "first" in r.out and "keep.b" in r.out,
            ("lookup", "keep-a", "description"): lambda r: r.out == "first\n",
            ("lookup", "keep.b"): lambda r: "tmux_session: keep~b" in r.out,
            ("reproduce", "keep-a"): lambda r: "runs new keep-a 'sleep 600; true'" in r.out,
            ("lookup", "keep-a", "status"): lambda r: r.out == "running\n",
            ("table", "--status", "running"): lambda r: table_names(r) == ["keep-a", "keep.b"],
            ("list", "--status", "finished"): lambda r: r.out == "",
            ("logs", "keep-a"): lambda r: r.code == 0,
        }
        for argv, check in checks.items():
            result = run_process(*argv, timeout=5)  # waiting for the lock would time out
            assert_clean_exit(result)
            assert WAITING not in result.err
            assert check(result), f"runs {argv}: {result.out!r}"
        # delete asks before it takes the lock: stdin is not a terminal, so that is a no
        result = run_process("delete", "keep-a", timeout=5)
        assert result.code == 1 and WAITING not in result.err and "Traceback" not in result.err
    finally:
        os.close(fd)
    db, live = load_db(repo), tmux_sessions()
    assert_intact(keep, db, live)


def test_ctrl_c_while_waiting_for_the_lock(repo: Path, runs: Callable[..., Result]) -> None:
    keep = make_victim(runs, repo, "keep-a")
    fd = _hold_lock(repo)
    try:
        proc = Proc("new", "impatient", "sleep 600; true")
        assert wait_for(lambda: WAITING in proc.err or not proc.running(), timeout=10)
        assert proc.running(), proc.err
        proc.signal(signal.SIGINT)
        result = proc.finish(10)
        assert result.code in (130, -signal.SIGINT), result
        assert "Traceback" not in result.err, result.err
    finally:
        os.close(fd)
    db, live = load_db(repo), tmux_sessions()
    assert_nothing(repo, "impatient", db, live)
    assert_intact([keep], db, live)
    assert leftovers(repo) == []
    follow = runs("new", "follow", "sleep 600; true")
    assert follow.code == 0 and WAITING not in follow.err, follow.err

"""Reliability: `runs` loses nothing when it is killed or interrupted half-way.

- Crashes at every named fault point of the write path (RUNS_CRASH_AT), and SIGKILLs at
  random moments: the database parses and keeps every earlier run, and once the next
  command has taken the lock there is a whole new run or nothing of it.
- Signals during a write, and Ctrl-C at the confirmation prompts under a pseudo-terminal:
  exit status 130 (or 0 when already done), no traceback, the same invariants.

The helpers at the top are shared with test_concurrency.py and test_hostile.py.
"""
from __future__ import annotations

import dataclasses
import fcntl
import glob
import os
import pty
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import pytest
import yaml

from runs_manager import faults
from tests.conftest import NO_FLAGS, ROOT, Result, run_process, wait_for

WAITING = "waiting for another runs command"
STARTED = re.compile(r"^Started run '([^']*)' at commit", re.M)
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# Processes ----------------------------------------------------------------------------


def runs_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("RUNS_CRASH_AT", None)
    env.update(extra or {})
    return env


class Proc:
    """`python -m runs_manager ARGV` started now; output goes to files readable while it runs."""

    def __init__(self, *argv: str, env: Optional[Dict[str, str]] = None, cwd: Any = None, **popen: Any) -> None:
        self.argv = argv
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "runs_manager", *argv],
            stdin=popen.pop("stdin", subprocess.DEVNULL),
            stdout=self._out,
            stderr=self._err,
            env=runs_env(env),
            cwd=cwd,
            **popen,
        )

    @staticmethod
    def _read(f: Any) -> str:
        # pread: the child shares the file offset, so never move it.
        return os.pread(f.fileno(), os.fstat(f.fileno()).st_size, 0).decode("utf-8", "backslashreplace")

    @property
    def out(self) -> str:
        return self._read(self._out)

    @property
    def err(self) -> str:
        return self._read(self._err)

    def running(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.running():
            self.popen.send_signal(sig)

    def finish(self, timeout: float = 30) -> Result:
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise AssertionError(f"runs {self.argv} did not finish within {timeout}s; stderr: {self.err}") from None
        result = Result(code, self.out, self.err)
        self._out.close()
        self._err.close()
        return result


def started_name(result: Result) -> str:
    match = STARTED.search(result.out)
    assert match, f"no 'Started run' line in {result.out!r} (stderr {result.err!r})"
    return match.group(1)


def assert_clean_exit(result: Result, codes: Iterable[int] = (0,)) -> None:
    assert result.code in tuple(codes), f"exit {result.code}; stdout {result.out!r}; stderr {result.err!r}"
    assert "Traceback" not in result.err, result.err


# The database -------------------------------------------------------------------------


def runs_dir(repo: Path) -> Path:
    return repo / ".runs"


def db_file(repo: Path) -> Path:
    return repo / ".runs" / ".runs.yml"


def journal_file(repo: Path) -> Path:
    return repo / ".runs" / ".runs.yml.pending"


def lock_file(repo: Path) -> Path:
    return repo / ".runs" / ".runs.yml.lock"


def load_db(repo: Path) -> Dict[str, Any]:
    """The YAML database as a strict parser reads it; fails the test if it does not parse."""
    path = db_file(repo)
    if not path.exists():
        return {}
    data = yaml.load(path.read_bytes(), Loader=_Loader)
    assert data is None or isinstance(data, dict), f"the database is a {type(data).__name__}, not a mapping"
    return data or {}


def db_names(repo: Path) -> List[str]:
    """Top-level keys of the YAML file in file order, duplicates kept (safe_load would hide them)."""
    path = db_file(repo)
    if not path.exists():
        return []
    node = yaml.compose(path.read_bytes(), Loader=_Loader)
    if node is None or isinstance(node, yaml.ScalarNode):
        return []
    assert isinstance(node, yaml.MappingNode)
    return [key.value for key, _ in node.value]


def assert_parses_or_recoverable(repo: Path, earlier: Iterable[str]) -> None:
    """Right after a crash: the file parses and holds every earlier run.

    Appends are plain appends, so a crash in the middle of one (the append:torn point, or
    a SIGKILL between two pages of a write) can leave half an entry at the end of the
    file. That is the one exception, and it is allowed only if the journal is there to
    say so (the next command cuts the torn tail off) and everything before the last entry
    parses and holds every earlier run.
    """
    path = db_file(repo)
    raw = path.read_bytes() if path.exists() else b""
    try:
        data = yaml.load(raw, Loader=_Loader) or {}
    except yaml.YAMLError as e:
        assert journal_file(repo).exists(), f"the database does not parse and no journal can repair it: {e}"
        starts = [m.start() for m in re.finditer(rb"^[^\s#]", raw, re.M)]
        assert starts, f"the database does not parse: {e}"
        data = yaml.load(raw[: starts[-1]], Loader=_Loader) or {}
    missing = set(earlier) - set(data)
    assert not missing, f"runs lost: {sorted(missing)}"


def leftovers(repo: Path) -> List[str]:
    """Temporary files, journals and SQLite hot journals of runs itself, which live at the
    top of the runs directory (below it, tensorboard/x-journal is just a run's directory)."""
    root = runs_dir(repo)
    if not root.is_dir():
        return []
    # Under the database lock: a supervisor recording an outcome right now has files of
    # its change in progress; only what a dead writer left counts.
    fd = os.open(str(lock_file(repo)), os.O_RDWR) if lock_file(repo).exists() else -1
    try:
        if fd != -1:
            fcntl.lockf(fd, fcntl.LOCK_EX)
        return sorted(
            p.name
            for p in root.iterdir()
            if ".tmp-" in p.name or p.name.endswith(".pending") or p.name.endswith("-journal")
        )
    finally:
        if fd != -1:
            os.close(fd)


# Runs: entry, TensorBoard directory, checkpoints, tmux session ----------------------


def tmux_sessions() -> Dict[str, str]:
    """Session name -> id on the test's own tmux server ({} when no server runs)."""
    done = subprocess.run(
        ["tmux", "list-sessions", "-F", "#{session_name}\t#{session_id}"], capture_output=True, text=True, timeout=15
    )
    if done.returncode != 0:
        return {}
    return dict(line.rsplit("\t", 1) for line in done.stdout.splitlines() if "\t" in line)


def session_of(name: str) -> str:
    return name.replace(".", "~")


def tb_dir(repo: Path, name: str) -> Path:
    return repo / ".runs" / "tensorboard" / name


def checkpoint_files(repo: Path, name: str) -> List[str]:
    base = str(repo / ".runs" / "checkpoints" / name)
    return ([base] if os.path.lexists(base) else []) + glob.glob(glob.escape(base) + ".ckpt*")


def assert_whole(repo: Path, name: str, db: Dict[str, Any], live: Dict[str, str]) -> None:
    assert name in db, f"run {name!r} has no entry"
    entry = db[name]
    assert tb_dir(repo, name).is_dir(), f"run {name!r} has an entry but no TensorBoard directory"
    session = entry.get("tmux_session")
    assert session in live, f"run {name!r} has an entry but its tmux session {session!r} is not running"
    assert live[session] == entry.get("tmux_session_id"), f"run {name!r}: session {session!r} is another one"


def assert_nothing(repo: Path, name: str, db: Dict[str, Any], live: Dict[str, str]) -> None:
    assert name not in db, f"run {name!r} still has an entry"
    assert not os.path.lexists(tb_dir(repo, name)), f"run {name!r} left its TensorBoard directory"
    assert session_of(name) not in live, f"run {name!r} left its tmux session running"
    assert not checkpoint_files(repo, name), f"run {name!r} left checkpoints"


def assert_whole_or_nothing(repo: Path, name: str, db: Dict[str, Any], live: Dict[str, str]) -> None:
    if name in db:
        assert_whole(repo, name, db, live)
    else:
        assert_nothing(repo, name, db, live)


def assert_no_orphans(repo: Path, allowed_sessions: Iterable[str] = ()) -> None:
    """Every tmux session and TensorBoard directory belongs to a run in the database."""
    db = load_db(repo)
    owned = {entry.get("tmux_session") for entry in db.values() if isinstance(entry, dict)}
    stray = sorted(set(tmux_sessions()) - owned - set(allowed_sessions))
    assert not stray, f"tmux sessions that belong to no run: {stray}"
    root = repo / ".runs" / "tensorboard"
    for dirpath, dirnames, _ in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            continue
        if rel in db:
            dirnames[:] = []  # the program's own files
            continue
        assert any(name.startswith(rel + "/") for name in db), f"TensorBoard directory of no run: {rel}"


@dataclasses.dataclass
class Victim:
    """A run made before the test's hostile or crashing command, with files and a live session."""

    name: str
    entry: Dict[str, Any]
    files: Dict[Path, str]

    @property
    def session_id(self) -> str:
        return str(self.entry["tmux_session_id"])


def make_victim(runs: Callable[..., Result], repo: Path, name: str, *extra: str, command: str = "sleep 600; true") -> Victim:
    """A run with files; with a ``command`` that ends, its entry is taken once its outcome is recorded."""
    result = runs("new", name, command, *extra)
    assert result.code == 0, result.err
    if command != "sleep 600; true":
        assert wait_for(lambda: "exit_code" in load_db(repo)[name], timeout=20), f"run {name!r} did not end"
    entry = load_db(repo)[name]
    checkpoints = repo / ".runs" / "checkpoints"
    files = {
        tb_dir(repo, name) / "events.out.tfevents.1": f"events of {name}\n",
        checkpoints / f"{name}.ckpt-1.index": f"index of {name}\n",
        checkpoints / f"{name}.ckpt-1.data-00000-of-00001": f"data of {name}\n",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert tmux_sessions().get(entry["tmux_session"]) == entry["tmux_session_id"]
    return Victim(name, entry, files)


def without_outcome(entry: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in ("ended", "exit_code", "killed")}


def assert_intact(victims: Sequence[Victim], db: Dict[str, Any], live: Dict[str, str]) -> None:
    for victim in victims:
        assert db.get(victim.name) == victim.entry, f"the entry of {victim.name!r} changed or vanished"
        for path, text in victim.files.items():
            assert path.is_file() and path.read_text() == text, f"{path} of {victim.name!r} was touched"
        session = victim.entry["tmux_session"]
        assert live.get(session) == victim.session_id, f"the tmux session of {victim.name!r} was touched"


def listed(result: Result) -> List[str]:
    return result.out.split("\n")[:-1] if result.out else []


def assert_consistent_listing(result: Result, must: Iterable[str], may: Iterable[str]) -> None:
    assert_clean_exit(result)
    names = listed(result)
    assert len(names) == len(set(names)), f"a run listed twice: {names}"
    assert set(must) <= set(names), f"runs missing from the listing: {sorted(set(must) - set(names))}"
    unknown = set(names) - set(must) - set(may)
    assert not unknown, f"runs listed that should not exist: {sorted(unknown)}"


# Crashes at the named fault points --------------------------------------------------

NEW_POINTS = (
    "new:journal-written",
    "new:dirs-created",
    "new:session-started",
    "append:journal-written",
    "append:torn",
    "append:written",
    "index:written",
    "atomic-write:temp-written",
    "index:rebuilding",
)
# The very first run: no runs directory, no database, no index.
FIRST_NEW_POINTS = (
    "new:journal-written",
    "new:dirs-created",
    "new:session-started",
    "atomic-write:temp-written",
    "index:rebuilding",
)
DELETE_POINTS = ("delete:files-moved", "atomic-write:temp-written", "index:rebuilding")
OVERWRITE_POINTS = ("atomic-write:temp-written", "new:session-started", "append:written")
MV_POINTS = ("mv:files-moved", "atomic-write:temp-written", "index:rebuilding")
DESCRIBE_POINTS = ("atomic-write:temp-written", "index:rebuilding")
# Reached only from a dirty tree: tests/test_patches.py crashes there.
PATCH_POINTS = ("new:patch-written",)
# Starting queued runs: test_crash_while_starting_queued_runs below.
QUEUE_POINTS = ("queue:session-started", "sweep:recorded")
# Making a code snapshot: tests/test_snapshots.py crashes there.
SNAPSHOT_POINTS = ("snapshot:made",)

CRASH_CASES = (
    [("new", point, "existing") for point in NEW_POINTS]
    + [("new", point, "first") for point in FIRST_NEW_POINTS]
    + [("delete", point, "existing") for point in DELETE_POINTS]
    + [("overwrite", point, "existing") for point in OVERWRITE_POINTS]
    + [("mv", point, "existing") for point in MV_POINTS]
    + [("describe", point, "existing") for point in DESCRIBE_POINTS]
)


def test_every_fault_point_is_exercised() -> None:
    exercised = set(NEW_POINTS) | set(DELETE_POINTS) | set(MV_POINTS) | set(DESCRIBE_POINTS) | set(PATCH_POINTS) | set(QUEUE_POINTS)
    exercised |= set(SNAPSHOT_POINTS)
    assert set(faults.POINTS) <= exercised, "a new fault point needs a crash test"


@pytest.mark.parametrize("command,point,scenario", CRASH_CASES, ids=[f"{c}-{p}-{s}" for c, p, s in CRASH_CASES])
def test_crash_at_fault_point(repo: Path, runs: Callable[..., Result], command: str, point: str, scenario: str) -> None:
    victims = [] if scenario == "first" else [make_victim(runs, repo, "keep-a"), make_victim(runs, repo, "keep.b")]
    ends = command in ("mv", "describe")  # a running run cannot be moved
    doomed = make_victim(runs, repo, "doomed", "--description=old", **({"command": "true"} if ends else {})) if command != "new" else None
    if point == "index:rebuilding" and scenario == "existing":
        (repo / ".runs" / ".runs.yml.index").unlink()  # so that the next command rebuilds it
    argv = {
        "new": ("new", "crashed", "sleep 600; true"),
        "delete": ("delete", "doomed", "-y"),
        "overwrite": ("new", "doomed", "sleep 600; true", "--overwrite", "-y", "--description=new"),
        "mv": ("mv", "doomed", "moved/doomed"),
        "describe": ("describe", "doomed", "new"),
    }[command]

    crashed = run_process(*argv, env={"RUNS_CRASH_AT": point}, timeout=30)
    assert crashed.code == -signal.SIGKILL, f"{point} was not reached: {crashed}"
    earlier = [v.name for v in victims]
    assert_parses_or_recoverable(repo, earlier)

    # A reader first: every earlier run, nothing twice, nothing half made.
    listing = runs("list")
    assert WAITING not in listing.err
    assert_consistent_listing(listing, must=earlier, may={"crashed", "doomed", "moved/doomed"})

    # Then a writer: it takes the lock (no stale lock may block it) and repairs the crash.
    follow = runs("new", "follow", "sleep 600; true")
    assert follow.code == 0, follow.err
    assert WAITING not in follow.err, "a lock left by the killed process blocked the next command"

    db, live = load_db(repo), tmux_sessions()
    assert_intact(victims, db, live)
    assert_whole(repo, "follow", db, live)
    if command == "new":
        assert_whole_or_nothing(repo, "crashed", db, live)
        if "crashed" in listed(listing):
            assert "crashed" in db, "the reader listed a run that recovery then removed"
    elif command == "delete":
        assert doomed is not None
        if "doomed" in db:  # died before its entry was removed: undone, the run is whole
            # Its session was stopped before the crash: the supervisor may have recorded that.
            assert without_outcome(db["doomed"]) == doomed.entry
            for path, text in doomed.files.items():
                assert path.is_file() and path.read_text() == text, f"{path} was not put back"
            again = runs("delete", "doomed", "-y")
            assert again.code == 0, again.err
            db, live = load_db(repo), tmux_sessions()
        assert_nothing(repo, "doomed", db, live)
    elif command == "mv":
        assert doomed is not None
        assert ("doomed" in db) != ("moved/doomed" in db), "the run must have exactly one of its names"
        name = "doomed" if "doomed" in db else "moved/doomed"
        assert {k: v for k, v in db[name].items() if k != "tmux_session"} == {
            k: v for k, v in doomed.entry.items() if k != "tmux_session"
        }
        for path, text in doomed.files.items():
            moved = Path(str(path).replace("/doomed", f"/{name}"))
            assert moved.is_file() and moved.read_text() == text, f"{moved} is not where the entry says"
        assert (repo / ".runs/logs" / f"{name}.log").is_file()
        assert not os.path.lexists(tb_dir(repo, "moved/doomed" if name == "doomed" else "doomed"))
    elif command == "describe":
        assert doomed is not None
        assert db["doomed"]["description"] in ("old", "new")
        assert {k: v for k, v in db["doomed"].items() if k != "description"} == {
            k: v for k, v in doomed.entry.items() if k != "description"
        }
    else:
        assert doomed is not None
        entry = db.get("doomed")
        if entry is not None and entry.get("description") == "new":
            assert_whole(repo, "doomed", db, live)
        elif entry is not None:  # the old run is still recorded: overwriting again must work
            assert without_outcome(entry) == doomed.entry  # its stopped session may be recorded
            again = runs("new", "doomed", "sleep 600; true", "--overwrite", "-y", "--description=new")
            assert again.code == 0, again.err
            db, live = load_db(repo), tmux_sessions()
            assert db["doomed"]["description"] == "new"
            assert_whole(repo, "doomed", db, live)
        else:
            assert_nothing(repo, "doomed", db, live)
    assert_no_orphans(repo)
    assert leftovers(repo) == []
    assert db_names(repo) == list(db)
    assert listed(runs("list")) == list(db)


# SIGKILL at random moments ---------------------------------------------------------


def test_random_sigkills(repo: Path, runs: Callable[..., Result]) -> None:
    """SIGKILL `runs new` / `runs delete -y` at random moments, many times. Half of the
    kills come 0-300 ms after the start; the other half of the `new` ones 0-30 ms after
    its journal appears, so that many land inside the write itself."""
    seed = int(os.environ.get("RUNS_TEST_SEED", "20240611"))
    rng = random.Random(seed)
    victims = [make_victim(runs, repo, "keep-a"), make_victim(runs, repo, "keep.b")]
    pool = [make_victim(runs, repo, f"pool-{i}").name for i in range(2)]
    deadline = time.monotonic() + 30
    iterations = 0
    for i in range(30):
        if time.monotonic() > deadline:
            break
        iterations += 1
        op = "new" if i % 2 == 0 or not pool else "delete"
        target = f"k{i}" if op == "new" else pool.pop(0)
        proc = Proc("new", target, "sleep 600; true") if op == "new" else Proc("delete", target, "-y")
        if op == "new" and i % 4 == 2:
            wait_for(lambda: journal_file(repo).exists() or not proc.running(), timeout=15, step=0.0005)
            delay, when = rng.uniform(0, 0.03), "after its journal appeared"
        else:
            delay, when = rng.uniform(0, 0.3), "after it started"
        time.sleep(delay)
        proc.signal(signal.SIGKILL)
        result = proc.finish(30)
        context = f"seed {seed}, iteration {i}: {op} {target} killed {delay * 1000:.0f} ms {when} (exit {result.code})"
        assert result.code in (0, -signal.SIGKILL), f"{context}: {result}"
        assert "Traceback" not in result.err, context
        assert_parses_or_recoverable(repo, [v.name for v in victims])

        # The next command takes the lock and repairs whatever the kill left.
        recover = runs("new", f"r{i}", "sleep 600; true")
        assert recover.code == 0, f"{context}: {recover.err}"
        assert WAITING not in recover.err, context
        pool.append(f"r{i}")
        db, live = load_db(repo), tmux_sessions()
        assert_intact(victims, db, live)
        if op == "new":
            try:
                assert_whole_or_nothing(repo, target, db, live)
            except AssertionError as e:
                raise AssertionError(f"{context}: {e}") from None
            if target in db:
                pool.append(target)
        else:
            if target in db:  # killed before the entry went: deleting again finishes the job
                again = runs("delete", target, "-y")
                assert again.code == 0, f"{context}: {again.err}"
                db, live = load_db(repo), tmux_sessions()
            assert_nothing(repo, target, db, live)
        try:
            assert_no_orphans(repo)
        except AssertionError as e:
            raise AssertionError(f"{context}: {e}") from None
        assert leftovers(repo) == [], context
        assert db_names(repo) == list(db), context
    assert iterations >= 16, "too few iterations in the time allowed"


# Signals during a write --------------------------------------------------------------

# The exit statuses of a process that a signal stopped: 128+N, or death by the signal
# (Python's own way out of an uncaught Ctrl-C, which a shell also reports as 128+N).
_STOPPED = {sig: (128 + sig, -sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}


def assert_repaired_by_the_next_command(repo: Path, runs: Callable[..., Result], victims: List[Victim], made: List[str]) -> None:
    """After interrupted commands: the next one leaves every run whole or gone, nothing stray."""
    follow = runs("new", "follow", "sleep 600; true")
    assert follow.code == 0, follow.err
    db, live = load_db(repo), tmux_sessions()
    assert_intact(victims, db, live)
    for name in made:
        assert_whole_or_nothing(repo, name, db, live)
    assert_no_orphans(repo)
    assert leftovers(repo) == []


def test_signals_during_the_write(repo: Path, runs: Callable[..., Result]) -> None:
    """SIGINT, SIGTERM and SIGHUP within a few milliseconds of the journal appearing
    (the change is under way): the process finishes or rolls back, then stops as that
    signal says (interrupts.py holds all three and acts on them when the change is done)."""
    rng = random.Random(7)
    victims = [make_victim(runs, repo, "keep-a"), make_victim(runs, repo, "keep.b")]
    journal = journal_file(repo)
    made, wrong = [], []
    for i in range(12):
        sig = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)[i % 3]
        name = f"sig{i}"
        proc = Proc("new", name, "sleep 600; true")
        wait_for(lambda: journal.exists() or not proc.running(), timeout=15, step=0.0005)
        delay = rng.uniform(0, 0.04)
        time.sleep(delay)
        proc.signal(sig)
        result = proc.finish(30)
        context = f"{signal.Signals(sig).name} {delay * 1000:.0f} ms into the write of {name}"
        assert "Traceback" not in result.err, f"{context}: {result.err}"
        if result.code not in (0, *_STOPPED[sig]):
            wrong.append(f"{context}: exit {result.code}, expected 0 or {_STOPPED[sig]}")
        assert_parses_or_recoverable(repo, [v.name for v in victims])
        if result.code == 0:
            assert started_name(result) == name
            assert_whole(repo, name, load_db(repo), tmux_sessions())
        made.append(name)
    assert_repaired_by_the_next_command(repo, runs, victims, made)
    assert not wrong, "exit status does not tell which signal stopped runs:\n" + "\n".join(wrong)


def _interpreter_startup(err: str) -> bool:
    """A traceback from the Python interpreter's own start-up, before any code of runs
    (or of the libraries only runs imports) ran: outside what runs can handle."""
    if err.startswith("Could not import runpy module"):  # `python -m` interrupted loading runpy:
        return True  # any frame (an import hook of site-packages among them) is the interpreter's own
    if 'File "<frozen site>"' in err and "runs_manager" not in err:
        return True  # site running the .pth files of site-packages (setuptools' _distutils_hack), before runs
    return (
        "Traceback" in err
        and "runs_manager" not in err
        and "site-packages" not in err
        and "Exception ignored" not in err
    )


def test_sigint_at_any_moment(repo: Path, runs: Callable[..., Result]) -> None:
    """Ctrl-C at any moment of `runs new`: a sweep through its first 150 ms (start-up,
    imports, git, tmux, the write) in 5 ms steps, then random moments within 300 ms.
    Exit 0 (done, and then the run is whole) or 130 / death by SIGINT, and no traceback."""
    rng = random.Random(11)
    victims = [make_victim(runs, repo, "keep-a")]
    delays = [i * 0.005 for i in range(30)] + [rng.uniform(0, 0.3) for _ in range(10)]
    made, problems = [], []
    for i, delay in enumerate(delays):
        name = f"int{i}"
        proc = Proc("new", name, "sleep 600; true")
        time.sleep(delay)
        proc.signal(signal.SIGINT)
        result = proc.finish(30)
        context = f"SIGINT {delay * 1000:.0f} ms after starting `runs new {name}`"
        if not _interpreter_startup(result.err):
            if result.code not in (0, *_STOPPED[signal.SIGINT]):
                problems.append(f"{context}: exit {result.code}; stderr {result.err[-300:]!r}")
            elif "Traceback" in result.err:
                problems.append(f"{context}: exit {result.code} with a traceback:\n{result.err}")
        assert_parses_or_recoverable(repo, [v.name for v in victims])
        if result.code == 0 and STARTED.search(result.out):
            assert_whole(repo, started_name(result), load_db(repo), tmux_sessions())
        made.append(name)
    assert_repaired_by_the_next_command(repo, runs, victims, made)
    assert not problems, f"{len(problems)} of {len(delays)} interrupted runs misbehaved:\n" + "\n".join(problems)


# Ctrl-C at a confirmation prompt, under a pseudo-terminal ---------------------------


def run_in_pty(argv: Sequence[str], answer: bytes, prompt: bytes = b"[y/N]", timeout: float = 20) -> Result:
    """Run `runs ARGV` with a pseudo-terminal as its controlling terminal, stdin and stdout;
    type ``answer`` once ``prompt`` appears (b"\\x03" is Ctrl-C: the terminal sends SIGINT)."""
    master, slave = pty.openpty()
    err = tempfile.TemporaryFile()

    def controlling_terminal() -> None:  # runs in the child, after setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "runs_manager", *argv],
        stdin=slave,
        stdout=slave,
        stderr=err,
        env=runs_env(),
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + timeout

    def read_some(wait: float) -> bool:
        nonlocal seen
        ready, _, _ = select.select([master], [], [], wait)
        if not ready:
            return True
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        seen += chunk
        return bool(chunk)

    try:
        # Python's input() writes its prompt to stderr when stdin and stdout are terminals.
        while prompt not in seen and prompt.decode() not in Proc._read(err):
            if time.monotonic() > deadline:
                raise AssertionError(f"no prompt from runs {argv}: {seen!r}; {Proc._read(err)}")
            if not read_some(0.05) or proc.poll() is not None:
                read_some(0)
                break
        assert prompt in seen or prompt.decode() in Proc._read(err), f"runs {argv} exited without asking: {seen!r}; {Proc._read(err)}"
        os.write(master, answer)
        code = proc.wait(timeout)
        while read_some(0.05) and time.monotonic() < deadline:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    result = Result(code, seen.decode("utf-8", "replace"), Proc._read(err))
    err.close()
    return result


def test_ctrl_c_at_the_delete_prompt(repo: Path, runs: Callable[..., Result]) -> None:
    victims = [make_victim(runs, repo, "keep-a"), make_victim(runs, repo, "keep.b")]
    result = run_in_pty(["delete", "keep-.*"], b"\x03")
    assert_clean_exit(result, codes=(130,))
    db, live = load_db(repo), tmux_sessions()
    assert_intact(victims, db, live)
    assert leftovers(repo) == []
    assert_no_orphans(repo)


def test_yes_at_the_delete_prompt_deletes(repo: Path, runs: Callable[..., Result]) -> None:
    """The pseudo-terminal harness itself works: answering y deletes."""
    keep = make_victim(runs, repo, "keep-a")
    make_victim(runs, repo, "gone")
    result = run_in_pty(["delete", "gone"], b"y\r")
    assert_clean_exit(result)
    db, live = load_db(repo), tmux_sessions()
    assert_nothing(repo, "gone", db, live)
    assert_intact([keep], db, live)


def test_ctrl_c_at_the_overwrite_prompt(repo: Path, runs: Callable[..., Result]) -> None:
    victims = [make_victim(runs, repo, "keep-a", "--description=old"), make_victim(runs, repo, "keep.b")]
    result = run_in_pty(["new", "keep-a", "sleep 600; true", "--overwrite", "--description=new"], b"\x03")
    assert_clean_exit(result, codes=(130,))
    db, live = load_db(repo), tmux_sessions()
    assert_intact(victims, db, live)
    assert leftovers(repo) == []
    assert_no_orphans(repo)
    # and nothing is left for the next command to trip over
    follow = runs("new", "follow", "sleep 600; true")
    assert follow.code == 0 and WAITING not in follow.err, follow.err


def test_sigkill_while_tmux_is_starting_the_session(repo: Path, runs: Callable[..., Result], tmp_path: Path) -> None:
    """A SIGKILL of `runs new` (OOM killer, kill -9 PID) kills only runs, not the tmux
    client it is waiting for. If the next command's recovery runs before that client
    has made the session, the session must still not outlive the run it belonged to.
    A tmux that takes 0.5 s to start sessions (a loaded machine) makes the race certain."""
    victims = [make_victim(runs, repo, "keep-a")]
    real = subprocess.run(["which", "tmux"], capture_output=True, text=True).stdout.strip()
    bin_dir = tmp_path / "slow-tmux"
    bin_dir.mkdir()
    (bin_dir / "tmux").write_text(
        f'#!/bin/sh\nfor a in "$@"; do [ "$a" = new-session ] && sleep 0.5; done\nexec {real} "$@"\n'
    )
    (bin_dir / "tmux").chmod(0o755)
    proc = Proc("new", "slow", "sleep 600; true", env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert wait_for(lambda: journal_file(repo).exists() or not proc.running(), timeout=15, step=0.001)
    time.sleep(0.15)  # runs now waits for `tmux new-session`
    assert proc.running(), proc.err
    proc.signal(signal.SIGKILL)
    assert proc.finish(10).code == -signal.SIGKILL
    follow = runs("new", "follow", "sleep 600; true")  # takes the lock and recovers at once
    assert follow.code == 0, follow.err
    time.sleep(1.0)  # the orphaned tmux client finishes
    follow2 = runs("new", "follow2", "sleep 600; true")  # and any later command may clean up
    assert follow2.code == 0, follow2.err
    db, live = load_db(repo), tmux_sessions()
    assert_intact(victims, db, live)
    assert_whole_or_nothing(repo, "slow", db, live)
    assert_no_orphans(repo)


def test_crash_while_starting_queued_runs(repo: Path, runs: Callable[..., Result]) -> None:
    """A sweep killed after starting a queued run's session, before recording it as
    started: the next command stops that session and puts the run back in the queue,
    whole; every run of the sweep is recorded once (queued runs are recorded first)."""
    argv = ("new", "q", "sleep {t}", "--grid", "t=600,601,602", "--max-parallel", "1", *NO_FLAGS)
    crashed = run_process(*argv, env={"RUNS_CRASH_AT": "queue:session-started"}, timeout=30)
    assert crashed.code == -signal.SIGKILL, f"queue:session-started was not reached: {crashed}"
    names = ["q/t-600", "q/t-601", "q/t-602"]
    assert_consistent_listing(runs("list"), must=names, may=())
    assert "q/t-600" in tmux_sessions()  # started, never recorded: the journal knows it

    follow = runs("new", "follow", "sleep 600; true")  # a writer: recovery runs first
    assert follow.code == 0, follow.err
    db, live = load_db(repo), tmux_sessions()
    assert [db[name].get("queued") for name in names] == [True, True, True]
    assert "q/t-600" not in live and not tb_dir(repo, "q/t-600").exists()
    assert not (runs_dir(repo) / "logs/q/t-600.log").exists()
    assert_whole(repo, "follow", db, live)
    assert leftovers(repo) == []

    resumed = runs("resume")
    assert resumed.code == 0, resumed.err
    assert resumed.out == "Started queued run 'q/t-600'.\n"
    db, live = load_db(repo), tmux_sessions()
    assert_whole(repo, "q/t-600", db, live)
    assert db["q/t-601"]["queued"] is True


def test_an_interrupted_delete_of_1000_runs_leaves_each_run_whole_or_gone(repo: Path, runs: Callable[..., Result]) -> None:
    """SIGKILL or Ctrl-C at random moments of `runs delete '.*'` of 1,000 finished runs: once
    the next command has run, every run is listed with all its files, or gone with all of them."""
    from tests.commands.test_delete import finished_runs

    names = [f"r{i:04d}" for i in range(1000)]
    rng = random.Random(28)
    finished_runs(repo, names)
    started = time.monotonic()  # how long a whole delete takes here: the signals spread over it
    assert runs("delete", ".*", "-y").code == 0
    took = time.monotonic() - started
    remaining: set = set()
    outcomes = []
    attempts = 8
    for attempt in range(attempts):
        if not remaining:  # all deleted: a new history for the next attempt
            finished_runs(repo, names)
            remaining = set(names)
        proc = Proc("delete", ".*", "-y", cwd=repo)
        time.sleep(took * (attempt + rng.uniform(0.2, 0.8)) / attempts)
        sig = signal.SIGINT if attempt % 2 else signal.SIGKILL
        proc.signal(sig)
        result = proc.finish(60)
        assert "Traceback" not in result.err, result.err
        listed = set(runs("list").out.split())  # a reader: it finishes or undoes the delete first
        assert listed <= remaining
        for name in names:
            paths = (tb_dir(repo, name) / "events", repo / ".runs/logs" / f"{name}.log",
                     repo / ".runs/checkpoints" / f"{name}.ckpt-1.index")
            present = [path.exists() for path in paths]
            assert all(present) if name in listed else not any(present), (
                f"{sig.name} at attempt {attempt}: {name} is {'listed' if name in listed else 'gone'} with files {present}")
        outcomes.append("none" if listed == remaining else "all" if not listed else "some")
        remaining = listed
    assert "none" in outcomes and "all" in outcomes, f"the signals missed the delete: {outcomes}"
    assert runs("new", "after", "true").code == 0  # a command that writes files empties the trash
    assert not (repo / ".runs/.trash").exists(), "the trash of the interrupted deletes was not emptied"


def test_queued_runs_nothing_will_start_are_named_by_list_and_table(repo: Path, runs: Callable[..., Result]) -> None:
    """A sweep SIGKILLed between recording its runs and starting them: all stay queued, and
    no run's end will start them. `runs list` and `runs table` say so, once, with the cure."""
    argv = ("new", "s", "sleep {t}", "--grid", "t=600,601,602", "--max-parallel", "2", *NO_FLAGS)
    crashed = run_process(*argv, env={"RUNS_CRASH_AT": "sweep:recorded"}, timeout=30)
    assert crashed.code == -signal.SIGKILL, f"sweep:recorded was not reached: {crashed}"
    for command in ("list", "table"):
        result = runs(command)
        assert result.code == 0, result.err
        notes = [line for line in result.err.splitlines() if "queued" in line]
        assert len(notes) == 1 and "3 queued runs" in notes[0] and "'runs resume'" in notes[0], result.err
    resumed = runs("resume")
    assert resumed.code == 0, resumed.err
    assert resumed.out.count("Started queued run") == 2
    assert "queued" not in runs("list").err  # a running run of the queue starts the third when it ends

"""Time `runs` as whole processes on databases of 100, 10,000 and 100,000 runs.

Builds each database in a throwaway git repository, uses a tmux server of its own, runs
every command several times and prints medians, peak memory (max RSS of the process) and
the target each must meet, beside `python -c pass`.

    python benchmarks/bench.py [--repeat 7] [--sizes 100,10000,100000] [--keep] [--slurm] [--metrics] [--snapshot]

``--metrics`` times only `runs table --metrics` and `runs metrics`, restarted runs
included (which the full run times too): 100 runs, each with one event file of 10,000 steps of 5 scalar tags written
with tensorboardX (50,000 events, 2.2 MB a file), in forked processes, so that this one
never imports tensorboardX (a command's peak RSS would include its memory); one run's
writer stays open, and appends 100 steps before each repeat of the last row. The first
read is timed with the cache removed before each repeat (at most 3). ``--snapshot`` times
only `runs new` with and without a code snapshot, in a repository of 10,000 files.

What it runs: always this checkout's code, never an installed copy. Every command is
``[sys.executable, "-m", "runs_manager", ...]`` with ``PYTHONPATH`` set to the directory
above ``benchmarks/`` (checked at start-up: the child must import runs_manager from
there), and the supervisor row runs the command ``runs_manager.launchers.base.supervisor_argv(...)`` gives, which starts
this Python on this copy. Bytecode is cached as for an installed runs (an inherited
PYTHONDONTWRITEBYTECODE is dropped; PYTHONPYCACHEPREFIX points into the temporary
directory, so nothing is written in the checkout), after one untimed warm-up pass of
every command on a small database. Run it with the Python that has runs' dependencies (PyYAML,
tabulate, GitPython, ...), for example ``.venv/bin/python``.

The databases are in the format `runs new` writes (one line per field, datetimes as
quoted ISO strings, ``exit_code`` an integer; checked against runs' own YAML dumper),
about 500 bytes a run (50 MB at 100,000 runs): every entry has ``launcher: tmux``; ~99%
have ``ended`` and ``exit_code`` (mostly 0, 5% 1, 2% 143 with ``killed: runs kill
(SIGTERM)``), hosts gpu1 to gpu7 and this machine; the last 1% (at least 2) have no
outcome: every other one is on this host with a log file in .runs/logs/ that no
supervisor locks (so it is ``lost``), the others on another host (``unknown``).

Write rows change the database between repeats, as in daily use; reads run on a YAML
file older than the two-second racy window. ``runs new`` starts a real supervisor in
tmux for each run; the next repeat waits (untimed) until that run's outcome is recorded,
so no supervisor's write competes with a timed command. ``--keep`` keeps the temporary
directory (its path is printed) for profiling against the databases.
"""
from __future__ import annotations

import argparse
import datetime
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # runs_manager of this checkout, for preparing runs and checking results

ENV = dict(os.environ)
ENV["PYTHONPATH"] = ROOT + (os.pathsep + ENV["PYTHONPATH"] if ENV.get("PYTHONPATH") else "")
RUNS = [sys.executable, "-m", "runs_manager"]
HERE = socket.gethostname()
COMMIT = "90c0ad704e54d5152d897a4e978cc7f3d1a2b3c4"
OTHER_HOSTS = [f"gpu{n}" for n in range(1, 8)]


class Layout:
    """Which run of a database of ``size`` runs has which host and outcome."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.tail = max(2, size // 50)  # runs without an outcome, at the end: half lost, half on other hosts
        self.tail_start = size - self.tail

    def host(self, i: int) -> str:
        if i >= self.tail_start:
            return HERE if self.lost(i) else OTHER_HOSTS[i % len(OTHER_HOSTS)]
        return HERE if i % 8 == 0 else OTHER_HOSTS[i % 8 - 1]

    def lost(self, i: int) -> bool:
        """No outcome, on this host, supervisor gone: every other run of the tail."""
        return i >= self.tail_start and (i - self.tail_start) % 2 == 0

    def exit_code(self, i: int) -> Optional[int]:
        if i >= self.tail_start:
            return None
        if i % 50 == 13:
            return 143
        return 1 if i % 20 == 7 else 0

    def status(self, i: int) -> str:
        code = self.exit_code(i)
        if code is None:
            return "lost" if self.lost(i) else "unknown"
        return {0: "finished", 1: "failed", 143: "killed"}[code]

    def entry_text(self, i: int) -> str:
        name = f"run{i}"
        command = f"python train.py --lr 0.{i % 97:02d} --seed {i}"
        day, micro = 1 + i % 28, 1 + i % 999999
        text = (
            f"{name}:\n"
            f"  command: {command}\n"
            f"  commit: {COMMIT}\n"
            f"  datetime: '2026-11-{day:02d}T13:46:48.{micro:06d}+01:00'\n"
            f"  description: sweep {i % 10}\n"
            f"  host: {self.host(i)}\n"
            f"  launched: {command} --tb-dir .runs/tensorboard/{name}/ --save-path .runs/checkpoints/{name}\n"
            f"  launcher: tmux\n"
            f"  tmux_session: {name}\n"
            f"  tmux_session_id: ${i}\n"
            f"  tmux_session_created: {1796303514 + i}\n"
            f"  tmux_server_pid: {4000 + i % 30000}\n"
        )
        code = self.exit_code(i)
        if code is None:
            return text
        if code == 143:
            text += "  killed: runs kill (SIGTERM)\n"  # set by `runs kill` before the supervisor records the end
        return text + f"  ended: '2026-11-{day:02d}T{14 + i % 9:02d}:{i % 60:02d}:07.{micro:06d}+01:00'\n  exit_code: {code}\n"

    def check_format(self) -> None:
        """The text is exactly what runs' own dumper writes for the entry it parses to."""
        from runs_manager.store import yamlfile

        samples = {0, 7, 13, self.size // 2, self.tail_start - 1, self.tail_start, self.size - 1}
        for i in sorted(s for s in samples if 0 <= s < self.size):
            text = self.entry_text(i).encode()
            loaded = yamlfile.load_one(text)
            if loaded is None or yamlfile.dump_entry(*loaded) != text:
                raise SystemExit(f"bench: entry {i} is not in the format runs writes:\n{text.decode()}")


def generate(path: str, layout: Layout) -> float:
    """Write a database of ``layout.size`` entries, as `runs new` would have written them;
    returns the mean bytes per run."""
    from runs_manager.store.transaction import HEADER

    size = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(HEADER.decode())
        for i in range(layout.size):
            size += f.write(layout.entry_text(i))
    return size / max(layout.size, 1)


def make_repo(root: str, layout: Layout) -> Tuple[str, float]:
    repo = os.path.join(root, f"repo-{layout.size}")
    os.makedirs(os.path.join(repo, ".runs", "logs"))
    with open(os.path.join(repo, "train.py"), "w") as f:
        f.write("print('training')\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run(git + ["init", "-q"], cwd=repo, check=True)
    subprocess.run(git + ["add", "train.py"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-qm", "bench"], cwd=repo, check=True)
    with open(os.path.join(repo, ".runs", ".gitignore"), "w") as f:
        f.write("*\n")
    layout.check_format()
    per_run = generate(os.path.join(repo, ".runs", ".runs.yml"), layout)
    for i in range(layout.tail_start, layout.size):
        if layout.lost(i):  # its supervisor died without recording an end: the log stays, unlocked
            with open(os.path.join(repo, ".runs", "logs", f"run{i}.log"), "w") as f:
                f.write("epoch 1/90\n")
    return repo, per_run


def give_files(repo: str, name: str) -> None:
    """A finished run's TensorBoard events, checkpoint and log."""
    runs_dir = os.path.join(repo, ".runs")
    os.makedirs(os.path.join(runs_dir, "tensorboard", name), exist_ok=True)
    os.makedirs(os.path.join(runs_dir, "checkpoints"), exist_ok=True)
    for path in (os.path.join("tensorboard", name, "events.out.tfevents.1796304090.gpu0"),
                 os.path.join("checkpoints", name), os.path.join("logs", f"{name}.log")):
        with open(os.path.join(runs_dir, path), "w") as f:
            f.write("x" * 100)


def give_checkpoints(repo: str, name: str, size: int = 1 << 30) -> None:
    """A finished run's files, and ``size`` bytes of real (not sparse) checkpoint data in 4
    files, written by a child process: a large buffer here would stay in this process, and
    every later child would report it in its peak memory (a fork starts with its parent's RSS)."""
    give_files(repo, name)
    script = (
        "import os, sys\n"
        "block = os.urandom(1 << 20)\n"
        "for step in range(4):\n"
        "    with open(f'{sys.argv[1]}.ckpt-{step}.data-00000-of-00001', 'wb') as f:\n"
        "        for _ in range(int(sys.argv[2]) // 4 // len(block)):\n"
        "            f.write(block)\n"
    )
    subprocess.run([sys.executable, "-c", script, os.path.join(repo, ".runs", "checkpoints", name), str(size)], check=True)


def lock_held(argv: Sequence[str], cwd: str) -> float:
    """The longest time (ms) the database lock was held while ``argv`` ran, seen from outside:
    a thread of this process tries the lock without waiting every 0.2 ms and times how long
    it stays refused (what every other runs command and supervisor would wait)."""
    import fcntl
    import threading

    fd = os.open(os.path.join(cwd, ".runs", ".runs.yml.lock"), os.O_RDWR | os.O_CREAT, 0o666)
    holds: List[float] = []
    refused_since: List[float] = []
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            now = time.perf_counter()
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                refused_since[:] = refused_since or [now]
            else:
                fcntl.lockf(fd, fcntl.LOCK_UN)
                if refused_since:
                    holds.append(now - refused_since.pop())
            time.sleep(0.0002)

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        run_once(argv, cwd)
    finally:
        done.set()
        thread.join()
        os.close(fd)
    return max(holds, default=0.0) * 1000


def run_once(argv: Sequence[str], cwd: str) -> Tuple[float, float]:
    """Wall time (s) and peak memory (MB) of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err}")
    return elapsed, usage.ru_maxrss / 1024


def output(argv: Sequence[str], cwd: str) -> str:
    """The stdout of a command (untimed: for checks)."""
    proc = subprocess.run(argv, cwd=cwd, env=ENV, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


LAST_TIMES: List[float] = []  # of the last measure(), in ms: shown on stderr beside the median


def interleaved(first: List[str], second: List[str], cwd: str, repeat: int) -> List[Tuple[float, float]]:
    """Median time (ms) and peak memory (MB) of two commands run in turns, so that both see
    the same load; LAST_TIMES holds the second's times."""
    times: List[List[float]] = [[], []]
    peaks: List[List[float]] = [[], []]
    for i in range(repeat):
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):
            elapsed, peak = run_once((first, second)[which], cwd)
            times[which].append(elapsed * 1000)
            peaks[which].append(peak)
    LAST_TIMES[:] = times[1]
    return [(statistics.median(times[k]), max(peaks[k])) for k in (0, 1)]


def measure(
    argv_for: Callable[[int], List[str]], cwd: str, repeat: int, after: Optional[Callable[[int], None]] = None
) -> Tuple[float, float]:
    """Median time (ms) and peak memory (MB); ``after(i)`` runs untimed after repeat i."""
    times, peaks = [], []
    for i in range(repeat):
        elapsed, peak = run_once(argv_for(i), cwd)
        times.append(elapsed)
        peaks.append(peak)
        if after is not None:
            after(i)
    LAST_TIMES[:] = [t * 1000 for t in times]
    return statistics.median(times) * 1000, max(peaks)


def settings_of(repo: str) -> Any:
    from runs_manager.settings import Settings

    return Settings(runs_dir=os.path.join(repo, ".runs"))


def entry_of(repo: str, name: str) -> Optional[Dict[str, Any]]:
    from runs_manager.runtime import runs

    return runs.database(settings_of(repo)).read(lambda index: index.entry(name))


def wait_for_outcome(repo: str, name: str, timeout: float = 60.0) -> None:
    """Until run ``name``'s supervisor has recorded its end (untimed)."""
    deadline = time.monotonic() + timeout
    while True:
        entry = entry_of(repo, name)
        if entry is not None and "exit_code" in entry:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: run '{name}' recorded no outcome within {timeout:g} s: {entry}")
        time.sleep(0.05)


def prepare_recorded_runs(repo: str, count: int) -> List[Tuple[str, str]]:
    """Runs as `runs new` leaves them just before their program starts, without tmux:
    entry appended, empty log, TensorBoard directory without the starting marker.
    Returns (name, datetime) of each."""
    from runs_manager.runtime import runfiles, runs

    settings = settings_of(repo)
    prepared = []
    for i in range(count):
        name = f"benchrec-{i}"
        started = datetime.datetime.now().astimezone().isoformat()
        line = f"true --tb-dir .runs/tensorboard/{name}/ --save-path .runs/checkpoints/{name}"
        entry = {
            "command": "true", "commit": COMMIT, "datetime": started, "description": "outcome bench",
            "host": HERE, "launched": line, "launcher": "tmux", "tmux_session": name, "tmux_session_id": f"${90000 + i}",
        }
        os.makedirs(runfiles.tensorboard_dir(settings, name))
        open(runfiles.log_path(settings, name), "x").close()
        with runs.database(settings).writing() as txn:
            txn.add(name, entry)
        prepared.append((name, started))
    return prepared


def make_dirty_repo(root: str, files: int = 100, diff_bytes: int = 5_000_000) -> str:
    """A repository whose ``files`` committed files are all rewritten: at least ``diff_bytes`` of patch."""
    repo = os.path.join(root, f"repo-dirty-{files}")
    os.makedirs(os.path.join(repo, "src"))
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run(git + ["init", "-q"], cwd=repo, check=True)
    # Each line (38 bytes) appears once removed and once added, each time after a '-' or '+'.
    lines = -(-diff_bytes // (files * 2 * 39))

    def write(version: str) -> None:
        for f in range(files):
            with open(os.path.join(repo, "src", f"module_{f:03d}.py"), "w") as out:
                out.write("".join(f"value_{i:06d} = '{version}-{f:03d}-{i:06d}'\n" for i in range(lines)))

    write("committed")
    subprocess.run(git + ["add", "."], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-qm", "bench"], cwd=repo, check=True)
    write("changed!!")
    return repo


def make_code_repo(root: str, files: int = 10_000, size: int = 5_000) -> str:
    """A repository of ``files`` committed files of ``size`` bytes (50 MB), for code snapshots."""
    repo = os.path.join(root, f"repo-code-{files}")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    for f in range(files):
        directory = os.path.join(repo, "src", f"package_{f // 100:03d}")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, f"module_{f % 100:02d}.py"), "w") as out:
            out.write((f"# module {f}\n" + "x = 1\n" * size)[:size])
    subprocess.run(git + ["init", "-q"], cwd=repo, check=True)
    subprocess.run(git + ["add", "."], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-qm", "bench"], cwd=repo, check=True)
    return repo


QUIET_SECONDS = 65


def snapshot_rows(root: str, repeat: int, row: Callable[..., None]) -> None:
    """`runs new --snapshot` in a repository of 10,000 files (50 MB), each time at a new
    commit (a snapshot is made once per commit), against the same run without one."""
    repo = make_code_repo(root)
    # "When it is quiet": ext4 skips the inodes freed in the last minute (six while not yet
    # written back) when it allocates new ones, one lookup each, so making 10,000 files
    # right after deleting many (a test suite, an earlier row) takes seconds, not 0.3 s.
    print("  (syncing, then a minute without deletions before the snapshot rows)", file=sys.stderr)
    os.sync()
    time.sleep(QUIET_SECONDS)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    times: Dict[str, List[Tuple[float, float]]] = {"plain": [], "snapshot": []}
    for i in range(repeat):  # interleaved: the two see the same load
        for kind, extra in (("plain", ["--no-snapshot"]), ("snapshot", ["--snapshot"])):
            subprocess.run(git + ["commit", "-q", "--allow-empty", "-m", f"{kind} {i}"], cwd=repo, check=True)
            name = f"{kind}-{i}"
            times[kind].append(measure(lambda _, name=name, extra=extra: RUNS + ["new", name, "true", *extra],  # type: ignore[misc]
                                       repo, 1, after=lambda _, name=name: wait_for_outcome(repo, name)))  # type: ignore[misc]
    for kind, label, target in (("plain", "runs new (10,000 files, 50 MB, no snapshot)", None),
                                ("snapshot", "runs new --snapshot (10,000 files, 50 MB)", 1500.0)):
        LAST_TIMES[:] = [t for t, _ in times[kind]]
        ms = statistics.median(LAST_TIMES)
        plain = statistics.median(t for t, _ in times["plain"])
        row(label, "", ms, max(m for _, m in times[kind]), "" if target is None else f"<= {target:.0f} ms",
            target is None or ms <= target)
    print(f"  (a snapshot costs {statistics.median(t for t, _ in times['snapshot']) - plain:.0f} ms more)", file=sys.stderr)
    # Deleted at the end, not between repeats: deleting 10,000 files just before making
    # 10,000 keeps ext4's journal busy and doubles the next snapshot's time.
    run_once(RUNS + ["delete", "(plain|snapshot)-.*", "-y"], repo)


def beat_cpu(root: str, beats: int = 2000) -> float:
    """CPU milliseconds a supervisor spends on one beat of its heartbeat (a write, and a
    read of the kill request place), measured in this process."""
    from runs_manager.runtime import heartbeat

    beater = heartbeat.Beater(os.path.join(root, "beat"), "run")
    start = time.process_time()
    for _ in range(beats):
        beater.beat()
    spent = (time.process_time() - start) * 1000 / beats
    beater.stop()
    return spent


def heartbeats(repo: str, layout: Layout) -> int:
    """Fresh heartbeats for the runs of other hosts without an outcome, as their supervisors
    keep them (runtime/heartbeat.py): they are running, seen from here. How many."""
    from runs_manager.runtime import heartbeat

    remote = [f"run{i}" for i in range(layout.tail_start, layout.size) if not layout.lost(i)]
    for name in remote:
        heartbeat.Beater(os.path.join(repo, ".runs"), name)  # its file stays, fresh for 30 s: the rows take a second
    running = output(RUNS + ["list", "--status", "running"], repo).split()
    if sorted(running) != sorted(remote):
        raise SystemExit(f"bench: {len(running)} runs are running with {len(remote)} heartbeats")
    return len(remote)


def check_statuses(repo: str, layout: Layout) -> None:
    """The database reads back with the statuses it was built to have (untimed)."""
    for wanted in ("running", "lost", "unknown"):
        got = output(RUNS + ["list", "--status", wanted], repo).split()
        expected = [f"run{i}" for i in range(layout.tail_start, layout.size) if layout.status(i) == wanted]
        if got != expected:
            raise SystemExit(f"bench: runs list --status {wanted} gave {got[:5]}..., expected {expected[:5]}...")
    for i in (7, 13, layout.size // 2):
        state = output(RUNS + ["lookup", f"run{i}", "status"], repo).strip()
        if state != layout.status(i):
            raise SystemExit(f"bench: run{i} has status {state}, expected {layout.status(i)}")


def check_exports(repo: str, layout: Layout) -> None:
    """`table --format json`, `list --format json`, `table --params` and completion give what the
    database holds (untimed)."""
    import json

    names = [f"run{i}" for i in range(layout.size)]
    if json.loads(output(RUNS + ["list", "--format", "json"], repo)) != names:
        raise SystemExit("bench: runs list --format json does not list every run in order")
    rows = json.loads(output(RUNS + ["table", "--format", "json"], repo))
    middle = layout.size // 2
    if [r["name"] for r in rows] != names or rows[middle]["status"] != layout.status(middle) or rows[middle]["host"] != layout.host(middle):
        raise SystemExit("bench: runs table --format json does not match the database")
    first = (layout.size // 1000 + 3) * 100  # of the 100 rows the timed --pattern shows
    rows = json.loads(output(RUNS + ["table", "--params", "--pattern", f"run{first // 100}\\d\\d", "--format", "json"], repo))
    want = [{"name": f"run{first}", "status": layout.status(first), "lr": float(f"0.{first % 97:02d}"), "seed": first}]
    if layout.size >= 10000 and (len(rows) != 100 or rows[:1] != want):
        raise SystemExit(f"bench: runs table --params gave {rows[:1]}, not {want}")
    prefix = f"run{middle}"[:-2]
    got = output(RUNS + ["__complete", "names", prefix], repo).split()
    if got != sorted(n for n in names if n.startswith(prefix)):
        raise SystemExit(f"bench: completing {prefix!r} gave {got[:5]}...")


def check_source() -> None:
    """Both the commands and this process use this checkout's runs_manager."""
    import runs_manager

    expected = os.path.join(ROOT, "runs_manager", "__init__.py")
    child = subprocess.run([sys.executable, "-c", "import runs_manager; print(runs_manager.__file__)"],
                           env=ENV, cwd="/", capture_output=True, text=True).stdout.strip()
    for where, path in (("the commands", child), ("bench.py", runs_manager.__file__)):
        if os.path.realpath(path) != os.path.realpath(expected):
            raise SystemExit(f"bench: {where} would import runs_manager from {path!r}, not {expected}")


def warm_up(root: str) -> None:
    """Run every benchmarked command once, untimed, on a small database: Python caches the
    bytecode of each module they import (under PYTHONPYCACHEPREFIX), as an installed runs has."""
    from runs_manager.launchers.base import supervisor_argv

    layout = Layout(20)
    repo, _ = make_repo(os.path.join(root, "warm-up"), layout)
    for argv in ([sys.executable, "-c", "pass"], RUNS + ["--help"], RUNS + ["list"], RUNS + ["lookup", "run10", "status"],
                 RUNS + ["lookup", "run10"], RUNS + ["table", "--status", "running"], RUNS + ["list", "--status", "lost"],
                 RUNS + ["table", "--format", "json"], RUNS + ["table", "--sort", "datetime"], RUNS + ["list", "--format", "json"],
                 RUNS + ["__complete", "names", "run1"]):
        run_once(argv, repo)
    run_once(RUNS + ["new", "warm", "true"], repo)
    wait_for_outcome(repo, "warm")
    run_once(RUNS + ["new", "warm-grid", "sleep {t}", "--grid", "t=0,0.1", "--max-parallel", "1",
                     "--tb-dir-flag", "None", "--save-path-flag", "None"], repo)
    wait_for_outcome(repo, "warm-grid/t-0.1")
    run_once(RUNS + ["delete", "run3", "-y"], repo)
    run_once(RUNS + ["describe", "run4", "warm"], repo)
    give_files(repo, "run8")
    run_once(RUNS + ["mv", "run8", "run8-renamed"], repo)
    dirty = make_dirty_repo(os.path.join(root, "warm-up"), files=3, diff_bytes=3000)
    run_once(RUNS + ["new", "warm-dirty", "true", "--allow-dirty"], dirty)
    wait_for_outcome(dirty, "warm-dirty")
    (name, started), = prepare_recorded_runs(repo, 1)
    run_once(supervisor_argv(settings_of(repo), name, started, ["/bin/sh", "-c", "exit 0"], keep_open=False), repo)
    subprocess.run(["tmux", "kill-server"], env=ENV, capture_output=True)


def slurm_rows(root: str, repeat: int, row: Callable[..., None]) -> None:
    """`runs new --launcher slurm` against sbatch alone, and a table of 100 Slurm runs
    (one squeue call). The jobs wait (--begin) so the node's load does not skew the times;
    they are cancelled at the end."""
    started = subprocess.run(["sh", os.path.join(ROOT, "scripts", "slurm-cluster.sh"), "start"], capture_output=True, text=True)
    if started.returncode != 0:
        raise SystemExit(f"bench: no Slurm cluster: {started.stderr.strip()}")
    ENV["SLURM_CONF"] = started.stdout.strip().splitlines()[-1]
    later = "--begin=now+3600"
    repo = os.path.join(root, "slurm")
    os.makedirs(repo)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run(git + ["init", "-q"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-q", "--allow-empty", "-m", "bench"], cwd=repo, check=True)
    try:
        base, _ = measure(lambda i: ["sbatch", "--parsable", later, "--job-name=bench", "--wrap=true"], repo, repeat)
        row("sbatch alone", "", base, 0, "", True)
        ms, mem = measure(lambda i: RUNS + ["new", f"slurm-{i}", "true", "--launcher=slurm", f"--sbatch-args={later}"], repo, repeat)
        row("runs new --launcher slurm", "", ms, mem, f"<= sbatch + 600 ms ({base + 600:.0f} ms)", ms <= base + 600)
        for i in range(repeat, 100):
            run_once(RUNS + ["new", f"slurm-{i}", "true", "--launcher=slurm", f"--sbatch-args={later}"], repo)
        table = output(RUNS + ["table", "--status", "pending"], repo)
        if table.count("pending") != 100:
            raise SystemExit("bench: not every Slurm run of the table is pending")
        time.sleep(2.1)
        ms, mem = measure(lambda i: RUNS + ["table"], repo, repeat)
        row("runs table (100 Slurm runs)", "100", ms, mem, "<= 500 ms", ms <= 500)
    finally:
        subprocess.run(["scancel", "--name=bench"], env=ENV, capture_output=True)
        run_once(RUNS + ["delete", "slurm-.*", "-y"], repo)  # cancels their jobs


METRIC_TAGS = ("loss", "val/loss", "val/acc", "lr", "grad_norm")
METRIC_STEPS = 10_000


def metric_value(run: int, tag: int, step: int) -> float:
    """A run's value of tag number ``tag`` at ``step``: each run a different curve."""
    return (1.0 + run % 7) / (1.0 + step * 0.001 * (1 + tag)) + run * 0.01


def metric_event(run: int, step: int, tag: int) -> Any:
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.summary import scalar

    return Event(step=step, wall_time=1796300000.0 + step, summary=scalar(METRIC_TAGS[tag], metric_value(run, tag, step)))


def write_metric_steps(writer: Any, run: int, steps: range) -> None:
    """``steps`` of every tag, one event per scalar as PyTorch's add_scalar writes them."""
    for step in steps:
        for tag in range(len(METRIC_TAGS)):
            writer.write_event(metric_event(run, step, tag))
    writer.flush()


def write_metric_run(job: Tuple[str, int]) -> None:
    """Run number i's event file, written whole with tensorboardX's (synchronous) events writer."""
    from tensorboardX.event_file_writer import EventsWriter

    logdir, run = job
    os.makedirs(logdir, exist_ok=True)
    writer = EventsWriter(os.path.join(logdir, "events"))
    write_metric_steps(writer, run, range(METRIC_STEPS))
    writer.close()


def live_metric_run(conn: Any, logdir: str, run: int) -> None:
    """A run still writing, in a process of its own (this one never imports tensorboardX: a
    command's peak RSS would count this process's memory, which its fork starts with): its
    10,000 steps, then each (first, stop) range of steps received, flushed, answered "done"."""
    from tensorboardX.event_file_writer import EventsWriter

    os.makedirs(logdir)
    writer = EventsWriter(os.path.join(logdir, "events"))
    write_metric_steps(writer, run, range(METRIC_STEPS))
    conn.send("done")
    while True:
        steps = conn.recv()
        if steps is None:
            break
        write_metric_steps(writer, run, range(*steps))
        conn.send("done")
    writer.close()


def metrics_rows(root: str, repeat: int, row: Callable[..., None]) -> None:
    """`runs table --metrics` of 100 runs with one event file each (10,000 steps of 5 scalar
    tags, written with tensorboardX as the tests do): the first read, a read with nothing new,
    and a read after 100 new steps of one run (still being written)."""
    import json
    import multiprocessing

    layout = Layout(100)
    repo, _ = make_repo(os.path.join(root, "metrics"), layout)
    tb_root = os.path.join(repo, ".runs", "tensorboard")
    start = time.perf_counter()
    live = 0  # this run's writer stays open: new steps are appended to its file
    small, _ = make_repo(os.path.join(root, "metrics-warm-up"), Layout(2))
    fork = multiprocessing.get_context("fork")
    with fork.Pool(max(1, min(4, os.cpu_count() or 1))) as pool:  # tensorboardX is imported there, not here
        pool.map(write_metric_run, [(os.path.join(tb_root, f"run{i}"), i) for i in range(100) if i != live]
                 + [(os.path.join(small, ".runs", "tensorboard", "run1"), 1)])
    conn, child_conn = fork.Pipe()
    writer = fork.Process(target=live_metric_run, args=(child_conn, os.path.join(tb_root, f"run{live}"), live))
    writer.start()
    conn.recv()
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(tb_root) for f in files)
    print(f"  (100 event files, {size / 1e6:.0f} MB, written in {time.perf_counter() - start:.0f} s)", file=sys.stderr)
    # Untimed, on a small database: the bytecode of the reading path is cached, as installed.
    run_once(RUNS + ["table", "--metrics", ",".join(METRIC_TAGS)], small)
    run_once(RUNS + ["metrics", "run1"], small)
    run_once(RUNS + ["list"], repo)
    time.sleep(2.1)
    cache = os.path.join(repo, ".runs", ".runs.yml.metrics")
    argv = RUNS + ["table", "-c", "name,status", "--metrics", ",".join(METRIC_TAGS), "--sort", "-val/acc"]

    def forget(i: int = 0) -> None:
        if os.path.exists(cache):
            os.unlink(cache)

    forget()
    first_repeat = max(1, min(repeat, 3))
    ms, mem = measure(lambda i: argv, repo, first_repeat, after=forget)
    row("runs table --metrics, first read", "100", ms, mem, "<= 15000 ms", ms <= 15000)
    run_once(argv, repo)
    rows = json.loads(output(argv + ["--format", "json"], repo))
    by_name = {r["name"]: r for r in rows}
    for i in (1, 50, 99):
        want = {tag: metric_value(i, k, METRIC_STEPS - 1) for k, tag in enumerate(METRIC_TAGS)}
        got = by_name[f"run{i}"]
        if any(abs(got[tag] - want[tag]) > 1e-6 * max(1.0, abs(want[tag])) for tag in METRIC_TAGS):
            raise SystemExit(f"bench: runs table --metrics gave {got} for run{i}, expected {want}")
    ms, mem = measure(lambda i: argv, repo, repeat)
    row("runs table --metrics, no new data", "100", ms, mem, "<= 400 ms", ms <= 400)
    steps = iter(range(METRIC_STEPS, METRIC_STEPS + 100 * (repeat + 1), 100))

    def append(i: int = 0) -> None:
        first = next(steps)
        conn.send((first, first + 100))
        conn.recv()

    append()
    ms, mem = measure(lambda i: argv, repo, repeat, after=append)
    row("runs table --metrics, +100 steps", "100", ms, mem, "<= 500 ms", ms <= 500)
    last = json.loads(output(RUNS + ["metrics", f"run{live}", "--format", "json"], repo))[0]
    if (last["tag"], last["step"], last["count"]) != ("grad_norm", METRIC_STEPS + 100 * (repeat + 1) - 1, METRIC_STEPS + 100 * (repeat + 1)):
        raise SystemExit(f"bench: the appended steps were not read: {last}")
    conn.send(None)
    writer.join()
    ms, mem = measure(lambda i: RUNS + ["metrics", "run50"], repo, repeat)
    row("runs metrics NAME", "100", ms, mem, "", True)


RESTART_STEPS = 300_000  # 1.5 M points of 5 tags


def write_restart_file(job: Tuple[str, int, int, Optional[int]]) -> None:
    """An event file of steps [first, stop) of every tag, after a SessionLog START at ``start``
    (PyTorch's purge_step) unless None."""
    from tensorboardX.event_file_writer import EventsWriter
    from tensorboardX.proto.event_pb2 import Event, SessionLog

    path, first, stop, start = job
    os.makedirs(os.path.dirname(path), exist_ok=True)
    writer = EventsWriter(path)
    if start is not None:
        writer.write_event(Event(step=start, wall_time=1796300000.0, session_log=SessionLog(status=SessionLog.START)))
    write_metric_steps(writer, 0, range(first, stop))
    writer.close()


def restart_rows(root: str, repeat: int, row: Callable[..., None]) -> None:
    """`runs metrics` of a run of 1.5 M points that restarted (two SessionLog STARTs, the
    second orphaning a third of the points) and of one that did not, side by side: the
    first read and later ones, time and peak memory."""
    import json
    import multiprocessing

    repo, _ = make_repo(os.path.join(root, "restarts"), Layout(2))
    tb_root = os.path.join(repo, ".runs", "tensorboard")
    half, start = RESTART_STEPS * 2 // 3, RESTART_STEPS // 3
    jobs = [(os.path.join(tb_root, "run0", "events.out.tfevents.1"), 0, half, 0),  # restarted at `start`:
            (os.path.join(tb_root, "run0", "events.out.tfevents.2"), start, half, start),  # its steps >= start orphaned
            (os.path.join(tb_root, "run1", "events.out.tfevents.1"), 0, RESTART_STEPS, None)]
    began = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(2) as pool:  # tensorboardX is imported there, not here
        pool.map(write_restart_file, jobs)
    print(f"  (3 event files of 3 M points, written in {time.perf_counter() - began:.0f} s)", file=sys.stderr)
    cache = os.path.join(repo, ".runs", ".runs.yml.metrics")

    def forget(i: int = 0) -> None:
        if os.path.exists(cache):
            os.unlink(cache)

    got = {}
    for name in ("run1", "run0"):
        forget()
        got[name, "first"] = measure(lambda i, name=name: RUNS + ["metrics", name], repo, max(1, min(repeat, 3)), after=forget)  # type: ignore[misc]
        run_once(RUNS + ["metrics", name], repo)
        got[name, "later"] = measure(lambda i, name=name: RUNS + ["metrics", name], repo, repeat)  # type: ignore[misc]
    counts = {r["tag"]: r["count"] for r in json.loads(output(RUNS + ["metrics", "run0", "--format", "json"], repo))}
    if counts != {tag: half for tag in METRIC_TAGS}:
        raise SystemExit(f"bench: the restarted run's points were not purged as TensorBoard does: {counts}")
    plain_first, plain_later = got["run1", "first"], got["run1", "later"]
    row("runs metrics, 1.5 M points, first read", "1", *plain_first, "", True)
    row("runs metrics, 1.5 M points, later reads", "1", *plain_later, "", True)
    ms, mem = got["run0", "first"]
    row("runs metrics, restarted, first read", "1", ms, mem, f"<= {2 * plain_first[1]:.0f} MB (2x not restarted)",
        mem <= 2 * plain_first[1])
    ms, mem = got["run0", "later"]
    row("runs metrics, restarted, later reads", "1", ms, mem, f"<= 2x not restarted ({2 * plain_later[0]:.0f} ms)",
        ms <= 2 * plain_later[0])


def sweep_rows(repo: str, label: str, big: bool, repeat: int, row: Callable[..., None]) -> None:
    """`runs new` of a 100-run grid (one hold of the lock), queued four at a time or all
    started; and how soon a run that ends starts the next queued one (issue 11)."""
    grid = ["--grid", "i=" + ",".join(map(str, range(100)))]
    quiet = ["--tb-dir-flag", "None", "--save-path-flag", "None"]
    for kind, extra in (("queued", ["--max-parallel", "4"]), ("started", [])):
        ms, mem = measure(lambda i, kind=kind, extra=extra: RUNS + ["new", f"grid-{kind}-{i}", "sleep 600 {i}", *grid, *extra, *quiet],  # type: ignore[misc]
                          repo, repeat, after=lambda i, kind=kind: run_once(RUNS + ["delete", f"grid-{kind}-{i}/.*", "-y"], repo))  # type: ignore[misc]
        started = "4 started, 96 queued" if extra else "100 started"
        row(f"runs new --grid (100 runs, {started})", label, ms, mem, "<= 3000 ms" if big else "", not big or ms <= 3000)
    lags = []
    for i in range(repeat):
        name = f"lag-{i}"
        run_once(RUNS + ["new", name, "sleep {t}", "--grid", "t=0.1,0", "--max-parallel", "1", *quiet], repo)
        wait_for_outcome(repo, f"{name}/t-0")
        first, second = entry_of(repo, f"{name}/t-0.1"), entry_of(repo, f"{name}/t-0")
        assert first is not None and second is not None
        lag = datetime.datetime.fromisoformat(second["started"]) - datetime.datetime.fromisoformat(first["ended"])
        lags.append(lag.total_seconds() * 1000)
    LAST_TIMES[:] = lags
    ms = statistics.median(lags)
    row("a run ends: the next queued starts", label, ms, 0.0, "<= 2000 ms" if big else "", not big or ms <= 2000)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory with the databases")
    parser.add_argument("--slurm", action="store_true",
                        help="also time --launcher slurm on a single-node cluster (scripts/slurm-cluster.sh start)")
    parser.add_argument("--metrics", action="store_true",
                        help="time only runs table --metrics and runs metrics (100 runs with TensorBoard events; "
                        "needs tensorboardX and runs' metrics extra)")
    parser.add_argument("--snapshot", action="store_true", help="time only runs new with and without a code snapshot")
    parser.add_argument("--check-exports", nargs=2, metavar=("REPO", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.check_exports:
        check_exports(args.check_exports[0], Layout(int(args.check_exports[1])))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    check_source()
    from runs_manager.launchers.base import supervisor_argv

    runs = RUNS
    python = sys.executable

    root = tempfile.mkdtemp(prefix="runs-bench-")
    ENV["TMUX_TMPDIR"] = tempfile.mkdtemp(prefix="tmx-", dir="/tmp")
    ENV.pop("TMUX", None)
    # Bytecode is cached, as for an installed runs, but outside the checkout.
    ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    ENV["PYTHONPYCACHEPREFIX"] = os.path.join(root, "pycache")
    rows: List[Tuple[str, str, float, float, str, bool]] = []
    results: Dict[str, float] = {}

    def row(label: str, size: str, ms: float, peak: float, target: str, ok: bool) -> None:
        rows.append((label, size, ms, peak, target, ok))
        spread = f"  (each: {' '.join(f'{t:.0f}' for t in LAST_TIMES)})" if peak else ""
        print(f"  {label:<34} {size:>8} {ms:8.0f} ms {peak:6.0f} MB{spread}", file=sys.stderr)

    try:
        if args.metrics:
            metrics_rows(root, args.repeat, row)
            restart_rows(root, args.repeat, row)
            return finish(rows)
        warm_up(root)
        if args.snapshot:
            snapshot_rows(root, args.repeat, row)
            return finish(rows)
        print(f"runs: {' '.join(runs)} (PYTHONPATH={ROOT}); results are medians of {args.repeat} runs", file=sys.stderr)
        print(f"  (load average {os.getloadavg()[0]:.2f}: other work on this machine skews the times)", file=sys.stderr)
        base, base_mem = measure(lambda i: [python, "-c", "pass"], root, args.repeat)
        row("python -c pass", "", base, base_mem, "", True)
        ms, mem = measure(lambda i: runs + ["--help"], root, args.repeat)
        row("runs --help", "", ms, mem, f"<= 2.5x pass ({2.5 * base:.0f} ms)", ms <= 2.5 * base)
        read_limit = max(150.0, 6 * base)
        # A run from a dirty tree (100 changed files): its changes stored as a patch first.
        dirty = make_dirty_repo(root)
        ms, mem = measure(lambda i: runs + ["new", f"dirty-{i}", "true", "--allow-dirty"], dirty, args.repeat,
                          after=lambda i: wait_for_outcome(dirty, f"dirty-{i}"))
        size = os.path.getsize(os.path.join(dirty, ".runs", "patches", "dirty-0.patch"))
        row(f"runs new --allow-dirty ({size / 1e6:.1f} MB)", "", ms, mem, "<= 1000 ms", ms <= 1000)
        # The same repository committed: a clean tree costs --allow-dirty nothing (no git call more).
        subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qam", "clean"],
                       cwd=dirty, check=True)
        # Interleaved, so that the two see the same load and the same database.
        clean: Dict[str, List[Tuple[float, float]]] = {"clean": [], "clean-allowed": []}
        for i in range(args.repeat):
            for kind, extra in (("clean", []), ("clean-allowed", ["--allow-dirty"])):
                name = f"{kind}-{i}"
                clean[kind].append(measure(lambda _, name=name, extra=extra: runs + ["new", name, "true", *extra],  # type: ignore[misc]
                                           dirty, 1, after=lambda _, name=name: wait_for_outcome(dirty, name)))  # type: ignore[misc]
        LAST_TIMES[:] = [t for t, _ in clean["clean"]]
        plain = statistics.median(LAST_TIMES)
        row("runs new (that repository, clean)", "", plain, max(m for _, m in clean["clean"]), "", True)
        LAST_TIMES[:] = [t for t, _ in clean["clean-allowed"]]
        ms, mem = statistics.median(LAST_TIMES), max(m for _, m in clean["clean-allowed"])
        row("runs new --allow-dirty (clean)", "", ms, mem, f"<= 1.1x that ({1.1 * plain:.0f} ms)", ms <= 1.1 * plain)
        snapshot_rows(root, args.repeat, row)
        beat = beat_cpu(root)
        row(f"a heartbeat beat ({beat * 1000:.0f} µs of CPU)", "", beat, 0.0, "<= 1 ms", beat <= 1.0)
        subprocess.run(["tmux", "kill-server"], env=ENV, capture_output=True)
        if args.slurm:
            slurm_rows(root, args.repeat, row)
        metrics_rows(root, args.repeat, row)
        restart_rows(root, args.repeat, row)

        for size in sizes:
            label = f"{size:,}"
            big = size >= 100000  # targets are shown and enforced at 100,000 runs
            layout = Layout(size)
            repo, per_run = make_repo(root, layout)
            print(f"  ({size:,} runs, {per_run:.0f} bytes a run; load average {os.getloadavg()[0]:.2f})", file=sys.stderr)
            # The one-off index build after the file appeared (the YAML is read once).
            start = time.perf_counter()
            run_once(runs + ["list"], repo)
            row("first command (builds the index)", label, (time.perf_counter() - start) * 1000, 0, "one-off", True)
            # Reads on a YAML file older than the racy window, as in daily use.
            time.sleep(2.1)
            check_statuses(repo, layout)
            middle = size // 2
            lost = f"run{layout.tail_start}"  # no outcome, this host: its log's lock is checked
            for name, cmd in (
                ("runs list", ["list"]),
                ("runs list --pattern P", ["list", "--pattern", f"run{middle}.*"]),
                ("runs lookup NAME KEY", ["lookup", f"run{middle}", "commit"]),
                ("runs lookup NAME status", ["lookup", lost, "status"]),
            ):
                ms, mem = measure(lambda i, cmd=cmd: runs + cmd, repo, args.repeat)  # type: ignore[misc]
                ok = not big or (ms <= read_limit and mem <= 100)
                row(name, label, ms, mem, f"<= {read_limit:.0f} ms, 100 MB" if big else "", ok)
            if size >= 10000:
                pattern = f"run{size // 1000 + 3}\\d\\d"  # 100 rows
                ms, mem = measure(lambda i: runs + ["table", "--pattern", pattern], repo, args.repeat)
                row("runs table --pattern P (100 rows)", label, ms, mem, "<= 400 ms" if big else "", not big or ms <= 400)
            if size == 10000:
                ms, mem = measure(lambda i: runs + ["table"], repo, args.repeat)
                row("runs table (all 10,000 rows)", label, ms, mem, "<= 1000 ms", ms <= 1000)
            ms, mem = measure(lambda i: runs + ["table", "--status", "running"], repo, args.repeat)
            row("runs table --status running", label, ms, mem, "<= 400 ms" if big else "", not big or ms <= 400)
            beating = heartbeats(repo, layout)
            ms, mem = measure(lambda i: runs + ["table", "--status", "running"], repo, args.repeat)
            row(f"runs table --status running ({beating:,} remote heartbeats)", label, ms, mem, "<= 400 ms" if big else "",
                not big or ms <= 400)
            shutil.rmtree(os.path.join(repo, ".runs", "live"))
            # Export, sort and completion (issue 10); their output is checked first, untimed.
            # In a process of its own: parsing 100,000 rows here would grow this process, and every
            # later child would report that memory as its peak (a fork starts with its parent's RSS).
            subprocess.run([sys.executable, os.path.abspath(__file__), "--check-exports", repo, str(size)], env=ENV, check=True)
            hundred = f"run{size // 1000 + 3}\\d\\d"  # 100 rows, as above
            prefix = f"run{middle}"[:-2]  # 111 names at 10,000 runs and above
            for name, cmd, limit, memory in (
                ("runs table --format json (all)", ["table", "--format", "json"], 3000.0, 300),
                ("runs table --sort datetime -p P", ["table", "--sort", "datetime", "--pattern", hundred], 400.0, 0),
                ("runs table --params -p P", ["table", "--params", "--pattern", hundred], 400.0, 0),
                ("runs list --format json", ["list", "--format", "json"], 200.0, 0),
                ("complete a run name (Tab)", ["__complete", "names", prefix, "runs", "delete", prefix], 150.0, 0),
            ):
                ms, mem = measure(lambda i, cmd=cmd: runs + cmd, repo, args.repeat)  # type: ignore[misc]
                target = f"<= {limit:.0f} ms" + (f", {memory} MB" if memory else "")
                row(name, label, ms, mem, target if big else "", not big or (ms <= limit and (not memory or mem <= memory)))

            # Parameters cost what any other column costs (issue 37): side by side, interleaved.
            for (plain, plain_cmd), (with_params, params_cmd) in (
                (("runs table (all)", ["table"]), ("runs table --params (all)", ["table", "--params"])),
                (("runs table -c name,host --sort -host (all)", ["table", "-c", "name,host", "--sort", "-host"]),
                 ("runs table -c name,lr --sort -lr (all)", ["table", "-c", "name,lr", "--sort", "-lr"])),
            ):
                (a, a_mem), (b, b_mem) = interleaved(runs + plain_cmd, runs + params_cmd, repo, args.repeat)
                row(plain, label, a, a_mem, "", True)
                row(with_params, label, b, b_mem, f"<= 1.25x that ({1.25 * a:.0f} ms)" if big else "", not big or b <= 1.25 * a)

            # Changes. Each `runs new` starts a supervisor in tmux; wait for its outcome.
            ms, mem = measure(lambda i: runs + ["new", f"bench-{i}", "true"], repo, args.repeat,
                              after=lambda i: wait_for_outcome(repo, f"bench-{i}"))
            results[f"new-{size}"] = ms
            target, ok = "<= 600 ms", ms <= 600
            if big and "new-100" in results:
                target += f", <= 1.25x at 100 ({1.25 * results['new-100']:.0f} ms)"
                ok = ok and ms <= 1.25 * results["new-100"]
            row("runs new", label, ms, mem, target, ok)
            first = size // 3
            deleted = {first + i for i in range(args.repeat)}
            ms, mem = measure(lambda i: runs + ["delete", f"run{first + i}", "-y"], repo, args.repeat)
            row("runs delete (one run)", label, ms, mem, "<= 1000 ms" if big else "", not big or ms <= 1000)
            # Deleting a finished run with 1 GB of checkpoints: the lock is held for renames only.
            heavy = [size // 3 + args.repeat + i for i in range(args.repeat)]
            holds = []
            for name in heavy:
                give_checkpoints(repo, f"run{name}")
                holds.append(lock_held(runs + ["delete", f"run{name}", "-y"], repo))
                if os.path.exists(os.path.join(repo, ".runs", "checkpoints", f"run{name}.ckpt-0.data-00000-of-00001")):
                    raise SystemExit(f"bench: runs delete run{name} left its checkpoints")
            deleted |= set(heavy)
            LAST_TIMES[:] = holds
            row("runs delete, 1 GB of checkpoints: lock held", label, statistics.median(holds), 0, "<= 100 ms",
                statistics.median(holds) <= 100)
            described = 2 * size // 3
            ms, mem = measure(lambda i: runs + ["describe", f"run{described + i}", f"seed sweep, rerun {i} with warm-up"],
                              repo, args.repeat)
            row("runs describe NAME TEXT", label, ms, mem, "<= 500 ms, 100 MB" if big else "", not big or (ms <= 500 and mem <= 100))
            # Finished runs of this host, with files to move; a different one each repeat.
            taken = deleted | {middle} | {described + i for i in range(args.repeat)}
            movable = [j for j in range(8 * (size // 40), layout.tail_start, 8) if j not in taken and layout.status(j) == "finished"]
            if len(movable) < args.repeat:
                raise SystemExit(f"bench: {size} runs have too few finished runs of this host to move")
            for j in movable[: args.repeat]:
                give_files(repo, f"run{j}")
            ms, mem = measure(lambda i: runs + ["mv", f"run{movable[i]}", f"run{movable[i]}-renamed"], repo, args.repeat)
            row("runs mv OLD NEW", label, ms, mem, "<= 500 ms, 100 MB" if big else "", not big or (ms <= 500 and mem <= 100))

            sweep_rows(repo, label, big, args.repeat, row)
            subprocess.run(["tmux", "kill-server"], env=ENV, capture_output=True)

            # The supervisor of a run whose program exits at once: start-up, program, recording the outcome.
            settings = settings_of(repo)
            prepared = prepare_recorded_runs(repo, args.repeat)
            time.sleep(2.1)  # the preparation is not timed; nor is the index in its racy window

            def check_recorded(i: int) -> None:
                entry = entry_of(repo, prepared[i][0])
                if entry is None or entry.get("exit_code") != 0 or "ended" not in entry:
                    raise SystemExit(f"bench: the supervisor did not record exit_code 0 for {prepared[i][0]}: {entry}")

            ms, mem = measure(
                lambda i: supervisor_argv(settings, prepared[i][0], prepared[i][1], ["/bin/sh", "-c", "exit 0"], keep_open=False),
                repo, args.repeat, after=check_recorded,
            )
            row("supervisor: run, record outcome", label, ms, mem, "<= 500 ms, 100 MB" if big else "", not big or (ms <= 500 and mem <= 100))
            # This size's sessions (kept open by their shells) must not take the next size's names.
            subprocess.run(["tmux", "kill-server"], env=ENV, capture_output=True)
    finally:
        subprocess.run(["tmux", "kill-server"], env=ENV, capture_output=True)
        if args.keep:
            print(f"bench: kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(ENV["TMUX_TMPDIR"], ignore_errors=True)

    return finish(rows)


def finish(rows: List[Tuple[str, str, float, float, str, bool]]) -> int:
    """Print the table of results; 0 if every target was met."""
    width = max(len(r[0]) for r in rows)
    rule = f"{'=' * width}  {'=' * 8}  {'=' * 9}  {'=' * 8}  {'=' * 44}"
    print(rule)
    print(f"{'command':<{width}}  {'runs':>8}  {'median':>9}  {'peak RSS':>8}  target")
    print(rule)
    for label, count, ms, peak, target, ok in rows:
        mark = "" if not target or target == "one-off" else ("  met" if ok else "  MISSED")
        peak_text = f"{peak:5.0f} MB" if peak else ""
        print(f"{label:<{width}}  {count:>8}  {ms:6.0f} ms  {peak_text:>8}  {target}{mark}")
    print(rule)
    return 0 if all(r[5] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

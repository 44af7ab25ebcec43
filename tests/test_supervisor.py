"""The supervisor and the statuses it makes possible, with real tmux and real processes.

Each status arises for real: finished, failed, killed (by a signal, by a closed session,
by a killed tmux server), lost (every process of the session SIGKILLed), running, and
unknown (another host, an entry of the original tool). The log is the program's terminal
output from the first byte, and the program sees a terminal.
"""
from __future__ import annotations

import datetime
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
import yaml

from runs_manager import processes
from tests.conftest import ROOT, Result, start_run, status_of, wait_for, wait_status


def entry(repo: Path, name: str) -> Dict[str, Any]:
    return yaml.safe_load((repo / ".runs/.runs.yml").read_text())[name]


def log(repo: Path, name: str) -> bytes:
    return (repo / ".runs/logs" / f"{name}.log").read_bytes()


def supervisor_of(repo: Path, name: str) -> int:
    """The pid of the run's supervisor, once it has started the program."""
    pid = processes.lock_holder(str(repo / ".runs/logs" / f"{name}.log"))
    assert pid is not None, f"run {name!r} has no live supervisor"
    assert wait_for(lambda: processes.program_group(pid)[0] == "running"), "the supervisor started no program"
    return pid


def test_finished_records_exit_code_and_end_time(repo: Path, runs: Callable[..., Result]) -> None:
    start_run(runs, "ok", "echo hello")
    wait_status("ok", "finished")
    recorded = entry(repo, "ok")
    assert recorded["exit_code"] == 0 and recorded["launcher"] == "tmux"
    ended = datetime.datetime.fromisoformat(recorded["ended"])
    assert ended.tzinfo is not None
    assert ended >= datetime.datetime.fromisoformat(recorded["datetime"])
    assert "exit_code: 0\n" in (repo / ".runs/.runs.yml").read_text()  # an integer a person can read
    assert runs("lookup", "ok", "status").out == "finished\n"
    assert runs("lookup", "ok", "exit_code").out == "0\n"
    assert runs("lookup", "ok", "ended").out == recorded["ended"] + "\n"
    assert log(repo, "ok") == b"hello\n"


def test_failed_keeps_the_exit_status(repo: Path, runs: Callable[..., Result]) -> None:
    start_run(runs, "bad", "echo oops >&2; exit 3")
    wait_status("bad", "failed")
    assert entry(repo, "bad")["exit_code"] == 3
    assert b"oops" in log(repo, "bad")
    assert "killed" not in entry(repo, "bad")


def test_death_by_a_signal_is_killed_with_128_plus_n(repo: Path, runs: Callable[..., Result]) -> None:
    start_run(runs, "sig", "kill -KILL $$")
    wait_status("sig", "killed")
    assert entry(repo, "sig")["exit_code"] == 128 + signal.SIGKILL


def test_running_then_finished(repo: Path, runs: Callable[..., Result]) -> None:
    go = repo.parent / "go"
    start_run(runs, "slow", f"while [ ! -e {go} ]; do sleep 0.05; done")
    assert status_of("slow") == "running"  # at once: runs new waits for the supervisor
    assert "ended" not in entry(repo, "slow")
    assert runs("list", "--status", "running").out == "slow\n"
    assert "slow" in runs("table", "--status", "running,lost").out
    assert runs("list", "--status", "finished").out == ""
    error = runs("lookup", "slow", "exit_code")
    assert error.code == 1 and "status: running" in error.err
    go.touch()
    wait_status("slow", "finished")


def test_closing_the_session_records_a_hang_up(repo: Path, runs: Callable[..., Result], tmux: Any) -> None:
    start_run(runs, "hup", "sleep 600")
    assert tmux.run("kill-session", "-t", "=hup").returncode == 0
    wait_status("hup", "killed")
    recorded = entry(repo, "hup")
    assert recorded["exit_code"] == 128 + signal.SIGHUP
    assert "hang-up" in recorded["killed"]


def test_killing_the_tmux_server_under_a_running_run(repo: Path, runs: Callable[..., Result], tmux: Any) -> None:
    start_run(runs, "victim", "echo before; sleep 600")
    assert wait_for(lambda: b"before" in log(repo, "victim"))
    assert tmux.run("kill-server").returncode == 0
    wait_status("victim", "killed")
    assert "hang-up" in entry(repo, "victim")["killed"]
    # The log outlives the session and the server.
    assert log(repo, "victim") == b"before\n"
    assert runs("logs", "victim").out == "before\n"


def test_a_program_that_ignores_the_hang_up_is_still_running(repo: Path, runs: Callable[..., Result], tmux: Any) -> None:
    """The run is its whole process group: a process that survives the hang-up keeps it running."""
    script = "import signal, time; signal.signal(signal.SIGHUP, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"
    start_run(runs, "stubborn", f"{sys.executable} -c {_q(script)}")
    assert wait_for(lambda: b"ready" in log(repo, "stubborn"))
    tmux.run("kill-session", "-t", "=stubborn")
    assert not wait_for(lambda: status_of("stubborn") != "running", timeout=1.5)
    assert runs("kill", "stubborn", "-y", "--grace", "0.5").code == 0
    wait_status("stubborn", "killed")


def test_sigkill_of_every_process_of_the_session_is_lost(repo: Path, runs: Callable[..., Result]) -> None:
    start_run(runs, "doomed", "sleep 600")
    supervisor = supervisor_of(repo, "doomed")
    where, group = processes.program_group(supervisor)
    assert where == "running"
    os.killpg(group, signal.SIGKILL)
    os.kill(supervisor, signal.SIGKILL)
    wait_status("doomed", "lost")
    assert "exit_code" not in entry(repo, "doomed")
    assert runs("table", "--status", "lost").out.count("doomed") == 1


def test_other_hosts_and_the_original_tools_entries_are_unknown(repo: Path, runs: Callable[..., Result]) -> None:
    (repo / ".runs").mkdir()
    (repo / ".runs/.runs.yml").write_text(
        "old:\n  command: python train.py\n  host: here\n"  # the original tool recorded no launcher
        "elsewhere:\n  command: python train.py\n  host: gpu-node-7\n  launcher: tmux\n"
        "done:\n  command: python train.py\n  host: gpu-node-7\n  launcher: tmux\n  exit_code: 0\n"
    )
    assert runs("lookup", "old", "status").out == "unknown\n"
    assert runs("lookup", "elsewhere", "status").out == "unknown\n"
    assert runs("lookup", "done", "status").out == "finished\n"
    assert runs("list", "-s", "unknown").out == "old\nelsewhere\n"


def test_the_program_sees_a_terminal_and_the_log_has_every_byte(repo: Path, runs: Callable[..., Result]) -> None:
    script = (
        "import sys, os\n"
        "print('tty', sys.stdout.isatty(), sys.stdin.isatty(), os.isatty(2))\n"
        "for i in range(3): print(f'\\rprogress {i}', end='', flush=True)\n"
        "print()\n"
        "sys.stdout.buffer.write(bytes(range(1, 9)) + b'\\xff\\n')\n"
    )
    (repo / "tty.py").write_text(script)
    subprocess.run(["git", "add", "tty.py"], check=True)
    subprocess.run(["git", "commit", "-qm", "tty"], check=True)
    start_run(runs, "tty", f"{sys.executable} tty.py")
    wait_status("tty", "finished")
    text = log(repo, "tty")
    assert text.startswith(b"tty True True True\n")  # from the first byte
    assert b"\rprogress 0\rprogress 1\rprogress 2\n" in text  # progress bars keep their carriage returns
    assert b"\r\n" not in text  # line ends as the program wrote them, not the terminal's CRLF
    assert text.endswith(bytes(range(1, 9)) + b"\xff\n")


def test_an_outcome_waits_for_the_lock_rather_than_being_lost(repo: Path, runs: Callable[..., Result]) -> None:
    go = repo.parent / "go"
    start_run(runs, "patient", f"while [ ! -e {go} ]; do sleep 0.05; done")
    fd = os.open(str(repo / ".runs/.runs.yml.lock"), os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)  # another runs command holds the database
        go.touch()
        assert not wait_for(lambda: "exit_code" in entry(repo, "patient"), timeout=2)
        assert status_of("patient") == "running"  # ended, not yet recorded: not lost
    finally:
        os.close(fd)
    wait_status("patient", "finished")


def test_deleted_while_running_leaves_no_entry_behind(repo: Path, runs: Callable[..., Result]) -> None:
    start_run(runs, "gone", "sleep 600")
    supervisor = supervisor_of(repo, "gone")
    assert runs("delete", "gone", "-y").code == 0
    assert wait_for(lambda: not _alive(supervisor))
    assert "gone" not in (yaml.safe_load((repo / ".runs/.runs.yml").read_text()) or {})
    assert not (repo / ".runs/logs/gone.log").exists()


def test_an_old_supervisor_never_records_into_a_new_run_of_the_same_name(repo: Path, runs: Callable[..., Result]) -> None:
    """A supervisor of a run deleted and made anew under its name (it knows the old start
    time) records nothing into the new run."""
    start_run(runs, "same", "sleep 600")
    from runs_manager.launchers.base import supervisor_argv
    from runs_manager.settings import Settings

    old_start = "2020-01-01T00:00:00+00:00"
    argv = supervisor_argv(Settings(runs_dir=str(repo / ".runs")), "same", old_start, ["/bin/sh", "-c", "exit 5"], keep_open=False)
    # The new run's supervisor holds the log's lock; the old one got its own file before the delete.
    (repo / ".runs/logs/same.log").rename(repo / ".runs/logs/same.log.new")
    (repo / ".runs/logs/same.log").touch()
    done = subprocess.run(argv, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 0
    assert "exit_code" not in entry(repo, "same")
    (repo / ".runs/logs/same.log.new").rename(repo / ".runs/logs/same.log")
    assert status_of("same") == "running"


def test_a_supervisor_killed_while_recording_leaves_the_database_whole(repo: Path, runs: Callable[..., Result]) -> None:
    started = _recorded_not_started(repo, runs, "crash")
    before = (repo / ".runs/.runs.yml").read_bytes()
    from runs_manager.launchers.base import supervisor_argv
    from runs_manager.settings import Settings

    argv = supervisor_argv(Settings(runs_dir=str(repo / ".runs")), "crash", started, ["/bin/sh", "-c", "exit 5"], keep_open=False)
    env = dict(os.environ, RUNS_CRASH_AT="atomic-write:temp-written", PYTHONPATH=str(ROOT))
    done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL
    assert (repo / ".runs/.runs.yml").read_bytes() == before
    # Its outcome was kept in the run's state file before the write: not lost with it.
    assert status_of("crash") == "failed" and status_of("first") == "finished"
    # Without the crash the same supervisor records the outcome.
    done = subprocess.run(argv, env=dict(env, RUNS_CRASH_AT=""), stdin=subprocess.DEVNULL, timeout=60)
    assert entry(repo, "crash")["exit_code"] == 5 and status_of("crash") == "failed"


def _recorded_not_started(repo: Path, runs: Callable[..., Result], name: str) -> str:
    """An entry of run ``name`` as `runs new` records it, with its files, but no supervisor
    (after a first run has ended, so the database exists); returns its start time."""
    start_run(runs, "first", "true")
    wait_status("first", "finished")
    started = "2026-01-01T00:00:00+00:00"
    with open(repo / ".runs/.runs.yml", "a") as f:
        f.write(f"{name}:\n  command: 'true'\n  datetime: '{started}'\n  host: {_host()}\n  launcher: tmux\n")
    (repo / f".runs/logs/{name}.log").touch()
    (repo / f".runs/tensorboard/{name}").mkdir()
    from runs_manager.runtime import runstate
    from runs_manager.settings import Settings

    runstate.create(Settings(runs_dir=str(repo / ".runs")), name, started)  # as runfiles.create makes it
    return started


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"


def _host() -> str:
    import socket

    return socket.gethostname()


def _q(text: str) -> str:
    import shlex

    return shlex.quote(text)


@pytest.fixture(autouse=True)
def _no_crash_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNS_CRASH_AT", raising=False)


def test_delete_waits_for_a_program_that_saves_on_hang_up(repo: Path, runs: Callable[..., Result]) -> None:
    """A program still saving after its hang-up must not leave files in the deleted run's place."""
    script = (
        "import signal, sys, time, pathlib\n"
        "def save(*_):\n"
        "    time.sleep(0.5)\n"
        "    pathlib.Path(sys.argv[1], 'late.ckpt').write_text('late')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGHUP, save)\n"
        "signal.signal(signal.SIGTERM, save)\n"
        "print('up', flush=True)\n"
        "time.sleep(600)\n"
    )
    tb = repo / ".runs/tensorboard/saver"
    start_run(runs, "saver", f"{sys.executable} -c {_q(script)} {_q(str(tb))}")
    assert wait_for(lambda: b"up" in log(repo, "saver"))
    assert runs("delete", "saver", "-y").code == 0
    time.sleep(1)
    assert not tb.exists() and not (repo / ".runs/logs/saver.log").exists()
    assert "saver" not in (yaml.safe_load((repo / ".runs/.runs.yml").read_text()) or {})


def test_a_wrapper_that_dies_of_sigterm_leaves_its_program_the_grace_period(repo: Path, runs: Callable[..., Result]) -> None:
    """`a && b` and wrapper scripts: the shell dies of SIGTERM at once, but the program it
    started keeps its terminal and finishes its handler (no hang-up under it)."""
    script = (
        "import signal, sys, time, pathlib\n"
        "def save(*_):\n"
        "    time.sleep(1)\n"
        "    print('saved', flush=True)\n"
        "    pathlib.Path(sys.argv[1]).write_text('saved')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, save)\n"
        "print('up', flush=True)\n"
        "time.sleep(600)\n"
    )
    marker = repo.parent / "saved"
    start_run(runs, "wrapped", f"echo pre && {sys.executable} -c {_q(script)} {_q(str(marker))} && echo after")
    assert wait_for(lambda: b"up" in log(repo, "wrapped"))
    assert runs("kill", "wrapped", "-y", "--grace", "5").code == 0
    assert marker.read_text() == "saved"
    assert b"saved\n" in log(repo, "wrapped") and b"after" not in log(repo, "wrapped")
    assert status_of("wrapped") == "killed"


def test_a_background_process_keeps_its_run_running(repo: Path, runs: Callable[..., Result]) -> None:
    """A process the program left behind (nohup, output elsewhere) is still part of the run."""
    out = repo.parent / "bg.out"
    start_run(runs, "bg", f"nohup sh -c 'sleep 1.5; echo alive' </dev/null >{out} 2>&1 & echo started")
    assert wait_for(lambda: b"started" in log(repo, "bg"))
    time.sleep(0.5)
    assert status_of("bg") == "running"
    wait_status("bg", "finished")
    assert out.read_text() == "alive\n"


def test_the_shell_left_in_the_session_has_a_shells_signals(repo: Path, runs: Callable[..., Result], tmux: Any) -> None:
    start_run(runs, "shell", "true")
    wait_status("shell", "finished")
    pane = tmux.run("list-panes", "-t", "=shell", "-F", "#{pane_pid}").stdout.split()
    assert len(pane) == 1
    assert wait_for(lambda: "python" not in open(f"/proc/{pane[0]}/cmdline").read())  # the shell now
    ignored = int(next(line for line in open(f"/proc/{pane[0]}/status") if line.startswith("SigIgn")).split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)) and not ignored & (1 << (signal.SIGXFSZ - 1))


def test_the_supervisor_gives_every_program_the_runs_environment(repo: Path, runs: Callable[..., Result]) -> None:
    """Set by the supervisor, not the launcher: a supervisor started without tmux (as a
    batch job starts it) gives the same variables, replacing any the caller had."""
    started = _recorded_not_started(repo, runs, "env")
    from runs_manager.launchers.base import supervisor_argv
    from runs_manager.settings import Settings

    out = repo / "env.out"
    program = ["/bin/sh", "-c", f'env | grep ^RUNS_ | sort > {_q(str(out))}']
    argv = supervisor_argv(Settings(runs_dir=".runs/"), "env", started, program, keep_open=False)
    caller = dict(os.environ, PYTHONPATH=str(ROOT), RUNS_NAME="stale", RUNS_TB_DIR="/stale")
    caller.pop("RUNS_SOURCE_DIR", None)  # runs new's (it passes the work tree along), not the supervisor's
    subprocess.run(argv, env=caller, stdin=subprocess.DEVNULL, timeout=60, check=True)
    runs_dir = repo / ".runs"
    assert out.read_text().splitlines() == [
        f"RUNS_DIR={runs_dir}",
        "RUNS_NAME=env",
        f"RUNS_SAVE_PATH={runs_dir}/checkpoints/env",
        f"RUNS_TB_DIR={runs_dir}/tensorboard/env/",
    ]
    assert entry(repo, "env")["exit_code"] == 0


# Faults (issue 29) ----------------------------------------------------------------------

WRITER = (
    "import os, signal, time\n"
    "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "while True:\n"
    "    os.makedirs(os.environ['RUNS_TB_DIR'], exist_ok=True)\n"
    "    open(os.path.join(os.environ['RUNS_TB_DIR'], 'beat'), 'a').write('.')\n"
    "    os.makedirs(os.path.dirname(os.environ['RUNS_SAVE_PATH']), exist_ok=True)\n"
    "    open(os.environ['RUNS_SAVE_PATH'], 'a').write('.')\n"
    "    time.sleep(0.25)\n"
)


def _orphan(repo: Path, runs: Callable[..., Result], name: str) -> int:
    """A run whose program ignores hang-ups, and whose supervisor is SIGKILLed; its group."""
    (repo.parent / "w.py").write_text(WRITER)  # outside the work tree, which must stay clean
    start_run(runs, name, f"{sys.executable} {repo.parent / 'w.py'}")
    assert wait_for(lambda: b"ready" in log(repo, name))
    supervisor = supervisor_of(repo, name)
    _, group = processes.program_group(supervisor)
    os.kill(supervisor, signal.SIGKILL)
    wait_status(name, "orphaned")
    assert processes.group_members(group), "the program should outlive its supervisor here"
    return group


def test_sigkill_of_the_supervisor_hangs_up_its_program(repo: Path, runs: Callable[..., Result]) -> None:
    """Only the supervisor holds the terminal's master side: its death hangs the program up."""
    start_run(runs, "hup", "sleep 600")
    supervisor = supervisor_of(repo, "hup")
    _, group = processes.program_group(supervisor)
    os.kill(supervisor, signal.SIGKILL)
    assert wait_for(lambda: not processes.group_members(group), timeout=10), "the program was never hung up"
    wait_status("hup", "lost")


def test_a_program_outliving_its_supervisor_is_orphaned_and_kill_stops_it(repo: Path, runs: Callable[..., Result]) -> None:
    group = _orphan(repo, runs, "job2")
    assert "job2" in runs("table", "--status", "orphaned").out
    assert "job2" not in runs("table", "--status", "running").out
    result = runs("kill", "job2", "-y", "--grace", "1")
    assert result.code == 0, result.err
    assert not processes.group_members(group), "runs kill left the orphaned program running"
    assert status_of("job2") == "killed"
    assert "orphaned" in entry(repo, "job2")["killed"]


def test_deleting_an_orphaned_run_stops_its_program_first(repo: Path, runs: Callable[..., Result]) -> None:
    group = _orphan(repo, runs, "job3")
    result = runs("delete", "job3", "-y")
    assert result.code == 0, result.err
    assert not processes.group_members(group), "runs delete left the orphaned program running"
    time.sleep(1.0)  # four beats of the program, had it survived
    assert not (repo / ".runs/tensorboard/job3").exists() and not (repo / ".runs/checkpoints/job3").exists()


def _waiting_run(repo: Path, runs: Callable[..., Result], name: str) -> Path:
    go = repo.parent / f"go-{name}"
    start_run(runs, name, f"while [ ! -e {go} ]; do sleep 0.05; done")
    supervisor_of(repo, name)
    return go


def test_a_full_disk_loses_no_outcome(repo: Path, runs: Callable[..., Result], small_runs_dir: Any) -> None:
    fill, filler = small_runs_dir
    go = _waiting_run(repo, runs, "full")
    fill()
    go.touch()  # the program exits 0 while nothing can be written
    wait_status("full", "finished")  # from the state file: the database cannot hold it yet
    assert "exit_code" not in entry(repo, "full")
    filler.unlink()
    assert wait_for(lambda: entry(repo, "full").get("exit_code") == 0, timeout=30), "the outcome never reached the database"


def test_an_outcome_kept_by_a_dead_supervisor_is_copied_by_the_next_command(
    repo: Path, runs: Callable[..., Result], small_runs_dir: Any
) -> None:
    fill, filler = small_runs_dir
    go = _waiting_run(repo, runs, "kept")
    supervisor = supervisor_of(repo, "kept")
    fill()
    go.touch()
    wait_status("kept", "finished")
    os.kill(supervisor, signal.SIGKILL)  # while it waits to try again
    assert wait_for(lambda: not _alive(supervisor))
    filler.unlink()
    assert status_of("kept") == "finished"
    assert runs("describe", "kept", "made it").code == 0  # any command that takes the lock
    assert entry(repo, "kept")["exit_code"] == 0 and entry(repo, "kept")["description"] == "made it"


def test_a_kill_on_a_full_disk_is_recorded_once_there_is_room(repo: Path, runs: Callable[..., Result], small_runs_dir: Any) -> None:
    fill, filler = small_runs_dir
    start_run(runs, "stop-me", "sleep 600")
    supervisor_of(repo, "stop-me")
    fill()
    result = runs("kill", "stop-me", "-y", "--grace", "2")
    assert result.code == 0, result.err
    assert status_of("stop-me") == "killed"
    filler.unlink()
    assert wait_for(lambda: "exit_code" in entry(repo, "stop-me"), timeout=30)
    assert entry(repo, "stop-me")["killed"] == "runs kill (SIGTERM)"


def test_a_hand_edit_of_a_running_runs_datetime_loses_no_outcome(repo: Path, runs: Callable[..., Result]) -> None:
    go = _waiting_run(repo, runs, "edited")
    db = repo / ".runs/.runs.yml"
    text = db.read_text()
    started = entry(repo, "edited")["datetime"]
    db.write_text(text.replace(started, "2026-01-02T03:04:05+00:00"))  # the README invites hand edits
    go.touch()
    wait_status("edited", "finished")
    assert entry(repo, "edited")["exit_code"] == 0


def test_a_copied_runs_directory_never_takes_the_original_program_for_its_orphan(
    repo: Path, runs: Callable[..., Result], tmp_path: Path
) -> None:
    import shutil

    (repo.parent / "w.py").write_text(WRITER)
    start_run(runs, "orig", f"{sys.executable} {repo.parent / 'w.py'}")
    assert wait_for(lambda: b"ready" in log(repo, "orig"))
    _, group = processes.program_group(supervisor_of(repo, "orig"))
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy, symlinks=True)
    where = ("--runs-dir", str(copy / ".runs"))
    try:
        assert runs("lookup", "orig", "status", *where).out == "lost\n"  # its state file names the original's keeper
        assert runs("kill", "orig", "-y", *where).code == 1
        assert processes.group_members(group), "a kill in the copy reached the original's program"
        assert status_of("orig") == "running"
    finally:  # it ignores hang-ups: it would outlive the test's tmux server
        assert runs("kill", "orig", "-y", "--grace", "1").code == 0


def test_a_kill_that_signalled_nothing_leaves_no_reason_behind(repo: Path, runs: Callable[..., Result], monkeypatch: Any) -> None:
    go = _waiting_run(repo, runs, "spared")
    # The signal failing (a scheduler's scancel that does not answer): a fault no test causes for real.
    monkeypatch.setattr("runs_manager.launchers.tmux.TmuxLauncher.signal", lambda *args: False)
    assert runs("kill", "spared", "-y").code == 1
    go.touch()
    wait_status("spared", "finished")
    assert "killed" not in entry(repo, "spared")


def test_an_outcome_is_copied_in_when_its_supervisor_dies_waiting_for_the_lock(repo: Path, runs: Callable[..., Result]) -> None:
    go = _waiting_run(repo, runs, "waiter")
    supervisor = supervisor_of(repo, "waiter")
    fd = os.open(str(repo / ".runs/.runs.yml.lock"), os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)  # another runs command holds the database
        go.touch()
        assert wait_for(lambda: (repo / ".runs/.outcomes-pending").stat().st_size == 1, timeout=10)
        os.kill(supervisor, signal.SIGKILL)  # the OOM killer, say
        assert wait_for(lambda: not _alive(supervisor))
    finally:
        os.close(fd)
    assert status_of("waiter") == "finished"
    assert runs("describe", "waiter", "copied").code == 0
    assert entry(repo, "waiter")["exit_code"] == 0


def test_orphaned_program_killed_on_a_full_disk_is_recorded_once_there_is_room(
    repo: Path, runs: Callable[..., Result], small_runs_dir: Any
) -> None:
    fill, filler = small_runs_dir
    group = _orphan(repo, runs, "orph")
    fill()
    result = runs("kill", "orph", "-y", "--grace", "1")
    assert not processes.group_members(group)
    assert "kept until there is room" in result.err, result.err
    assert status_of("orph") == "killed"
    filler.unlink()
    assert runs("describe", "orph", "copied").code == 0
    assert "orphaned" in entry(repo, "orph")["killed"]


def test_a_run_may_be_named_like_a_file_of_runs_own(repo: Path, runs: Callable[..., Result]) -> None:
    for name in (".unrecorded", ".outcomes-pending", ".trash"):
        start_run(runs, name, "true")
        assert name in runs("list").out.split()
        assert runs("delete", name, "-y").code == 0


def test_a_fifo_where_a_state_file_should_be_hangs_nothing(repo: Path, runs: Callable[..., Result]) -> None:
    from tests.conftest import run_process

    started = _recorded_not_started(repo, runs, "ff")
    assert started
    state = repo / ".runs/state/ff"
    state.unlink()
    os.mkfifo(state)
    for argv in (("table",), ("lookup", "ff", "status"), ("kill", "ff", "-y"), ("describe", "ff", "x")):
        result = run_process(*argv, cwd=repo, timeout=20)
        assert "Traceback" not in result.err, result.err


def test_a_slow_supervisor_start_is_starting_then_running(
    repo: Path, runs: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loaded node, a virtualenv on a slow disk: the supervisor takes its lock after
    `runs new` stopped waiting. The run is `starting`, never `lost`, until it runs."""
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text("import time\ntime.sleep(4)\n")  # the environment hook
    monkeypatch.setattr("runs_manager.launchers.tmux.LOCK_WAIT", 1.0)  # runs new waits 1 s, not 15
    monkeypatch.setenv("PYTHONPATH", str(slow))
    start_run(runs, "slow", "sleep 3")
    monkeypatch.delenv("PYTHONPATH")
    assert status_of("slow") == "starting"
    assert "slow" in runs("table", "--status", "starting").out
    wait_status("slow", "running", timeout=20)
    wait_status("slow", "finished", timeout=20)


def test_a_supervisor_that_never_starts_is_lost_with_the_reason_after_the_deadline(
    repo: Path, runs: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A supervisor that never gets to start the program (here its environment hook hangs):
    `starting` until the deadline, then `lost`, and the table says why."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "sitecustomize.py").write_text("import time\ntime.sleep(600)\n")
    monkeypatch.setattr("runs_manager.launchers.tmux.LOCK_WAIT", 0.5)
    monkeypatch.setenv("PYTHONPATH", str(broken))
    start_run(runs, "never", "echo ran")
    monkeypatch.delenv("PYTHONPATH")
    assert status_of("never") == "starting"
    table = runs("table")
    assert "starting" in table.out and "is lost" not in table.err
    monkeypatch.setattr("runs_manager.launchers.tmux.STARTING_DEADLINE", 0.0)
    assert status_of("never") == "lost"
    table = runs("table")
    assert table.out.splitlines()[2].split()[:2] == ["never", "lost"]
    assert table.err == ("runs: note: run 'never' is lost: its supervisor did not start its program "
                         "within 10 minutes of its start\n")
    assert "ran" not in (repo / ".runs/logs/never.log").read_text()
    assert runs("delete", "never", "-y").code == 0


@pytest.mark.parametrize("module", ["runs_manager.runtime.supervisor", "runs_manager.supervisor"], ids=["now", "before-subpackages"])
def test_supervisors_of_this_and_the_previous_layout_are_recognised(tmp_path: Path, module: str) -> None:
    """A supervisor started by runs before its modules moved into subpackages lives on
    through an upgrade: it is still recognised by its command line (and as its run's keeper)."""
    from runs_manager.launchers.base import BOOTSTRAP

    bootstrap = BOOTSTRAP.replace("runs_manager.runtime.supervisor", module)
    assert f"from {module} import main" in bootstrap
    sleeper = f"import time; time.sleep(60)  # {bootstrap}"
    runs_dir = str(tmp_path / ".runs")
    proc = subprocess.Popen([sys.executable, "-c", sleeper, str(ROOT), runs_dir, ".runs.yml", "exp", "2026-12-07", "exit", "--", "true"],
                            start_new_session=True)
    try:
        assert wait_for(lambda: processes.is_supervisor(proc.pid))
        assert processes.is_keeper_of(proc.pid, runs_dir, "exp")
        assert not processes.is_keeper_of(proc.pid, runs_dir, "other")
    finally:
        proc.kill()
        proc.wait()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # from runs_manager.supervisors import x"])
    try:
        time.sleep(0.2)
        assert not processes.is_supervisor(other.pid)
    finally:
        other.kill()
        other.wait()

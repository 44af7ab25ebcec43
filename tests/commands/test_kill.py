"""`runs kill`: the programs of running runs stopped, their whole process groups, never another process."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
import yaml

from runs_manager import processes
from tests.conftest import NO_FLAGS, Result, start_run, status_of, wait_for, wait_status


@pytest.fixture(autouse=True)
def in_repo(repo: Path) -> Path:
    return repo


def entry(repo: Path, name: str) -> Dict[str, Any]:
    return yaml.safe_load((repo / ".runs/.runs.yml").read_text())[name]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def python(script: str) -> str:
    import shlex

    return f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}"


def test_kill_sends_sigterm_and_keeps_everything(repo: Path, runs: Callable[..., Result]) -> None:
    start_run(runs, "train", "echo started; sleep 600")
    (repo / ".runs/tensorboard/train/events.out").write_text("events")
    # Killed once it has written something: a SIGTERM before its first line leaves the log empty.
    assert wait_for(lambda: b"started" in (repo / ".runs/logs/train.log").read_bytes())
    result = runs("kill", "train", "-y")
    assert result.code == 0, result.err
    assert "Killed 1 run." in result.out
    assert status_of("train") == "killed"  # kill returns once the outcome is recorded
    recorded = entry(repo, "train")
    assert recorded["exit_code"] == 128 + signal.SIGTERM
    assert recorded["killed"] == "runs kill (SIGTERM)"
    assert (repo / ".runs/tensorboard/train/events.out").read_text() == "events"
    assert b"started" in (repo / ".runs/logs/train.log").read_bytes()


def test_a_program_that_exits_0_on_sigterm_is_still_killed(repo: Path, runs: Callable[..., Result]) -> None:
    script = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\nprint('up', flush=True)\ntime.sleep(600)"
    start_run(runs, "polite", python(script))
    assert wait_for(lambda: b"up" in (repo / ".runs/logs/polite.log").read_bytes())
    assert runs("kill", "polite", "-y").code == 0
    assert entry(repo, "polite")["exit_code"] == 0
    assert status_of("polite") == "killed"


def test_grace_then_sigkill(repo: Path, runs: Callable[..., Result]) -> None:
    start_run(runs, "deaf", "trap '' TERM; echo up; sleep 600")
    assert wait_for(lambda: b"up" in (repo / ".runs/logs/deaf.log").read_bytes())
    start = time.monotonic()
    result = runs("kill", "deaf", "-y", "--grace", "1")
    elapsed = time.monotonic() - start
    assert result.code == 0, result.err
    assert "sending SIGKILL" in result.err
    assert 1.0 <= elapsed < 8
    assert entry(repo, "deaf")["exit_code"] == 128 + signal.SIGKILL
    assert status_of("deaf") == "killed"


def test_another_signal(repo: Path, runs: Callable[..., Result]) -> None:
    script = "import time\ntry:\n    time.sleep(600)\nexcept KeyboardInterrupt:\n    print('interrupted', flush=True)\n    raise SystemExit(7)"
    start_run(runs, "int", python(script))
    time.sleep(0.5)  # the interpreter is up
    assert runs("kill", "int", "-y", "--signal", "INT").code == 0
    assert entry(repo, "int")["exit_code"] == 7
    assert entry(repo, "int")["killed"] == "runs kill (SIGINT)"
    assert b"interrupted" in (repo / ".runs/logs/int.log").read_bytes()


def test_the_whole_process_group_is_stopped(repo: Path, runs: Callable[..., Result]) -> None:
    pids = repo.parent / "pids"
    start_run(runs, "family", f"sleep 600 & echo $! > {pids}; sleep 600 & echo $! >> {pids}; wait")
    assert wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2)
    children = [int(pid) for pid in pids.read_text().split()]
    assert all(alive(pid) for pid in children)
    assert runs("kill", "family", "-y").code == 0
    assert wait_for(lambda: not any(alive(pid) for pid in children), timeout=5)


def test_only_running_runs_are_killed(repo: Path, runs: Callable[..., Result]) -> None:
    start_run(runs, "done", "true")
    start_run(runs, "busy", "sleep 600")
    wait_status("done", "finished")
    before = entry(repo, "done")
    result = runs("kill", ".*", "-y")
    assert result.code == 0, result.err
    assert "'done' is not running (finished); left alone" in result.err
    assert entry(repo, "done") == before
    assert status_of("busy") == "killed"


@pytest.mark.parametrize(
    "argv,message",
    [
        (("kill", "nothing", "-y"), "no runs match"),
        (("kill", "done", "-y"), "none of the runs matching 'done' is running (finished: 1)"),
        (("kill", "busy", "-y", "--signal", "SIGNOPE"), "unknown signal 'SIGNOPE'"),
        (("kill", "busy", "-y", "--signal", "99"), "unknown signal '99'"),
        (("kill", "busy", "-y", "--grace", "-1"), "--grace takes a number of seconds"),
        (("kill", "busy"), "not confirmed"),  # no answer on stdin: the question is answered no
    ],
)
def test_refusals_change_nothing(repo: Path, runs: Callable[..., Result], argv: tuple, message: str) -> None:
    start_run(runs, "done", "true")
    start_run(runs, "busy", "sleep 600")
    wait_status("done", "finished")
    before = (repo / ".runs/.runs.yml").read_bytes()
    result = runs(*argv)
    assert result.code in (1, 2)
    assert message in result.err and result.err.count("runs: error:") == 1, result.err
    assert "Traceback" not in result.err
    assert (repo / ".runs/.runs.yml").read_bytes() == before
    assert status_of("busy") == "running"


def test_many_runs_that_are_not_running_are_counted(runs: Callable[..., Result]) -> None:
    for i in range(7):
        start_run(runs, f"done{i}", "true")
    for i in range(7):
        wait_status(f"done{i}", "finished")
    start_run(runs, "busy", "sleep 600")
    result = runs("kill", "done.*|busy", "-y")
    assert result.code == 0, result.err
    assert "runs: 7 matching runs are not running (finished: 7); left alone\n" in result.err
    assert status_of("busy") == "killed"


def test_a_process_that_is_not_the_runs_is_never_signalled(repo: Path, runs: Callable[..., Result]) -> None:
    """A stranger holding the lock on a run's log (so the run looks alive) is not the run's
    supervisor: nothing is signalled, neither it nor anything else."""
    start_run(runs, "mine", "true")
    wait_status("mine", "finished")
    text = (repo / ".runs/.runs.yml").read_text()
    # The entry as if the outcome had never been recorded (a reboot): lost, not running.
    (repo / ".runs/.runs.yml").write_text("".join(line for line in text.splitlines(True) if "ended" not in line and "exit_code" not in line))
    (repo / ".runs/state/mine").unlink()  # where the supervisor kept the outcome too
    assert status_of("mine") == "lost"
    assert runs("kill", "mine", "-y").code == 1
    log = repo / ".runs/logs/mine.log"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.lockf(f, fcntl.LOCK_EX); print(flush=True); time.sleep(600)", str(log)],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"\n"
        assert processes.lock_holder(str(log)) == holder.pid
        assert status_of("mine") == "running"
        result = runs("kill", "mine", "-y", "--grace", "0")
        assert "no longer running; left alone" in result.err
        time.sleep(0.2)
        assert holder.poll() is None  # neither SIGTERM nor SIGKILL reached it
        assert "exit_code" not in entry(repo, "mine")
        assert result.code == 1
    finally:
        holder.kill()
        holder.wait()


def test_kill_right_after_new_finds_the_program(runs: Callable[..., Result]) -> None:
    """However soon after `runs new`, while the supervisor is still starting the program,
    kill waits for the program's group rather than calling the run not running."""
    for i in range(6):
        start_run(runs, f"quick{i}", "sleep 600")
        result = runs("kill", f"quick{i}", "-y", "--grace", "2")
        assert result.code == 0, result.err
        assert status_of(f"quick{i}") == "killed"


def test_a_piped_yes_kills_and_an_empty_stdin_does_not(repo: Path, runs: Callable[..., Result]) -> None:
    from tests.conftest import run_process

    start_run(runs, "busy", "sleep 600")
    wait_status("busy", "running")
    result = run_process("kill", "busy", input="")
    assert result.code == 1 and "not confirmed" in result.err and status_of("busy") == "running"
    result = run_process("kill", "busy", "--grace", "5", input="yes\n")
    assert result.code == 0, result.err
    assert status_of("busy") == "killed"


def test_kill_of_a_queued_run_takes_it_out_of_the_queue(repo: Path, runs: Callable[..., Result]) -> None:
    assert runs("new", "q", "sleep {t}", "--grid", "t=600,0,1", "--max-parallel", "1", *NO_FLAGS).code == 0
    result = runs("kill", "q/t-0", "-y")
    assert result.code == 0, result.err
    assert "Removed 1 queued run from the queue; it never started." in result.out
    recorded = entry(repo, "q/t-0")
    assert status_of("q/t-0") == "killed" and "exit_code" not in recorded and "queued" not in recorded
    assert recorded["killed"] == "runs kill (removed from the queue before it started)" and "ended" in recorded
    assert not (repo / ".runs/tensorboard/q/t-0").exists() and not (repo / ".runs/logs/q/t-0.log").exists()
    assert status_of("q/t-600") == "running" and status_of("q/t-1") == "queued"
    # Killing the running one starts the next queued one, not the removed one.
    assert runs("kill", "q/t-600", "-y").code == 0
    wait_status("q/t-1", "finished")
    assert status_of("q/t-0") == "killed" and not (repo / ".runs/logs/q/t-0.log").exists()


def test_kill_of_a_whole_sweep_starts_none_of_its_queue(repo: Path, runs: Callable[..., Result]) -> None:
    assert runs("new", "all", "sleep {t}", "--grid", "t=600,601,602", "--max-parallel", "1", *NO_FLAGS).code == 0
    result = runs("kill", "all/.*", "-y")
    assert result.code == 0, result.err
    assert "Killed 1 run." in result.out and "Removed 2 queued runs from the queue" in result.out
    time.sleep(0.5)
    assert [status_of(f"all/t-{t}") for t in (600, 601, 602)] == ["killed"] * 3
    assert not (repo / ".runs/logs/all/t-601.log").exists()

"""`runs logs`: a run's terminal output, whole, its last lines, or followed to the run's end."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import ROOT, Result, start_run, wait_status


@pytest.fixture(autouse=True)
def in_repo(repo: Path) -> Path:
    return repo


def test_prints_the_whole_log(runs: Callable[..., Result]) -> None:
    start_run(runs, "five", "for i in 1 2 3 4 5; do echo line $i; done")
    wait_status("five", "finished")
    assert runs("logs", "five").out == "".join(f"line {i}\n" for i in range(1, 6))


@pytest.mark.parametrize("n,expected", [(2, "line 4\nline 5\n"), (0, ""), (9, "".join(f"line {i}\n" for i in range(1, 6)))])
def test_last_n_lines(runs: Callable[..., Result], n: int, expected: str) -> None:
    start_run(runs, "five", "for i in 1 2 3 4 5; do echo line $i; done")
    wait_status("five", "finished")
    assert runs("logs", "five", "-n", str(n)).out == expected


def test_last_lines_of_a_log_without_a_final_newline_and_longer_than_a_block(repo: Path, runs: Callable[..., Result]) -> None:
    start_run(runs, "long", "true")
    wait_status("long", "finished")
    lines = [f"{i:06d} " + "x" * 200 for i in range(2000)]
    (repo / ".runs/logs/long.log").write_text("\n".join(lines))  # about 400 KB, no final newline
    assert runs("logs", "long", "-n", "3").out == "\n".join(lines[-3:])
    assert runs("logs", "long", "-n", "1500").out == "\n".join(lines[-1500:])


def test_follow_prints_as_the_log_grows_and_returns_when_the_run_ends(repo: Path, runs: Callable[..., Result]) -> None:
    go = repo.parent / "go"
    start_run(runs, "slow", f"echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo last")
    follower = subprocess.Popen(
        [sys.executable, "-m", "runs_manager", "logs", "slow", "-f"],
        stdout=subprocess.PIPE, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == b"first\n"  # printed while the run still runs
        time.sleep(0.3)
        assert follower.poll() is None
        go.touch()
        assert follower.wait(timeout=15) == 0
        assert follower.stdout.read() == b"last\n"
    finally:
        follower.kill()
        follower.wait()


def test_follow_of_a_finished_run_returns_at_once(runs: Callable[..., Result]) -> None:
    start_run(runs, "done", "echo done")
    wait_status("done", "finished")
    start = time.monotonic()
    assert runs("logs", "done", "--follow").out == "done\n"
    assert time.monotonic() - start < 5


def test_errors(repo: Path, runs: Callable[..., Result]) -> None:
    start_run(runs, "done", "echo done")
    wait_status("done", "finished")
    with open(repo / ".runs/.runs.yml", "a") as f:
        f.write("old:\n  command: python train.py\n")  # recorded before runs kept logs
    for argv, message in (
        (("logs", "old"), "run 'old' has no log: it was recorded before runs kept logs"),
        (("logs", "nope"), "no run named 'nope'"),
        (("logs", "done", "-n", "x"), "-n takes a whole number of lines"),
        (("logs", "done", "-n", "-1"), "-n takes a whole number"),
    ):
        result = runs(*argv)
        assert result.code in (1, 2) and message in result.err, (argv, result)
        assert result.err.count("\n") == 1 and "Traceback" not in result.err
    (repo / ".runs/logs/done.log").unlink()
    result = runs("logs", "done")
    assert result.code == 1 and "the log of run 'done' is missing" in result.err


def test_delete_removes_the_log(repo: Path, runs: Callable[..., Result]) -> None:
    start_run(runs, "grp/a", "echo a")
    wait_status("grp/a", "finished")
    assert (repo / ".runs/logs/grp/a.log").is_file()
    assert runs("delete", "grp/a", "-y").code == 0
    assert not (repo / ".runs/logs/grp").exists()  # the emptied group directory too


def test_never_reads_outside_the_runs_directory(repo: Path, runs: Callable[..., Result], tmp_path: Path) -> None:
    secret = tmp_path / "secret.log"
    secret.write_text("SECRET\n")
    start_run(runs, "done", "true")
    wait_status("done", "finished")
    (repo / ".runs/logs/lnk").symlink_to(tmp_path, target_is_directory=True)
    climb = "../" * 12 + str(tmp_path).lstrip("/") + "/secret"
    with open(repo / ".runs/.runs.yml", "a") as f:  # hand edits: names runs itself never makes
        f.write(f"'{climb}':\n  launcher: tmux\nlnk/secret:\n  launcher: tmux\n")
    for name in (climb, "lnk/secret"):
        result = runs("logs", name)
        assert result.code == 1 and "SECRET" not in result.out, result
        assert "has no log runs can read" in result.err


def _follower(*argv: str) -> subprocess.Popen:
    import os

    return subprocess.Popen([sys.executable, "-m", "runs_manager", "logs", "-f", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_follow_goes_on_after_the_log_is_emptied(repo: Path, runs: Callable[..., Result]) -> None:
    step = repo.parent / "step"
    # Prints "line N" each time the test bumps the step file, until it holds "end".
    script = (f"n=0; while [ \"$(cat {step} 2>/dev/null)\" != end ]; do "
              f"if [ \"$(cat {step} 2>/dev/null)\" != \"$n\" ]; then n=$(cat {step}); echo line $n; fi; sleep 0.05; done")
    start_run(runs, "t", script)
    follower = _follower("t")
    log = repo / ".runs/logs/t.log"
    try:
        assert follower.stdout is not None
        step.write_text("1")
        assert follower.stdout.readline() == b"line 1\n"
        log.write_bytes(b"")  # : > LOG, as the docs advise to free its space
        time.sleep(0.5)
        step.write_text("2")
        assert follower.stdout.readline() == b"line 2\n", "a line written after the truncation was lost"
        step.write_text("end")
        assert follower.wait(timeout=15) == 0
        assert b"was truncated; following it from its new start" in follower.stderr.read()
    finally:
        follower.kill()
        follower.wait()


def test_follow_of_a_queued_run_waits_for_it_to_start(repo: Path, runs: Callable[..., Result]) -> None:
    go = repo.parent / "go"
    result = runs("new", "q", f"while [ ! -e {go} ]; do sleep 0.05; done; echo run {{i}}", "--grid", "i=1,2",
                  "--max-parallel", "1", "--tb-dir-flag", "None", "--save-path-flag", "None")
    assert result.code == 0, result.err
    follower = _follower("q/i-2")
    try:
        time.sleep(1.0)
        assert follower.poll() is None, "it must wait for the queued run, not give up"
        go.touch()
        assert follower.wait(timeout=30) == 0
        assert follower.stdout is not None and follower.stdout.read() == b"run 2\n"
        assert b"is queued; waiting for it to start" in follower.stderr.read()
    finally:
        follower.kill()
        follower.wait()

"""`runs resume`: queued runs that nothing else will start (see tests/test_queue.py for the queue itself)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import NO_FLAGS, Result, error_line, status_of, wait_status


@pytest.fixture(autouse=True)
def in_repo(repo: Path) -> Path:
    return repo


def test_resume_without_queued_runs_is_an_error(runs: Callable[..., Result]) -> None:
    assert "no runs are queued" in error_line(runs("resume"))
    assert runs("new", "plain", "sleep 600", *NO_FLAGS).code == 0
    assert "no runs are queued" in error_line(runs("resume", "plain"))


def test_resume_with_a_bad_pattern_is_a_one_line_error(runs: Callable[..., Result]) -> None:
    assert "(" in error_line(runs("resume", "a("))


def test_resume_of_a_pattern_starts_only_the_matching_queued_runs(runs: Callable[..., Result], repo: Path) -> None:
    # Two single runs queued behind a run on GPU 0, and that run lost (its processes SIGKILLed).
    assert runs("new", "first", "sleep 600", "--gpus", "0", *NO_FLAGS).code == 0
    assert runs("new", "a", "sleep 600", "--gpus", "0", *NO_FLAGS).code == 0
    assert runs("new", "b", "sleep 600", "--gpus", "0", *NO_FLAGS).code == 0
    from tests.test_queue import lose

    lose(repo, "first")
    assert status_of("first") == "lost" and status_of("a") == status_of("b") == "queued"
    result = runs("resume", "b")
    assert result.code == 0, result.err
    assert result.out == "Started queued run 'b'.\n"
    wait_status("b", "running")
    assert status_of("a") == "queued"
    waiting = runs("resume", "a")  # GPU 0 is b's now
    assert waiting.code == 0 and "1 queued run waits for running runs to end" in waiting.out
    assert status_of("a") == "queued"


def test_logs_and_mv_of_a_queued_run_say_it_is_queued(runs: Callable[..., Result]) -> None:
    assert runs("new", "busy", "sleep 600", "--gpus", "0", *NO_FLAGS).code == 0
    assert runs("new", "waits", "sleep 600", "--gpus", "0", *NO_FLAGS).code == 0
    assert "is queued and has not started: it has no log yet" in error_line(runs("logs", "waits"))
    assert "is queued, and its command line holds the old paths" in error_line(runs("mv", "waits", "other"))
    assert runs("lookup", "waits", "status").out == "queued\n"
    assert runs("list", "--status", "queued").out == "waits\n"

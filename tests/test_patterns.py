"""Patterns: regular expressions matched against whole names, with errors instead of hangs."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from runs_manager import patterns
from runs_manager.errors import RunsError
from tests.conftest import ROOT

NAMES = ["a1", "a10", "b1", "xa1", "alpha", "alphabet", "beta", "sweep/lr-0.1", "sweep/lr-011"]
CATASTROPHIC_NAME = "a" * 40 + "b"


def one_error_line(err: str) -> bool:
    return err.startswith("runs: error:") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("a1|b1", ["a1", "b1"]),
        ("alpha|beta", ["alpha", "beta"]),
        ("a1", ["a1"]),
        ("a", []),
        ("a.*", ["a1", "a10", "alpha", "alphabet"]),
        ("sweep/lr-0.1", ["sweep/lr-0.1", "sweep/lr-011"]),
        ("sweep/lr-0\\.1", ["sweep/lr-0.1"]),
        ("^b1$", ["b1"]),
        ("", []),
    ],
)
def test_matching_is_whole_name_and_keeps_order(pattern, expected):
    assert patterns.matching(pattern, NAMES) == expected


def test_no_pattern_matches_everything_in_order():
    assert patterns.matching(None, NAMES) == NAMES
    assert patterns.matching(None, iter(NAMES)) == NAMES


def test_matching_takes_any_iterable():
    assert patterns.matching("a.", (n for n in NAMES)) == ["a1"]


@pytest.mark.parametrize("pattern", ["(", ")", "[", "a{2,1}", "*", "+a", "(?P<x>a)(?P<x>b)", "\\", "a{99999999999}"])
def test_invalid_regex_is_an_error(pattern):
    with pytest.raises(RunsError) as error:
        patterns.compile_pattern(pattern)
    assert "\n" not in str(error.value)
    with pytest.raises(RunsError):
        patterns.matching(pattern, NAMES)


def test_deeply_nested_regex_is_an_error_or_works():
    pattern = "(" * 2000 + "a" + ")" * 2000
    try:
        result = patterns.matching(pattern, ["a", "b"])
    except RunsError as e:
        assert "\n" not in str(e)
    else:
        assert result == ["a"]


def test_valid_regex_compiles():
    assert patterns.compile_pattern("sweep/.*").fullmatch("sweep/x")


@pytest.fixture
def short_limit(monkeypatch):
    """A shorter time limit, so that these tests stay fast (the default is tested below)."""
    monkeypatch.setattr(patterns, "TIME_LIMIT", 0.5)


@pytest.mark.usefixtures("short_limit")
@pytest.mark.parametrize("pattern", ["(a+)+", "(a|a)+$", "(a*)*$"])
def test_catastrophic_regex_is_an_error_within_seconds(pattern):
    start = time.monotonic()
    try:
        result = patterns.matching(pattern, ["short", CATASTROPHIC_NAME])
    except RunsError as e:
        assert "\n" not in str(e)
        assert pattern in str(e)
    else:
        assert result == []  # an engine that does not backtrack may answer at once
    assert time.monotonic() - start < 5


def test_nested_repetition_against_a_long_name_gives_an_error():
    assert patterns.TIME_LIMIT <= 3
    start = time.monotonic()
    with pytest.raises(RunsError):
        patterns.matching("(a+)+$", [CATASTROPHIC_NAME])
    assert time.monotonic() - start < 5


@pytest.mark.usefixtures("short_limit")
def test_time_limit_leaves_no_timer_or_handler_behind():
    def mine(signum, frame):
        raise AssertionError("the alarm fired after matching ended")

    previous = signal.signal(signal.SIGALRM, mine)
    try:
        assert patterns.matching("a.*", NAMES) == ["a1", "a10", "alpha", "alphabet"]
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        assert signal.getsignal(signal.SIGALRM) is mine
        with pytest.raises(RunsError):
            patterns.matching("(a+)+$", [CATASTROPHIC_NAME])
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        assert signal.getsignal(signal.SIGALRM) is mine
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_many_names_are_matched_quickly():
    many = [f"sweep/lr-{i}" for i in range(100_000)]
    start = time.monotonic()
    assert patterns.matching("sweep/lr-9999.", many) == [f"sweep/lr-9999{i}" for i in range(10)]
    assert time.monotonic() - start < 2


def test_matching_works_outside_the_main_thread():
    result = {}
    thread = threading.Thread(target=lambda: result.update(value=patterns.matching("a1|b1", NAMES)))
    thread.start()
    thread.join(10)
    assert result["value"] == ["a1", "b1"]


# Through the command line ------------------------------------------------------------------


@pytest.fixture
def catastrophic_db(repo: Path) -> Path:
    (repo / ".runs").mkdir()
    (repo / ".runs/.runs.yml").write_text(yaml.safe_dump({"ok": {"command": "x"}, CATASTROPHIC_NAME: {"command": "y"}}, sort_keys=False))
    return repo


@pytest.mark.parametrize(
    "argv",
    [("list", "--pattern", "(a+)+$"), ("delete", "(a+)+$", "-y")],
)
def test_catastrophic_pattern_from_the_command_line_is_an_error_not_a_hang(catastrophic_db, db, argv):
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "runs_manager", *argv],
        capture_output=True,
        text=True,
        timeout=15,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert time.monotonic() - start < 10
    assert done.returncode == 1
    assert one_error_line(done.stderr), done.stderr
    assert "Traceback" not in done.stderr
    assert list(db()) == ["ok", CATASTROPHIC_NAME]


@pytest.mark.parametrize("pattern", ["(", "a{99999999999}", "(" * 2000 + "a" + ")" * 2000])
def test_invalid_pattern_from_the_command_line(runs_process, repo, pattern):
    (repo / ".runs").mkdir()
    (repo / ".runs/.runs.yml").write_text("a:\n  command: x\n")
    result = runs_process("list", "--pattern", pattern)
    if result.code == 0:
        assert pattern.startswith("((") and result.out == "a\n"  # deep nesting may simply work
    else:
        assert result.code == 1
        assert one_error_line(result.err)
    assert "Traceback" not in result.err

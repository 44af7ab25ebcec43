"""Damaged and crafted files: the YAML database, its index, the metrics cache, event files.

Whatever they hold, `runs` ends in bounded time and memory (each command here runs as its
own process under RLIMIT_AS), with exit status 0 or 1, no traceback and at most one error
line; a damaged derived file (index, cache) is rebuilt, never trusted or shown.
"""
from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, Result

MEMORY_LIMIT = 1 << 30  # bytes of address space for one command
TIME_LIMIT = 20.0  # seconds


def limited(*argv: str, cwd: Any = None, timeout: float = TIME_LIMIT) -> Result:
    """`runs ARGV...` as its own process, under a memory limit and a time limit."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("RUNS_CRASH_AT", None)
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "runs_manager", *argv], cwd=cwd, env=env, capture_output=True,
                              text=True, errors="replace", timeout=timeout, preexec_fn=limit, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"runs {' '.join(argv)} ran past {timeout} s") from None
    assert time.monotonic() - started < timeout
    return Result(done.returncode, done.stdout, done.stderr)


def assert_clean(result: Result, error: Optional[str] = None) -> None:
    """Exit status 0 or 1, no traceback, at most one error line (containing ``error``)."""
    assert result.code in (0, 1), (result.code, result.err)
    assert "Traceback" not in result.err and "Error:" not in result.err.replace("runs: error:", ""), result.err
    errors = [line for line in result.err.splitlines() if line.startswith("runs: error:")]
    assert len(errors) <= 1, result.err
    if error is not None:
        assert result.code == 1 and errors and error in errors[0], result.err


def write_db(repo: Path, text: str) -> Path:
    path = repo / ".runs" / ".runs.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


GOOD = "good:\n  command: python train.py\n  datetime: '2026-12-01T10:00:00+00:00'\n"


def alias_bomb(levels: int) -> str:
    """About 100 bytes a level; level k expands to 9^k values."""
    lines = ["bomb:", "  l0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for k in range(1, levels):
        lines.append(f"  l{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


# The YAML database ------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [7, 9])
def test_an_alias_bomb_is_a_one_line_error_at_once(repo: Path, levels: int) -> None:
    """Nested anchors appended by hand (a 1 KB file expanding to 9^levels values): every
    command that reads the file says where, in bounded time and memory."""
    write_db(repo, GOOD + alias_bomb(levels))
    for argv in (["list"], ["table"], ["lookup", "good"], ["__complete", "names", "g", "runs", "lookup", "g"]):
        result = limited(*argv, cwd=repo)
        if argv[0] == "__complete":
            assert_clean(result)
        else:
            assert_clean(result, "line 4")
            assert "aliases" in result.err


def test_a_few_aliases_still_read(repo: Path) -> None:
    """Anchors and aliases a person writes (a shared value) are YAML, and are read."""
    write_db(repo, GOOD + "other:\n  command: &c python train.py --lr 0.1\n  again: *c\n")
    result = limited("lookup", "other", "again", cwd=repo)
    assert result.code == 0 and result.out == "python train.py --lr 0.1\n", result.err


# Event files and the metrics cache ------------------------------------------------------------


def _masked_crc(data: bytes) -> bytes:
    """TFRecord's masked CRC-32C of ``data``."""
    from crc32c import crc32c

    crc = crc32c(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def _header(length: int) -> bytes:
    """A record header claiming ``length`` bytes, with a valid length CRC."""
    packed = struct.pack("<Q", length)
    return packed + _masked_crc(packed)


def record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, data, the data's masked CRC."""
    return _header(len(data)) + data + _masked_crc(data)


def scalar_events(points: Any) -> bytes:
    from tensorboard.compat.proto import event_pb2, summary_pb2

    out = record(event_pb2.Event(wall_time=1.0, file_version="brain.Event:2").SerializeToString())
    for step, value in points:
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="loss", simple_value=value)])
        out += record(event_pb2.Event(wall_time=1.0, step=step, summary=summary).SerializeToString())
    return out


def ended_run(repo: Path, name: str = "m") -> Path:
    write_db(repo, f"{name}:\n  command: python train.py\n  exit_code: 0\n")
    directory = repo / ".runs" / "tensorboard" / name
    directory.mkdir(parents=True)
    return directory


def test_an_event_record_claiming_an_impossible_length_is_a_torn_record(repo: Path) -> None:
    """Two valid records, then a header claiming 2^62 bytes with a valid CRC: nothing of that
    length is allocated; the points before it count, and the file is named once."""
    path = ended_run(repo) / "events.out.tfevents.1.host"
    path.write_bytes(scalar_events([(0, 2.0), (1, 1.0)]) + _header(1 << 62) + b"x" * 100)
    for argv in (["metrics", "m"], ["table", "-c", "name", "-m", "loss:count,loss:min"]):
        result = limited(*argv, cwd=repo)
        assert_clean(result)
        assert result.code == 0 and str(path) in result.err and "incomplete record" in result.err, result.err
    assert result.out.splitlines()[2].split() == ["m", "2", "1.0"]


def test_a_metrics_cache_of_other_columns_or_rows_is_rebuilt(repo: Path) -> None:
    """The right schema version but other columns, or rows whose state is not JSON or not a
    state: the cache is rebuilt (or the row read again from the file), never trusted."""
    import sqlite3

    ended_run(repo)
    (repo / ".runs/tensorboard/m/events.out.tfevents.1.host").write_bytes(scalar_events([(0, 3.0), (1, 2.0)]))
    cache = repo / ".runs/.runs.yml.metrics"
    conn = sqlite3.connect(cache)
    conn.execute("CREATE TABLE files (name TEXT, other INTEGER)")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    result = limited("table", "-c", "name", "-m", "loss:count,loss:max", cwd=repo)
    assert_clean(result)
    assert result.code == 0 and result.out.splitlines()[2].split() == ["m", "2", "3.0"], result.err
    for state in ("{bad json", "[1, 2]", '{"schema": 1, "dev": "x"}', "null"):
        conn = sqlite3.connect(cache)
        conn.execute("UPDATE files SET state = ?", (state,))
        conn.commit()
        conn.close()
        result = limited("table", "-c", "name", "-m", "loss:count,loss:max", cwd=repo)
        assert_clean(result)
        assert result.code == 0 and result.out.splitlines()[2].split() == ["m", "2", "3.0"], (state, result.err)


# The index ------------------------------------------------------------------------------------


def indexed_runs(repo: Path) -> Path:
    """Two runs and a fresh index of them; the index's path."""
    write_db(repo, GOOD + "other:\n  command: python other.py\n  datetime: '2026-12-01T11:00:00+00:00'\n")
    result = limited("list", cwd=repo)
    assert result.out == "good\nother\n", result.err
    return repo / ".runs/.runs.yml.index"


@pytest.mark.parametrize("stored", ["{bad json", "[1, 2]", '"text"', "null", "42"])
def test_an_index_row_that_is_no_entry_is_never_shown(repo: Path, stored: str) -> None:
    """An index row whose entry is not a JSON mapping (the index's state still fresh): the
    index is rebuilt from the YAML file, and every command shows the true entry."""
    import sqlite3

    index = indexed_runs(repo)
    conn = sqlite3.connect(index)
    conn.execute("UPDATE runs SET entry = ? WHERE name = 'good'", (stored,))
    conn.commit()
    conn.close()
    for argv, expected in ((["lookup", "good", "command"], "python train.py\n"),
                           (["lookup", "good"], None),
                           (["table", "-c", "name,command"], None),
                           (["list", "--status", "unknown"], "good\nother\n")):
        result = limited(*argv, cwd=repo)
        assert_clean(result)
        assert result.code == 0, (argv, result.err)
        if expected is not None:
            assert result.out == expected, (argv, result.out)
        assert "1\n- 2" not in result.out and "bad json" not in result.out
    assert "python train.py" in limited("table", "-c", "name,command", cwd=repo).out


def test_an_index_path_that_is_a_directory_still_lists(repo: Path) -> None:
    index = indexed_runs(repo)
    index.unlink()
    index.mkdir()
    for argv in (["list"], ["table"], ["lookup", "good", "command"]):
        result = limited(*argv, cwd=repo)
        assert_clean(result)
        assert result.code == 0, (argv, result.err)
    assert limited("list", cwd=repo).out == "good\nother\n"


# Messages -------------------------------------------------------------------------------------


def test_a_lock_held_by_a_stopped_command_is_named_with_its_state(repo: Path) -> None:
    """A command stopped with Ctrl-Z while holding the lock: the waiting command names its
    pid and command line, and says it is stopped and how to resume it."""
    import signal

    write_db(repo, GOOD)
    lock = repo / ".runs/.runs.yml.lock"
    holder = subprocess.Popen([sys.executable, "-c",
                               "import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
                               "fcntl.lockf(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(600)\n",
                               str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        holder.send_signal(signal.SIGSTOP)
        waiting = subprocess.Popen([sys.executable, "-m", "runs_manager", "describe", "good", "new text"], cwd=repo,
                                   env=dict(os.environ, PYTHONPATH=str(ROOT)), stderr=subprocess.PIPE, text=True)
        try:
            assert waiting.stderr is not None
            line = waiting.stderr.readline()
        finally:
            waiting.kill()
            waiting.wait()
        assert line.startswith("runs: waiting for another runs command to finish with .runs/.runs.yml: "), line
        assert f"process {holder.pid} ({sys.executable} -c import fcntl" in line
        assert f"which is stopped: resume it with 'fg' in its shell, or 'kill -CONT {holder.pid}'" in line
    finally:
        holder.kill()
        holder.wait()


def test_messages_are_whole_and_name_their_files(repo: Path, tmp_path: Path) -> None:
    """Not UTF-8: a whole sentence. Before any run: what is missing. A write that fails on a
    descriptor (a file too large here, a full disk alike): the file it was writing."""
    result = subprocess.run([sys.executable, "-m", "runs_manager", "lookup", b"caf\xe9"], cwd=repo,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    assert result.stderr.endswith("is not UTF-8 text (names, commands and descriptions must be UTF-8)\n"), result.stderr
    assert_clean(limited("mv", "a", "b", cwd=repo), "there are no runs yet: the runs directory .runs does not exist")

    write_db(repo, GOOD)
    before = (repo / ".runs/.runs.yml").read_bytes()

    def tiny_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))  # the journal needs more

    done = subprocess.run([sys.executable, "-m", "runs_manager", "mv", "good", "better"], cwd=repo, preexec_fn=tiny_files,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=30)
    assert done.stderr == "runs: error: File too large: .runs/.runs.yml.pending\n", done.stderr
    assert (repo / ".runs/.runs.yml").read_bytes() == before
    assert limited("list", cwd=repo).out == "good\n"


# Generated damage ---------------------------------------------------------------------------


# Bytes near what the files hold: fragments of real text and structure, and noise.
YAML_PIECES = st.sampled_from([
    GOOD, "x:\n", "  command: ", "&a ", "*a", "[", "]", "{", "}", "- ", "? ", ": ", "---\n", "...\n", "%YAML 1.1\n",
    "!!python/object:os.system ", "\t", "\n", "'", '"', "#", "\\", "\x00", "\xff", "1e999", "~", "<<: *a\n",
])
DAMAGE = dict(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@settings(**DAMAGE)
@given(text=st.lists(YAML_PIECES | st.text(max_size=8), max_size=30).map("".join), noise=st.binary(max_size=64))
def test_generated_yaml_gives_runs_or_one_error_line(repo: Path, text: str, noise: bytes) -> None:
    path = repo / ".runs" / ".runs.yml"
    path.parent.mkdir(exist_ok=True)
    for name in os.listdir(path.parent):  # a fresh start: no index of an earlier example
        if name.startswith(".runs.yml."):
            os.unlink(path.parent / name)
    path.write_bytes(text.encode("utf-8", "surrogatepass") + noise)
    for argv in (["list"], ["table"], ["lookup", "x"]):
        assert_clean(limited(*argv, cwd=repo, timeout=10))


@settings(**DAMAGE)
@given(data=st.data())
def test_generated_index_rows_are_never_shown(repo: Path, data: Any) -> None:
    import sqlite3

    index = repo / ".runs/.runs.yml.index"
    if not index.exists():
        indexed_runs(repo)
    # Values of another type (SQLite refuses them now: a file written otherwise), and entries
    # that are not what runs writes. A name or an exit code changed to another valid one is
    # another index, not a damaged one: only rebuilding on every read could tell.
    column = data.draw(st.sampled_from(["entry", "name", "length", "ended"]))
    value = data.draw(st.one_of(st.binary(max_size=40), st.integers(-2**63, 2**63 - 1), st.floats(), st.none(), st.text(max_size=40))
                      if column == "entry" else st.one_of(st.binary(max_size=40), st.floats(), st.text(max_size=8).map(lambda t: t + "x"))
                      if column != "name" else st.binary(max_size=40))  # a number would be stored as its text
    conn = sqlite3.connect(index)
    try:
        conn.execute("PRAGMA ignore_check_constraints = ON")  # as a file written by other means
        conn.execute(f"UPDATE runs SET {column} = ? WHERE pos = (SELECT min(pos) FROM runs)", (value,))
        conn.commit()
    except sqlite3.IntegrityError:
        pass  # NOT NULL still holds
    finally:
        conn.close()
    for argv in (["list"], ["table", "-c", "name,command"], ["lookup", "good", "command"]):
        result = limited(*argv, cwd=repo, timeout=10)
        assert_clean(result)
        assert result.code == 0, (argv, result.err)
    assert limited("list", cwd=repo).out == "good\nother\n"


@settings(**DAMAGE)
@given(cut=st.integers(min_value=0, max_value=400), flips=st.lists(st.tuples(st.integers(0, 399), st.integers(1, 255)), max_size=4),
       tail=st.binary(max_size=40))
def test_generated_event_files_give_a_table(repo: Path, cut: int, flips: Any, tail: bytes) -> None:
    directory = repo / ".runs/tensorboard/m"
    if not directory.exists():
        ended_run(repo)
    data = bytearray(scalar_events([(step, 1.0 / (step + 1)) for step in range(8)]))
    for at, bits in flips:
        if at < len(data):
            data[at] ^= bits
    (directory / "events.out.tfevents.1.host").write_bytes(bytes(data[:cut]) + tail)
    for argv in (["metrics", "m"], ["table", "-c", "name", "-m", "loss:count,loss:min"]):
        result = limited(*argv, cwd=repo, timeout=10)
        assert_clean(result)
        assert result.code == 0, (argv, result.err)

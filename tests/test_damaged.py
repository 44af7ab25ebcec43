"""Damaged and crafted files: the YAML database, its index, the metrics cache, event files.

Whatever they hold, `runs` ends in bounded time and memory (each command here runs as its
own process under RLIMIT_AS), with exit status 0 or 1, no traceback and at most one error
line; a damaged derived file (index, cache) is rebuilt, never trusted or shown.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest

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


def record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, data, the data's masked CRC."""
    import struct

    from crc32c import crc32c

    def masked(b: bytes) -> bytes:
        crc = crc32c(b)
        return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)

    length = struct.pack("<Q", len(data))
    return length + masked(length) + data + masked(data)


def _header(length: int) -> bytes:
    """A record header claiming ``length`` bytes, with a valid length CRC."""
    import struct

    from crc32c import crc32c

    packed = struct.pack("<Q", length)
    crc = crc32c(packed)
    return packed + struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


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

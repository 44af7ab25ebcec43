"""Status rules (status.py) and the index's outcome filter that keeps `--status` fast."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import pytest

from runs_manager.runtime import status
from runs_manager.store.database import Database
from runs_manager.errors import RunsError
from runs_manager.runtime.launch import exec_form
from tests.conftest import Result


@pytest.mark.parametrize(
    "entry,expected",
    [
        ({"exit_code": 0}, "finished"),
        ({"exit_code": 1}, "failed"),
        ({"exit_code": 255}, "failed"),  # 128+127 is no signal
        ({"exit_code": 128}, "failed"),
        ({"exit_code": 129}, "killed"),
        ({"exit_code": 137}, "killed"),
        ({"exit_code": 192}, "killed"),
        ({"exit_code": 193}, "failed"),
        ({"exit_code": 0, "killed": "runs kill (SIGTERM)"}, "killed"),
        ({"exit_code": 1, "killed": "hang-up"}, "killed"),
        ({"exit_code": True}, None),  # a hand edit: YAML's true is no exit status
        ({"exit_code": "0"}, None),
        ({}, None),
    ],
)
def test_outcome(entry: Dict[str, Any], expected: Optional[str]) -> None:
    assert status.outcome(entry) == expected


def test_parse_status_filters() -> None:
    assert status.parse(None) is None
    assert status.parse(["running", "failed,killed", " lost "]) == {"running", "failed", "killed", "lost"}
    with pytest.raises(RunsError, match="unknown status 'finshed'; did you mean 'finished'"):
        status.parse(["finshed"])
    with pytest.raises(RunsError, match="needs a status"):
        status.parse([","])


def test_the_index_filter_agrees_with_the_rule(dbpath: Path) -> None:
    """The SQL prefilter (by exit_code's JSON type) gives exactly the runs the Python rule does."""
    codes = ["0", "3", "143", "true", "'0'", "null", "1.5", "[1]"]
    text = "".join(f"r{i}:\n  exit_code: {code}\n" for i, code in enumerate(codes)) + "bare:\n  command: x\n"
    dbpath.write_text(text)
    entries = Database(str(dbpath)).read(lambda index: index.entries())
    with_outcome = [name for name, entry in entries if status.outcome(entry) is not None]
    assert with_outcome == ["r0", "r1", "r2"]
    assert [n for n, _ in Database(str(dbpath)).read(lambda index: index.entries(has_outcome=True))] == with_outcome
    without = [n for n, _ in Database(str(dbpath)).read(lambda index: index.entries(has_outcome=False))]
    assert without == [name for name, _ in entries if name not in with_outcome]
    few = Database(str(dbpath)).read(lambda index: index.entries(["r1", "bare", "r3"], has_outcome=False))
    assert [n for n, _ in few] == ["r3", "bare"]


def test_status_filters_on_the_command_line(repo: Path, runs: Callable[..., Result]) -> None:
    (repo / ".runs").mkdir()
    (repo / ".runs/.runs.yml").write_text(
        "ok:\n  exit_code: 0\nbad:\n  exit_code: 2\nstopped:\n  exit_code: 143\nold:\n  command: x\n"
    )
    assert runs("list", "--status", "failed", "--status", "killed").out == "bad\nstopped\n"
    assert runs("list", "-s", "finished,unknown").out == "ok\nold\n"
    table = runs("table", "--status", "killed").out.splitlines()
    assert len(table) == 3 and table[2].split()[:2] == ["stopped", "killed"]
    bad = runs("table", "--status", "done")
    assert bad.code == 1 and "unknown status 'done'" in bad.err


@pytest.mark.parametrize(
    "line,expected",
    [
        ("python train.py --lr 0.1", "exec python train.py --lr 0.1"),
        ("CUDA_VISIBLE_DEVICES=1 python main.py", "CUDA_VISIBLE_DEVICES=1 exec python main.py"),
        ("A='x y' B=2 python -c 'a\nb'", "A='x y' B=2 exec python -c 'a\nb'"),
        ("python a.py && python b.py", None),
        ("python a.py; echo done", None),
        ("python a.py | tee log", None),
        ("python a.py > out.txt 2>&1", None),
        ("python a.py\npython b.py", None),
        ("(cd x; python a.py)", None),
        ("python $(which a.py)", None),
        ("cd sub", None),
        ("exit 3", None),
        ("X=1", None),
        ("python 'unbalanced", None),
    ],
)
def test_exec_form(line: str, expected: Optional[str]) -> None:
    """One simple command becomes the shell (exec), so the program gets signals and reports
    its own exit status; anything compound stays as typed."""
    assert exec_form(line) == (line if expected is None else expected)
    if expected is not None:  # still the same command to a shell
        words = subprocess.run(["sh", "-n", "-c", exec_form(line)], capture_output=True)
        assert words.returncode == 0

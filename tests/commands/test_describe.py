"""`runs describe NAME TEXT`: one run's description replaced in place, nothing else touched."""
from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Callable, Dict

import pytest
import yaml

from tests.conftest import NO_FLAGS, error_line, Result, Tmux, wait_status

Runs = Callable[..., Result]



def db_path(repo: Path) -> Path:
    return repo / ".runs" / ".runs.yml"


def load(repo: Path) -> Dict[str, dict]:
    return yaml.safe_load(db_path(repo).read_text()) or {}


def segments(text: str) -> Dict[str, str]:
    """The text of each top-level entry (with the comment lines directly above it), by run name."""
    starts = [m.start() for m in re.finditer(r"^[^\s#]", text, re.M)]
    bounds = []
    for start in starts:  # comment lines directly above a run belong to it
        while start > 0:
            previous = text.rfind("\n", 0, start - 1) + 1
            if not text.startswith("#", previous):
                break
            start = previous
        bounds.append(start)
    found = {}
    for start, stop in zip(bounds, bounds[1:] + [len(text)]):
        chunk = text[start:stop]
        key_line = next(line for line in chunk.splitlines() if not line.startswith("#"))
        found[key_line.split(":", 1)[0]] = chunk
    return found




def three_runs(runs: Runs, middle: str) -> None:
    """Runs 'before', NAME (a finished or a running one) and 'after', in that order."""
    assert runs("new", "before", "true", "--description=first", *NO_FLAGS).code == 0
    command = "sleep 600" if middle == "running" else "true"
    assert runs("new", "exp", command, "--description=old words", *NO_FLAGS).code == 0
    assert runs("new", "after", "true", "--description=last", *NO_FLAGS).code == 0
    for name in ("before", "after"):
        wait_status(name, "finished")
    wait_status("exp", middle)


@pytest.mark.parametrize("state", ["finished", "running"])
def test_description_is_replaced_and_nothing_else_changes(runs: Runs, repo: Path, tmux: Tmux, state: str) -> None:
    """Only the description of run 'exp' changes: its other fields, its place, and the
    text of every other run are as before; a running run goes on running."""
    three_runs(runs, state)
    text_before, entries_before = db_path(repo).read_text(), load(repo)
    sessions_before = tmux.sessions()

    result = runs("describe", "exp", "new words")
    assert result.code == 0, result.err
    assert result.err == ""
    assert "new words" in result.out

    entries = load(repo)
    assert list(entries) == ["before", "exp", "after"]
    assert entries["exp"] == {**entries_before["exp"], "description": "new words"}
    assert list(entries["exp"]) == list(entries_before["exp"]), "the fields of the entry were reordered"
    text = db_path(repo).read_text()
    for name in ("before", "after"):
        assert segments(text)[name] == segments(text_before)[name], f"the text of run {name!r} changed"
    assert text.startswith(text_before[: text_before.index("exp:\n")])
    assert text.endswith(text_before[text_before.index("after:\n") :])
    assert runs("lookup", "exp", "description").out == "new words\n"
    assert runs("lookup", "exp", "status").out == f"{state}\n"
    assert tmux.sessions() == sessions_before


def test_describing_a_running_run_survives_its_end_being_recorded(runs: Runs, repo: Path, tmp_path: Path) -> None:
    """The supervisor records the outcome into the entry as it is then: the new description stays."""
    go = tmp_path / "go"
    assert runs("new", "exp", f"while [ ! -e {shlex.quote(str(go))} ]; do sleep 0.05; done", "-d", "old", *NO_FLAGS).code == 0
    wait_status("exp", "running")
    assert runs("describe", "exp", "described while it ran").code == 0
    go.touch()
    wait_status("exp", "finished")
    entry = load(repo)["exp"]
    assert entry["description"] == "described while it ran"
    assert entry["exit_code"] == 0 and "ended" in entry


def test_comments_above_the_run_and_its_place_are_kept(runs: Runs, repo: Path) -> None:
    """A comment written by hand on the lines above a run stays directly above it."""
    for name in ("before", "exp", "after"):
        assert runs("new", name, "true", *NO_FLAGS).code == 0
    for name in ("before", "exp", "after"):
        wait_status(name, "finished")
    path = db_path(repo)
    text = path.read_text()
    assert "\nexp:\n" in text
    path.write_text(text.replace("\nexp:\n", "\n# the run in the paper\n# (do not delete)\nexp:\n"))
    edited = path.read_text()

    result = runs("describe", "exp", "in the paper")
    assert result.code == 0, result.err
    after = path.read_text()
    assert "\n# the run in the paper\n# (do not delete)\nexp:\n" in after
    assert list(load(repo)) == ["before", "exp", "after"]
    assert after.startswith(edited[: edited.index("# the run in the paper")])
    assert after.endswith(edited[edited.index("after:\n") :])
    assert load(repo)["exp"]["description"] == "in the paper"


def test_unknown_run_is_an_error_that_suggests_close_names(runs: Runs, repo: Path) -> None:
    """A typo changes nothing and the error names the run that was probably meant."""
    assert runs("new", "experiment-1", "true", *NO_FLAGS).code == 0
    before = db_path(repo).read_bytes()
    err = error_line(runs("describe", "experiment-l", "text"))
    assert "experiment-l" in err and "'experiment-1'" in err
    assert db_path(repo).read_bytes() == before


def test_unknown_run_without_database_is_an_error(runs: Runs, repo: Path) -> None:
    """No database at all: an error, and no database is made."""
    err = error_line(runs("describe", "exp", "text"))
    assert "exp" in err
    assert not db_path(repo).exists()


@pytest.mark.parametrize(
    "text",
    [
        "two\nlines",
        "ends with a newline\n",
        "quotes: \"double\" and 'single'",
        "café ✓ 日本語 🙂",
        "- looks like: [yaml, {flow}] # not a comment",
        "  leading and trailing spaces  ",
        "",
        "yes",
        "123",
        "null",
        "tab\there",
    ],
)
def test_description_round_trips(runs: Runs, repo: Path, text: str) -> None:
    """Whatever the text, `runs lookup NAME description` gives it back exactly, and so
    do a strict YAML parser and a fresh index."""
    assert runs("new", "exp", "true", *NO_FLAGS).code == 0
    result = runs("describe", "exp", text)
    assert result.code == 0, result.err
    assert runs("lookup", "exp", "description").out == text + "\n"
    assert load(repo)["exp"]["description"] == text
    (repo / ".runs/.runs.yml.index").unlink()
    assert runs("lookup", "exp", "description").out == text + "\n"


def test_reproduce_prints_the_new_description(runs: Runs, repo: Path) -> None:
    """`runs reproduce` gives the command that starts the run again with its new description."""
    assert runs("new", "exp", "python main.py", "--description=old").code == 0
    assert runs("describe", "exp", "it's the one").code == 0
    result = runs("reproduce", "exp")
    assert result.code == 0, result.err
    quoted = shlex.quote("it's the one")
    assert f" runs new exp 'python main.py' --description={quoted} --no-runsrc\n" in result.out
    assert "old" not in result.out

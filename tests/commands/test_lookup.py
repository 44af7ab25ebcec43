"""`runs lookup NAME [KEY]`: one value, or the whole entry as YAML."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml


@pytest.fixture(autouse=True)
def in_repo(repo: Path) -> Path:
    return repo


def one_error_line(err: str) -> bool:
    return err.startswith("runs: error:") and len(err.strip().splitlines()) == 1


@pytest.fixture
def exp(runs):
    assert runs("new", "exp", "python main.py --lr 0.1", "--description=first try").code == 0
    assert runs("new", "exp1", "python other.py").code == 0
    assert runs("new", "sweep/lr-0.1", "true").code == 0


@pytest.mark.usefixtures("exp")
def test_each_key_prints_its_value(runs, db, head):
    assert runs("lookup", "exp", "command").out == "python main.py --lr 0.1\n"
    assert runs("lookup", "exp", "commit").out == head + "\n"
    assert runs("lookup", "exp", "description").out == "first try\n"
    assert runs("lookup", "exp", "host").out == socket.gethostname() + "\n"
    assert runs("lookup", "exp", "datetime").out == db()["exp"]["datetime"] + "\n"
    assert runs("lookup", "exp1", "command").out == "python other.py\n"
    assert runs("lookup", "sweep/lr-0.1", "command").out == "true\n"


@pytest.mark.usefixtures("exp")
def test_without_key_prints_the_whole_entry_as_yaml(runs, db):
    from tests.conftest import wait_for

    # Compared once they have ended: an outcome recorded between the two reads differs.
    assert wait_for(lambda: all("exit_code" in entry for entry in db().values()))
    for name in ("exp", "exp1", "sweep/lr-0.1"):
        result = runs("lookup", name)
        assert result.code == 0
        assert yaml.safe_load(result.out) == db()[name]
    assert {"command", "commit", "datetime", "description", "host"} <= set(yaml.safe_load(runs("lookup", "exp").out))


@pytest.mark.usefixtures("exp")
def test_name_is_matched_exactly_not_as_prefix_or_regex(runs):
    assert yaml.safe_load(runs("lookup", "exp").out)["command"] == "python main.py --lr 0.1"
    for name in ("ex", "exp.", "e.p", "exp.*", "sweep", "sweep/lr-0\\.1"):
        result = runs("lookup", name)
        assert result.code == 1, name
        assert result.out == ""


@pytest.mark.usefixtures("exp")
def test_unknown_run_names_it_and_suggests_close_matches(runs):
    result = runs("lookup", "exq", "command")
    assert result.code == 1
    assert one_error_line(result.err)
    assert "exq" in result.err
    assert "exp" in result.err.replace("exq", "")
    assert result.out == ""


@pytest.mark.usefixtures("exp")
def test_unknown_run_with_nothing_close(runs):
    result = runs("lookup", "completely-different-name")
    assert result.code == 1
    assert one_error_line(result.err)
    assert "completely-different-name" in result.err


def test_unknown_run_without_database(runs, repo):
    result = runs("lookup", "exp")
    assert result.code == 1
    assert one_error_line(result.err)
    assert "exp" in result.err
    assert not (repo / ".runs").exists()


@pytest.mark.usefixtures("exp")
def test_unknown_key_names_it_and_suggests(runs):
    result = runs("lookup", "exp", "comand")
    assert result.code == 1
    assert one_error_line(result.err)
    assert "'comand'" in result.err
    assert "command" in result.err.replace("comand", "")
    assert result.out == ""


@pytest.mark.usefixtures("exp")
def test_unknown_key_lists_the_valid_keys(runs):
    result = runs("lookup", "exp", "zzz")
    assert result.code == 1
    assert one_error_line(result.err)
    assert "zzz" in result.err
    for key in ("command", "commit", "datetime", "description", "host"):
        assert key in result.err


@pytest.mark.usefixtures("exp")
def test_key_is_exact(runs):
    for key in ("Command", "command ", "comm"):
        result = runs("lookup", "exp", key)
        assert result.code == 1, key
        assert one_error_line(result.err)


def test_values_with_newlines_and_quotes(runs, db):
    description = "line one\nline 'two' \"three\" $HOME `x`"
    assert runs("new", "exp", "echo 'hi'", f"--description={description}").code == 0
    assert runs("lookup", "exp", "description").out == description + "\n"
    assert runs("lookup", "exp", "command").out == "echo 'hi'\n"
    assert yaml.safe_load(runs("lookup", "exp").out)["description"] == description


def test_hand_written_entry_with_odd_values(runs, repo):
    (repo / ".runs").mkdir()
    entry = {"command": "x", "description": None, "commit": 123, "extra": {"a": [1, 2]}, "tags": ["u", "v"]}
    (repo / ".runs/.runs.yml").write_text(yaml.safe_dump({"odd": entry}, sort_keys=False))
    assert yaml.safe_load(runs("lookup", "odd").out) == entry
    assert yaml.safe_load(runs("lookup", "odd", "extra").out) == {"a": [1, 2]}
    assert yaml.safe_load(runs("lookup", "odd", "commit").out) == 123
    assert yaml.safe_load(runs("lookup", "odd", "tags").out) == ["u", "v"]
    assert runs("lookup", "odd", "description").code == 0


def test_lookup_reads_the_database_named_by_flags(runs, repo):
    assert runs("new", "exp", "true", "--runs-dir=elsewhere").code == 0
    assert runs("lookup", "exp").code == 1
    assert runs("lookup", "exp", "command", "--runs-dir=elsewhere").out == "true\n"


def test_missing_name_is_a_usage_error(runs):
    result = runs("lookup")
    assert result.code != 0
    assert one_error_line(result.err)


# --format json ---------------------------------------------------------------------------


def test_format_json_prints_the_entry_as_an_object(runs, repo):
    import json

    from tests.conftest import database

    description = 'a, "quoted"\nsecond line'
    assert runs("new", "exp", "true", f"--description={description}").code == 0
    result = runs("lookup", "exp", "--format", "json")
    assert result.code == 0, result.err
    assert result.out.count("\n") == 1
    assert json.loads(result.out) == database(repo)["exp"]
    assert json.loads(runs("lookup", "exp", "description", "-f", "json").out) == description
    assert runs("lookup", "exp", "status", "-f", "json").out in ('"running"\n', '"finished"\n')
    assert json.loads(runs("lookup", "exp", "tmux_session_created", "-f", "json").out) == database(repo)["exp"]["tmux_session_created"]


def test_format_json_of_values_that_are_not_text(runs, repo):
    import json

    (repo / ".runs").mkdir()
    (repo / ".runs/.runs.yml").write_text("exp:\n  command: [a, b]\n  when: 2026-11-28 10:00:00\n  n: .inf\n")
    assert json.loads(runs("lookup", "exp", "-f", "json").out) == {"command": ["a", "b"], "when": "2026-11-28T10:00:00", "n": "Infinity"}
    assert json.loads(runs("lookup", "exp", "command", "-f", "json").out) == ["a", "b"]


def test_unknown_format_is_a_usage_error(runs, repo):
    assert runs("new", "exp", "true").code == 0
    result = runs("lookup", "exp", "-f", "xml")
    assert result.code == 2 and result.out == "" and result.err.count("\n") == 1
    assert "invalid choice: 'xml'" in result.err

"""`runs list [--pattern REGEX]`: names, one per line, oldest first."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Set

import pytest
import yaml


@pytest.fixture(autouse=True)
def in_repo(repo: Path) -> Path:
    """Every test starts in a fresh git repository (the `repo` fixture makes it the cwd)."""
    return repo


def everything(root: Path) -> Set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def one_error_line(err: str) -> bool:
    return err.startswith("runs: error:") and len(err.strip().splitlines()) == 1


def test_names_one_per_line_oldest_first(runs):
    for name in ("zeta", "alpha", "sweep/lr-0.1", "mid"):
        assert runs("new", name, "true").code == 0
    result = runs("list")
    assert result.code == 0
    assert result.out == "zeta\nalpha\nsweep/lr-0.1\nmid\n"
    assert result.err == ""


def test_order_is_the_file_order_of_a_hand_written_database(runs, repo):
    (repo / ".runs").mkdir()
    entries = {name: {"command": "true"} for name in ("c", "a", "b")}
    (repo / ".runs/.runs.yml").write_text(yaml.safe_dump(entries, sort_keys=False))
    assert runs("list").out == "c\na\nb\n"


def test_order_survives_a_deletion_in_the_middle(runs):
    for name in ("one", "two", "three"):
        assert runs("new", name, "true").code == 0
    assert runs("delete", "two", "-y").code == 0
    assert runs("new", "four", "true").code == 0
    assert runs("list").out == "one\nthree\nfour\n"


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("a1|b1", ["a1", "b1"]),
        ("alpha|beta", ["alpha", "beta"]),
        ("a.*", ["a1", "a10", "alpha", "alphabet"]),
        ("a", []),
        ("1", []),
        ("sweep/.*", ["sweep/x"]),
        ("sweep", []),
        (".*", ["a1", "a10", "b1", "alpha", "alphabet", "beta", "sweep/x"]),
    ],
)
def test_pattern_must_match_the_whole_name(runs, pattern, expected):
    for name in ("a1", "a10", "b1", "alpha", "alphabet", "beta", "sweep/x"):
        assert runs("new", name, "true").code == 0
    for flag in ("--pattern", "-p"):
        result = runs("list", flag, pattern)
        assert result.code == 0
        assert result.out.splitlines() == expected


def test_invalid_pattern_is_a_one_line_error(runs):
    assert runs("new", "exp", "true").code == 0
    result = runs("list", "--pattern", "(unclosed")
    assert result.code == 1
    assert one_error_line(result.err)
    assert result.out == ""


def test_no_database_gives_empty_output_and_creates_nothing(runs, repo, runs_process):
    before = everything(repo)
    result = runs("list")
    assert (result.code, result.out, result.err) == (0, "", "")
    result = runs_process("list")
    assert (result.code, result.out, result.err) == (0, "", "")
    result = runs("list", "--pattern", "x.*")
    assert (result.code, result.out) == (0, "")
    assert everything(repo) == before
    assert not (repo / ".runs").exists()


def test_no_database_outside_a_git_repository_creates_nothing(runs, tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    result = runs("list")
    assert (result.code, result.out) == (0, "")
    assert list(plain.iterdir()) == []


def test_missing_runs_dir_given_as_flag_is_not_created(runs, repo):
    result = runs("list", "--runs-dir", "elsewhere/runs")
    assert (result.code, result.out) == (0, "")
    assert not (repo / "elsewhere").exists()


def test_empty_runs_dir_with_no_database(runs, repo):
    (repo / ".runs").mkdir()
    result = runs("list")
    assert (result.code, result.out) == (0, "")
    assert os.listdir(repo / ".runs") == []


def test_list_reads_the_database_named_by_flags(runs, repo):
    assert runs("new", "exp", "true", "--runs-dir", "other", "--db-filename", "db.yml").code == 0
    assert runs("list").out == ""
    assert runs("list", "--runs-dir", "other", "--db-filename", "db.yml").out == "exp\n"


def test_hand_edit_is_noticed(runs, repo):
    assert runs("new", "exp", "true").code == 0
    assert runs("list").out == "exp\n"
    path = repo / ".runs/.runs.yml"
    data = yaml.safe_load(path.read_text())
    data["added-by-hand"] = {"command": "true"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert runs("list").out == "exp\nadded-by-hand\n"


# --format json ---------------------------------------------------------------------------

import json  # noqa: E402


def test_format_json_is_an_array_of_names(runs, repo, runs_process):
    for name in ("zeta", "alpha", "sweep/lr-0.1", "a,b"):
        assert runs("new", name, "true").code == 0
    result = runs("list", "--format", "json")
    assert (result.code, result.err) == (0, "")
    assert json.loads(result.out) == ["zeta", "alpha", "sweep/lr-0.1", "a,b"]
    assert json.loads(runs("list", "-f", "json", "-p", "a.*").out) == ["alpha", "a,b"]
    assert json.loads(runs("list", "-f", "json", "-s", "killed").out) == []
    assert runs_process("list", "-f", "json", "-p", "z.*").out == '["zeta"]\n'


def test_format_json_keeps_names_a_hand_edit_made_odd(runs, repo):
    (repo / ".runs").mkdir()
    (repo / ".runs/.runs.yml").write_text('"tab\\there": {}\n"new\\nline": {}\n"caf\\u00e9": {}\n')
    assert json.loads(runs("list", "-f", "json").out) == ["tab\there", "new\nline", "café"]
    assert runs("list").out == "tab\\there\nnew\\nline\ncafé\n"  # the plain list keeps one name a line


def test_format_json_of_no_database(runs, repo):
    assert runs("list", "-f", "json").out == "[]\n"
    assert not (repo / ".runs").exists()


def test_unknown_format_is_a_usage_error(runs, repo):
    result = runs("list", "--format", "csv")
    assert result.code == 2 and result.out == ""
    assert one_error_line(result.err) and "invalid choice: 'csv'" in result.err

"""`runs table`: one row per run, oldest first, long cells cut, one line per run whatever the values."""
from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

HEADERS = ["name", "status", "command", "commit", "datetime", "description", "host"]


@pytest.fixture(autouse=True)
def in_repo(repo: Path) -> Path:
    return repo


def write_db(repo: Path, entries: Dict[str, Any]) -> None:
    (repo / ".runs").mkdir(exist_ok=True)
    (repo / ".runs/.runs.yml").write_text(yaml.safe_dump(entries, sort_keys=False, allow_unicode=True))


def parse(out: str) -> List[Dict[str, str]]:
    """The rows of tabulate's plain table, cut at the column spans its dashed line shows."""
    lines = out.rstrip("\n").split("\n")
    assert len(lines) >= 2
    spans = [m.span() for m in re.finditer(r"-+", lines[1])]
    assert re.fullmatch(r"-+(  -+)*", lines[1]), lines[1]
    headers = [lines[0][a:b].strip() for a, b in spans]
    assert headers == HEADERS
    rows = []
    for line in lines[2:]:
        cells = [line[a:b].strip() for a, b in spans[:-1]] + [line[spans[-1][0]:].strip()]
        rows.append(dict(zip(headers, cells)))
    return rows


def test_header_and_one_row_per_run_oldest_first(runs, head, db):
    for name in ("zeta", "alpha", "sweep/lr-0.1"):
        assert runs("new", name, "true", f"--description=about {name}").code == 0
    result = runs("table")
    assert result.code == 0, result.err
    assert result.out.split("\n")[0].split() == HEADERS
    rows = parse(result.out)
    assert [row["name"] for row in rows] == ["zeta", "alpha", "sweep/lr-0.1"]
    for row in rows:
        assert row["command"] == "true"
        assert row["commit"] == head[:30] + "..."  # a 40-character commit is cut at the default width
        assert row["description"] == f"about {row['name']}"
        assert row["host"] == socket.gethostname()
        stamp = db()[row["name"]]["datetime"]
        assert row["datetime"] == (stamp if len(stamp) <= 30 else stamp[:30] + "...")
    assert len(result.out.rstrip("\n").split("\n")) == 2 + 3


def test_default_width_is_30(runs, repo):
    write_db(repo, {"exp": {"command": "c" * 31, "description": "d" * 30}})
    row = parse(runs("table").out)[0]
    assert row["command"] == "c" * 30 + "..."
    assert row["description"] == "d" * 30


def test_width_from_runsrc_and_flag_overrides_it(runs, repo, runsrc):
    write_db(repo, {"exp": {"command": "x" * 40, "description": "short", "host": "h" * 12}})
    runsrc({"column-width": 10})
    row = parse(runs("table").out)[0]
    assert row["command"] == "x" * 10 + "..."
    assert len(row["command"]) == 13
    assert row["host"] == "h" * 10 + "..."
    assert row["description"] == "short"
    row = parse(runs("table", "--column-width", "20").out)[0]
    assert row["command"] == "x" * 20 + "..."
    assert row["host"] == "h" * 12
    row = parse(runs("table", "--column-width=5").out)[0]
    assert row["description"] == "short"
    assert row["command"] == "xxxxx..."


def test_cell_of_exactly_the_width_is_not_cut(runs, repo):
    write_db(repo, {"exp": {"command": "abcde", "description": "abcdef"}})
    row = parse(runs("table", "--column-width", "5").out)[0]
    assert row["command"] == "abcde"
    assert row["description"] == "abcde..."


def test_name_is_never_cut(runs, repo):
    name = "group-" + "n" * 60 + "/" + "m" * 150
    assert runs("new", name, "true").code == 0
    result = runs("table", "--column-width", "4")
    rows = parse(result.out)
    assert rows[0]["name"] == name
    assert rows[0]["command"] == "true"


def test_missing_values_show_underscore(runs, repo):
    write_db(repo, {"bare": {"command": "python x.py"}, "empty": None, "nulls": {"command": None, "host": None}})
    rows = parse(runs("table").out)
    assert [r["name"] for r in rows] == ["bare", "empty", "nulls"]
    assert rows[0] == {
        "name": "bare", "status": "unknown", "command": "python x.py",
        "commit": "_", "datetime": "_", "description": "_", "host": "_",
    }
    assert all(rows[1][h] == "_" for h in HEADERS[2:]) and rows[1]["status"] == "unknown"
    assert all(rows[2][h] == "_" for h in HEADERS[2:]) and rows[2]["status"] == "unknown"


@pytest.mark.parametrize("value", ["line one\nline two", "a\r\nb", "tab\there", "x\x0by", "u\u2028v", "\n", "end\n"])
def test_line_breaks_never_split_a_row(runs, repo, value):
    write_db(repo, {"first": {"command": value, "description": value}, "second": {"command": "ok", "description": value}})
    out = runs("table").out
    lines = out.rstrip("\n").split("\n")
    assert len(lines) == 2 + 2, out
    assert lines[2].startswith("first ") and lines[3].startswith("second ")
    assert parse(out)[1]["command"] == "ok"


def test_newline_in_description_from_runs_new(runs):
    assert runs("new", "exp", "true", "--description=first line\nsecond line").code == 0
    assert runs("new", "exp2", "true").code == 0
    out = runs("table").out
    lines = out.rstrip("\n").split("\n")
    assert len(lines) == 4
    assert "second line" in lines[2]


def test_pattern_selects_whole_names_oldest_first(runs):
    for name in ("b1", "a1", "a10", "alphabet", "alpha"):
        assert runs("new", name, "true").code == 0
    rows = parse(runs("table", "--pattern", "a1|alpha").out)
    assert [r["name"] for r in rows] == ["a1", "alpha"]
    rows = parse(runs("table", "-p", "a.*").out)
    assert [r["name"] for r in rows] == ["a1", "a10", "alphabet", "alpha"]


def test_pattern_matching_nothing_prints_only_the_header(runs):
    assert runs("new", "exp", "true").code == 0
    result = runs("table", "--pattern", "ex")
    assert result.code == 0
    assert parse(result.out) == []


def test_invalid_pattern_is_a_one_line_error(runs):
    assert runs("new", "exp", "true").code == 0
    result = runs("table", "--pattern", "[")
    assert result.code == 1
    assert result.err.startswith("runs: error:") and len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize("width", ["-1", "-3", "abc", "1.5"])
def test_bad_column_width_flag_is_a_one_line_error(runs, repo, width):
    assert runs("new", "exp", "true").code == 0
    result = runs("table", f"--column-width={width}")
    assert result.code != 0
    assert result.err.startswith("runs: error:") and len(result.err.strip().splitlines()) == 1
    assert result.out == ""


def test_non_string_values_are_shown_in_one_line(runs, repo):
    write_db(repo, {"exp": {"command": ["python", "x.py"], "description": {"a": 1}, "host": 42, "commit": True}})
    row = parse(runs("table").out)[0]
    assert row["command"] == '["python", "x.py"]'
    assert row["host"] == "42"
    assert row["commit"] == "true"


def test_no_database_prints_a_table_without_rows_and_creates_nothing(runs, repo):
    result = runs("table")
    assert result.code == 0
    assert parse(result.out) == []
    assert not (repo / ".runs").exists()

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


# Columns, sorting and formats --------------------------------------------------------------

import csv  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402

from tests.conftest import database  # noqa: E402

TRICKY = 'lr 0.1, "warm" start,\nthen a\ttab; back\\slash, \'single\''


def write_plain(repo: Path, text: str) -> None:
    (repo / ".runs").mkdir(exist_ok=True)
    (repo / ".runs/.runs.yml").write_text(text)


def one_error(result, code: int = 1) -> str:
    assert result.code == code, (result.code, result.out, result.err)
    assert result.out == ""
    assert result.err.startswith("runs: error: ") and result.err.count("\n") == 1, result.err
    return result.err


def names_of(out: str) -> List[str]:
    return [row["name"] for row in json.loads(out)]


def test_columns_shows_exactly_those_columns(runs, repo):
    write_db(repo, {"exp": {"command": "c", "commit": "abc", "host": "gpu1", "seed": 3}, "other": {"host": "gpu2"}})
    result = runs("table", "--columns", "name,commit,host")
    lines = result.out.splitlines()
    assert lines[0].split() == ["name", "commit", "host"]
    assert lines[2].split() == ["exp", "abc", "gpu1"]
    assert lines[3].split() == ["other", "_", "gpu2"]
    # Repeated, with spaces, any key the entries have (a hand-added one too), in the order given.
    result = runs("table", "-c", "host, seed", "-c", "name", "--format", "csv")
    assert list(csv.reader(io.StringIO(result.out))) == [["host", "seed", "name"], ["gpu1", "3", "exp"], ["gpu2", "", "other"]]


def test_status_ended_and_exit_code_columns_of_real_runs(runs, db):
    from tests.conftest import start_run, wait_status

    start_run(runs, "good", "true")
    start_run(runs, "bad", "exit 3")
    wait_status("good", "finished")
    wait_status("bad", "failed")
    rows = json.loads(runs("table", "-c", "name,status,exit_code,ended", "-f", "json").out)
    stored = db()
    assert rows == [
        {"name": "good", "status": "finished", "exit_code": 0, "ended": stored["good"]["ended"]},
        {"name": "bad", "status": "failed", "exit_code": 3, "ended": stored["bad"]["ended"]},
    ]


def test_keys_runs_writes_are_known_before_any_run_has_them(runs, repo):
    write_db(repo, {"exp": {"command": "c"}})
    result = runs("table", "-c", "name,ended,exit_code,killed", "-f", "csv")
    assert result.out == "name,ended,exit_code,killed\nexp,,,\n"
    assert runs("table", "-c", "name,commit").code == 0  # no database at all is fine too


def test_a_key_only_other_runs_have_is_known(runs, repo):
    write_db(repo, {"a": {"command": "c"}, "b": {"command": "c", "seed": 7}})
    result = runs("table", "-p", "a", "-c", "name,seed", "--sort", "seed", "-f", "jsonl")
    assert result.out == '{"name": "a", "seed": null}\n'


@pytest.mark.parametrize("argv, message", [
    (("-c", "name,nmae"), "unknown column 'nmae' in --columns; did you mean 'name'?"),
    (("-c", "name,seeds"), "unknown column 'seeds' in --columns; did you mean 'seed'?"),
    (("--sort", "colour"), "unknown sort key 'colour' in --sort"),
    (("--sort=-colour",), "unknown sort key 'colour' in --sort"),
    (("-c", ""), "--columns needs at least one column"),
    (("-c", " , ,"), "--columns needs at least one column"),
    (("-c", "name,host,name"), "column 'name' is given twice"),
    (("--sort", "-"), "--sort needs a key"),
    (("-f", "xml"), "unknown format 'xml'; (formats: plain, csv, tsv, json, jsonl,"),
    (("-f", "jsno"), "did you mean 'json'?"),
    (("-f", "json", "-s", "sleeping"), "unknown status 'sleeping'"),
    (("-f", "json", "-p", "("), "invalid regular expression"),
])
def test_bad_columns_sort_keys_and_formats_are_one_line_errors(runs, repo, argv, message):
    write_db(repo, {"exp": {"command": "c", "seed": 1}})
    err = one_error(runs("table", *argv))
    assert message in err
    if "unknown column" in err or "unknown sort key" in err:
        assert "(known: name, status, command, commit, datetime, description, host," in err and "seed" in err


def test_sort_times_as_times_numbers_as_numbers_missing_last(runs, repo):
    write_db(repo, {
        "a": {"datetime": "2026-11-28T10:00:00+05:00", "loss": 10, "note": "b"},   # 05:00 UTC
        "b": {"datetime": "2026-11-28T06:00:00+00:00", "loss": 9.5, "note": "a"},  # 06:00 UTC
        "c": {"datetime": "2026-11-28T04:30:00Z", "loss": "100"},                  # 04:30 UTC
        "d": {"loss": None, "note": "c"},
        "e": {"datetime": "2026-11-27", "loss": -1e3},
    })
    assert names_of(runs("table", "--sort", "datetime", "-f", "json").out) == ["e", "c", "a", "b", "d"]
    assert names_of(runs("table", "--sort", "-datetime", "-f", "json").out) == ["b", "a", "c", "e", "d"]
    assert names_of(runs("table", "--sort=-datetime", "-f", "json").out) == ["b", "a", "c", "e", "d"]
    assert names_of(runs("table", "--sort", "datetime", "--reverse", "-f", "json").out) == ["b", "a", "c", "e", "d"]
    assert names_of(runs("table", "--sort", "loss", "-f", "json").out) == ["e", "b", "a", "c", "d"]  # not "10" < "9.5"
    assert names_of(runs("table", "--sort", "-loss", "-f", "json").out) == ["c", "a", "b", "e", "d"]
    assert names_of(runs("table", "--sort", "note", "-f", "json").out) == ["b", "a", "d", "c", "e"]
    # The plain table sorts the same way.
    assert [r["name"] for r in parse(runs("table", "--sort", "-datetime").out)] == ["b", "a", "c", "e", "d"]


def test_sort_ties_keep_file_order_and_later_keys_break_them(runs, repo):
    write_db(repo, {
        "r1": {"host": "gpu2", "seed": 2}, "r2": {"host": "gpu1", "seed": 1}, "r3": {"host": "gpu2", "seed": 1},
        "r4": {"host": "gpu1", "seed": 2}, "r5": {"host": "gpu1"},
    })
    assert names_of(runs("table", "--sort", "host", "-f", "json").out) == ["r2", "r4", "r5", "r1", "r3"]
    assert names_of(runs("table", "--sort", "host", "--sort", "-seed", "-f", "json").out) == ["r4", "r2", "r5", "r1", "r3"]
    assert names_of(runs("table", "--sort", "host,seed", "-f", "json").out) == ["r2", "r4", "r5", "r3", "r1"]
    assert names_of(runs("table", "--sort", "name", "--reverse", "-f", "json").out) == ["r5", "r4", "r3", "r2", "r1"]
    assert names_of(runs("table", "--reverse", "-f", "json").out) == ["r5", "r4", "r3", "r2", "r1"]  # newest first
    assert names_of(runs("table", "--sort", "status", "-f", "json").out) == ["r1", "r2", "r3", "r4", "r5"]  # all unknown


def test_sort_of_mixed_kinds_is_no_error(runs, repo):
    write_db(repo, {"a": {"x": [1, 2]}, "b": {"x": "text"}, "c": {"x": 3}, "d": {"x": {"k": 1}}, "e": {"x": True},
                    "f": {"x": "2026-01-01T00:00:00"}, "g": {"x": float("nan")}})
    result = runs("table", "--sort", "x", "-c", "name,x", "-f", "json")
    assert result.code == 0, result.err
    assert names_of(result.out) == ["e", "c", "f", "b", "a", "d", "g"]  # NaN last (then missing values)


def test_nan_sorts_last_in_both_directions(runs, repo):
    write_db(repo, {"a": {"acc": 0.5}, "diverged": {"acc": float("nan")}, "b": {"acc": 0.9}, "none": {}, "c": {"acc": 0.7}})
    for sort, expected in (("acc", ["a", "c", "b", "diverged", "none"]), ("-acc", ["b", "c", "a", "diverged", "none"])):
        result = runs("table", "--sort", sort, "-c", "name,acc", "-f", "json")
        assert names_of(result.out) == expected, sort


def test_machine_formats_round_trip_every_value_uncut(runs, repo):
    long = "x" * 200
    write_db(repo, {
        "tricky": {"command": long, "description": TRICKY, "host": "gpu1"},
        "plain": {"command": "python t.py", "description": "short"},
        "sweep/lr-0.1": {"description": "", "host": None},
    })
    stored = database(repo)
    columns = ["name", "command", "description", "host"]
    for fmt, dialect in (("csv", "excel"), ("tsv", "excel-tab")):
        result = runs("table", "-c", ",".join(columns), "-f", fmt, "--column-width", "3")
        assert result.code == 0, result.err
        rows = list(csv.reader(io.StringIO(result.out, newline=""), dialect=dialect))
        assert rows[0] == columns
        assert rows[1:] == [[name] + ["" if stored[name].get(c) is None else stored[name][c] for c in columns[1:]] for name in stored]
    for fmt in ("json", "jsonl"):
        result = runs("table", "-c", ",".join(columns), "-f", fmt, "--column-width", "3")
        rows = json.loads(result.out) if fmt == "json" else [json.loads(line) for line in result.out.splitlines()]
        assert rows == [{"name": name, **{c: stored[name].get(c) for c in columns[1:]}} for name in stored]
        if fmt == "jsonl":
            assert len(result.out.splitlines()) == 3  # one run a line: newlines inside values are escaped


def test_machine_formats_have_the_rows_and_columns_of_the_table(runs, repo):
    write_db(repo, {f"run{i}": {"command": f"python t.py --seed {i}", "host": f"gpu{i % 3}", "seed": i % 4}
                    for i in range(12)})
    argv = ("-p", "run1.*", "--sort", "-seed", "--sort", "host", "-c", "name,status,host,seed,command")
    table = parse_any(runs("table", *argv).out)
    as_csv = list(csv.reader(io.StringIO(runs("table", *argv, "-f", "csv").out)))
    as_tsv = list(csv.reader(io.StringIO(runs("table", *argv, "-f", "tsv").out), dialect="excel-tab"))
    as_json = json.loads(runs("table", *argv, "-f", "json").out)
    assert table == as_csv == as_tsv
    assert [[str(v) for v in row.values()] for row in as_json] == table[1:]
    assert [row["name"] for row in as_json] == ["run11", "run10", "run1"]


def parse_any(out: str) -> List[List[str]]:
    lines = out.rstrip("\n").split("\n")
    spans = [m.span() for m in re.finditer(r"-+", lines[1])]
    return [[line[a:b].strip() for a, b in spans[:-1]] + [line[spans[-1][0]:].strip()] for line in [lines[0]] + lines[2:]]


def test_values_that_are_not_text_render_faithfully_in_every_format(runs, repo):
    write_plain(repo, "exp:\n  command: [python, x.py]\n  description: {a: 1, b: [true, null]}\n  host: 42\n"
                      "  commit: true\n  seed: .nan\n  when: 2026-11-28 10:00:00\n  ratio: 1.5e-3\n")
    columns = "name,command,description,host,commit,seed,when,ratio"
    rows = json.loads(runs("table", "-c", columns, "-f", "json").out)
    assert rows == [{"name": "exp", "command": ["python", "x.py"], "description": {"a": 1, "b": [True, None]}, "host": 42,
                     "commit": True, "seed": "NaN", "when": "2026-11-28T10:00:00", "ratio": 0.0015}]
    result = runs("table", "-c", columns, "-f", "csv")
    assert list(csv.reader(io.StringIO(result.out)))[1] == [
        "exp", '["python", "x.py"]', '{"a": 1, "b": [true, null]}', "42", "true", "NaN", "2026-11-28T10:00:00", "0.0015"]
    for fmt in ("plain", "github", "grid", "rst", "tsv", "jsonl"):
        result = runs("table", "-c", columns, "-f", fmt)
        assert result.code == 0 and "Traceback" not in result.err, (fmt, result.err)
        assert "exp" in result.out


@pytest.mark.parametrize("fmt, marker", [("github", "|"), ("grid", "+="), ("rst", "===="), ("psql", "+-"), ("pipe", "|:")])
def test_tabulate_formats(runs, repo, fmt, marker):
    write_db(repo, {"exp": {"command": "c" * 40, "host": "gpu1"}})
    result = runs("table", "-f", fmt, "-c", "name,command,host")
    assert result.code == 0, result.err
    assert marker in result.out and "exp" in result.out and "gpu1" in result.out
    assert "c" * 30 + "..." in result.out and "c" * 31 not in result.out  # human formats cut cells


def test_column_width_zero_never_cuts(runs, repo, runsrc):
    write_db(repo, {"exp": {"command": "c" * 300, "description": "line\nbreak"}})
    row = parse(runs("table", "--column-width", "0").out)[0]
    assert row["command"] == "c" * 300
    assert row["description"] == "line\\nbreak"  # still one run a line
    runsrc({"column-width": 0})
    assert parse(runs("table").out)[0]["command"] == "c" * 300


def test_status_filter_and_missing_entries_in_json(runs, repo):
    write_db(repo, {"done": {"exit_code": 0}, "bad": {"exit_code": 2}, "empty": None, "old": {"command": "c"}})
    assert names_of(runs("table", "-s", "failed,finished", "-f", "json").out) == ["done", "bad"]
    assert json.loads(runs("table", "-s", "unknown", "-c", "name,command", "-f", "json").out) == [
        {"name": "empty", "command": None}, {"name": "old", "command": "c"}]
    assert runs("table", "-s", "running", "-f", "json").out == "[]\n"
    assert runs("table", "-s", "running", "-f", "csv").out == "name,status,command,commit,datetime,description,host\n"


def test_no_database_machine_formats(runs, repo):
    assert runs("table", "-f", "json").out == "[]\n"
    assert runs("table", "-f", "jsonl").out == ""
    assert not (repo / ".runs").exists()


def test_json_of_runs_made_by_runs_new_matches_the_database(runs, db):
    assert runs("new", "exp", "true", f"--description={TRICKY}").code == 0
    assert runs("new", "exp,2", "true", "--description=second").code == 0
    stored = db()
    keys = list(stored["exp"])
    rows = json.loads(runs("table", "-c", ",".join(["name"] + keys), "-f", "json").out)
    assert rows == [{"name": name, **{k: entry.get(k) for k in keys}} for name, entry in stored.items()]
    assert rows[0]["description"] == TRICKY


def test_sort_key_after_a_space_may_start_with_a_dash(runs, repo):
    write_db(repo, {"a": {"exit_code": 0}, "b": {"exit_code": 1}, "c": {"command": "x"}})
    assert names_of(runs("table", "--sort", "-status", "-f", "json").out) == ["c", "a", "b"]  # unknown, finished, failed
    assert names_of(runs("table", "--sort", "-exit_code", "--sort", "name", "-f", "json").out) == ["b", "a", "c"]
    result = runs("table", "--sort", "-p", "a")  # a flag, not a key
    assert result.code == 2 and "--sort" in result.err and result.out == ""
    result = runs("table", "--sort", "--reverse")
    assert result.code == 2 and result.out == ""


from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(descriptions=st.lists(st.text(max_size=40), min_size=1, max_size=3))
def test_any_description_round_trips_through_csv_and_json(runs, repo, descriptions):
    write_db(repo, {f"run{i}": {"description": text} for i, text in enumerate(descriptions)})
    # What the database holds, as a strict YAML parser reads it (PyYAML's dumper folds a few, such as \x85).
    descriptions = [entry["description"] for entry in database(repo).values()]
    as_json = json.loads(runs("table", "-c", "name,description", "-f", "json").out)
    assert [row["description"] for row in as_json] == descriptions
    lines = runs("table", "-c", "description", "-f", "jsonl").out.splitlines()
    assert [json.loads(line)["description"] for line in lines] == descriptions
    for fmt, dialect in (("csv", "excel"), ("tsv", "excel-tab")):
        out = runs("table", "-c", "description", "-f", fmt).out
        assert [row[0] for row in csv.reader(io.StringIO(out, newline=""), dialect=dialect)][1:] == descriptions


@pytest.mark.parametrize("text", ["\r", "0\r", "a\rb", "\r\n", "x\n"])
def test_carriage_returns_survive_csv(runs, repo, text):
    write_db(repo, {"exp": {"description": text}})
    for fmt, dialect in (("csv", "excel"), ("tsv", "excel-tab")):
        out = runs("table", "-c", "name,description", "-f", fmt).out
        assert list(csv.reader(io.StringIO(out, newline=""), dialect=dialect)) == [["name", "description"], ["exp", text]]


def test_metric_columns_follow_the_chosen_columns_in_every_format(runs, repo):
    """`--metrics` (TensorBoard scalars, see test_metrics.py): after --columns, sortable, in tabulate's formats too."""
    from tensorboardX import SummaryWriter

    write_db(repo, {"a": {"command": "x", "lr": 0.1}, "b": {"command": "y", "lr": 0.01}, "c": {"command": "z", "lr": 1}})
    for name, accs in (("a", [0.5, 0.25]), ("b", [0.75, 0.875])):
        writer = SummaryWriter(str(repo / ".runs" / "tensorboard" / name))
        for step, acc in enumerate(accs):
            writer.add_scalar("val/acc", acc, step)
        writer.close()
    result = runs("table", "-c", "name,lr", "--metrics", "val/acc:max,val/acc", "--sort", "-val/acc:max", "-f", "github")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == ["name", "lr", "val/acc:max", "val/acc"]
    assert [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]] == [
        ["b", "0.01", "0.875", "0.875"], ["a", "0.1", "0.5", "0.25"], ["c", "1", "_", "_"]]
    result = runs("table", "-c", "name", "--sort", "val/acc")  # a metric is a sort key only with --metrics
    assert result.code == 1 and "unknown sort key 'val/acc'" in result.err


# Parameters: a run's grid values and the flags of its command, as columns ------------------

def real_sweep(runs, repo: Path) -> List[str]:
    """A real 2x2 sweep and a hand-typed run, ended; their names, oldest first."""
    from tests.conftest import database, wait_for

    result = runs("new", "sw", "true --lr {lr} --seed {seed} --epochs 3", "--grid", "lr=0.1,0.01", "--grid", "seed=1,2",
                  "-d", "sweep")
    assert result.code == 0, result.err
    result = runs("new", "hand", "true --lr=1e-3 --amp model.depth=3 --epochs 3 --tag 'a b'", "-d", "by hand")
    assert result.code == 0, result.err
    assert wait_for(lambda: all("exit_code" in entry for entry in database(repo).values()))
    return list(database(repo))


def plain_rows(out: str) -> List[List[str]]:
    lines = out.splitlines()
    spans = [m.span() for m in re.finditer(r"-+", lines[1])]
    return [[line[a:b].strip() for a, b in spans[:-1]] + [line[spans[-1][0]:].strip()] for line in lines]


def test_a_parameter_is_a_column_and_a_sort_key(runs, repo):
    names = real_sweep(runs, repo)
    result = runs("table", "-c", "name,lr,seed,amp", "--sort", "-lr")
    assert result.code == 0, result.err
    rows = plain_rows(result.out)
    assert rows[0] == ["name", "lr", "seed", "amp"]
    assert rows[2:] == [
        [names[0], "0.1", "1", "_"], [names[1], "0.1", "2", "_"],
        [names[2], "0.01", "1", "_"], [names[3], "0.01", "2", "_"], ["hand", "0.001", "_", "true"]]
    assert [row[0] for row in plain_rows(runs("table", "-c", "name,param:seed", "--sort", "-seed,lr").out)[2:]] == [
        names[3], names[1], names[2], names[0], "hand"]


def test_json_and_csv_give_parameters_their_yaml_types(runs, repo):
    real_sweep(runs, repo)
    rows = json.loads(runs("table", "-p", "hand", "-c", "name,lr,amp,model.depth,tag,epochs", "-f", "json").out)
    assert rows == [{"name": "hand", "lr": 0.001, "amp": True, "model.depth": 3, "tag": "a b", "epochs": 3}]
    out = runs("table", "-p", "hand", "-c", "lr,amp,tag", "-f", "csv").out
    assert list(csv.reader(io.StringIO(out))) == [["lr", "amp", "tag"], ["0.001", "true", "a b"]]


def test_params_shows_what_differs_and_names_the_constants(runs, repo):
    names = real_sweep(runs, repo)
    result = runs("table", "--params")
    assert result.code == 0, result.err
    rows = plain_rows(result.out)
    assert rows[0] == ["name", "status", "lr", "seed", "amp", "model.depth", "tag"]  # in the order they first appear
    assert rows[2] == [names[0], "finished", "0.1", "1", "_", "_", "_"]
    assert rows[-1] == ["hand", "finished", "0.001", "_", "true", "3", "a b"]
    assert result.err == "runs: note: parameters the same in every run shown, left out: epochs=3 (--params all shows them)\n"
    result = runs("table", "-p", "sw/.*", "--params")
    assert plain_rows(result.out)[0] == ["name", "status", "lr", "seed"]
    assert "left out: epochs=3" in result.err
    result = runs("table", "-p", "sw/.*", "--params", "all", "-c", "name")
    assert plain_rows(result.out)[0] == ["name", "lr", "seed", "epochs"] and result.err == ""
    result = runs("table", "-p", "hand", "--params")  # one run: nothing to compare, so all of them
    assert plain_rows(result.out)[0] == ["name", "status", "lr", "amp", "model.depth", "epochs", "tag"]
    result = runs("table", "-c", "name,seed", "--params", "-p", "sw/.*")  # a column asked for is not repeated
    assert plain_rows(result.out)[0] == ["name", "seed", "lr"]


def test_the_compare_table_sorts_by_a_metric_beside_the_parameters(runs, repo):
    from tensorboardX import SummaryWriter

    names = real_sweep(runs, repo)
    for name, acc in zip(names, (0.5, 0.875, 0.75, 0.625)):
        writer = SummaryWriter(str(repo / ".runs" / "tensorboard" / name))
        writer.add_scalar("val/acc", acc, 0)
        writer.close()
    result = runs("table", "-p", "sw/.*", "--params", "--metrics", "val/acc:max", "--sort", "-val/acc:max")
    assert result.code == 0, result.err
    rows = plain_rows(result.out)
    assert rows[0] == ["name", "status", "lr", "seed", "val/acc:max"]
    assert rows[2:] == [[names[1], "finished", "0.1", "2", "0.875"], [names[2], "finished", "0.01", "1", "0.75"],
                        [names[3], "finished", "0.01", "2", "0.625"], [names[0], "finished", "0.1", "1", "0.5"]]
    result = runs("table", "-p", "sw/.*", "--params", "-m", "val/acc", "--sort", "lr,-val/acc", "-f", "json")
    assert [(row["lr"], row["seed"], row["val/acc"]) for row in json.loads(result.out)] == [
        (0.01, 1, 0.75), (0.01, 2, 0.625), (0.1, 2, 0.875), (0.1, 1, 0.5)]


def test_an_entry_key_wins_and_param_says_which(runs, repo):
    write_db(repo, {
        "a": {"command": "python t.py --lr 0.1 --description x --status s --k 1", "description": "about a", "lr": "stored"},
        "b": {"command": "python t.py --lr 0.2 --description y --status t --k 1", "description": "about b"},
    })
    rows = json.loads(runs("table", "-c", "name,lr,param:lr,description,param:description", "-f", "json").out)
    assert rows == [{"name": "a", "lr": "stored", "param:lr": 0.1, "description": "about a", "param:description": "x"},
                    {"name": "b", "lr": None, "param:lr": 0.2, "description": "about b", "param:description": "y"}]
    result = runs("table", "--params", "-f", "json")  # parameters named like a key or column are param:NAME
    assert list(json.loads(result.out)[0]) == ["name", "status", "param:lr", "param:description", "param:status"]
    assert "left out: k=1" in result.err


def test_unknown_columns_suggest_parameters(runs, repo):
    write_db(repo, {"a": {"command": "python t.py --learning-rate 0.1"}})
    result = runs("table", "-c", "name,learning_rate")
    assert result.code == 1 and result.out == ""
    assert result.err.startswith("runs: error: unknown column 'learning_rate' in --columns; did you mean 'learning-rate'?")
    assert result.err.count("\n") == 1
    result = runs("table", "--sort", "param:nope")
    assert result.code == 1 and result.err.startswith("runs: error: unknown sort key 'param:nope' in --sort")
    result = runs("table", "--params", "differ")
    assert result.code == 1 and result.err == "runs: error: --params takes 'all' or nothing, not 'differ'\n"


def test_runs_own_flags_are_no_parameters(runs, repo, runsrc):
    runsrc({"tb-dir-flag": "--logdir", "extra-flags": [["--data", "{runs_dir}/d"], ["--gpu", "0"]]})
    write_db(repo, {"a": {"command": "python t.py --logdir x --data y --gpu 0 --tb-dir z --lr 1"},
                    "b": {"command": "python t.py --lr 2"}})
    assert plain_rows(runs("table", "--params", "all", "-c", "name").out)[0] == ["name", "tb-dir", "lr"]


def test_infinity_and_nan_are_spelled_alike_in_every_format(runs, repo):
    write_db(repo, {"a": {"command": "python t.py --x .inf --y=-.inf --z .nan"}})
    columns = ["-c", "name,x,y,z"]
    table = runs("table", *columns).out.splitlines()[-1].split()
    assert table == ["a", "Infinity", "-Infinity", "NaN"]
    assert json.loads(runs("table", *columns, "-f", "json").out) == [{"name": "a", "x": "Infinity", "y": "-Infinity", "z": "NaN"}]
    assert runs("table", *columns, "-f", "csv").out.splitlines()[-1] == "a,Infinity,-Infinity,NaN"


def test_placeholders_in_values_never_show_a_marker_in_any_format(runs, repo):
    command = "python app.py --note \"{name}\" 'hydra.run.dir={runs_dir}/hydra/{name}' hydra/job_logging=disabled --lr 1"
    write_db(repo, {"a": {"command": command}, "b": {"command": command.replace("--lr 1", "--lr 2")}})
    for fmt in ("plain", "json", "jsonl", "csv", "tsv", "github"):
        out = runs("table", "--params", "all", "-f", fmt).out
        assert "\x00" not in out and "note" not in out and "hydra.run.dir" not in out, (fmt, out)
        assert "hydra/job_logging" in out and "disabled" in out
    assert runs("table", "-c", "name,hydra/job_logging", "-f", "csv").out.splitlines()[1:] == ["a,disabled", "b,disabled"]
    diff = runs("diff", "a", "b")
    assert "\x00" not in diff.out + diff.err and "lr: 1 -> 2" in diff.out


# The default table on a terminal ---------------------------------------------------------

GOLDEN = Path(__file__).parent.parent / "golden"
TERMINAL_DB = """\
baseline:
  description: the first try, with the paper's learning rate, no warm-up and the full data set
  command: python train.py --lr 0.1 --epochs 90 --batch-size 256 --data data/imagenet --workers 8
  commit: 90c0ad704e54d5152d897a4e978cc7f3d1a2b3c4
  datetime: '2026-12-06T20:20:59.942566+00:00'
  host: gpu1.cluster.example.org
  launcher: tmux
  exit_code: 0
sw/lr-0.01_seed-1:
  description: lr 0.01, seed 1
  command: python train.py --lr 0.01 --seed 1
  commit: 5e1f3a0c9b7d2e4f6a8b0c1d2e3f4a5b6c7d8e9f
  datetime: '2026-12-07T01:02:03.000001+00:00'
  host: gpu2
  launcher: tmux
  exit_code: 1
debug:
  description: ''
  command: python -m pdb train.py
  commit: 5e1f3a0c9b7d2e4f6a8b0c1d2e3f4a5b6c7d8e9f
  datetime: '2026-12-07T09:10:11+00:00'
  host: laptop
  launcher: tmux
  exit_code: 0
"""


def table_in_terminal(repo: Path, columns: int, *argv: str) -> str:
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    """What `runs table ARGV` prints on a terminal ``columns`` wide (a pseudo-terminal, its
    window size set as a terminal emulator sets it), in UTC."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([sys.executable, "-m", "runs_manager", "table", *argv], stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=subprocess.PIPE, cwd=repo, env=dict(env, PYTHONPATH=str(ROOT), TZ="UTC"))
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        out += chunk
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.wait(timeout=60) == 0, err
    os.close(master)
    table_in_terminal.err = err  # type: ignore[attr-defined]
    return out.decode().replace("\r\n", "\n")


@pytest.mark.parametrize("columns", [80, 120, 200])
def test_the_default_table_fits_the_terminal(repo, columns):
    (repo / ".runs").mkdir()
    (repo / ".runs/.runs.yml").write_text(TERMINAL_DB)
    shown = table_in_terminal(repo, columns)
    golden = GOLDEN / f"table-{columns}.txt"
    import os

    if os.environ.get("RUNS_WRITE_GOLDEN"):
        golden.write_text(shown)
    assert shown == golden.read_text()
    assert max(len(line) for line in shown.splitlines()) <= columns
    assert "90c0ad704e54 " in shown and "2026-12-06 20:20:59" in shown  # 12 characters; to the second
    note = "runs: note: left out to fit the terminal: description, host (--columns, or a wider terminal, shows them)\n"
    assert table_in_terminal.err == (note if columns == 80 else "")  # type: ignore[attr-defined]
    assert ("python train.py --lr 0.1 --epochs 90 --batch-size 256 --data data/imagenet --workers 8" in shown) == (columns == 200)
    # Not a terminal, or a width asked for: every cell as before (cut at 30, or never).
    from tests.conftest import run_process

    assert "90c0ad704e54d5152d897a4e978cc7..." in run_process("table", cwd=repo).out
    assert "2026-12-06 20:20:59" not in table_in_terminal(repo, columns, "--column-width", "0")


def test_a_fitted_table_never_cuts_a_number(repo):
    """A metric or parameter cut to 10 characters would read 3.4567890... for 3.456789012345678e-05."""
    from runs_manager.fit import fitted

    rows = [["a", "finished", "python train.py " * 5, 3.456789012345678e-05, "x" * 40],
            ["b", "failed", "python", 1.2345678901234567e+20, None]]
    columns = ["name", "status", "command", "loss:min", "param:note"]
    kept, cells = fitted(rows, columns, 70)
    shown = [dict(zip([columns[i] for i in kept], row)) for row in cells]
    assert [row["loss:min"] for row in shown] == ["3.456789012345678e-05", "1.2345678901234567e+20"]
    assert shown[0]["command"].endswith("...") and shown[0]["param:note"].endswith("...")  # text is cut instead
    assert max(len("  ".join(row)) for row in cells) <= 70


def test_columns_the_user_chose_are_cut_but_never_left_out(repo):
    (repo / ".runs").mkdir()
    (repo / ".runs/.runs.yml").write_text(TERMINAL_DB)
    shown = table_in_terminal(repo, 80, "-c", "name,status,command,commit,datetime,description,host")
    assert shown.splitlines()[0].split() == ["name", "status", "command", "commit", "datetime", "description", "host"]
    assert table_in_terminal.err == ""  # type: ignore[attr-defined]


WIDE_DB = """\
baseline:
  description: 学习率为论文中的值，不预热，使用完整数据集进行训练的第一次尝试，结果作为基准线
  command: python train.py --lr 0.1
  commit: 90c0ad704e54d5152d897a4e978cc7f3d1a2b3c4
  datetime: '2026-12-06T20:20:59.942566+00:00'
  host: gpu1
  exit_code: 0
ablation:
  description: 🚀 warm-up, then the cosine schedule 🚀 ré-essai
  command: python train.py --lr 0.2 --warmup 5
  commit: 5e1f3a0c9b7d2e4f6a8b0c1d2e3f4a5b6c7d8e9f
  datetime: '2026-12-07T01:02:03+00:00'
  host: gpu2
  exit_code: 1
hearts:
  description: %s
  command: python train.py --lr 0.3
  commit: 5e1f3a0c9b7d2e4f6a8b0c1d2e3f4a5b6c7d8e9f
  datetime: '2026-12-07T01:02:04+00:00'
  host: gpu2
  exit_code: 0
""" % ("\u2764\ufe0f" * 50)  # hearts with the emoji presentation selector: two cells each


@pytest.mark.parametrize("text", ["学习率为论文中的值", "❤️ ☺️ 🇫🇷 👍🏽 e\u0301 ok", "\u2764\ufe0f" * 30, "🇫🇷" * 20, "abcdef"])
@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 10, 11])
def test_a_cut_is_never_wider_than_asked(text, width):
    """Emoji with a presentation selector (❤️), flags and skin tones: a cut is measured as
    the whole cell is, so it never overflows, and keeps as much as fits."""
    from wcwidth import wcswidth

    from runs_manager.output import cut_to, screen_width

    cut = cut_to(text, width)
    assert screen_width(cut) <= width
    assert cut == text if screen_width(text) <= width else cut.endswith("...") or width < 3
    if width >= 10 and screen_width(text) > width:
        assert screen_width(cut) >= width - 2  # nothing split wastes more than one wide character
        assert wcswidth(cut) == screen_width(cut)


@pytest.mark.parametrize("columns", [80, 120])
def test_wide_characters_fit_the_terminal_and_keep_the_columns_aligned(repo, columns):
    """Chinese, Japanese and emoji take two cells of a terminal each: the table is fitted, and
    padded, by the cells text takes on screen, not by its characters."""
    from wcwidth import wcswidth

    (repo / ".runs").mkdir()
    (repo / ".runs/.runs.yml").write_text(WIDE_DB, encoding="utf-8")
    lines = table_in_terminal(repo, columns, "-c", "name,status,description,host").splitlines()
    assert max(wcswidth(line) for line in lines) <= columns
    assert "学习率" in lines[2] and "🚀" in lines[3]
    # Every row's host starts under the header's: the cells before it are padded by screen width.
    at = [wcswidth(line[:line.index(host)]) for line, host in zip(lines, ["host", "-", "gpu1", "gpu2", "gpu2"]) if host != "-"]
    assert len(set(at)) == 1, lines
    assert lines[2].rstrip().endswith("gpu1")

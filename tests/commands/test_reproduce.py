"""`runs reproduce NAME`: commands that round-trip through a POSIX shell whatever the entry holds."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import ROOT, git

COMMIT = "0123456789abcdef0123456789abcdef01234567"

TRICKY = [
    ("python main.py --lr 0.1", "first try"),
    ("echo 'single' \"double\"", "it's a \"test\""),
    ("echo $HOME ${USER} $(id) `date`", "costs $5 and `rm -rf /`"),
    ("python a.py\npython b.py", "line one\nline two\n"),
    ("printf '%s\\n' \\\\ \\'", "back\\slash \\n \\\\"),
    ("", ""),
    ("  leading and trailing  ", " "),
    ("a;b|c&d>e<f(g)h*?[x]!#~", "--description=nested -y"),
    ("tab\there", "tab\tthere\r\n"),
    ("ünïcödé ✓ 日本", "emoji 🎉"),
    ("-dash-first", "-x"),
    ("python t.py --logdir={tb_dir} \"{save_path}\" {name} | awk '{{print}}' ${HOME}", "placeholders as typed {x}"),
    ("echo NEL\x85 LS\u2028 BOM\ufeff DEL\x7f", "nel\x85 ls\u2028 esc\x1b[0m bell\x07"),
]


@pytest.fixture(autouse=True)
def in_repo(repo: Path) -> Path:
    return repo


def write_db(runs_dir: Path, entries: Dict[str, Any]) -> None:
    runs_dir.mkdir(parents=True, exist_ok=True)
    # Escaped (no allow_unicode): PyYAML would write NEL unquoted and read it back as a space.
    (runs_dir / ".runs.yml").write_text(yaml.safe_dump(entries, sort_keys=False), encoding="utf-8")


def one_error_line(err: str) -> bool:
    return err.startswith("runs: error:") and len(err.strip().splitlines()) == 1


@pytest.fixture
def shims(tmp_path: Path) -> Path:
    """A directory with `runs` and `git` programs that print their arguments as one JSON line."""
    bin_dir = tmp_path / "shims"
    bin_dir.mkdir()
    for program in ("runs", "git"):
        path = bin_dir / program
        path.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps([{program!r}] + sys.argv[1:]))\n")
        path.chmod(0o755)
    return bin_dir


def through_shell(script: str, shims: Path) -> List[List[str]]:
    """Run the printed commands in sh with the shims first on PATH; each command's argv."""
    done = subprocess.run(
        ["sh", "-c", script],
        capture_output=True,
        text=True,
        env=dict(os.environ, PATH=f"{shims}:{os.environ['PATH']}"),
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_output_format(runs, head):
    assert runs("new", "exp", "python main.py", "--description=first try").code == 0
    result = runs("reproduce", "exp")
    assert result.code == 0
    assert result.out == (
        "To reproduce:\n"
        f" git checkout {head}\n"
        " runs new exp 'python main.py' --description='first try'\n"
    )
    assert result.err == ""


def test_output_format_of_a_hand_written_entry(runs, repo):
    write_db(repo / ".runs", {"sweep/lr-0.1": {"command": "python train.py --lr 0.1", "commit": COMMIT, "description": "a b"}})
    assert runs("reproduce", "sweep/lr-0.1").out == (
        f"To reproduce:\n git checkout {COMMIT}\n runs new sweep/lr-0.1 'python train.py --lr 0.1' --description='a b'\n"
    )


@pytest.mark.parametrize("command, description", TRICKY)
def test_commands_round_trip_through_sh(runs, repo, shims, command, description):
    name = "sweep/lr-0.1"
    write_db(repo / ".runs", {name: {"command": command or "x", "commit": COMMIT, "description": description}})
    command = command or "x"
    out = runs("reproduce", name).out
    assert out.startswith("To reproduce:\n git checkout ")
    script = out.split("\n", 1)[1]  # both commands, as a user would paste them
    expected = ["runs", "new", name, command, f"--description={description}"]
    if command.startswith("-"):  # printed as `runs new --description=D -- NAME COMMAND`
        expected = ["runs", "new", f"--description={description}", "--", name, command]
    assert through_shell(script, shims) == [["git", "checkout", COMMIT], expected]


MADE_BY_RUNS_NEW = [(c, d) for c, d in TRICKY if c.strip() and not c.startswith("-")]


@pytest.mark.parametrize("command, description", MADE_BY_RUNS_NEW)
def test_round_trip_of_a_run_made_by_runs_new(runs, db, shims, command, description):
    assert runs("new", "exp", command, f"--description={description}", "--tb-dir-flag=None", "--save-path-flag=None").code == 0
    out = runs("reproduce", "exp").out
    argvs = through_shell(out.split("\n", 1)[1], shims)
    assert argvs == [["git", "checkout", db()["exp"]["commit"]], ["runs", "new", "exp", command, f"--description={description}"]]


# st.text() without NUL (and without lone surrogates, which no file can hold as UTF-8).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=TEXT.filter(lambda s: s != ""), description=TEXT)
def test_printed_line_splits_back_into_command_and_description(runs, repo, command, description):
    runs_dir = Path(tempfile.mkdtemp(dir=repo))
    write_db(runs_dir, {"exp": {"command": command, "commit": COMMIT, "description": description}})
    result = runs("reproduce", "exp", f"--runs-dir={runs_dir}")
    assert result.code == 0, result.err
    head, checkout, line = result.out.split("\n", 2)
    assert head == "To reproduce:"
    assert shlex.split(checkout) == ["git", "checkout", COMMIT]
    expected = ["runs", "new", "exp", command, f"--description={description}"]
    if command.startswith("-"):  # printed as `runs new --description=D -- NAME COMMAND`
        expected = ["runs", "new", f"--description={description}", "--", "exp", command]
    assert shlex.split(line) == expected


def test_missing_description_is_an_empty_one(runs, repo, shims):
    write_db(repo / ".runs", {"exp": {"command": "true", "commit": COMMIT}, "nulldesc": {"command": "true", "commit": COMMIT, "description": None}})
    for name in ("exp", "nulldesc"):
        out = runs("reproduce", name).out
        assert through_shell(out.split("\n", 1)[1], shims)[1] == ["runs", "new", name, "true", "--description="]


def test_unknown_run_is_an_error_naming_it(runs):
    assert runs("new", "exp", "true").code == 0
    result = runs("reproduce", "exq")
    assert result.code == 1
    assert one_error_line(result.err)
    assert "exq" in result.err and "exp" in result.err.replace("exq", "")
    assert result.out == ""


@pytest.mark.parametrize("entry", [{"commit": COMMIT}, {"command": "x"}, {"command": "", "commit": COMMIT}, None])
def test_entry_without_command_or_commit_is_an_error(runs, repo, entry):
    write_db(repo / ".runs", {"exp": entry})
    result = runs("reproduce", "exp")
    assert result.code == 1
    assert one_error_line(result.err)
    assert "To reproduce" not in result.out


@pytest.mark.parametrize("command, description", [(c, d) for c, d in TRICKY if c.strip()])
def test_printed_commands_recreate_the_run_with_the_real_runs(runs, db, repo, tmp_path, command, description):
    """Paste the printed lines into sh with the real `runs` and git: the same run comes back."""
    write_db(repo / ".runs", {"exp": {"command": command, "commit": git("rev-parse", "HEAD").strip(), "description": description}})
    (repo / ".runs/.gitignore").write_text("*\n")
    out = runs("reproduce", "exp").out
    original = db()["exp"]
    assert runs("delete", "exp", "-y").code == 0
    real = tmp_path / "real-runs"
    real.mkdir()
    (real / "runs").write_text(f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(sys.executable)} -m runs_manager "$@"\n')
    (real / "runs").chmod(0o755)
    done = subprocess.run(
        ["sh", "-c", out.split("\n", 1)[1]],
        capture_output=True,
        text=True,
        env=dict(os.environ, PATH=f"{real}:{os.environ['PATH']}"),
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    again = db()["exp"]
    assert (again["command"], again["commit"], again["description"]) == (original["command"], original["commit"], original["description"])


def test_control_characters_are_pointed_out(runs, repo):
    write_db(repo / ".runs", {"exp": {"command": "echo \x1b[2Kfine", "commit": COMMIT, "description": "line\nbreak\ttab"}})
    result = runs("reproduce", "exp")
    assert result.code == 0
    assert "control characters" in result.err  # printed exactly, but a terminal would act on ESC
    write_db(repo / ".runs", {"exp": {"command": "echo fine", "commit": COMMIT, "description": "line\nbreak\ttab"}})
    assert runs("reproduce", "exp").err == ""  # line breaks and tabs are plain text


def test_output_format_of_a_run_from_a_dirty_tree(runs, head, repo):
    (repo / "main.py").write_text("changed\n")
    assert runs("new", "exp", "python main.py", "--description=dirty", "--allow-dirty").code == 0
    result = runs("reproduce", "exp")
    assert result.code == 0, result.err
    assert result.out == (
        "To reproduce:\n"
        f" git checkout {head}\n"
        " git apply .runs/patches/exp.patch\n"
        " runs new exp 'python main.py' --description=dirty --allow-dirty\n"
    )


def test_apply_line_round_trips_through_sh(runs, repo, shims, tmp_path):
    runs_dir = tmp_path / "runs dir 'quoted' ü"
    (repo / "main.py").write_text("changed\n")
    assert runs("new", "--allow-dirty", f"--runs-dir={runs_dir}", "--", "-exp", "true").code == 0
    out = runs("reproduce", f"--runs-dir={runs_dir}", "--", "-exp").out
    argvs = through_shell(out.split("\n", 1)[1], shims)
    assert argvs[1] == ["git", "apply", str(runs_dir / "patches/-exp.patch")]
    assert argvs[2] == ["runs", "new", "--description=", "--allow-dirty", "--", "-exp", "true"]

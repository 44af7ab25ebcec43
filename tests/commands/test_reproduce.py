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

from tests.conftest import git, in_shell

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
        " runs new exp 'python main.py' --description='first try' --no-runsrc\n"
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
    given = [f"--description={description}"] if description else []  # none printed for none
    expected = ["runs", "new", name, command, *given]
    if command.startswith("-"):  # printed as `runs new --description=D -- NAME COMMAND`
        expected = ["runs", "new", *given, "--", name, command]
    assert through_shell(script, shims) == [["git", "checkout", COMMIT], expected]


MADE_BY_RUNS_NEW = [(c, d) for c, d in TRICKY if c.strip() and not c.startswith("-")]


@pytest.mark.parametrize("command, description", MADE_BY_RUNS_NEW)
def test_round_trip_of_a_run_made_by_runs_new(runs, db, shims, command, description):
    assert runs("new", "exp", command, f"--description={description}", "--tb-dir-flag=None", "--save-path-flag=None").code == 0
    out = runs("reproduce", "exp").out
    argvs = through_shell(out.split("\n", 1)[1], shims)
    given = [f"--description={description}"] if description else []
    settings = ["--no-runsrc", "--tb-dir-flag=None", "--save-path-flag=None"]  # the launch settings it had
    assert argvs == [["git", "checkout", db()["exp"]["commit"]], ["runs", "new", "exp", command, *given, *settings]]


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
    given = [f"--description={description}"] if description else []
    expected = ["runs", "new", "exp", command, *given]
    if command.startswith("-"):  # printed as `runs new --description=D -- NAME COMMAND`
        expected = ["runs", "new", *given, "--", "exp", command]
    assert shlex.split(line) == expected


def test_missing_or_empty_description_is_not_printed(runs, repo, shims):
    write_db(repo / ".runs", {"exp": {"command": "true", "commit": COMMIT}, "nulldesc": {"command": "true", "commit": COMMIT, "description": None}})
    for name in ("exp", "nulldesc"):
        out = runs("reproduce", name).out
        assert through_shell(out.split("\n", 1)[1], shims)[1] == ["runs", "new", name, "true"]


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
    done = in_shell(out.split("\n", 1)[1], tmp_path / "real-runs")
    assert done.returncode == 0, done.stderr
    again = db()["exp"]
    assert (again["command"], again["commit"], again["description"]) == (original["command"], original["commit"], original["description"])


def test_control_characters_are_pointed_out(runs, repo):
    write_db(repo / ".runs", {"exp": {"command": "echo \x1b[2Kfine", "commit": COMMIT, "description": "line\nbreak\ttab"}})
    result = runs("reproduce", "exp")
    assert result.code == 0
    assert "control characters" in result.err  # printed exactly, but a terminal would act on ESC
    write_db(repo / ".runs", {"exp": {"command": "echo fine", "commit": COMMIT, "description": "line\nbreak\ttab"}})
    assert "control characters" not in runs("reproduce", "exp").err  # line breaks and tabs are plain text


def test_output_format_of_a_run_from_a_dirty_tree(runs, head, repo):
    (repo / "main.py").write_text("changed\n")
    assert runs("new", "exp", "python main.py", "--description=dirty", "--allow-dirty").code == 0
    result = runs("reproduce", "exp")
    assert result.code == 0, result.err
    assert result.out == (
        "To reproduce:\n"
        f" git checkout {head}\n"
        " git apply .runs/patches/exp.patch\n"
        " runs new exp 'python main.py' --description=dirty --no-runsrc --allow-dirty\n"
    )


def test_apply_line_round_trips_through_sh(runs, repo, shims, tmp_path):
    runs_dir = tmp_path / "runs dir 'quoted' ü"
    (repo / "main.py").write_text("changed\n")
    assert runs("new", "--allow-dirty", f"--runs-dir={runs_dir}", "--", "-exp", "true").code == 0
    out = runs("reproduce", f"--runs-dir={runs_dir}", "--", "-exp").out
    argvs = through_shell(out.split("\n", 1)[1], shims)
    assert argvs[1] == ["git", "apply", str(runs_dir / "patches/-exp.patch")]
    assert argvs[2] == ["runs", "new", "--no-runsrc", f"--runs-dir={runs_dir}", "--allow-dirty", "--", "-exp", "true"]


# The same launch, whatever .runsrc holds later (issue 30) -------------------------------

LATER_RUNSRC = {"tb-dir-flag": "--elsewhere", "save-path-flag": "None", "extra-flags": [["--junk", "1"]]}
LAUNCHES = {  # how the original was started: (.runsrc then, flags, its runs directory and database file)
    "defaults": ({}, [], (".runs", ".runs.yml")),
    "flags-off-and-renamed": ({}, ["--tb-dir-flag", "None", "--save-path-flag=-s"], (".runs", ".runs.yml")),
    "extra-flags-on-the-command-line": ({}, ["--tb-dir-flag=--logdir", "--extra-flag", "--goal", "{runs_dir}/g/{name}",
                                             "--extra-flag", "seed", "7"], (".runs", ".runs.yml")),
    "runsrc-values": ({"save-path-flag": "--ckpt", "extra-flags": [["log-dir", "<runs-dir>/logs/<run-name>"]]}, [],
                      (".runs", ".runs.yml")),
    "runsrc-and-flags": ({"tb-dir-flag": "--tb", "extra-flags": [["--a", "1"]]}, ["--extra-flag", "--b", "2"], (".runs", ".runs.yml")),
    "runs-dir-and-database": ({"runs-dir": "exp runs"}, ["--db-filename", "e.yml"], ("exp runs", "e.yml")),
    "virtualenv": ({}, ["--virtualenv-path", "venv"], (".runs", ".runs.yml")),
    "sweep-member": ({"tb-dir-flag": "None"}, ["--grid", "t=1,2"], (".runs", ".runs.yml")),
}


@pytest.mark.parametrize("case", sorted(LAUNCHES))
def test_the_printed_lines_launch_the_same_program_line_whatever_runsrc_holds_later(runs, repo, tmp_path, case):
    """Run the printed `runs new` line in sh, in the same clone, after .runsrc has changed:
    the program line it launches is the original's, name aside."""
    runsrc_then, flags, (runs_dir, db_file) = LAUNCHES[case]
    (repo / ".gitignore").write_text(".runsrc\n")
    (repo / "venv/bin").mkdir(parents=True)
    (repo / "venv/bin/activate").write_text("")
    git("add", ".", cwd=repo)
    git("commit", "-qm", "setup", cwd=repo)
    (repo / ".runsrc").write_text(yaml.safe_dump(runsrc_then))
    sweep = "--grid" in flags
    assert runs("new", "orig", "echo {t}" if sweep else "true", *flags).code == 0
    name = "orig/t-1" if sweep else "orig"
    database = repo / runs_dir / db_file

    (repo / ".runsrc").write_text(yaml.safe_dump(LATER_RUNSRC))  # the checkout's .runsrc has changed since
    result = runs("reproduce", name, "--runs-dir", runs_dir, "--db-filename", db_file)
    assert result.code == 0, result.err
    words = shlex.split(result.out.splitlines()[-1])
    assert words[:3] == ["runs", "new", name] and "--no-runsrc" in words
    done = in_shell(shlex.join(["runs", "new", "copy"] + words[3:]), tmp_path / "real-runs", cwd=repo)
    assert done.returncode == 0, done.stderr
    entries = yaml.safe_load(database.read_text())
    original, again = entries[name], entries["copy"]
    assert again["launched"] == original["launched"].replace(name, "copy"), words
    assert again["settings"] == original["settings"]
